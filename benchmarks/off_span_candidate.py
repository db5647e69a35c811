"""A candidate third statistic for the drift detector, measured before it was
built: the share of a pair's change outside the bundle's reference basis
(`off_span` in statistics.csv). Variant (B), the fourth CUSUM on its
residual given both other scores, is what bundle format 6 built; this
script is kept as the record of that choice (docs/validation.md, "A fourth
CUSUM"), and reads format 6 studies as well (it uses only the raw
statistics).

Reads DIR/streams/<surface>/statistics.csv from `spanwatch study --streams
-o DIR`: the calibration pairs' statistics (alignment and off_span
cross-fitted in folds by source image, as a bundle would be calibrated)
and the held-out pairs'. Two detectors, both as format 5 builds them
(normal-score tables from the calibration pairs, alignment and size each
on its residual given the other, clamped to +-6, h for an ARL0 of 30,000 by an
iid bootstrap of the calibration pairs): the bundle's three CUSUMs on
alignment and change size, and the same plus a fourth on a high off_span
(its residual given both other scores; k 1, or --off-span-k). Prints, per surface, the false alarms per 10,000 on the held-out
good pairs (iid draws, 2 million pairs) and the mean delay right after a
start for each degraded generator (400 streams).

The study's own detector uses blocks by source and a smoothed bootstrap,
so the absolute figures are not the study's; the comparison of the two is
what is read.

  python benchmarks/off_span_candidate.py DIR [--off-span-k K] [--all-given-all] [SURFACE ...]
"""
import csv
import sys

import numpy as np
from scipy.stats import norm

ARL0 = 30_000
# --all-given-all: every score on its residual given all the others (the
# off_span then also enters the alignment's and the size's residuals).
ALL_GIVEN_ALL = "--all-given-all" in sys.argv
CAP = 6.0


def normal_scores(reference, x):
    """Mid-rank empirical CDF of `reference` at x, to a clamped normal score."""
    reference = np.sort(reference)
    n = len(reference)
    p = (np.searchsorted(reference, x, "left") + np.searchsorted(reference, x, "right")) / (2 * n)
    return np.clip(norm.ppf(np.clip(p, 0.5 / n, 1 - 0.5 / n)), -CAP, CAP)


class Detector:
    """CUSUMs on the conditional residuals of the first `m` statistics."""

    def __init__(self, calibration, m, off_span_k):
        self.calibration, self.m = calibration[:, :m], m
        z = self.scores(calibration)
        # Alignment and size: their residuals given each other (format 5's);
        # off_span: its residual given both. Alignment and size are not
        # conditioned on off_span, so the fourth CUSUM adds to format 5's
        # three and takes nothing from them.
        correlation = np.corrcoef(z.T)
        self.precisions = [np.linalg.inv(correlation[:2, :2]), np.linalg.inv(correlation)]
        # (statistic, sign, k): low alignment, small and large change, high off_span.
        self.charts = [(0, -1, 0.5), (1, -1, 1.0), (1, 1, 1.0), (2, 1, off_span_k)][: 3 if m == 2 else 4]
        self.h = self.threshold(self.increments(z))

    def scores(self, x):
        return np.stack([normal_scores(self.calibration[:, j], x[:, j]) for j in range(self.m)], 1)

    def increments(self, z):
        residual = lambda p, z: z @ p / np.sqrt(np.diag(p))
        if self.m == 3 and ALL_GIVEN_ALL:
            r = residual(self.precisions[1], z)
        else:
            r = residual(self.precisions[0], z[:, :2])
            if self.m == 3:
                r = np.concatenate([r, residual(self.precisions[1], z)[:, 2:]], 1)
        r = np.clip(r, -CAP, CAP)
        return np.stack([sign * r[:, j] - k for j, sign, k in self.charts], 1)

    def threshold(self, increments, rng=np.random.default_rng(7)):
        low, high = 2.0, 30.0
        for _ in range(14):
            h = (low + high) / 2
            if mean_run(increments, h, rng, 200, 3000) < ARL0:
                low = h
            else:
                high = h
        return high


def alarms(increments, h, rng, streams, steps):
    """Crossings of `streams` parallel CUSUM streams drawn iid from `increments` (restart after each)."""
    sums = np.zeros((streams, increments.shape[1]))
    count = 0
    for _ in range(steps):
        sums = np.maximum(0, sums + increments[rng.integers(0, len(increments), streams)])
        crossed = sums.max(1) > h
        count += crossed.sum()
        sums[crossed] = 0
    return count


def mean_run(increments, h, rng, streams, steps):
    return streams * steps / max(alarms(increments, h, rng, streams, steps), 1)


def delay(increments, h, rng, streams=400, longest=1000):
    """Mean pairs to the first crossing from a fresh start (a miss counts as
    `longest`); `h` is one threshold or one per CUSUM."""
    sums = np.zeros((streams, increments.shape[1]))
    first = np.full(streams, longest)
    for t in range(longest):
        sums = np.maximum(0, sums + increments[rng.integers(0, len(increments), streams)])
        newly = (sums > h).any(1) & (first == longest)
        first[newly] = t + 1
        if (first < longest).all():
            break
    return first.mean()


def surface(directory, name, rng, off_span_k):
    calibration, by = [], {}
    with open(f"{directory}/streams/{name}/statistics.csv") as f:
        for row in csv.DictReader(f):
            x = (float(row["alignment"]), float(row["log_size"]), float(row["off_span"]))
            if row["split"] == "calibration":
                calibration.append(x)
            else:
                by.setdefault(row["generator"], []).append(x)
    calibration = np.array(calibration)
    by = {g: np.array(v) for g, v in by.items()}
    good = by["faithful"]
    degraded = [g for g in by if g != "faithful"]
    print(f"\n{name}: {len(calibration)} calibration pairs, {len(good)} held-out good pairs")
    print("| detector | h | false alarms per 10,000 held-out good pairs | " + " | ".join(degraded) + " |")
    print("|---" * (3 + len(degraded)) + "|")
    for m, label in [(2, "alignment + size (format 5)"), (3, "+ off_span")]:
        detector = Detector(calibration, m, off_span_k)
        fa = alarms(detector.increments(detector.scores(good)), detector.h, rng, 400, 5000) / (400 * 5000) * 1e4
        delays = [delay(detector.increments(detector.scores(by[g])), detector.h, rng) for g in degraded]
        print(f"| {label} | {detector.h:.2f} | {fa:.2f} | " + " | ".join(f"{d:.1f}" for d in delays) + " |")


def main():
    args = [a for a in sys.argv[1:] if a != "--all-given-all"]
    off_span_k = 1.0
    if "--off-span-k" in args:
        i = args.index("--off-span-k")
        off_span_k = float(args[i + 1])
        del args[i : i + 2]
    directory, names = args[0], args[1:] or ["brick", "grass", "gravel", "elpv-mono", "elpv-poly"]
    rng = np.random.default_rng(1)
    for name in names:
        surface(directory, name, rng, off_span_k)


if __name__ == "__main__":
    main()
