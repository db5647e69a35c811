"""The installed spanwatch wheel: its scores against the independent numpy /
scikit-learn reference (tests/reference/make_metric_fixtures.py), against the
CLI on identical embeddings and on the same dataset folder, and its errors.

The CLI binaries come from $SPANWATCH_BIN (a cargo target's release folder);
the dataset is the repository's fixture images (real photographs and CC0
textures) with synthetic defects made by ``spanwatch synthesize``, embedded
by the bundled EfficientNet-Lite0.
"""

import csv
import json
import math

import numpy as np
import pytest

import spanwatch

from conftest import FIXTURES, MODEL, cli, embed_output

# The seven CUSUMs in the order of the bundle's thresholds.
WATCHES = ["low_alignment", "small_change", "large_change", "outside_span", "wide_change", "narrow_change", "outside_span_alone"]
FIELDS = ["k", "rpe", "ds", "chance_ds", "corrected", "mean_alignment", "opposed_share", "probe_shift", "n_pairs", "zero_pairs"]


def same(a, b, tol):
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return abs(a - b) <= tol


def test_score_matches_the_numpy_reference():
    expected = json.loads((FIXTURES / "metric" / "expected.json").read_text())
    for case, want in expected.items():
        load = lambda name: np.load(FIXTURES / "metric" / f"{case}_{name}.npy")
        neg, pos = load("neg"), load("pos")
        for generator in want["generators"]:
            src, syn = load(f"{generator}_src"), load(f"{generator}_syn")
            reference = want["scores"][generator]
            for solver, key in (("ridge", "ds_ridge"), ("lstsq", "ds_lstsq"), ("nnls", "ds_nnls")):
                s = spanwatch.score(neg, pos, src, syn, solver=solver)
                assert abs(s.ds - reference[key]) <= 1e-4, (case, generator, solver, s.ds, reference[key])
                assert s.k == reference["k"]
            assert abs(spanwatch.score(neg, pos, src, syn, solver="lstsq").chance_ds - reference["chance_ds"]) < 1e-9
            # float64 input is computed in float32, as the CLI's embeddings are.
            s64 = spanwatch.score(neg.astype(np.float64), pos.astype(np.float64), src.astype(np.float64), syn.astype(np.float64))
            assert s64 == spanwatch.score(neg, pos, src, syn)


def test_score_on_arrays_equals_the_cli_on_the_same_embeddings(dataset):
    root, embedded, _ = dataset
    rows = embed_output(embedded)
    report = json.loads(cli("score", root, "--embeddings", embedded, "--model", MODEL, "--json", "-q", "--bootstrap", "30", "--seed", "2"))
    (cli_row,) = [g for g in report["generators"] if g["name"] == "cutpaste"]
    with open(root / "synthetic" / "cutpaste" / "pairs.csv", newline="") as f:
        pairs = list(csv.DictReader(f))
    pairs.sort(key=lambda p: p["synthetic"])  # the CLI's order: by synthetic file name
    neg = np.stack([rows[f"real/negative/{n}"] for n in ("brick_gray.png", "camera_gray.png")])
    pos = np.stack([rows[f"real/positive/{n}"] for n in ("coins_gray.png", "textures_rgb.png")])
    src = np.stack([rows[f"real/negative/{p['source']}"] for p in pairs])
    syn = np.stack([rows[f"synthetic/cutpaste/{p['synthetic']}"] for p in pairs])
    s = spanwatch.score(neg, pos, src, syn, bootstrap=30, seed=2)
    for name in FIELDS:
        assert same(getattr(s, name), cli_row[name], 1e-9), (name, getattr(s, name), cli_row[name])
    assert s.ds_ci is not None and all(abs(a - b) <= 1e-9 for a, b in zip(s.ds_ci, cli_row["ds_ci"]))


def test_rank_and_embedder_are_the_clis(dataset):
    root, embedded, cache = dataset
    report = json.loads(cli("score", root, "--model", MODEL, "--json", "-q", "--cache", cache))
    ranking = spanwatch.rank(root, MODEL, cache=cache)
    assert (ranking.model, ranking.model_sha256, ranking.dim, ranking.solver) == (report["model"], report["model_sha256"], report["dim"], report["solver"])
    assert [g.name for g in ranking.generators] == [g["name"] for g in report["generators"]]
    for ours, theirs in zip(ranking.generators, report["generators"]):
        for name in FIELDS:
            assert same(getattr(ours, name), theirs[name], 0.0), name
    embedder = spanwatch.Embedder(MODEL, cache=cache)
    assert (embedder.name, embedder.dim, embedder.identity) == (MODEL, 1280, report["model_sha256"])
    rows = embed_output(embedded)
    files = sorted(rows)
    vectors = embedder.embed([root / f for f in files])
    assert vectors.shape == (len(files), 1280) and vectors.dtype == np.float32
    assert np.array_equal(vectors, np.stack([rows[f] for f in files]))


