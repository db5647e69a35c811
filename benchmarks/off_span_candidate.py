"""A candidate third statistic for the drift detector, measured before it is
built: the share of a pair's change outside the bundle's reference basis
(`off_span` in statistics.csv, held-out pairs only).

Reads DIR/streams/<surface>/statistics.csv from `spanwatch study --streams
-o DIR`. The calibration pairs carry no off_span (the basis was fitted on
them, so theirs would be in-sample), so on each surface the held-out good
(faithful) pairs are split in half by source image: one half plays the
calibration (normal-score tables, correlations, h for an ARL0 of 30,000 by
an iid bootstrap), the other half gives the false alarms. Two detectors,
both as format 5 builds them (conditional residuals of each normal score
given the others, clamped to +-6): the bundle's three CUSUMs on alignment
and change size, and the same plus a fourth on a high off_span (k 0.5).
Prints, per surface, the false alarms per 10,000 on the other half and the
mean delay right after a start for each degraded generator.

Half of 150 held-out pairs is a small calibration set, so the absolute
numbers are not the study's; only the comparison of the two is read.

  python benchmarks/off_span_candidate.py DIR [SURFACE ...]
"""
import csv
import sys

import numpy as np
from scipy.stats import norm

ARL0 = 30_000
CAP = 6.0


def normal_scores(reference, x):
    """Mid-rank empirical CDF of `reference` at x, to a clamped normal score."""
    reference = np.sort(reference)
    n = len(reference)
    p = (np.searchsorted(reference, x, "left") + np.searchsorted(reference, x, "right")) / (2 * n)
    return np.clip(norm.ppf(np.clip(p, 0.5 / n, 1 - 0.5 / n)), -CAP, CAP)


class Detector:
    """CUSUMs on the conditional residuals of the first `m` statistics."""

    def __init__(self, calibration, m):
        self.calibration, self.m = calibration[:, :m], m
        z = self.scores(calibration)
        precision = np.linalg.inv(np.corrcoef(z.T))
        self.precision, self.scale = precision, np.sqrt(np.diag(precision))
        # (statistic, sign, k): low alignment, small and large change, high off_span.
        self.charts = [(0, -1, 0.5), (1, -1, 1.0), (1, 1, 1.0), (2, 1, 0.5)][: 3 if m == 2 else 4]
        self.h = self.threshold(self.increments(z))

    def scores(self, x):
        return np.stack([normal_scores(self.calibration[:, j], x[:, j]) for j in range(self.m)], 1)

    def increments(self, z):
        r = np.clip(z @ self.precision / self.scale, -CAP, CAP)
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
    """Mean pairs to the first crossing from a fresh start (a miss counts as `longest`)."""
    sums = np.zeros((streams, increments.shape[1]))
    first = np.full(streams, longest)
    for t in range(longest):
        sums = np.maximum(0, sums + increments[rng.integers(0, len(increments), streams)])
        newly = (sums.max(1) > h) & (first == longest)
        first[newly] = t + 1
        if (first < longest).all():
            break
    return first.mean()


def surface(directory, name, rng):
    by = {}
    with open(f"{directory}/streams/{name}/statistics.csv") as f:
        for row in csv.DictReader(f):
            if row["split"] == "held_out":
                by.setdefault(row["generator"], []).append(
                    (float(row["alignment"]), float(row["log_size"]), float(row["off_span"]), int(row["source"])))
    by = {g: np.array(v) for g, v in by.items()}
    good = by["faithful"]
    sources = np.unique(good[:, 3])
    rng.shuffle(sources)
    half = np.isin(good[:, 3], sources[: len(sources) // 2])
    calibration, other = good[half][:, :3], good[~half][:, :3]
    print(f"\n{name}: {len(calibration)} pairs calibrate, {len(other)} held out of those (split by source image)")
    print("| detector | h | false alarms per 10,000 on the other half | " + " | ".join(g for g in by if g != "faithful") + " |")
    print("|---" * (3 + len(by) - 1) + "|")
    for m, label in [(2, "alignment + size (format 5)"), (3, "+ off_span")]:
        detector = Detector(calibration, m)
        fa = alarms(detector.increments(detector.scores(other)), detector.h, rng, 400, 5000) / (400 * 5000) * 1e4
        delays = [delay(detector.increments(detector.scores(by[g][:, :3])), detector.h, rng) for g in by if g != "faithful"]
        print(f"| {label} | {detector.h:.2f} | {fa:.2f} | " + " | ".join(f"{d:.1f}" for d in delays) + " |")


def main():
    directory = sys.argv[1]
    names = sys.argv[2:] or ["brick", "grass", "gravel", "elpv-mono", "elpv-poly"]
    rng = np.random.default_rng(1)
    for name in names:
        surface(directory, name, rng)


if __name__ == "__main__":
    main()
