"""Parity fixtures of the pooled model variants: onnxruntime's spatial output
pooled by numpy, for the same real fixture images as make_embedding_fixtures.py.

For a manifest with `pooling`, the named output is an intermediate tensor
([1, C, H, W] feature map or [1, T, C] tokens); it is exposed as a graph
output with onnx, run with onnxruntime, and pooled over its positions here:
mean, max, GeM (p = 3, values clamped at 1e-6), the class token (the first
token), or the mean of the patch tokens (those after it). The last layer's
patch mean (models/vit-s14-patchmean.toml) is the base of the study's local
pair differences (make_local_fixtures.py). The ViT's
intermediate-block candidates (models/vit-s14-l*.toml) are pooled tokens of
inner tensors too, and EfficientNet's intermediate-stage candidates
(models/efficientnet-lite0-b*-gem.toml) GeM-pooled inner feature maps.

Run once from the repository root:  python3 tests/reference/make_pooled_fixtures.py [VIT_ONNX]
"""
import tomllib

import numpy as np
import onnx
import onnxruntime as ort

from make_embedding_fixtures import OUT, ROOT, preprocess, write_fixtures


def pool(values, kind, dim):
    if values.ndim == 4:  # [1, C, H, W]
        assert values.shape[1] == dim
        positions = values[0].reshape(dim, -1).T
    else:  # [1, T, C]
        assert values.shape[2] == dim
        positions = values[0]
    positions = positions.astype(np.float64)
    if kind == "cls":
        return positions[0]
    if kind == "patch_mean":
        return positions[1:].mean(axis=0)
    if kind == "mean":
        return positions.mean(axis=0)
    if kind == "max":
        return positions.max(axis=0)
    assert kind == "gem"
    return (np.maximum(positions, 1e-6) ** 3).mean(axis=0) ** (1 / 3)


def embed_pooled(manifest_path, onnx_path, names):
    manifest = tomllib.loads(manifest_path.read_text())
    output = manifest["output"]
    model = onnx.load(str(onnx_path))
    model.graph.output.append(onnx.helper.make_tensor_value_info(output["name"], onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rows = []
    for name in names:
        x = preprocess(OUT / "images" / name, manifest["preprocess"])
        values = session.run([output["name"]], {manifest["input"]["name"]: x})[0]
        rows.append(pool(values, output["pooling"], output["dim"]))
    return manifest["name"], np.stack(rows).astype(np.float32)


def main():
    names = (OUT / "images" / "INDEX.txt").read_text().split()
    layers = sorted(path.name for path in (ROOT / "models").glob("vit-s14-l*.toml"))
    write_fixtures(embed_pooled, names, "efficientnet-lite0-gem.toml", "vit-s14-max.toml", "vit-s14-patchmean.toml", *layers)
    # EfficientNet's intermediate stages (models/efficientnet-lite0-b*-gem.toml).
    for stage in sorted((ROOT / "models").glob("efficientnet-lite0-b*-gem.toml")):
        write_fixtures(embed_pooled, names, stage.name)


if __name__ == "__main__":
    main()
