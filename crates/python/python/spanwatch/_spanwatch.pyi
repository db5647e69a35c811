"""The native half of spanwatch (Rust, PyO3). Use the ``spanwatch`` module."""

from typing import List, Optional, TypedDict

class Folder(TypedDict):
    """A dataset folder and how to read it."""

    data: str
    model: str
    solver: str
    ridge_lambda: float
    embeddings: List[str]
    cache: Optional[str]
    no_cache: bool
    skip_unpaired: bool

__version__: str

def score_arrays(
    negatives: bytes,
    positives: bytes,
    sources: bytes,
    synthetics: bytes,
    dim: int,
    solver_name: str,
    ridge_lambda: float,
    bootstrap: int,
    seed: int,
) -> str: ...
def rank_folder(folder: Folder, bootstrap: int, seed: int) -> str: ...

def calibrate_folder(
    folder: Folder,
    generator: str,
    window: int,
    false_alarm_every: int,
    alignment_k: float,
    size_k: float,
    off_span_k: float,
    extent_k: float,
    size_margin: float,
    folds: int,
    seed: int,
) -> bytes: ...
def per_sample_folder(folder: Folder) -> str: ...
def filter_folder(folder: Folder, generator: str, output: Optional[str]) -> str: ...
def read_bundle_json(path: str, model: Optional[str]) -> str: ...

class NativeEmbedder:
    def __init__(self, model: str, cache: Optional[str], no_cache: bool) -> None: ...
    def embed(self, paths: List[str]) -> bytes: ...
    @property
    def name(self) -> str: ...
    @property
    def identity(self) -> str: ...
    @property
    def dim(self) -> int: ...

class NativeTracker:
    def __init__(self, bundle: str) -> None: ...
    def push(self, source: bytes, synthetic: bytes, pair: str) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def generator(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def window(self) -> int: ...
