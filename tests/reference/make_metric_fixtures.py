"""Metric reference: spanwatch's DS recomputed independently with numpy,
scikit-learn and scipy, on fixed embeddings.

Inputs (written once, then committed as fixtures):
  - "demo": real EfficientNet-Lite0 embeddings of `spanwatch demo` images
    (made with `spanwatch embed DEMO -o EMB`), three generators;
  - "tall": a seeded random case with more pairs than dimensions (n > d).
Outputs: tests/fixtures/metric/<case>_*.npy (inputs) and
tests/fixtures/metric/expected.json (the reference numbers).

Run from the repository root:  python3 tests/reference/make_metric_fixtures.py EMB
"""
import csv
import json
import pathlib
import sys

import numpy as np
from scipy.optimize import nnls
from sklearn.linear_model import LogisticRegression

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "metric"
GENERATORS = ["faithful", "photometric", "wrong-type"]
LAMBDA = 0.01


def standardize_fit(real):
    mu = real.mean(axis=0)
    sd = real.std(axis=0)  # ddof = 0
    constant = sd <= 1e-6 * np.maximum(np.abs(mu), 1e-12)
    sd[constant] = 1.0
    return mu, sd


def probe(neg_z, pos_z):
    x = np.vstack([neg_z, pos_z])
    y = np.r_[np.zeros(len(neg_z)), np.ones(len(pos_z))]
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=100000, tol=1e-12)
    clf.fit(x, y)
    return clf.coef_.ravel()


def effective_rank(s):
    p = s[s > 0] / s[s > 0].sum()
    return max(1, int(np.floor(np.exp(-(p * np.log(p)).sum()) + 1e-9)))


def scores(w, d):
    _, s, vt = np.linalg.svd(d, full_matrices=False)
    k = effective_rank(s)
    vk, sk = vt[:k], s[:k]
    ridge = vk.T @ ((sk**2 / (sk**2 + LAMBDA)) * (vk @ w))
    lstsq = vk.T @ (vk @ w)
    alpha, _ = nnls(d.T, w, maxiter=50 * d.shape[0])
    cone = d.T @ alpha
    rpe = lambda w_hat: float(np.linalg.norm(w - w_hat) / np.linalg.norm(w))
    return {
        "k": k,
        "ds_ridge": 1 - rpe(ridge),
        "ds_lstsq": 1 - rpe(lstsq),
        "ds_nnls": 1 - rpe(cone),
        "chance_ds": 1 - float(np.sqrt(1 - k / d.shape[1])),
        "singular_values_top3": s[:3].tolist(),
    }


def demo_case(emb_dir):
    emb = np.load(emb_dir / "embeddings.npy")
    with open(emb_dir / "index.csv") as f:
        rows = {r["file"]: int(r["row"]) for r in csv.DictReader(f)}
    pick = lambda prefix: emb[[i for name, i in sorted(rows.items()) if name.startswith(prefix)]]
    arrays = {"neg": pick("real/negative/"), "pos": pick("real/positive/")}
    for g in GENERATORS:
        names = sorted(n for n in rows if n.startswith(f"synthetic/{g}/"))
        arrays[f"{g}_syn"] = emb[[rows[n] for n in names]]
        arrays[f"{g}_src"] = emb[[rows["real/negative/" + n.split("/")[-1]] for n in names]]
    return arrays


def tall_case():
    rng = np.random.default_rng(11)
    d = 24
    direction = rng.normal(size=d)
    neg = rng.normal(size=(40, d)) + 3.0
    pos = rng.normal(size=(12, d)) + 3.0 + 0.8 * direction
    src = rng.normal(size=(60, d)) + 3.0
    syn = src + 0.5 * direction * rng.uniform(0.2, 1.0, size=(60, 1)) + 0.4 * rng.normal(size=(60, d))
    return {"neg": neg, "pos": pos, "mixed_syn": syn, "mixed_src": src}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    cases = {"demo": (demo_case(pathlib.Path(sys.argv[1])), GENERATORS), "tall": (tall_case(), ["mixed"])}
    expected = {}
    for case, (arrays, generators) in cases.items():
        for name, a in arrays.items():
            np.save(OUT / f"{case}_{name}.npy", a.astype(np.float32))
        a = {k: np.load(OUT / f"{case}_{k}.npy").astype(np.float64) for k in arrays}
        mu, sd = standardize_fit(np.vstack([a["neg"], a["pos"]]))
        w = probe((a["neg"] - mu) / sd, (a["pos"] - mu) / sd)
        np.save(OUT / f"{case}_w_sklearn.npy", w.astype(np.float64))
        expected[case] = {"generators": generators, "constant_dims": int((sd == 1.0).sum()), "scores": {}}
        for g in generators:
            d = (a[f"{g}_syn"] - a[f"{g}_src"]) / sd
            expected[case]["scores"][g] = scores(w, d)
    (OUT / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(json.dumps(expected, indent=2))


if __name__ == "__main__":
    main()
