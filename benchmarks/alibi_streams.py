"""spanwatch's CUSUM against alibi-detect's CVMDriftOnline on the same streams.

The stream experiment (`spanwatch study --streams -o DIR`) writes, per
surface, DIR/streams/<surface>/statistics.csv: every calibration pair's
(cross-fitted) statistics, and every held-out pair's. This script gives
alibi-detect the same calibration pairs as its reference set (x_ref): by
default the four statistics bundle format 8 watches (alignment, log change
size, off span, log pixel extent) as four features, or with `--features 2`
the alignment and log size alone (what formats 4 to 7 were compared on).
It calibrates CVMDriftOnline for
the same expected run time (ERT) as the bundle's ARL0, and streams held-out
pairs exactly as the study does: `--after` good (faithful) held-out pairs
drawn with replacement, then a degraded generator's held-out pairs until
the alarm. A stream that alarms before its change is drawn again and
counted. It prints a markdown table of the mean and 95th percentile delay
per generator, with spanwatch's from DIR/streams.md beside it.

Not run in CI (it takes tens of minutes):

    python3 -m venv /tmp/alibi && /tmp/alibi/bin/pip install -r benchmarks/requirements-alibi.txt
    /tmp/alibi/bin/python benchmarks/alibi_streams.py DIR [--surface brick ...]

On ELPV surfaces the statistics derive from CC BY-NC-SA 4.0 images: they
stay in DIR, never in the repository.
"""

import argparse
import csv
import pathlib
import sys
import time

import numpy as np
from alibi_detect.cd import CVMDriftOnline

# The reader of streams.md's per-surface sections.
from compare_streams import sections


# The study's CHANGE_AFTER: the columns of streams.md.
SPANWATCH_STARTS = [0, 500, 5000]
# statistics.csv's columns the CVM sees, in the order --features takes them.
STATISTICS = ["alignment", "log_size", "off_span", "log_extent"]


def load(path, features):
    calibration, held_out = [], {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            x = tuple(float(row[c]) for c in STATISTICS[:features])
            if row["split"] == "calibration":
                calibration.append(x)
            else:
                held_out.setdefault(row["generator"], []).append(x)
    return np.array(calibration), {g: np.array(v) for g, v in held_out.items()}


def delay(detector, good, degraded, after, most, rng):
    """Pairs from the change to the alarm (None: missed), or 'early' when the good lead alarmed."""
    detector.reset_state()
    for _ in range(after):
        if detector.predict(good[rng.integers(len(good))], return_test_stat=False)["data"]["is_drift"]:
            return "early"
    for t in range(1, most + 1):
        if detector.predict(degraded[rng.integers(len(degraded))], return_test_stat=False)["data"]["is_drift"]:
            return t
    return None


def spanwatch_delays(streams_md, surface):
    """generator -> 'mean / p95' per start, read from the study's streams.md."""
    section = sections(streams_md.read_text()).get(surface, "") if streams_md.is_file() else ""
    out = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 4 and cells[0] not in ("generator", "---"):
            out[cells[0]] = [" / ".join(c.split(" / ")[:2]) for c in cells[3:]]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=pathlib.Path, help="the stream experiment's output folder")
    parser.add_argument("--surface", action="append", help="surfaces (default: every one in DIR/streams)")
    parser.add_argument("--ert", type=float, default=30000, help="expected run time (the bundle's ARL0)")
    parser.add_argument("--windows", type=int, nargs="+", default=[10, 30], help="CVM window sizes")
    parser.add_argument("--bootstraps", type=int, default=300000, help="threshold simulations (alibi refuses fewer than its tail needs: 1 / (1 - (1 - 1/ERT)^(1/features)), 120,000 for four features at 30,000)")
    parser.add_argument("--after", type=int, nargs="+", default=[0, 500], help="good pairs before each change")
    parser.add_argument("--change-points", type=int, default=50)
    parser.add_argument("--most", type=int, default=300, help="degraded pairs fed before a miss")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--features", type=int, choices=[2, 4], default=4, help="statistics the CVM sees: " + ", ".join(STATISTICS) + " (2: the first two)")
    args = parser.parse_args()

    surfaces = args.surface or sorted(p.name for p in (args.dir / "streams").iterdir() if (p / "statistics.csv").is_file())
    print(f"CVMDriftOnline on {', '.join(STATISTICS[:args.features])}, ERT {args.ert:.0f}, windows {args.windows}, {args.bootstraps} bootstraps; "
          f"{args.change_points} change points per generator and start; a miss counts as {args.most}.\n")
    for surface in surfaces:
        x_ref, held_out = load(args.dir / "streams" / surface / "statistics.csv", args.features)
        started = time.time()
        detector = CVMDriftOnline(x_ref, ert=args.ert, window_sizes=args.windows, n_bootstraps=args.bootstraps, verbose=False)
        configured = time.time() - started
        good = held_out.pop("faithful")
        theirs = spanwatch_delays(args.dir / "streams.md", surface)
        rng = np.random.default_rng(args.seed)
        print(f"## {surface} ({len(x_ref)} reference pairs, {len(good)} held-out good pairs; thresholds in {configured:.0f} s)\n")
        heads = " | ".join(f"after {a}: alibi mean / p95 (early) | spanwatch" for a in args.after)
        print(f"| generator | {heads} |")
        print("|---|" + "---|---|" * len(args.after))
        for generator, degraded in held_out.items():
            cells = []
            for after in args.after:
                delays, early = [], 0
                while len(delays) < args.change_points:
                    d = delay(detector, good, degraded, after, args.most, rng)
                    if d == "early":
                        early += 1
                        continue
                    delays.append(args.most if d is None else d)
                delays = np.array(delays, dtype=float)
                cells.append(f"{delays.mean():.1f} / {np.percentile(delays, 95):.0f} ({early})")
                ours = theirs.get(generator, [])
                column = SPANWATCH_STARTS.index(after) if after in SPANWATCH_STARTS else len(ours)
                cells.append(ours[column] if column < len(ours) else "")
            print(f"| {generator} | " + " | ".join(cells) + " |")
            sys.stdout.flush()
        print()


if __name__ == "__main__":
    main()
