#!/usr/bin/env python3
"""How `spanwatch score` grows with the number of pairs (issue 12 item 4).

Builds, for each n, a dataset of stand-in files and precomputed embeddings
in `spanwatch embed`'s format (synthetic vectors, d = 1280, EfficientNet-Lite0's
identity), then runs the release binary's `score --embeddings` with each
solver and --bootstrap 200 under /usr/bin/time, and prints wall time and
peak memory. The files are never decoded: the embeddings are found by the
sha256 of each file's contents, as for any precomputed run.

    cargo build --release -p spanwatch
    python3 crates/calibrate/benches/scale.py [--pairs 1000 10000 100000] [--solvers nnls ridge lstsq]

Needs numpy. Takes about 10 minutes at the default sizes on 2 cores.
"""

import argparse
import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BINARY = TARGET / "release" / "spanwatch"
DIM = 1280
NEGATIVES, POSITIVES = 400, 100
ENV = dict(os.environ, SPANWATCH_MODELS=str(ROOT / "models"))


def model_identity(work: pathlib.Path) -> dict:
    """EfficientNet-Lite0's identity, as `spanwatch embed` writes it."""
    images = work / "one"
    images.mkdir()
    tile = ROOT / "data" / "textures" / "camera.png"
    (images / "a.png").write_bytes(tile.read_bytes())
    out = work / "identity"
    subprocess.run([BINARY, "embed", images, "-o", out, "--model", "efficientnet-lite0", "--quiet", "--no-cache"], check=True, env=ENV)
    return json.loads((out / "model.json").read_text())


def build(work: pathlib.Path, pairs: int, model: dict, rng: np.random.Generator):
    """DATA with stand-in files and one embed output folder for it."""
    data, out = work / "data", work / "embeddings"
    basis = rng.standard_normal((64, DIM)).astype(np.float32)
    defect = rng.standard_normal(DIM).astype(np.float32)

    def normal(count):
        return rng.standard_normal((count, 64)).astype(np.float32) @ basis + 0.3 * rng.standard_normal((count, DIM)).astype(np.float32)

    negatives = normal(NEGATIVES)
    positives = normal(POSITIVES) + defect
    sources = rng.integers(0, NEGATIVES, pairs)
    strength = rng.uniform(0.2, 1.2, (pairs, 1)).astype(np.float32)
    synthetic = negatives[sources] + strength * defect + 0.5 * rng.standard_normal((pairs, DIM)).astype(np.float32)
    files, vectors = [], []

    def add(relative: str, vector):
        path = data / relative
        path.write_bytes(b"spanwatch scale bench " + relative.encode())
        files.append((relative, hashlib.sha256(path.read_bytes()).hexdigest()))
        vectors.append(vector)

    for folder in ["real/negative", "real/positive", "synthetic/generator"]:
        (data / folder).mkdir(parents=True)
    for i, v in enumerate(negatives):
        add(f"real/negative/n{i:05}.png", v)
    for i, v in enumerate(positives):
        add(f"real/positive/p{i:05}.png", v)
    with open(data / "synthetic/generator/pairs.csv", "w") as manifest:
        manifest.write("synthetic,source\n")
        for i, (source, v) in enumerate(zip(sources, synthetic)):
            add(f"synthetic/generator/s{i:07}.png", v)
            manifest.write(f"s{i:07}.png,n{source:05}.png\n")
    out.mkdir()
    np.save(out / "embeddings.npy", np.asarray(vectors, dtype="<f4"))
    with open(out / "index.csv", "w") as index:
        index.write("row,file,sha256\n")
        index.writelines(f"{row},{file},{sha}\n" for row, (file, sha) in enumerate(files))
    (out / "model.json").write_text(json.dumps(model))
    return data, out


def run(data, out, solver: str):
    """(seconds, peak MB, DS) of one score run."""
    command = ["/usr/bin/time", "-v", BINARY, "score", data, "--embeddings", out, "--model", "efficientnet-lite0"]
    command += ["--solver", solver, "--bootstrap", "200", "--json", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, env=ENV)
    if done.returncode != 0:
        sys.exit(f"spanwatch failed:\n{done.stderr}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", done.stderr).group(1)
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(wall.split(":"))))
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    ds = json.loads(done.stdout)["generators"][0]["ds"]
    return seconds, peak_kb / 1024, ds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--solvers", nargs="+", default=["nnls", "ridge", "lstsq"])
    args = parser.parse_args()
    if not BINARY.is_file():
        sys.exit(f"no {BINARY}: run `cargo build --release -p spanwatch` first")
    print(f"spanwatch score --bootstrap 200, d = {DIM}, {NEGATIVES} real negatives, {POSITIVES} real positives, {os.cpu_count()} cores")
    print(f"{'pairs':>8} {'solver':>6} {'seconds':>8} {'peak MB':>8} {'DS':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        model = model_identity(pathlib.Path(tmp))
        for pairs in args.pairs:
            work = pathlib.Path(tmp) / f"n{pairs}"
            work.mkdir()
            data, out = build(work, pairs, model, np.random.default_rng(pairs))
            for solver in args.solvers:
                seconds, peak, ds = run(data, out, solver)
                print(f"{pairs:>8} {solver:>6} {seconds:>8.1f} {peak:>8.0f} {ds:>7.4f}", flush=True)
            subprocess.run(["rm", "-rf", work], check=True)


if __name__ == "__main__":
    main()
