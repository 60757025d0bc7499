"""Type stubs of ``pocketrec._native``, the compiled half of the package (crate
``pocketrec-python``). Private: use the ``pocketrec`` module. Ids here are stored 64-bit ids
(the hashes, for string ids); tagged tuples carry arrays as the module docs of
``python/src/export.rs`` describe."""

import pathlib
from typing import Any, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

__version__: str

def string_id(s: str) -> int:
    """The 64-bit id a string id is stored as (FNV-1a 64)."""

def simd_kernels() -> str:
    """The SIMD kernels the runtime picked on this CPU."""

def export(
    users: Optional[Tuple[Any, ...]],
    items: Tuple[Any, ...],
    output: str,
    *,
    user_name: str,
    item_name: str,
    values: str,
    user_ids: Optional[Tuple[Any, ...]],
    item_ids: Optional[Tuple[Any, ...]],
    layout: str,
    scoring: str,
    prune_density: Optional[float],
    user_bias: Optional[Tuple[Any, ...]],
    item_bias: Optional[Tuple[Any, ...]],
    global_bias: float,
    fold_in: bool,
    source_users: Optional[str],
    source_items: Optional[str],
    list_rows: str,
    sliced_rows: bool,
    id_strings: bool,
    fold_in_params: Optional[Tuple[float, float]],
    block_bounds: str,
    items_only: bool,
) -> Tuple[pathlib.Path, int, int]:
    """Writes a ``.prec`` file; returns (output, file bytes, dense f32 bytes)."""

def train(
    train_path: str,
    output: str,
    *,
    dim: int,
    density: float,
    epochs: Optional[int],
    seed: int,
    values: List[str],
    threads: int,
    test_path: Optional[str],
    layout: str,
    loss: str,
    distill: Optional[bool],
    k: int,
    fold_in: bool,
    min_rating: Optional[float],
    final_eval: bool,
    eval_every: int,
    on_epoch: Optional[object],
    block_bounds: str,
    sparsify: str,
    rounds: Optional[int],
    rewind_step: Optional[int],
    checkpoint: Optional[str],
    resume: Optional[str],
    prior_strength: Optional[float],
    churn: Optional[float],
    mask_fraction: Optional[float],
    replay: Optional[str],
    replay_share: Optional[float],
    items_only: bool,
) -> str:
    """Trains and writes a model; returns the summary as JSON."""

def evaluate(
    model_path: str,
    train_path: str,
    test_path: str,
    *,
    k: int,
    fold_in: bool,
    threads: int,
    min_rating: Optional[float],
) -> str:
    """Evaluates a model file; returns the report as JSON."""

class Model:
    """A ``.prec`` model, memory-mapped read-only."""

    def __init__(self, path: str) -> None: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def dim(self) -> int: ...
    @property
    def scoring(self) -> str: ...
    @property
    def global_bias(self) -> float: ...
    @property
    def file_bytes(self) -> int: ...
    def rows(self, role: str) -> int: ...
    def id_kind(self, role: str) -> str: ...
    def has_id_strings(self, role: str) -> bool: ...
    def properties(self) -> List[Tuple[str, str]]: ...
    def ids(self, role: str) -> npt.NDArray[np.uint64]: ...
    def find_str(self, role: str, s: str) -> int: ...
    def find_strs(self, role: str, strings: List[str]) -> npt.NDArray[np.uint64]: ...
    def strings(self, role: str, ids: npt.NDArray[np.uint64]) -> List[Optional[str]]: ...
    def recommend(self, user: int, k: int, exclude: List[int]) -> Tuple[List[int], List[float]]: ...
    def recommend_vector(
        self, vector: npt.NDArray[np.float32], k: int, exclude: List[int]
    ) -> Tuple[List[int], List[float]]: ...
    def recommend_batch(
        self, users: npt.NDArray[np.uint64], k: int, threads: int
    ) -> Tuple[npt.NDArray[np.uint64], npt.NDArray[np.float32]]: ...
    def recommend_vector_batch(
        self, vectors: npt.NDArray[np.float32], k: int, threads: int
    ) -> Tuple[npt.NDArray[np.uint64], npt.NDArray[np.float32]]: ...
    def score_candidates(self, user: int, items: List[int]) -> npt.NDArray[np.float32]: ...
    def score_candidates_vector(
        self, vector: npt.NDArray[np.float32], items: List[int]
    ) -> npt.NDArray[np.float32]: ...
    def embedding(self, role: str, id: int) -> npt.NDArray[np.float32]: ...
    def embeddings(self, role: str) -> npt.NDArray[np.float32]: ...
    def fold_in(
        self,
        items: List[int],
        weights: List[float],
        prior: Optional[npt.NDArray[np.float32]],
        precision: float,
    ) -> Tuple[npt.NDArray[np.float32], int, int]: ...
    def inspect(self) -> str: ...
    def verify(self) -> None: ...
