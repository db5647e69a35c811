"""Two or more `spanwatch study --streams` runs side by side: per surface,
the false alarms per 10,000 held-out good pairs and each degraded
generator's mean delay after a start, after 500 and after 5,000 good pairs.

Reads each run's streams.md (the study's own summary). Runs are named by
their folder; the first is the baseline, and the last column gives the
largest change of any later run's mean delay from it.

  python benchmarks/compare_streams.py DIR_A DIR_B [...]
"""
import re
import sys
from pathlib import Path


def sections(streams_md):
    """surface -> its section of streams.md."""
    parts = re.split(r"\n## ", streams_md)
    return {part.split(" /", 1)[0]: part for part in parts[1:]}


def false_alarms(section):
    """False alarms per 10,000 pairs and the Poisson 95% interval, as text."""
    m = re.search(r"\*\*([0-9.]+) per 10,000\*\* \(Poisson 95% ([0-9.]+) to ([0-9.]+)", section)
    return f"{m.group(1)} ({m.group(2)}-{m.group(3)})" if m else "?"


def thresholds(section):
    """The thresholds line's values, by CUSUM name."""
    line = next(l for l in section.splitlines() if l.startswith("thresholds "))
    return dict((name, float(value)) for value, name in re.findall(r"([0-9.]+) \(([a-z_]+)\)", line.split(" (k = ")[0]))


def delays(section):
    """generator -> [mean after 0, after 500, after 5000]."""
    out = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0] not in ("generator", "---"):
            out[cells[0]] = [float(c.split(" / ")[0]) for c in cells[3:6]]
    return out


def main():
    dirs = [Path(d) for d in sys.argv[1:]]
    if len(dirs) < 2:
        sys.exit(__doc__)
    runs = [sections((d / "streams.md").read_text()) for d in dirs]
    names = [d.name for d in dirs]
    for surface in runs[0]:
        present = [r[surface] for r in runs if surface in r]
        if len(present) < len(runs):
            continue
        print(f"\n## {surface}\n")
        for name, section in zip(names, present):
            h = ", ".join(f"{k} {v:.2f}" for k, v in thresholds(section).items())
            print(f"- {name}: false alarms per 10,000 {false_alarms(section)}; thresholds {h}")
        tables = [delays(s) for s in present]
        header = " | ".join(f"{n} (0 / 500 / 5000)" for n in names)
        print(f"\n| generator | {header} | largest change |")
        print("|---" * (len(names) + 2) + "|")
        for generator, base in tables[0].items():
            cells = [" / ".join(f"{x:.1f}" for x in t.get(generator, [float("nan")] * 3)) for t in tables]
            change = max((t[generator][i] - base[i] for t in tables[1:] if generator in t for i in range(3)), key=abs, default=0.0)
            print(f"| {generator} | {' | '.join(cells)} | {change:+.1f} |")


if __name__ == "__main__":
    main()