def test_to_pandas_when_pandas_is_there(dataset):
    import pandas as pd
    root, _, cache = dataset
    frame = spanwatch.rank(root, MODEL, cache=cache).to_pandas()
    assert isinstance(frame, pd.DataFrame) and sorted(frame["name"]) == ["cutpaste", "nsa"]


def test_bad_input_raises_the_clis_errors(dataset, tmp_path):
    rng = np.random.default_rng(0)
    neg, pos = rng.normal(size=(10, 4)), rng.normal(1.0, 1.0, size=(5, 4))
    with pytest.raises(ValueError, match="positives: 3 columns"):
        spanwatch.score(neg, pos[:, :3], neg[:2], neg[:2] + 1)
    bad = neg.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"negatives\[3\].*nan at dimension 2"):
        spanwatch.score(bad, pos, neg[:2], neg[:2] + 1)
    with pytest.raises(ValueError, match="at least 2"):
        spanwatch.score(neg, pos[:1], neg[:2], neg[:2] + 1)
    with pytest.raises(ValueError, match="one source row per synthetic row"):
        spanwatch.score(neg, pos, neg[:2], neg[:3] + 1)
    with pytest.raises(ValueError, match="unknown solver"):
        spanwatch.score(neg, pos, neg[:2], neg[:2] + 1, solver="magic")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        spanwatch.rank(tmp_path / "nowhere", MODEL)
    root, _, cache = dataset
    with pytest.raises(FileNotFoundError, match="missing.png"):
        spanwatch.Embedder(MODEL, cache=cache).embed([root / "missing.png"])
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    with pytest.raises(ValueError, match="corrupt.png"):
        spanwatch.Embedder(MODEL, cache=cache).embed([corrupt])


def test_the_docstring_examples_run():
    import doctest

    failures, tried = doctest.testmod(spanwatch, optionflags=doctest.ELLIPSIS)
    assert tried > 5 and failures == 0


