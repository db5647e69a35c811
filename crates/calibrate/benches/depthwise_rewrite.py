"""What was tried against tract's depthwise convolutions (issue 12 item 1):
rewrite every depthwise k x k convolution of EfficientNet-Lite0 into parts
of at most k taps (rows: k convolutions of 1 x k; blocks: parts of at most 4
taps, the zone sizes tract unrolls), each on a slice of the already padded
input, summed. Checks each rewrite against the original with onnxruntime,
then times the original and the rewrites with tract-cli's bench (one
thread) and onnxruntime (one thread).

Needs numpy, onnx, onnxruntime, and tract-cli 0.23.9 on PATH
(`cargo install tract-cli --version 0.23.9 --locked`).

Run from the repository root:  python3 crates/calibrate/benches/depthwise_rewrite.py
Result (2026-11-30): both rewrites agree with the original within 1.8e-6
and run 1.7 to 3x slower in tract; see README, Benchmarks.
"""
import pathlib
import re
import subprocess
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "efficientnet_lite0.onnx"


def parts(kernel, mode):
    """(row, column, height, width) of the parts a kernel x kernel splits into."""
    if mode == "rows":
        return [(r, 0, 1, kernel) for r in range(kernel)]
    if kernel == 3:
        return [(0, 0, 2, 2), (0, 2, 2, 1), (2, 0, 1, 2), (2, 2, 1, 1)]
    if kernel == 5:
        return [(0, 0, 2, 2), (0, 2, 2, 2), (2, 0, 2, 2), (2, 2, 2, 2), (4, 0, 1, 4), (0, 4, 4, 1), (4, 4, 1, 1)]
    raise ValueError(kernel)


def rewrite(mode, out):
    model = onnx.load(MODEL)
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    nodes, counter = [], [0]

    def fresh(prefix):
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def constant(values):
        name = fresh("c")
        graph.initializer.append(numpy_helper.from_array(np.asarray(values, np.int64), name))
        return name

    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "Conv" or attrs.get("group", 1) == 1:
            nodes.append(node)
            continue
        assert list(attrs["pads"]) == [0, 0, 0, 0], "the exported model pads with explicit Pad nodes"
        k, stride = attrs["kernel_shape"][0], attrs["strides"][0]
        w = numpy_helper.to_array(weights[node.input[1]])
        outputs = []
        for i, (r, c, h, wd) in enumerate(parts(k, mode)):
            w_name = fresh("w")
            graph.initializer.append(numpy_helper.from_array(w[:, :, r : r + h, c : c + wd].copy(), w_name))
            end = [-(k - r - h) if k - r - h else 2**31, -(k - c - wd) if k - c - wd else 2**31]
            sliced = fresh("slice")
            nodes.append(helper.make_node("Slice", [node.input[0], constant([r, c]), constant(end), constant([2, 3])], [sliced]))
            part = fresh("part")
            inputs = [sliced, w_name] + ([node.input[2]] if i == 0 and len(node.input) > 2 else [])
            nodes.append(helper.make_node("Conv", inputs, [part], group=w.shape[0], kernel_shape=[h, wd], strides=[stride] * 2, pads=[0] * 4))
            outputs.append(part)
        total = outputs[0]
        for j, part in enumerate(outputs[1:]):
            target = node.output[0] if j == len(outputs) - 2 else fresh("sum")
            nodes.append(helper.make_node("Add", [total, part], [target]))
            total = target
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, out)


def ort_session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def tract_ms(path):
    out = subprocess.run(
        ["tract", str(path), "--onnx-ignore-output-shapes", "-i", "1,3,224,224,f32", "--output-node", "embedding", "-O", "bench", "--allow-random-input"],
        capture_output=True,
        text=True,
    )
    found = re.search(r"([0-9.]+) ms/i", out.stdout + out.stderr)
    return float(found.group(1)) if found else float("nan")


def ort_ms(session, x, runs=30):
    session.run(["embedding"], {"input": x})
    start = time.perf_counter()
    for _ in range(runs):
        session.run(["embedding"], {"input": x})
    return (time.perf_counter() - start) / runs * 1e3


def main():
    x = np.random.RandomState(0).randn(1, 3, 224, 224).astype(np.float32)
    original = ort_session(MODEL)
    reference = original.run(["embedding"], {"input": x})[0]
    with tempfile.TemporaryDirectory() as tmp:
        variants = {"original": MODEL}
        for mode in ["rows", "blocks"]:
            path = pathlib.Path(tmp) / f"{mode}.onnx"
            rewrite(mode, path)
            got = ort_session(path).run(["embedding"], {"input": x})[0]
            print(f"{mode}: max abs difference from the original (onnxruntime) {np.abs(got - reference).max():.1e}")
            variants[mode] = path
        print(f"onnxruntime, original, 1 thread: {ort_ms(original, x):.1f} ms/image")
        for name, path in variants.items():
            print(f"tract, {name}: {tract_ms(path):.1f} ms/image")


if __name__ == "__main__":
    main()
