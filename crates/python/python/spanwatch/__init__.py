"""spanwatch: will this synthetic defect data help?

The discriminative span (DS) of a synthetic set: how well its changes
(each synthetic image's embedding minus its source's) span the weight vector
of a linear probe trained on the real images, computed by the same Rust code
as the ``spanwatch`` CLI, on embeddings from any model.

>>> import numpy as np, spanwatch
>>> rng = np.random.default_rng(0)
>>> neg, pos = rng.normal(size=(40, 8)), rng.normal(1.0, 1.0, size=(10, 8))
>>> src = neg[:20]; syn = src + rng.normal(0.5, 0.3, size=(20, 8))
>>> s = spanwatch.score(neg, pos, src, syn)
>>> 0.0 <= s.ds <= 1.0
True
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

# The model manifests and the bundled EfficientNet ship inside the wheel
# (spanwatch/models, the repository's models/); $SPANWATCH_MODELS still wins.
_MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
if os.path.isfile(os.path.join(_MODELS, "efficientnet-lite0.toml")):
    os.environ.setdefault("SPANWATCH_MODELS", _MODELS)

from . import _spanwatch  # noqa: E402

__all__ = [
    "Score",
    "Ranking",
    "Sample",
    "Curation",
    "Bundle",
    "Embedder",
    "Tracker",
    "PairUpdate",
    "score",
    "rank",
    "per_sample",
    "filter",
    "calibrate",
    "change_extent",
    "DEFAULT_MODEL",
]
__version__: str = _spanwatch.__version__

#: The CLI's default embedding model.
DEFAULT_MODEL = "vit-s14"

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Score:
    """One synthetic set's scores (the fields of a ``score --json`` generator).

    ``ds`` = 1 - ``rpe``; ``chance_ds`` is the DS of ``k`` random directions,
    ``corrected`` the DS above it; ``mean_alignment`` the mean cosine of w and
    the changes; ``opposed_share`` the share of changes pointing away from
    the defects; ``probe_shift`` the mean shift along w as a share of the
    real defects' own (None when undefined); ``ds_ci`` the bootstrap 95%
    interval over the real positives (None without ``bootstrap``).

    >>> Score(name="g", n_pairs=2, k=1, rpe=0.5, ds=0.5, chance_ds=0.1,
    ...       corrected=0.44, mean_alignment=0.2, opposed_share=0.0).ds
    0.5
    """

    name: str
    n_pairs: int
    k: int
    rpe: float
    ds: float
    chance_ds: float
    corrected: float
    mean_alignment: float
    opposed_share: float
    probe_shift: Optional[float] = None
    ds_ci: Optional[Tuple[float, float]] = None
    zero_pairs: int = 0

    @classmethod
    def _from(cls, row: dict) -> "Score":
        ci = row.get("ds_ci")
        return cls(
            name=row["name"],
            n_pairs=row["n_pairs"],
            k=row["k"],
            rpe=row["rpe"],
            ds=row["ds"],
            chance_ds=row["chance_ds"],
            corrected=row["corrected"],
            mean_alignment=row["mean_alignment"],
            opposed_share=row["opposed_share"],
            probe_shift=row.get("probe_shift"),
            ds_ci=None if ci is None else (ci[0], ci[1]),
            zero_pairs=row.get("zero_pairs", 0),
        )


@dataclass(frozen=True)
class Ranking:
    """A dataset's generators ranked by DS: ``spanwatch score DATA --json``.

    >>> r = Ranking(model="m", model_sha256="00", dim=2, solver="nnls",
    ...             n_negatives=2, n_positives=2, bootstrap=0, generators=[])
    >>> r.solver
    'nnls'
    """

    model: str
    model_sha256: str
    dim: int
    solver: str
    n_negatives: int
    n_positives: int
    bootstrap: int
    generators: List[Score]
    warnings: List[str] = field(default_factory=list)
    lambda_: Optional[float] = None

    def to_pandas(self) -> Any:
        """The generators as a pandas DataFrame, one row each, best first
        (needs pandas: ``pip install pandas``).

        >>> r = rank("DATA")                     # doctest: +SKIP
        >>> r.to_pandas()[["name", "ds"]]        # doctest: +SKIP
        """
        try:
            import pandas as pd
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError("Ranking.to_pandas needs pandas: pip install pandas") from error
        return pd.DataFrame([vars(g) for g in self.generators])


def _rows(name: str, array: Any, dim: Optional[int] = None) -> np.ndarray:
    """``array`` as C-contiguous float32 rows, or a ValueError naming it."""
    a = np.asarray(array)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected numbers, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n x d), got shape {a.shape}")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{name}: {a.shape[1]} columns, the negatives have {dim}")
    if not np.isfinite(a).all():
        row, col = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(f"{name}[{row}]: the embedding holds {a[row, col]} at dimension {col}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _folder(data, model, solver, ridge_lambda, embeddings, cache, no_cache, skip_unpaired) -> dict:
    """A dataset folder and how to read it, as the native module takes it."""
    return {
        "data": os.fspath(data),
        "model": model or DEFAULT_MODEL,
        "solver": solver,
        "ridge_lambda": float(ridge_lambda),
        "embeddings": [os.fspath(e) for e in embeddings],
        "cache": None if cache is None else os.fspath(cache),
        "no_cache": bool(no_cache),
        "skip_unpaired": bool(skip_unpaired),
    }


def score(
    negatives: Any,
    positives: Any,
    sources: Any,
    synthetics: Any,
    *,
    solver: str = "nnls",
    ridge_lambda: float = 0.01,
    bootstrap: int = 0,
    seed: int = 0,
) -> Score:
    """DS and its companions of one synthetic set, on embeddings from any model.

    ``negatives`` (n x d) and ``positives`` (m x d) are the real normal and
    defect images' embeddings; ``synthetics[i]`` was made from the normal image
    whose embedding is ``sources[i]`` (both p x d). float32 or float64
    (computed in float32, as the CLI's embeddings are). ``solver`` is
    ``"nnls"`` (the sign-aware cone, the default), ``"ridge"`` (with
    ``ridge_lambda``) or ``"lstsq"``; ``bootstrap`` replicates over the real
    positives give ``ds_ci``. Raises ValueError on a shape mismatch, NaN,
    or fewer than 2 negatives or positives.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> neg = rng.normal(size=(30, 6)); pos = rng.normal(2.0, 1.0, size=(8, 6))
    >>> s = score(neg, pos, neg[:10], neg[:10] + 0.5, bootstrap=20)
    >>> s.n_pairs, s.ds_ci is not None
    (10, True)
    """
    neg = _rows("negatives", negatives)
    dim = neg.shape[1]
    pos = _rows("positives", positives, dim)
    src = _rows("sources", sources, dim)
    syn = _rows("synthetics", synthetics, dim)
    for name, a in (("negatives", neg), ("positives", pos)):
        if a.shape[0] < 2:
            raise ValueError(f"{name}: {a.shape[0]} row(s); the probe needs at least 2 negatives and 2 positives")
    if src.shape != syn.shape or syn.shape[0] == 0:
        raise ValueError(f"sources {src.shape} and synthetics {syn.shape}: one source row per synthetic row, at least one")
    if int(bootstrap) < 0 or int(seed) < 0:
        raise ValueError("bootstrap and seed must be >= 0")
    report = json.loads(
        _spanwatch.score_arrays(
            neg.tobytes(), pos.tobytes(), src.tobytes(), syn.tobytes(), dim, solver, float(ridge_lambda), int(bootstrap), int(seed)
        )
    )
    return Score._from(report["generators"][0])


def rank(
    data: PathLike,
    model: Optional[str] = None,
    *,
    solver: str = "nnls",
    ridge_lambda: float = 0.01,
    bootstrap: int = 0,
    seed: int = 0,
    embeddings: Sequence[PathLike] = (),
    cache: Optional[PathLike] = None,
    no_cache: bool = False,
    skip_unpaired: bool = False,
) -> Ranking:
    """Every synthetic set of a dataset folder, ranked by DS: the CLI's
    ``spanwatch score DATA --json`` as Python objects.

    ``data`` holds ``real/negative``, ``real/positive`` and
    ``synthetic/<generator>/`` as for the CLI; ``model`` is a bundled name
    (default ``vit-s14``) or a manifest path; ``embeddings`` reads
    ``spanwatch embed`` output instead of running the model. Raises
    FileNotFoundError for a missing folder, ValueError for bad data.

    >>> r = rank("spanwatch-demo", bootstrap=200)   # doctest: +SKIP
    >>> [g.name for g in r.generators][:2]          # doctest: +SKIP
    ['faithful', 'too-faint']
    """
    folder = _folder(data, model, solver, ridge_lambda, embeddings, cache, no_cache, skip_unpaired)
    report = json.loads(_spanwatch.rank_folder(folder, int(bootstrap), int(seed)))
    return Ranking(
        model=report["model"],
        model_sha256=report["model_sha256"],
        dim=report["dim"],
        solver=report["solver"],
        n_negatives=report["n_negatives"],
        n_positives=report["n_positives"],
        bootstrap=report["bootstrap"],
        generators=[Score._from(g) for g in report["generators"]],
        warnings=list(report["warnings"]),
        lambda_=report.get("lambda"),
    )


@dataclass(frozen=True)
class Sample:
    """One synthetic sample's utility (a row of ``score --per-sample``): its
    alignment with the probe (None for no change) and its marginal effect on
    its generator's DS (DS with it minus DS without it).

    >>> Sample("g", "s.png", "n.png", 0.2, 0.01).marginal_ds
    0.01
    """

    generator: str
    synthetic: str
    source: str
    alignment: Optional[float]
    marginal_ds: float


@dataclass(frozen=True)
class Curation:
    """What ``filter`` kept: the (synthetic, source) pairs, and the DS of the
    kept subset and of the whole set.

    >>> Curation(pairs=[("s.png", "n.png")], subset_ds=0.2, full_ds=0.1).subset_ds
    0.2
    """

    pairs: List[Tuple[str, str]]
    subset_ds: float
    full_ds: float


def per_sample(
    data: PathLike,
    model: Optional[str] = None,
    *,
    solver: str = "nnls",
    ridge_lambda: float = 0.01,
    embeddings: Sequence[PathLike] = (),
    cache: Optional[PathLike] = None,
    no_cache: bool = False,
    skip_unpaired: bool = False,
) -> List[Sample]:
    """Every synthetic sample's utility: ``spanwatch score DATA --per-sample
    F.csv`` as objects (at full precision; the CSV rounds to 6 decimals).

    >>> worst = min(per_sample("DATA"), key=lambda s: s.marginal_ds)   # doctest: +SKIP
    """
    rows = json.loads(_spanwatch.per_sample_folder(_folder(data, model, solver, ridge_lambda, embeddings, cache, no_cache, skip_unpaired)))
    return [Sample(**row) for row in rows]


def filter(
    data: PathLike,
    generator: str,
    output: Optional[PathLike] = None,
    *,
    model: Optional[str] = None,
    solver: str = "nnls",
    ridge_lambda: float = 0.01,
    embeddings: Sequence[PathLike] = (),
    cache: Optional[PathLike] = None,
    no_cache: bool = False,
    skip_unpaired: bool = False,
) -> Curation:
    """The samples of ``generator`` worth keeping: ``spanwatch filter DATA
    --generator G -o kept.csv`` (with the cone, the support of w's cone
    combination; with ridge or lstsq, the samples whose removal lowers DS).
    Given ``output``, also writes them as a pairs.csv.

    >>> kept = filter("DATA", "cutpaste", "kept.csv")   # doctest: +SKIP
    >>> len(kept.pairs), kept.subset_ds >= kept.full_ds  # doctest: +SKIP
    (41, True)
    """
    out = None if output is None else os.fspath(output)
    folder = _folder(data, model, solver, ridge_lambda, embeddings, cache, no_cache, skip_unpaired)
    result = json.loads(_spanwatch.filter_folder(folder, generator, out))
    return Curation(pairs=[(p["synthetic"], p["source"]) for p in result["pairs"]], subset_ds=result["subset_ds"], full_ds=result["full_ds"])


def calibrate(
    data: PathLike,
    generator: str,
    output: Optional[PathLike] = None,
    *,
    model: Optional[str] = None,
    solver: str = "nnls",
    ridge_lambda: float = 0.01,
    window: int = 32,
    false_alarm_every: int = 30_000,
    alignment_k: float = 0.5,
    size_k: float = 1.0,
    off_span_k: float = 1.0,
    extent_k: float = 1.0,
    size_margin: float = 0.4,
    folds: int = 5,
    seed: int = 0,
    embeddings: Sequence[PathLike] = (),
    cache: Optional[PathLike] = None,
    no_cache: bool = False,
    skip_unpaired: bool = False,
) -> bytes:
    """The edge's calibration bundle for ``generator`` of the dataset folder
    ``data``: ``spanwatch calibrate DATA --generator G`` with the CLI's
    defaults. Returns the bundle's bytes and, given ``output``, also writes
    them there (atomically: a temporary file, then a rename).

    >>> bundle = calibrate("DATA", "faithful", "faithful.bundle")   # doctest: +SKIP
    >>> Bundle.read("faithful.bundle").detector["thresholds"]       # doctest: +SKIP
    [15.7, 13.3, 14.3, 10.1, 12.2, 12.3, 12.0]
    """
    if int(false_alarm_every) < 100:
        raise ValueError(f"false_alarm_every {false_alarm_every}: at least 100 good pairs between false alarms")
    if not 2 <= int(folds) <= 50:
        raise ValueError(f"folds {folds}: between 2 and 50")
    if int(window) < 1 or int(seed) < 0:
        raise ValueError("window must be >= 1 and seed >= 0")
    data_bytes = _spanwatch.calibrate_folder(
        _folder(data, model, solver, ridge_lambda, embeddings, cache, no_cache, skip_unpaired),
        generator,
        int(window),
        int(false_alarm_every),
        float(alignment_k),
        float(size_k),
        float(off_span_k),
        float(extent_k),
        float(size_margin),
        int(folds),
        int(seed),
    )
    if output is not None:
        target = os.fspath(output)
        partial = target + ".partial"
        with open(partial, "wb") as f:
            f.write(data_bytes)
        os.replace(partial, target)
    return data_bytes


@dataclass(frozen=True)
class Bundle:
    """What a calibration bundle holds: ``spanwatch inspect BUNDLE --json``.

    ``reference`` is the calibration set's own score (``ds``, ``rpe``,
    ``chance_ds``, ``corrected``), ``detector`` the drift detector (its
    CUSUMs' ``alignment_k``, ``size_k``, ``off_span_k``, ``extent_k``, the seven
    ``thresholds`` (low alignment, small change, large change, outside span,
    wide change, narrow change, outside span alone), ``size_margin``,
    ``false_alarm_every``, ...).

    >>> Bundle.read("faithful.bundle", model="vit-s14").generator   # doctest: +SKIP
    'faithful'
    """

    file: str
    bytes: int
    format_version: int
    model: str
    model_sha256: str
    dim: int
    generator: str
    solver: Any
    n_pairs: int
    k: int
    singular_values_top: List[float]
    reference: dict
    window: int
    detector: dict
    w_norm: float
    sigma_range: Tuple[float, float]

    @classmethod
    def read(cls, path: PathLike, model: Optional[str] = None) -> "Bundle":
        """Reads and checks the bundle at ``path`` (ValueError for a corrupt,
        truncated or foreign file; with ``model``, also for a bundle made with
        another model's embeddings; FileNotFoundError when there is none)."""
        fields = json.loads(_spanwatch.read_bundle_json(os.fspath(path), model))
        fields["sigma_range"] = tuple(fields["sigma_range"])
        return cls(**fields)


@dataclass(frozen=True)
class PairUpdate:
    """What the edge would publish for one pair (docs/mqtt.md): ``metrics``
    (the window's scores and the drift detector after the pair), ``pair``
    (its verdict) and ``alert`` (the alert message when the pair raised or
    cleared the alert, else None).

    >>> u = PairUpdate(metrics={"alert": "clear", "ds": 0.1}, pair={}, alert=None)
    >>> u.alert_state, u.ds
    ('clear', 0.1)
    """

    metrics: dict
    pair: dict
    alert: Optional[dict]

    @property
    def alert_state(self) -> str:
        """``"clear"`` or ``"raised"`` after this pair."""
        return self.metrics["alert"]

    @property
    def ds(self) -> float:
        """The window's DS (the bundle's solver) after this pair."""
        return self.metrics["ds"]


class Tracker:
    """The edge's monitoring of one calibrated generator, without the daemon:
    the same window, drift detector and messages, for a Python pipeline that
    watches its own generator. ``push`` takes a pair's two embeddings, made
    with the bundle's model (``Embedder(tracker.model)``), and the share of
    pixels its images differ in (``change_extent``); the alert starts clear
    and the window with the calibration's seeds.

    >>> t = Tracker("faithful.bundle")                     # doctest: +SKIP
    >>> u = t.push(src_embedding, syn_embedding, "pair-1",
    ...            extent=change_extent("src.png", "syn.png"))  # doctest: +SKIP
    >>> u.alert_state, u.alert                              # doctest: +SKIP
    ('clear', None)
    """

    def __init__(self, bundle: PathLike) -> None:
        self._native = _spanwatch.NativeTracker(os.fspath(bundle))
        self._pairs = 0

    @property
    def dim(self) -> int:
        """Embedding dimension the bundle takes."""
        return self._native.dim

    @property
    def generator(self) -> str:
        """The calibrated generator."""
        return self._native.generator

    @property
    def model(self) -> str:
        """The model the bundle was calibrated with (its manifest name)."""
        return self._native.model

    @property
    def window(self) -> int:
        """Pairs in the window."""
        return self._native.window

    def push(self, source: Any, synthetic: Any, pair: Optional[str] = None, extent: Optional[float] = None) -> PairUpdate:
        """Scores one pair (each a 1-D embedding of ``dim`` values) and returns
        what the edge would publish; ``pair`` names it (default ``pair-N``),
        ``extent`` is the share of pixels its images differ in
        (``change_extent``; None: not measured, and the two pixel-extent
        CUSUMs get no evidence from this pair). Raises ValueError for a wrong
        size or a non-finite difference, and then leaves the tracker as it was."""
        name = pair if pair is not None else f"pair-{self._pairs + 1}"
        src = _rows("source", np.atleast_2d(np.asarray(source)), self.dim)
        syn = _rows("synthetic", np.atleast_2d(np.asarray(synthetic)), self.dim)
        share = None if extent is None else float(extent)
        update = json.loads(self._native.push(src.tobytes(), syn.tobytes(), name, share))
        self._pairs += 1
        return PairUpdate(metrics=update["metrics"], pair=update["pair"], alert=update["alert"])


def change_extent(source: PathLike, synthetic: PathLike) -> float:
    """The share of pixels whose gray level differs by more than 8 of 255
    between a pair's two images (the same size): the pixel extent the edge's
    drift detector watches beside the embedding (``Tracker.push``'s
    ``extent``). Raises ValueError naming the file for an unreadable image
    or a pair of two sizes."""
    return _spanwatch.change_extent(os.fspath(source), os.fspath(synthetic))


class Embedder:
    """A bundled embedding model as the CLI runs it (same preprocessing,
    model store and embedding cache); the ViT is made on first use.

    >>> e = Embedder("efficientnet-lite0")          # doctest: +SKIP
    >>> e.embed(["a.png", "b.png"]).shape            # doctest: +SKIP
    (2, 1280)
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, cache: Optional[PathLike] = None, no_cache: bool = False) -> None:
        self._native = _spanwatch.NativeEmbedder(model, None if cache is None else os.fspath(cache), bool(no_cache))

    @property
    def name(self) -> str:
        """The model's manifest name."""
        return self._native.name

    @property
    def identity(self) -> str:
        """The embedding identity (hex sha256), as calibration bundles record it."""
        return self._native.identity

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return self._native.dim

    def embed(self, paths: Sequence[PathLike]) -> np.ndarray:
        """The images' embeddings, one float32 row per path, in order.
        Raises FileNotFoundError or ValueError naming the file."""
        paths = [os.fspath(p) for p in paths]
        data = self._native.embed(paths)
        return np.frombuffer(data, dtype=np.float32).reshape(len(paths), self.dim).copy()

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, dim={self.dim}, identity={self.identity[:12]}..)"
