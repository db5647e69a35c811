"""Preprocessing parity fixtures: real images of several sizes, and what the
reference pipeline makes of them.

The reference pipeline is the one of the method's code and of most Python
users: torchvision's Resize(256) + CenterCrop(224) on PIL images, written out
here with Pillow alone (torchvision is not needed): the short side resized to
256 and the long side to int(256 * long / short) with Pillow's BILINEAR
resampling, a centred crop at int(round((side - 224) / 2)), then the model's
normalization, embedded by onnxruntime (one thread).

Writes tests/fixtures/pillow/*.png (crops of the real CC0 images in
data/textures, in sizes that downscale by whole and fractional factors,
upscale, and need a crop offset rounded half to even; one stacked into RGB),
INDEX.txt, and embeddings_<model>.npy. The full-size data/textures images
camera.png (512 x 512) and coins.png (384 x 303) are used in place.

Run once from the repository root:
    python3 tests/reference/make_pillow_fixtures.py [VIT_ONNX]
"""
import pathlib
import sys
import tomllib

import numpy as np
from PIL import Image

from make_embedding_fixtures import embed_with

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEXTURES = ROOT / "data" / "textures"
OUT = ROOT / "tests" / "fixtures" / "pillow"


def crop(name, x, y, w, h):
    return np.asarray(Image.open(TEXTURES / f"{name}.png"))[y : y + h, x : x + w]


def make_images():
    """The crops, saved as PNG; returns every fixture image's path relative to the root."""
    OUT.mkdir(parents=True, exist_ok=True)
    crops = {
        # Portrait, 331 -> 256 wide, 512 -> 395 high: the vertical crop offset
        # is round(85.5) = 86 (half to even).
        "brick_331x512.png": crop("brick", 90, 0, 331, 512),
        # Upscaled: the short side 200 -> 256.
        "gravel_200x240.png": crop("gravel", 50, 120, 200, 240),
        # RGB, landscape, 260 -> 256 high.
        "textures_rgb_300x260.png": np.stack(
            [crop("brick", 0, 0, 300, 260), crop("grass", 150, 100, 300, 260), crop("gravel", 200, 250, 300, 260)], axis=-1
        ),
    }
    for name, pixels in crops.items():
        Image.fromarray(pixels).save(OUT / name)
    paths = [f"tests/fixtures/pillow/{name}" for name in crops] + ["data/textures/camera.png", "data/textures/coins.png"]
    return sorted(paths)


def preprocess(path, spec):
    """torchvision's Resize(short) + CenterCrop(crop) + normalization, with Pillow."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    target, side = spec["resize_short_side"], spec["crop"]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = target, int(target * long / short)
    size = (new_short, new_long) if w <= h else (new_long, new_short)
    if size != image.size:
        image = image.resize(size, Image.BILINEAR)
    left = int(round((size[0] - side) / 2.0))
    top = int(round((size[1] - side) / 2.0))
    image = image.crop((left, top, left + side, top + side))
    rgb = np.asarray(image, dtype=np.float32)
    x = (rgb * np.float32(spec["scale"]) - np.asarray(spec["mean"], np.float32)) / np.asarray(spec["std"], np.float32)
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def main():
    paths = make_images()
    (OUT / "INDEX.txt").write_text("\n".join(paths) + "\n")
    targets = [(ROOT / "models" / "efficientnet-lite0.toml", ROOT / "models" / "efficientnet_lite0.onnx")]
    if len(sys.argv) > 1:
        targets.append((ROOT / "models" / "vit-s14.toml", pathlib.Path(sys.argv[1])))
    for manifest, onnx in targets:
        model, emb = embed_with(preprocess, manifest, onnx, [ROOT / path for path in paths])
        np.save(OUT / f"embeddings_{model}.npy", emb)
        print(model, emb.shape, "norms", np.linalg.norm(emb, axis=1).round(3))


if __name__ == "__main__":
    main()
