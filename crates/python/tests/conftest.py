"""What the Python package's tests share: the CLI binaries (from
$SPANWATCH_BIN, a cargo target's release folder) and a small real dataset:
the repository's fixture images (real photographs and CC0 textures) as real
negatives and positives, with a CutPaste set (5 per negative) and an NSA set (3) made by `spanwatch
synthesize`, and its `spanwatch embed` output (the bundled EfficientNet-Lite0).
"""

import csv
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures"
MODEL = "efficientnet-lite0"


def cli(*args):
    """Runs the spanwatch CLI; its stdout."""
    binary = Path(os.environ.get("SPANWATCH_BIN", REPO / "target" / "release")) / "spanwatch"
    # The CLI reads the checkout's models (the package reads its own copy).
    env = dict(os.environ, SPANWATCH_MODELS=str(REPO / "models"))
    out = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, f"spanwatch {args} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The demo dataset (CC0 texture tiles with drawn scratches, five
    generators of 30 pairs), written by the study crate's `datasets` example."""
    root = tmp_path_factory.mktemp("demo") / "data"
    binary = Path(os.environ.get("SPANWATCH_BIN", REPO / "target" / "release")) / "examples" / "datasets"
    env = dict(os.environ, SPANWATCH_TEXTURES=str(REPO / "data" / "textures"))
    out = subprocess.run([str(binary), "demo", str(root)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, f"{binary} failed (built by cargo test or cargo build --examples):\n{out.stderr}"
    return root


def embed_output(embedded):
    """`spanwatch embed` output: file (relative to the folder embedded) -> row."""
    matrix = np.load(embedded / "embeddings.npy")
    with open(embedded / "index.csv", newline="") as f:
        return {row["file"]: matrix[int(row["row"])] for row in csv.DictReader(f)}


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """(DATA, its embed output, an embedding cache)."""
    root = tmp_path_factory.mktemp("data")
    for folder, names in (("real/negative", ["brick_gray.png", "camera_gray.png"]), ("real/positive", ["coins_gray.png", "textures_rgb.png"])):
        (root / folder).mkdir(parents=True)
        for name in names:
            (root / folder / name).write_bytes((FIXTURES / "images" / name).read_bytes())
    cli("synthesize", root, "--method", "cutpaste", "--per-image", "5", "--seed", "5")
    cli("synthesize", root, "--method", "nsa", "--per-image", "3", "--seed", "5")
    cache = tmp_path_factory.mktemp("cache")
    embedded = tmp_path_factory.mktemp("embedded")
    cli("embed", root, "-o", embedded, "--model", MODEL, "--cache", cache, "-q")
    return root, embedded, cache
