"""Source-effect reference: the between-source share of each score's
variance that the drift calibration's blocks could hide
(crates/calibrate/src/metric/drift.rs, `source_effects`), recomputed with
numpy and scipy from the definitions on seeded random blocks.

For each score: the one-way random-effects ANOVA of the blocks (sources)
with mean squares MSB = SSB / (k - 1) and MSW = SSW / (N - k), where SSW is
taken as the total sum of squares less SSB; F = MSB / MSW; the unbalanced
design's mean block size n0 = (N - sum n_i^2 / N) / (k - 1); the intraclass
correlation of a ratio theta, (theta - 1) / (theta - 1 + n0) clipped to
[0, 1]; its upper one-sided 95% bound at theta = F / F_{0.05}(k - 1, N - k)
(scipy's F quantile). The effect is the bound less the estimate at theta =
F (each clipped), and 0 when no block has two pairs.

Output: tests/fixtures/detector/source_effects.json.
Run from the repository root:  python3 tests/reference/make_source_effect_fixtures.py
"""
import json
import pathlib

import numpy as np
from scipy.stats import f as fisher

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "detector" / "source_effects.json"


def effects(blocks):
    sizes = np.array([len(b) for b in blocks])
    k, n = len(blocks), int(sizes.sum())
    if k < 2 or n <= k:
        return [0.0, 0.0, 0.0]
    values = np.concatenate([np.asarray(b, dtype=np.float64) for b in blocks])
    labels = np.repeat(np.arange(k), sizes)
    n0 = (n - (sizes**2).sum() / n) / (k - 1)
    lower = fisher.ppf(0.05, k - 1, n - k)
    out = []
    for j in range(3):
        y = values[:, j]
        means = np.bincount(labels, weights=y) / sizes
        ssb = (sizes * (means - y.mean()) ** 2).sum()
        ssw = ((y - y.mean()) ** 2).sum() - ssb
        if ssw <= 1e-300:
            out.append(0.0)
            continue
        f_ratio = (ssb / (k - 1)) / (ssw / (n - k))

        def icc(theta):
            return float(np.clip((theta - 1) / (theta - 1 + n0), 0, 1))

        out.append(max(icc(f_ratio / lower) - icc(f_ratio), 0.0))
    return out


def case(rng, sources, shares):
    """Blocks of 1 to 3 pairs whose scores carry a source effect of `shares`."""
    blocks = []
    for _ in range(sources):
        size = int(rng.integers(1, 4))
        shared = rng.standard_normal(3) * np.sqrt(shares)
        noise = rng.standard_normal((size, 3)) * np.sqrt(1 - np.asarray(shares))
        blocks.append((shared + noise).tolist())
    return blocks


def main():
    rng = np.random.default_rng(23)
    cases = {
        "no_effect": case(rng, 100, [0.0, 0.0, 0.0]),
        "alignment_effect": case(rng, 100, [0.3, 0.0, 0.1]),
        "few_sources": case(rng, 12, [0.5, 0.2, 0.0]),
        "one_pair_each": [rng.standard_normal((1, 3)).tolist() for _ in range(50)],
    }
    document = {name: {"blocks": blocks, "effects": effects(blocks)} for name, blocks in cases.items()}
    OUT.write_text(json.dumps(document, indent=1) + "\n")
    for name, entry in document.items():
        print(name, [round(e, 4) for e in entry["effects"]])


if __name__ == "__main__":
    main()
