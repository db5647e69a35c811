"""Embedding parity fixtures: real images, and what onnxruntime makes of them.

Writes tests/fixtures/images/*.png (256x256 crops of the real CC0 images in
data/textures, one of them a true RGB image stacked from three textures) and
tests/fixtures/embeddings_<model>.npy: onnxruntime's embedding of each image
with spanwatch's documented preprocessing. The images are already 256 pixels
on the short side, so preprocessing is only the centre crop and normalization
and the comparison is of tract against onnxruntime, not of two resize filters.

Run once from the repository root:  python3 tests/reference/make_embedding_fixtures.py [VIT_ONNX]
"""
import pathlib
import sys
import tomllib

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEXTURES = ROOT / "data" / "textures"
OUT = ROOT / "tests" / "fixtures"


def crop256(name, x, y):
    img = np.asarray(Image.open(TEXTURES / f"{name}.png"))
    return img[y : y + 256, x : x + 256]


def make_images():
    (OUT / "images").mkdir(parents=True, exist_ok=True)
    images = {
        "brick_gray": crop256("brick", 40, 100),
        "coins_gray": crop256("coins", 20, 10),
        "camera_gray": crop256("camera", 150, 60),
        "textures_rgb": np.stack([crop256("brick", 0, 0), crop256("grass", 128, 64), crop256("gravel", 200, 200)], axis=-1),
    }
    for name, pixels in images.items():
        Image.fromarray(pixels).save(OUT / "images" / f"{name}.png")
    return sorted(images)


def preprocess(path, spec):
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    h, w, _ = rgb.shape
    assert min(h, w) == spec["resize_short_side"], "fixture images are pre-sized"
    c = spec["crop"]
    y0, x0 = (h - c) // 2, (w - c) // 2
    crop = rgb[y0 : y0 + c, x0 : x0 + c]
    x = (crop * np.float32(spec["scale"]) - np.asarray(spec["mean"], np.float32)) / np.asarray(spec["std"], np.float32)
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def embed_with(preprocess_one, manifest_path, onnx_path, paths):
    """onnxruntime's embeddings (one thread) of the images at `paths`, each
    made into the model's input by `preprocess_one(path, spec)`."""
    manifest = tomllib.loads(manifest_path.read_text())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    rows = []
    for path in paths:
        x = preprocess_one(path, manifest["preprocess"])
        rows.append(session.run([manifest["output"]["name"]], {manifest["input"]["name"]: x})[0].reshape(-1))
    return manifest["name"], np.stack(rows).astype(np.float32)


def embed(manifest_path, onnx_path, names):
    return embed_with(preprocess, manifest_path, onnx_path, [OUT / "images" / f"{name}.png" for name in names])


def write_fixtures(embed_one, names, efficientnet_manifest, *vit_manifests):
    """Embeds `names` with EfficientNet (and with each ViT manifest, the ViT at
    argv[1], when given) by `embed_one(manifest, onnx, names)` and saves
    embeddings_<model>.npy."""
    targets = [(ROOT / "models" / efficientnet_manifest, ROOT / "models" / "efficientnet_lite0.onnx")]
    if len(sys.argv) > 1:
        targets.extend((ROOT / "models" / vit_manifest, pathlib.Path(sys.argv[1])) for vit_manifest in vit_manifests)
    for manifest, onnx in targets:
        model, emb = embed_one(manifest, onnx, names)
        np.save(OUT / f"embeddings_{model}.npy", emb)
        print(model, emb.shape, "norms", np.linalg.norm(emb, axis=1).round(3))


def main():
    names = make_images()
    (OUT / "images" / "INDEX.txt").write_text("\n".join(f"{n}.png" for n in names) + "\n")
    write_fixtures(embed, names, "efficientnet-lite0.toml", "vit-s14.toml")


if __name__ == "__main__":
    main()
