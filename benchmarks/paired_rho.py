"""How much better (or worse) a feature candidate ranks generators than the
default, with a paired bootstrap interval.

Reads results.csv of a `spanwatch study` run. For each surface and truth,
the difference rho(candidate's score, truth) - rho(default's score, truth)
over the surface's synthetic sets (generator x family) at the headline size
(10 real positives, the most pairs); its 95% interval resamples the sets,
the same resample for both, so the two correlations' shared noise cancels.
Also the means over the drawn surfaces and per ELPV cell type, and on ELPV
the secondary test set's truths (the cells the experts were unsure of).

    python3 benchmarks/paired_rho.py STUDY_DIR CANDIDATE [CANDIDATE ...] [--default vit-s14] [--metric ds_nnls]

The standard library only.
"""
import argparse
import csv
import pathlib
import random

DRAWN = ["brick", "grass", "gravel"]
ELPV = ["elpv-mono", "elpv-poly"]
TRUTHS = ["lr_f1", "cnn_f1"]
UNCERTAIN = ["lr_f1_uncertain", "cnn_f1_uncertain"]


def ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    r = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0
        i = j + 1
    return r


def spearman(x, y):
    rx, ry = ranks(x), ranks(y)
    n = len(x)
    mx, my = sum(rx) / n, sum(ry) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    return sxy / (sxx * syy) ** 0.5 if sxx > 0 and syy > 0 else float("nan")


def cells(study, metric):
    """(surface, model) -> {(family, generator): row}, at the headline size."""
    with open(pathlib.Path(study) / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    n_pos = min({int(r["n_positives"]) for r in rows}, key=lambda n: abs(n - 10))
    n_pairs = max(int(r["n_pairs"]) for r in rows)
    out = {}
    for r in rows:
        if int(r["n_positives"]) == n_pos and int(r["n_pairs"]) == n_pairs:
            out.setdefault((r["surface"], r["model"]), {})[(r["family"], r["generator"])] = r
    return out


def difference(cand, default, metric, truth, replicates, seed):
    """Point estimate and 95% paired-bootstrap interval of the rho difference."""
    keys = sorted(cand)
    def diff(sample):
        t = [float(default[k][truth]) for k in sample]
        a = spearman([float(cand[k][metric]) for k in sample], t)
        b = spearman([float(default[k][metric]) for k in sample], t)
        return a - b
    point = diff(keys)
    rng = random.Random(seed)
    reps = sorted(d for d in (diff([rng.choice(keys) for _ in keys]) for _ in range(replicates)) if d == d)
    return point, reps[int(0.025 * len(reps))], reps[int(0.975 * len(reps)) - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("candidates", nargs="+")
    parser.add_argument("--default", default="vit-s14")
    parser.add_argument("--metric", default="ds_nnls")
    parser.add_argument("--replicates", type=int, default=2000)
    args = parser.parse_args()
    at = cells(args.study, args.metric)
    surfaces = [s for s in DRAWN + ELPV if (s, args.default) in at]
    columns = [(s, t) for s in surfaces for t in TRUTHS] + [(s, t) for s in surfaces if s in ELPV for t in UNCERTAIN]
    print(f"{args.metric}: rho(candidate) - rho({args.default}) with downstream F1, 95% paired bootstrap intervals over the synthetic sets\n")
    print("| candidate | " + " | ".join(f"{s}, {t}" for s, t in columns) + " | drawn mean | elpv-mono mean | elpv-poly mean |")
    print("|---|" + "---|" * (len(columns) + 3))
    for cand in args.candidates:
        values, out = {}, []
        for i, (s, t) in enumerate(columns):
            if (s, cand) not in at:
                out.append("n/a")
                continue
            point, low, high = difference(at[(s, cand)], at[(s, args.default)], args.metric, t, args.replicates, i)
            values[(s, t)] = point
            out.append(f"{point:+.2f} [{low:+.2f}, {high:+.2f}]")
        mean = lambda group: sum(values[(s, t)] for s in group for t in TRUTHS if (s, t) in values) / max(1, sum((s, t) in values for s in group for t in TRUTHS))
        print(f"| {cand} | " + " | ".join(out) + f" | {mean(DRAWN):+.2f} | {mean(['elpv-mono']):+.2f} | {mean(['elpv-poly']):+.2f} |")


if __name__ == "__main__":
    main()
