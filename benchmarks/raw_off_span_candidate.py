"""Why ELPV mono's transplant misses issue 23's 10-pair goal with bundle
format 8, and what a seventh CUSUM would buy (measured, not built).

Format 8 watches the off span on its residual given the alignment and the
size. A transplant shrinks the change (size score -1.8) and moves it out of
the span (off span +2.2), along the calibration pairs' own correlation of
the two (-0.67 on mono), so the residual keeps only part of its shift.
This script replays the study's streams with the study's own thresholds
(read from DIR/streams.md) and format 8's residuals, iid draws of each
generator's held-out pairs from a fresh start, and the same detector plus a
seventh CUSUM on the off span's raw score (k 1, or --k) at a few
thresholds. It does not rerun the threshold search: with a seventh CUSUM
the six's thresholds would rise a little (the false-alarm budget shared
seven ways), so its delays are a lower bound on what a format 9 would do.

Reads DIR/streams/<surface>/statistics.csv and DIR/streams.md from
`spanwatch study --streams -o DIR`.

  python benchmarks/raw_off_span_candidate.py DIR [--k K] [SURFACE ...]
"""
import sys

import numpy as np

# Format 7's residual rows (format 8 keeps them and watches the extent alone),
# the scores' reader and the CUSUM streams of the earlier candidates.
from extent_candidate import load_scores, residual_rows
from off_span_candidate import delay
# streams.md's reader.
from compare_streams import sections, thresholds as named_thresholds

CAP = 6.0
# The six CUSUMs' k: low alignment, small and large change, outside span, wide and narrow change.
KS = np.array([0.5, 1.0, 1.0, 1.0, 1.0, 1.0])
# Thresholds tried for the seventh CUSUM, relative to the outside-span CUSUM's own.
SEVENTH_OVER_OUTSIDE_SPAN = [0.0, 1.0, 2.0, 4.0]


def thresholds(streams_md, surface):
    """The six CUSUMs' thresholds the study calibrated for `surface`."""
    return np.array(list(named_thresholds(sections(streams_md)[surface]).values())[:6])


def increments(z, rows, seventh_k):
    """Per-pair CUSUM increments: format 8's six, and the raw off span's when `seventh_k` is set."""
    a, s, o = np.clip(z[:, :3] @ rows.T, -CAP, CAP).T
    e = z[:, 3]
    columns = [-a, -s, s, o, e, -e]
    ks = list(KS)
    if seventh_k is not None:
        columns.append(np.clip(z[:, 2], -CAP, CAP))
        ks.append(seventh_k)
    return np.stack(columns, 1) - np.array(ks)


def main():
    args = sys.argv[1:]
    k = 1.0
    if "--k" in args:
        i = args.index("--k")
        k = float(args[i + 1])
        del args[i : i + 2]
    directory, surfaces = args[0], args[1:] or ["brick", "grass", "gravel", "elpv-mono", "elpv-poly"]
    streams_md = open(f"{directory}/streams.md").read()
    rng = np.random.default_rng(1)
    for surface in surfaces:
        calibration, by = load_scores(directory, surface)
        rows = residual_rows(np.corrcoef(calibration[:, :3].T))
        h = thresholds(streams_md, surface)
        generators = [g for g in by if g not in ("faithful", "narrow")]
        print(f"\n{surface}: thresholds {' / '.join(f'{v:.2f}' for v in h)}; mean pairs to the alert after a start")
        print("| detector | " + " | ".join(generators) + " |")
        print("|---" * (1 + len(generators)) + "|")
        variants = [("format 8 (six CUSUMs)", None, h)]
        variants += [(f"+ raw off span, k {k}, h {h[3] + extra:.1f}", k, np.append(h, h[3] + extra)) for extra in SEVENTH_OVER_OUTSIDE_SPAN]
        for label, seventh_k, hs in variants:
            cells = [f"{delay(increments(by[g], rows, seventh_k), hs, rng, streams=2000):.1f}" for g in generators]
            print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
