"""Reference side of `cargo bench -p spanwatch-calibrate --bench speed`: times numpy and
onnxruntime on the inputs the Rust bench wrote, prints the median seconds.

  bench_reference.py metric DIR REPEATS          SVD + effective rank + ridge DS on DIR/D.npy, DIR/w.npy
  bench_reference.py embed DIR MANIFEST ONNX REPEATS
                                                 one pass of onnxruntime (the model file ONNX) over DIR/inputs.npy
  bench_reference.py preprocess INDEX MANIFEST REPEATS
                                                 decode and preprocess the images INDEX lists with Pillow
                                                 (make_pillow_fixtures.py's pipeline)
"""
import sys
import time
import tomllib
import pathlib

import numpy as np


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[repeats // 2]


def metric(directory, repeats):
    d = np.load(directory / "D.npy")
    w = np.load(directory / "w.npy").ravel()

    def run():
        _, s, vt = np.linalg.svd(d, full_matrices=False)
        p = s / s.sum()
        k = max(1, int(np.floor(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum()))))
        vk, sk = vt[:k], s[:k]
        w_hat = vk.T @ ((sk**2 / (sk**2 + 0.01)) * (vk @ w))
        return 1 - np.linalg.norm(w - w_hat) / np.linalg.norm(w)

    return median_time(run, repeats)


def embed(directory, manifest_path, onnx, repeats):
    import onnxruntime as ort

    manifest = tomllib.loads(pathlib.Path(manifest_path).read_text())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
    side = manifest["preprocess"]["crop"]
    inputs = np.load(directory / "inputs.npy").astype(np.float32).reshape(-1, 1, 3, side, side)

    def run():
        for x in inputs:
            session.run([manifest["output"]["name"]], {manifest["input"]["name"]: x})

    return median_time(run, repeats)


def preprocess(index, manifest_path, repeats):
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from make_pillow_fixtures import ROOT, preprocess as pillow_preprocess

    spec = tomllib.loads(pathlib.Path(manifest_path).read_text())["preprocess"]
    paths = [ROOT / line for line in index.read_text().splitlines()]

    def run():
        for path in paths:
            pillow_preprocess(path, spec)

    return median_time(run, repeats)


if __name__ == "__main__":
    kind, directory = sys.argv[1], pathlib.Path(sys.argv[2])
    if kind == "metric":
        print(metric(directory, int(sys.argv[3])))
    elif kind == "preprocess":
        print(preprocess(directory, sys.argv[3], int(sys.argv[4])))
    else:
        print(embed(directory, sys.argv[3], sys.argv[4], int(sys.argv[5])))