def test_calibrate_and_bundle_read_are_the_clis(demo, tmp_path):
    cache = tmp_path / "cache"
    cli_bundle = tmp_path / "cli.bundle"
    cli("calibrate", demo, "--generator", "faithful", "-o", cli_bundle, "--model", MODEL, "--cache", cache, "-q", "--window", "16", "--extent-k", "1.5")
    ours = spanwatch.calibrate(demo, "faithful", tmp_path / "py.bundle", model=MODEL, cache=cache, window=16, extent_k=1.5)
    assert ours == cli_bundle.read_bytes() == (tmp_path / "py.bundle").read_bytes()
    inspected = json.loads(cli("inspect", cli_bundle, "--json"))
    bundle = spanwatch.Bundle.read(cli_bundle, model=MODEL)
    assert {k: v for k, v in vars(bundle).items() if k != "sigma_range"} == {k: v for k, v in inspected.items() if k != "sigma_range"}
    assert list(bundle.sigma_range) == inspected["sigma_range"]
    assert (bundle.generator, bundle.n_pairs, bundle.window, bundle.dim) == ("faithful", 30, 16, 1280)
    assert (bundle.detector["extent_k"], bundle.detector["off_span_k"]) == (1.5, 1.0)
    with pytest.raises(ValueError, match="model"):
        spanwatch.Bundle.read(cli_bundle, model="vit-s14")
    truncated = tmp_path / "truncated.bundle"
    truncated.write_bytes(cli_bundle.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated.bundle"):
        spanwatch.Bundle.read(truncated)
    with pytest.raises(FileNotFoundError):
        spanwatch.Bundle.read(tmp_path / "none.bundle")
    with pytest.raises(ValueError, match="no generator"):
        spanwatch.calibrate(demo, "nope", model=MODEL, cache=cache)


def test_tracker_stays_clear_on_good_pairs_and_raises_on_reversed_ones(demo, tmp_path):
    cache = tmp_path / "cache"
    bundle_path = tmp_path / "faithful.bundle"
    spanwatch.calibrate(demo, "faithful", bundle_path, model=MODEL, cache=cache, window=16)
    bundle = spanwatch.Bundle.read(bundle_path)
    tracker = spanwatch.Tracker(bundle_path)
    assert (tracker.dim, tracker.generator, tracker.model, tracker.window) == (1280, "faithful", MODEL, 16)
    # The demo pairs each synthetic image with the negative of the same name.
    synthetic = sorted((demo / "synthetic" / "faithful").glob("*.png"))
    pairs = [(demo / "real" / "negative" / p.name, p) for p in synthetic]
    embedder = spanwatch.Embedder(MODEL, cache=cache)
    sources = embedder.embed([s for s, _ in pairs])
    synthetics = embedder.embed([s for _, s in pairs])
    # The calibration's own good pairs: the alert stays clear.
    extents = [spanwatch.change_extent(s, p) for s, p in pairs]
    assert all(0.0 < e < 0.2 for e in extents), extents
    for i, (src, syn) in enumerate(zip(sources, synthetics)):
        update = tracker.push(src, syn, extent=extents[i])
        assert update.metrics["drift"]["log_extent"] == pytest.approx(np.log(extents[i]))
        assert update.alert is None and update.alert_state == "clear", (i, update.metrics["drift"])
        assert update.pair["pair"] == f"pair-{i + 1}" and update.pair["verdict"] in ("useful", "opposed")
        drift = update.metrics["drift"]
        assert drift["threshold"] == bundle.detector["thresholds"][WATCHES.index(drift["watch"])]
        assert min(16, i + 1) <= update.metrics["window"] <= 16 and update.metrics["pairs"] == i + 1
    # Changes turned around (away from the defects): the alert is raised, once.
    raised = []
    for i, (src, syn) in enumerate(zip(sources, synthetics)):
        update = tracker.push(src, 2 * src - syn, f"reversed-{i}")
        if update.alert is not None:
            raised.append(update.alert)
    assert raised and raised[0]["state"] == "raised" and raised[0]["seq"] == 1, raised
    assert raised[0]["generator"] == "faithful" and raised[0]["watch"] in WATCHES
    assert raised[0]["threshold"] == bundle.detector["thresholds"][WATCHES.index(raised[0]["watch"])]
    # Bad input is refused and leaves the tracker as it was.
    scored = update.metrics["pairs"]
    with pytest.raises(ValueError, match="columns"):
        tracker.push(sources[0][:10], synthetics[0][:10])
    nan = synthetics[0].copy()
    nan[5] = np.nan
    with pytest.raises(ValueError, match="nan at dimension 5"):
        tracker.push(sources[0], nan)
    assert tracker.push(sources[0], synthetics[0]).metrics["pairs"] == scored + 1
    with pytest.raises(FileNotFoundError):
        spanwatch.Tracker(tmp_path / "none.bundle")
    broken = tmp_path / "broken.bundle"
    broken.write_bytes(bundle_path.read_bytes()[:-9])
    with pytest.raises(ValueError, match="broken.bundle"):
        spanwatch.Tracker(broken)


def test_per_sample_and_filter_are_the_clis(dataset, tmp_path):
    root, _, cache = dataset
    csv_path = tmp_path / "per_sample.csv"
    cli("score", root, "--model", MODEL, "--cache", cache, "-q", "--per-sample", csv_path)
    with open(csv_path, newline="") as f:
        expected = list(csv.DictReader(f))
    ours = spanwatch.per_sample(root, MODEL, cache=cache)
    assert len(ours) == len(expected) == 16
    for row, want in zip(ours, expected):
        assert (row.generator, row.synthetic, row.source) == (want["generator"], want["synthetic"], want["source"])
        assert f"{row.marginal_ds:.6f}" == want["marginal_ds"]
        assert ("" if row.alignment is None else f"{row.alignment:.6f}") == want["alignment"]
    for solver in ("nnls", "ridge"):
        cli_kept = tmp_path / f"cli-{solver}.csv"
        cli("filter", root, "--generator", "cutpaste", "-o", cli_kept, "--model", MODEL, "--cache", cache, "-q", "--solver", solver)
        py_kept = tmp_path / f"py-{solver}.csv"
        kept = spanwatch.filter(root, "cutpaste", py_kept, model=MODEL, cache=cache, solver=solver)
        assert py_kept.read_bytes() == cli_kept.read_bytes()
        assert 0 < len(kept.pairs) <= 10 and kept.subset_ds >= kept.full_ds - 1e-12
    with pytest.raises(ValueError, match="no generator"):
        spanwatch.filter(root, "nope", model=MODEL, cache=cache)


def test_long_calls_release_the_gil():
    """While a bootstrapped score runs in a thread, the main thread's Python
    code keeps running. With the GIL held through the call, the main thread
    would stop for the whole call: its longest pause would be the call's
    length; released, it pauses only for the interpreter's thread switches."""
    import threading
    import time

    rng = np.random.default_rng(3)
    neg, pos = rng.normal(size=(300, 64)), rng.normal(0.3, 1.0, size=(100, 64))
    src = neg[:200]
    syn = src + rng.normal(0.2, 1.0, size=(200, 64))
    span = {}

    def work():
        start = time.perf_counter()
        spanwatch.score(neg, pos, src, syn, bootstrap=50)
        span["call"] = time.perf_counter() - start

    worker = threading.Thread(target=work)
    worker.start()
    longest, last = 0.0, time.perf_counter()
    while worker.is_alive():
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    worker.join()
    assert span["call"] > 0.05, span
    assert longest < 0.5 * span["call"], f"the main thread stopped for {longest:.3f} s of a {span['call']:.3f} s call"
