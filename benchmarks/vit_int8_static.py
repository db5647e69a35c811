"""A statically quantized int8 variant of the default ViT-S/14, to time in
tract (README, "Benchmarks": a statically quantized int8 model).

The model's 72 Gemm nodes are first written as MatMul + Add (onnxruntime
quantizes Gemm only to its own com.microsoft op, which tract does not
read); then onnxruntime's `quantize_static` (QOperator format, per-tensor
weights and activations) turns the MatMuls into QLinearMatMul, with the
activations' ranges calibrated on 24 crops of the bundled CC0 textures
preprocessed as the manifest says. Writes into OUT_DIR the float model
with MatMuls (vit_s14_matmul.onnx), the int8 one (vit_s14_int8_static.onnx)
and a manifest for it (vit-s14-int8-static.toml), for

    cargo run --release -p spanwatch-embed --example profile_plan -- --model OUT_DIR/vit-s14-int8-static.toml --runs 1

    python benchmarks/vit_int8_static.py OUT_DIR

Needs numpy, onnx, onnxruntime and Pillow (the model store's private
environment, ~/.cache/spanwatch/models/venv, has all four once the CLI has
made the ViT). The ONNX file is looked up as benchmarks/ort_profile.py does.
"""
import argparse
import hashlib
import pathlib
import tomllib

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from PIL import Image

from ort_profile import ROOT, onnx_path


def gemm_as_matmul(model):
    """The model with every Gemm (A x B' + C, weights constant) as MatMul + Add."""
    initializers = {i.name: i for i in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        if node.op_type != "Gemm":
            nodes.append(node)
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attributes.get("alpha", 1.0) != 1.0 or attributes.get("beta", 1.0) != 1.0 or attributes.get("transA", 0):
            raise SystemExit(f"{node.name}: a Gemm this script does not rewrite ({attributes})")
        weights = numpy_helper.to_array(initializers[node.input[1]])
        if attributes.get("transB", 0):
            weights = weights.T
        name = node.input[1] + "_matmul"
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weights), name))
        product = node.output[0] + "_product"
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product], name=node.name + "_matmul"))
        nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=node.name + "_bias"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {name for node in model.graph.node for name in node.input}
    kept = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def preprocess(image, manifest):
    """The manifest's resize of the short side, centre crop and normalization (NCHW)."""
    step = manifest["preprocess"]
    side, crop = step["resize_short_side"], step["crop"]
    width, height = image.size
    scale = side / min(width, height)
    image = image.resize((max(side, round(width * scale)), max(side, round(height * scale))), Image.BILINEAR)
    left, top = (image.size[0] - crop) // 2, (image.size[1] - crop) // 2
    pixels = np.asarray(image.crop((left, top, left + crop, top + crop)), np.float32) * step["scale"]
    normalized = (pixels - np.array(step["mean"], np.float32)) / np.array(step["std"], np.float32)
    return normalized.transpose(2, 0, 1)[None].astype(np.float32)


class TextureCrops(CalibrationDataReader):
    """Four 300-pixel crops of each bundled texture, as the model's input."""

    def __init__(self, manifest):
        inputs = []
        for path in sorted((ROOT / "data/textures").glob("*.png")):
            image = Image.open(path).convert("RGB")
            width, height = image.size
            for i in range(4):
                x, y = (width // 5) * i % max(1, width - 300), (height // 7) * i % max(1, height - 300)
                inputs.append(preprocess(image.crop((x, y, x + min(300, width), y + min(300, height))), manifest))
        self.inputs = iter([{manifest["input"]["name"]: x} for x in inputs])

    def get_next(self):
        return next(self.inputs, None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=pathlib.Path)
    parser.add_argument("--model", type=pathlib.Path, default=ROOT / "models/vit-s14.toml")
    args = parser.parse_args()
    manifest = tomllib.loads(args.model.read_text())
    args.out_dir.mkdir(parents=True, exist_ok=True)
    matmul = args.out_dir / "vit_s14_matmul.onnx"
    onnx.save(gemm_as_matmul(onnx.load(str(onnx_path(args.model, manifest)))), str(matmul))
    quantized = args.out_dir / "vit_s14_int8_static.onnx"
    quantize_static(str(matmul), str(quantized), TextureCrops(manifest), quant_format=QuantFormat.QOperator,
                    op_types_to_quantize=["MatMul"], per_channel=False,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    digest = hashlib.sha256(quantized.read_bytes()).hexdigest()
    text = args.model.read_text()
    head, rest = text.split("\n[fetch]", 1)
    rest = rest.split("\n[input]", 1)[1]
    head = head.replace(f'name = "{manifest["name"]}"', 'name = "vit-s14-int8-static"', 1)
    head = head.replace(f'file = "{manifest["file"]}"', f'file = "{quantized.name}"', 1)
    head = head.replace(f'sha256 = "{manifest["sha256"]}"', f'sha256 = "{digest}"', 1)
    (args.out_dir / "vit-s14-int8-static.toml").write_text(head + "\n[input]" + rest)
    counts = {}
    for node in onnx.load(str(quantized), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    print(f"{quantized} ({quantized.stat().st_size / 1e6:.1f} MB, sha256 {digest[:12]}..): "
          f"{counts.get('QLinearMatMul', 0)} QLinearMatMul nodes")


if __name__ == "__main__":
    main()
