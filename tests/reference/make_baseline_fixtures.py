"""Baseline-metric reference: Frechet distance (scipy.linalg.sqrtm on the full
covariances, as pytorch-fid does), KID (unbiased MMD^2, cubic polynomial
kernel, full sets) and PRDC (the authors' `prdc` package, k = 5) on the metric
fixtures' embeddings (tests/fixtures/metric/*.npy, made by
make_metric_fixtures.py). Writes tests/fixtures/metric/expected_baselines.json.

Run from the repository root:  python3 tests/reference/make_baseline_fixtures.py
"""
import contextlib
import warnings
import io
import json
import pathlib

import numpy as np
from prdc import compute_prdc
from scipy import linalg

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "metric"
CASES = {"demo": ["faithful", "photometric", "wrong-type"], "tall": ["mixed"]}


def frechet(real, fake):
    mu_r, mu_f = real.mean(0), fake.mean(0)
    s_r, s_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    # The covariances are singular (fewer samples than dimensions); sqrtm is
    # still accurate here: the symmetric form tr sqrt(S_r^1/2 S_f S_r^1/2)
    # by eigh agrees to 1e-7 relative on these fixtures.
    root = linalg.sqrtm(s_r @ s_f)
    return float(((mu_r - mu_f) ** 2).sum() + np.trace(s_r) + np.trace(s_f) - 2 * np.trace(root.real))


def kid(real, fake):
    d = real.shape[1]
    k = lambda x, y: (x @ y.T / d + 1) ** 3
    krr, kff, krf = k(real, real), k(fake, fake), k(real, fake)
    m, n = len(real), len(fake)
    return float((krr.sum() - np.trace(krr)) / (m * (m - 1)) + (kff.sum() - np.trace(kff)) / (n * (n - 1)) - 2 * krf.mean())


def main():
    warnings.simplefilter("ignore")
    expected = {}
    for case, generators in CASES.items():
        real = np.load(FIXTURES / f"{case}_pos.npy").astype(np.float64)
        for g in generators:
            fake = np.load(FIXTURES / f"{case}_{g}_syn.npy").astype(np.float64)
            with contextlib.redirect_stdout(io.StringIO()):
                p = compute_prdc(real, fake, nearest_k=5)
            expected[f"{case}/{g}"] = {
                "frechet": frechet(real, fake),
                "kid": kid(real, fake),
                **{key: float(value) for key, value in p.items()},
                "mean_cosine": float(real.mean(0) @ fake.mean(0) / np.linalg.norm(real.mean(0)) / np.linalg.norm(fake.mean(0))),
            }
    (FIXTURES / "expected_baselines.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(json.dumps(expected, indent=2))


if __name__ == "__main__":
    main()
