"""Sharded embedding on a real distributed engine: a Dask LocalCluster of
separate worker processes embeds the dataset in shards with the installed
wheel (examples/dask_embed.py), the driver gathers the rows and scores: the
same ranking, DS and intervals as `spanwatch score` on one machine."""

import json
import os
import sys
from pathlib import Path

import cloudpickle
from dask.distributed import Client, LocalCluster

from conftest import MODEL, cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import dask_embed  # noqa: E402

# The workers have no examples/ on their path: ship the example's code by value.
cloudpickle.register_pickle_by_value(dask_embed)


def test_sharded_embedding_on_dask_workers_scores_like_one_machine(dataset):
    root, _, cache = dataset
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        workers = client.run(os.getpid)
        assert len(set(workers.values())) == 2 and os.getpid() not in workers.values(), workers
        scores = dask_embed.run(root, client, MODEL, 3, bootstrap=30, seed=1)
    report = json.loads(cli("score", root, "--model", MODEL, "--json", "-q", "--bootstrap", "30", "--seed", "1", "--cache", cache))
    assert list(scores) == [g["name"] for g in report["generators"]]
    for g in report["generators"]:
        ours = scores[g["name"]]
        assert abs(ours.ds - g["ds"]) <= 1e-9 and ours.k == g["k"] and ours.n_pairs == g["n_pairs"], (ours, g)
        assert all(abs(a - b) <= 1e-9 for a, b in zip(ours.ds_ci, g["ds_ci"])), (ours.ds_ci, g["ds_ci"])
