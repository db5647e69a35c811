"""Embed a dataset folder in shards on a Dask cluster's worker processes,
gather the embeddings, and score every synthetic set on the driver.

    python dask_embed.py DATA [--workers 2] [--shards 4] [--model efficientnet-lite0] [--bootstrap 200]

Each shard is a contiguous part of the sorted image list (as `spanwatch embed
--shard i/n` cuts it); a worker embeds its shard with ``spanwatch.Embedder``
(the CLI's model, preprocessing and model store). The driver pairs the rows
as the CLI does (pairs.csv, or a synthetic image's stem) and calls
``spanwatch.score`` per generator: the same numbers as ``spanwatch score
DATA`` on one machine (crates/python/tests/test_distributed.py checks it).
Without --scheduler a LocalCluster of separate worker processes is started;
with --scheduler ADDRESS an existing cluster is used (every worker needs the
wheel installed and DATA at the same path).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

import spanwatch

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def images(folder: Path) -> List[Path]:
    """The image files directly in ``folder``, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def shards(paths: Sequence[Path], n: int) -> List[List[Path]]:
    """``n`` contiguous parts whose sizes differ by at most one."""
    size, extra = divmod(len(paths), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(list(paths[start:end]))
        start = end
    return out


def embed_shard(model: str, paths: List[str]) -> np.ndarray:
    """Runs on a worker: the shard's embeddings."""
    return spanwatch.Embedder(model, no_cache=True).embed(paths)


def pairs(data: Path, generator: str) -> List[tuple]:
    """(synthetic, source) of a generator, ordered by synthetic file name, as the CLI pairs them."""
    folder = data / "synthetic" / generator
    negatives = {p.stem: p for p in images(data / "real" / "negative")}
    manifest = folder / "pairs.csv"
    if manifest.is_file():
        with open(manifest, newline="") as f:
            rows = [(folder / r["synthetic"], data / "real" / "negative" / r["source"]) for r in csv.DictReader(f)]
    else:
        rows = [(p, negatives[p.stem]) for p in images(folder)]
    return sorted(rows, key=lambda r: r[0].name)


def run(data: Path, client, model: str, n_shards: int, bootstrap: int, seed: int) -> Dict[str, spanwatch.Score]:
    """Embeds ``data`` in ``n_shards`` shards on ``client``'s workers, then scores every generator."""
    generators = sorted(p.name for p in (data / "synthetic").iterdir() if p.is_dir())
    every = sorted(set(images(data / "real" / "negative")) | set(images(data / "real" / "positive")) | {s for g in generators for s, _ in pairs(data, g)})
    parts = [s for s in shards(every, n_shards) if s]
    futures = [client.submit(embed_shard, model, [str(p) for p in part], pure=False) for part in parts]
    vectors = np.concatenate(client.gather(futures))
    row = {path: vectors[i] for i, path in enumerate(p for part in parts for p in part)}
    negatives = np.stack([row[p] for p in images(data / "real" / "negative")])
    positives = np.stack([row[p] for p in images(data / "real" / "positive")])
    scores = {}
    for g in generators:
        ps = pairs(data, g)
        sources = np.stack([row[s] for _, s in ps])
        synthetics = np.stack([row[s] for s, _ in ps])
        scores[g] = spanwatch.score(negatives, positives, sources, synthetics, bootstrap=bootstrap, seed=seed)
    return dict(sorted(scores.items(), key=lambda kv: (-kv[1].ds, kv[0])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scheduler", help="address of a running Dask scheduler")
    args = parser.parse_args()
    from dask.distributed import Client, LocalCluster

    if args.scheduler:
        client = Client(args.scheduler)
    else:
        client = Client(LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True))
    with client:
        for name, s in run(args.data.resolve(), client, args.model, args.shards, args.bootstrap, args.seed).items():
            ci = "" if s.ds_ci is None else f"  95% CI [{s.ds_ci[0]:.4f}, {s.ds_ci[1]:.4f}]"
            print(json.dumps({"name": name, "n_pairs": s.n_pairs, "ds": round(s.ds, 6)}) + ci)


if __name__ == "__main__":
    main()
