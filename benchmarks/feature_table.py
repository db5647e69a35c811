"""One score of a study run, every feature candidate, every surface and truth.

Reads correlations.csv of a `spanwatch study` run and prints, as a markdown
table, the Spearman rho (with its 95% bootstrap interval) of a score with
downstream F1 for each model of the run, per surface and truth, at the
headline size (10 real positives, the largest number of pairs), and the mean
over both truths of each surface.

    python3 benchmarks/feature_table.py STUDY_DIR [--metric ds_nnls]

The standard library only.
"""
import argparse
import csv
import pathlib

TRUTHS = [("lr_f1", "LR"), ("cnn_f1", "CNN")]
SURFACES = ["brick", "grass", "gravel", "elpv-mono", "elpv-poly"]


def rows(study):
    with open(pathlib.Path(study) / "correlations.csv", newline="") as f:
        return list(csv.DictReader(f))


def table(rows, metric):
    """Markdown lines: one row per model, columns surface x truth, then the mean."""
    n_pos = min({int(r["n_positives"]) for r in rows}, key=lambda n: abs(n - 10))
    n_pairs = max(int(r["n_pairs"]) for r in rows)
    picked = [r for r in rows if r["metric"] == metric and int(r["n_positives"]) == n_pos and int(r["n_pairs"]) == n_pairs]
    surfaces = [s for s in SURFACES if any(r["group"] == s for r in picked)]
    models = list(dict.fromkeys(r["model"] for r in picked))
    at = {(r["model"], r["truth"], r["group"]): r for r in picked}
    head = ["model"] + [f"{s}, {t}" for s in surfaces for _, t in TRUTHS] + ["mean"]
    lines = [f"{metric}: Spearman rho with F1 ({n_pos} real positives, {n_pairs} pairs), 95% intervals", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model in models:
        cells, values = [], []
        for s in surfaces:
            for truth, _ in TRUTHS:
                r = at.get((model, truth, s))
                if r is None or r["spearman"] in ("", "NaN"):
                    cells.append("n/a")
                    continue
                v = float(r["spearman"])
                values.append(v)
                cells.append(f"{v:+.2f} [{float(r['spearman_low']):+.2f}, {float(r['spearman_high']):+.2f}]")
        mean = sum(values) / len(values) if values else float("nan")
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {mean:+.2f} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("--metric", default="ds_nnls")
    args = parser.parse_args()
    print("\n".join(table(rows(args.study), args.metric)))


if __name__ == "__main__":
    main()
