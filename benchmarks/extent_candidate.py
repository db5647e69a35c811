"""A candidate statistic for the drift detector, measured before it is built:
the pixel extent of a pair's change (the share of pixels whose gray level
the generator moved by more than 8 of 255; spanwatch_core::extent, read by spanwatch_embed::extent),
watched by two more CUSUMs, a wide change (noise, photometric changes touch
every pixel) and a narrow one (a copy touches none, a pit less than a
crack).

Reads DIR/streams/<surface>/statistics.csv from `spanwatch study --streams
-o DIR`: each pair's normal scores as the bundle's tables give them
(alignment, log change size, off span) and the candidate's (`extent_score`,
normalized against the calibration pairs' extents as the bundle's tables
are). Two detectors with format 7's residuals (the alignment and the size
each given the other, the off span given both; k 0.5, 1, 1, 1; clamped to
+-6), one shared threshold each for an ARL0 of 30,000 set by an iid
bootstrap of the calibration pairs: format 7's four CUSUMs, and the same
plus the candidate's two (its score alone or, with --extent-given-size, its
residual given the size; k 1, or --extent-k). Prints, per surface, the
false alarms per 10,000 held-out good pairs (iid draws, 2 million pairs)
and the mean delay right after a start for each degraded generator (400
streams; a miss within 1,000 counts as 1,000).

The study's own detector has a threshold per CUSUM, a margin on the size,
blocks by source and a smoothed bootstrap, so the absolute figures are not
the study's; the comparison of the two is what is read.

  python benchmarks/extent_candidate.py DIR [--extent-k K] [--extent-given-size] [SURFACE ...]
"""
import csv
import sys

import numpy as np

# The CUSUM streams of the previous candidate's measurement, shared.
from off_span_candidate import alarms, delay, mean_run

ARL0 = 30_000
CAP = 6.0
MAX_CORRELATION = 0.9


def residual_rows(c):
    """Format 7's residual coefficients for the correlations `c` of (alignment, size, off span)."""
    rho = np.clip(c[0, 1], -MAX_CORRELATION, MAX_CORRELATION)
    det = 1 - rho * rho
    scale = np.sqrt(det)
    ca, cs = c[0, 2], c[1, 2]
    beta = np.array([(ca - rho * cs) / det, (cs - rho * ca) / det])
    explained = beta[0] * ca + beta[1] * cs
    if explained > MAX_CORRELATION**2:
        beta *= MAX_CORRELATION / np.sqrt(explained)
    variance = 1 - 2 * (beta[0] * ca + beta[1] * cs) + beta @ beta + 2 * rho * beta[0] * beta[1]
    off = np.sqrt(max(variance, 1 - MAX_CORRELATION**2))
    return np.array([[1 / scale, -rho / scale, 0], [-rho / scale, 1 / scale, 0], [-beta[0] / off, -beta[1] / off, 1 / off]])


class Detector:
    """Format 7's CUSUMs on the first three scores, and the candidate's two when `extent`."""

    def __init__(self, calibration, extent, extent_k, given_size):
        self.extent, self.extent_k = extent, extent_k
        z = calibration
        self.rows = residual_rows(np.corrcoef(z[:, :3].T))
        # The extent given the size: (e - r s) / sqrt(1 - r^2), r held within +-0.9.
        r = np.clip(np.corrcoef(z[:, 1], z[:, 3])[0, 1], -MAX_CORRELATION, MAX_CORRELATION) if given_size else 0.0
        self.extent_row = np.array([0, -r, 0, 1]) / np.sqrt(1 - r * r)
        self.h = self.threshold(self.increments(z))

    def increments(self, z):
        a, s, o = np.clip(z[:, :3] @ self.rows.T, -CAP, CAP).T
        columns = [-a - 0.5, -s - 1.0, s - 1.0, o - 1.0]
        if self.extent:
            e = np.clip(z @ self.extent_row, -CAP, CAP)
            columns += [e - self.extent_k, -e - self.extent_k]
        return np.stack(columns, 1)

    def threshold(self, increments, rng=np.random.default_rng(7)):
        low, high = 2.0, 40.0
        for _ in range(14):
            h = (low + high) / 2
            if mean_run(increments, h, rng, 400, 5000) < ARL0:
                low = h
            else:
                high = h
        return high


def load_scores(directory, name):
    """The calibration pairs' four normal scores (alignment, size, off span,
    extent) and each held-out generator's, from the study's statistics.csv."""
    calibration, by = [], {}
    with open(f"{directory}/streams/{name}/statistics.csv") as f:
        for row in csv.DictReader(f):
            z = [float(row[c]) for c in ("alignment_score", "size_score", "off_span_score", "extent_score")]
            if row["split"] == "calibration":
                calibration.append(z)
            else:
                by.setdefault(row["generator"], []).append(z)
    return np.array(calibration), {g: np.array(v) for g, v in by.items()}


def surface(directory, name, rng, extent_k, given_size):
    calibration, by = load_scores(directory, name)
    good = by["faithful"]
    degraded = [g for g in by if g != "faithful"]
    shift = good[:, 3].mean()
    print(f"\n{name}: {len(calibration)} calibration pairs, {len(good)} held-out good pairs (mean extent score {shift:+.3f})")
    print("| detector | h | false alarms per 10,000 held-out good pairs | " + " | ".join(degraded) + " |")
    print("|---" * (3 + len(degraded)) + "|")
    for extent, label in [(False, "format 7's four CUSUMs"), (True, "+ wide and narrow extent")]:
        detector = Detector(calibration, extent, extent_k, given_size)
        fa = alarms(detector.increments(good), detector.h, rng, 400, 5000) / (400 * 5000) * 1e4
        delays = [delay(detector.increments(by[g]), detector.h, rng) for g in degraded]
        print(f"| {label} | {detector.h:.2f} | {fa:.2f} | " + " | ".join(f"{d:.1f}" for d in delays) + " |")


def main():
    args = [a for a in sys.argv[1:] if a != "--extent-given-size"]
    extent_k = 1.0
    if "--extent-k" in args:
        i = args.index("--extent-k")
        extent_k = float(args[i + 1])
        del args[i : i + 2]
    directory, names = args[0], args[1:] or ["brick", "grass", "gravel", "elpv-mono", "elpv-poly"]
    rng = np.random.default_rng(1)
    for name in names:
        surface(directory, name, rng, extent_k, "--extent-given-size" in sys.argv)


if __name__ == "__main__":
    main()
