"""Reference of the study's local pair differences (research/study/src/local.rs):
a pair's change of a ViT layer's patch tokens, weighted per patch by how much
the pixels changed, computed with onnxruntime and numpy.

The pair is real: tests/fixtures/images/coins_gray.png (a CC0 crop) and a copy
with a dark scratch drawn on it here (tests/fixtures/local/coins_scratch.png).
For each base manifest (a token output), the named tensor is exposed as a
graph output with onnx and run with onnxruntime on both preprocessed images;
each patch of the 16 x 16 grid (14 x 14 pixels) weighs by the sum of absolute
differences of the two input tensors over its pixels and channels; the local
difference is the weighted mean over patches of (scratched token - source
token), the class token (when the output has one) left out.

It also makes the reference of the anomaly-region features of real images
(research/study/src/anomaly.rs) with block 6's patch tokens: a memory bank of
every 8th patch of three negatives (coins, brick, camera; patches in image
then row-major order), each patch's anomaly its distance to the nearest bank
patch of another image, and an image's feature the mean of its 16 most
anomalous patch tokens; the scratched crop is scored against the bank too.

Run once from the repository root:  python3 tests/reference/make_local_fixtures.py VIT_ONNX
"""
import pathlib
import sys
import tomllib

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

from make_embedding_fixtures import OUT, ROOT, preprocess

BASES = ["vit-s14-patchmean", "vit-s14-l6-patchmean"]
ANOMALY_BASE = "vit-s14-l6-patchmean"
BANK_STRIDE, TOP_PATCHES = 8, 16
NEGATIVES = ["coins_gray", "brick_gray", "camera_gray"]


def make_pair():
    source = OUT / "images" / "coins_gray.png"
    pixels = np.asarray(Image.open(source)).astype(np.int32)
    scratched = pixels.copy()
    # A dark diagonal scratch, 3 px wide, from (60, 80) to (140, 150).
    for t in np.linspace(0.0, 1.0, 400):
        y, x = int(round(80 + 70 * t)), int(round(60 + 80 * t))
        scratched[y - 1 : y + 2, x - 1 : x + 2] = np.minimum(scratched[y - 1 : y + 2, x - 1 : x + 2], 30)
    out = OUT / "local"
    out.mkdir(parents=True, exist_ok=True)
    synthetic = out / "coins_scratch.png"
    Image.fromarray(scratched.astype(np.uint8)).save(synthetic)
    return source, synthetic


def tokens(session, manifest, output, path):
    x = preprocess(path, manifest["preprocess"])
    return x[0].astype(np.float64), session.run([output], {manifest["input"]["name"]: x})[0][0].astype(np.float64)


def session_for(base, onnx_path):
    manifest = tomllib.loads((ROOT / "models" / f"{base}.toml").read_text())
    output = manifest["output"]["name"]
    model = onnx.load(str(onnx_path))
    if output not in [o.name for o in model.graph.output]:
        model.graph.output.append(onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return session, manifest, output


def local_difference(base, onnx_path, source, synthetic):
    session, manifest, output = session_for(base, onnx_path)
    (x0, t0), (x1, t1) = tokens(session, manifest, output, source), tokens(session, manifest, output, synthetic)
    side = x0.shape[1]
    grid = int(np.sqrt(t0.shape[0]))
    patch = side // grid
    change = np.abs(x1 - x0).sum(axis=0)  # side x side
    weights = change.reshape(grid, patch, grid, patch).sum(axis=(1, 3)).reshape(-1)
    first = t0.shape[0] - grid * grid
    per_patch = t1[first:] - t0[first:]
    return (weights[:, None] * per_patch).sum(axis=0) / weights.sum(), weights


def anomaly_features(onnx_path, synthetic):
    """Rows: the three negatives' features (each scored against the others'
    bank patches), then the scratched crop's (against the whole bank)."""
    session, manifest, output = session_for(ANOMALY_BASE, onnx_path)
    patches = []
    for path in [OUT / "images" / f"{n}.png" for n in NEGATIVES] + [synthetic]:
        t = tokens(session, manifest, output, path)[1]
        grid = int(np.sqrt(t.shape[0]))
        patches.append(t[t.shape[0] - grid * grid :])
    stacked = np.concatenate(patches[: len(NEGATIVES)])
    owners = np.repeat(np.arange(len(NEGATIVES)), patches[0].shape[0])
    kept = np.arange(stacked.shape[0]) % BANK_STRIDE == 0
    bank, bank_owner = stacked[kept], owners[kept]
    features = []
    for i, p in enumerate(patches):
        d = np.sqrt(((p[:, None, :] - bank[None, :, :]) ** 2).sum(axis=2))
        d[:, bank_owner == i] = np.inf
        top = np.argsort(-d.min(axis=1), kind="stable")[:TOP_PATCHES]
        features.append(p[top].mean(axis=0))
        if i == len(NEGATIVES):
            print("scratched crop's top patches:", sorted(top.tolist()))
    return np.stack(features)


def main():
    onnx_path = pathlib.Path(sys.argv[1])
    source, synthetic = make_pair()
    for base in BASES:
        difference, weights = local_difference(base, onnx_path, source, synthetic)
        np.save(OUT / "local" / f"local_{base}.npy", difference.astype(np.float32))
        print(base, "patches changed", int((weights > 0).sum()), "of", weights.size, "norm", round(float(np.linalg.norm(difference)), 4))
    np.save(OUT / "local" / f"anomaly_{ANOMALY_BASE}.npy", anomaly_features(onnx_path, synthetic).astype(np.float32))


if __name__ == "__main__":
    main()
