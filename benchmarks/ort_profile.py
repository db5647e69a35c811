"""onnxruntime's own profile of an embedding model, one thread, for the
table beside tract's (`cargo run --release -p spanwatch-embed --example
profile_plan`): the time of each op type per image (SessionOptions.
enable_profiling), and the per-image time from a run of many images minus a
run of few, so that start-up cancels.

  python benchmarks/ort_profile.py [--model models/vit-s14.toml] [--runs 20]

Needs numpy and onnxruntime (models/requirements-fetch.txt pins the versions:
the model store's private environment, ~/.cache/spanwatch/models/venv, has
them once the CLI has made the ViT). The ONNX file is looked up in the model
store as the CLI does (SPANWATCH_MODEL_STORE, else
$XDG_CACHE_HOME/spanwatch/models, else ~/.cache/spanwatch/models),
then beside the manifest.
"""
import argparse
import collections
import json
import os
import pathlib
import tempfile
import time
import tomllib

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parent.parent


def onnx_path(manifest_path, manifest):
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    store = pathlib.Path(os.environ.get("SPANWATCH_MODEL_STORE") or cache / "spanwatch/models")
    for candidate in (store / manifest["file"], manifest_path.parent / manifest["file"]):
        if candidate.is_file():
            return candidate
    raise SystemExit(f"{manifest['file']}: not in {store} nor beside {manifest_path}")


def session(path, profile_dir=None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    if profile_dir is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(pathlib.Path(profile_dir) / "ort")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "models/vit-s14.toml"))
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    manifest_path = pathlib.Path(args.model)
    manifest = tomllib.loads(manifest_path.read_text())
    path = onnx_path(manifest_path, manifest)
    shape = manifest["input"]["shape"]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    feed = {manifest["input"]["name"]: x}
    output = [manifest["output"]["name"]]

    plain = session(path)
    plain.run(output, feed)

    def timed(n):
        start = time.perf_counter()
        for _ in range(n):
            plain.run(output, feed)
        return time.perf_counter() - start

    few, many = max(1, args.runs // 4), args.runs
    per_image = (timed(many) - timed(few)) / (many - few)

    with tempfile.TemporaryDirectory() as profile_dir:
        profiled = session(path, profile_dir)
        profiled.run(output, feed)
        for _ in range(args.runs):
            profiled.run(output, feed)
        trace = json.loads(pathlib.Path(profiled.end_profiling()).read_text())
    by_op = collections.defaultdict(lambda: [set(), 0.0])
    for event in trace:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            by_op[op][0].add(event["name"])
            by_op[op][1] += event["dur"] / 1e3 / (args.runs + 1)
    total = sum(ms for _, ms in by_op.values())
    print(f"model {manifest['name']} ({path}), onnxruntime {ort.__version__}, one thread")
    print(f"per image: {per_image * 1e3:.1f} ms ({many} runs minus {few}), {total:.1f} ms inside the nodes while profiling")
    print("\n| op | nodes | ms per image | share |\n|---|---|---|---|")
    for op, (nodes, ms) in sorted(by_op.items(), key=lambda kv: -kv[1][1]):
        print(f"| {op} | {len(nodes)} | {ms:.2f} | {100 * ms / total:.1f}% |")


if __name__ == "__main__":
    main()
