"""pocketrec: sparse recommendation embeddings, small enough for a phone or a microcontroller.

The Python face of the pocketrec Rust libraries:

- :func:`export` writes two embedding tables -- NumPy arrays, scipy sparse matrices, torch
  tensors (through DLPack or ``__array__``, without importing torch), or ``.npy``/``.npz``/
  safetensors files -- as one compact, checksummed ``.prec`` file, with the checks, pruning,
  quantization and atomic write of ``pocketrec export``;
- :class:`Model` opens a ``.prec`` file memory-mapped and answers queries through the device
  runtime: top-k recommendations for one user or a batch (several threads, GIL released),
  scores, stored vectors, fold-in of new users, ``inspect`` and ``verify``;
- :func:`train` trains a sparse (or dense) MF-BPR model from an interaction log and writes it;
  :func:`evaluate` measures a ``.prec`` file's Recall@k and NDCG@k through the runtime.

Errors are raised as :class:`PocketrecError` (a :class:`ValueError`) with the library's
message, or :class:`PocketrecIOError` (also an :class:`OSError`) when a file cannot be read or
written.

Ids: tables have integer ids (row numbers by default) or string ids (stored as 64-bit hashes,
with the original strings unless ``id_strings=False``). Wherever a method takes an id it takes
an ``int`` or, for a table with string ids, a ``str``; items come back as their original strings
when the model stores them, else as ``int``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._errors import PocketrecError, PocketrecIOError

__all__ = [
    "Model",
    "PocketrecError",
    "PocketrecIOError",
    "evaluate",
    "export",
    "simd_kernels",
    "string_id",
    "train",
]

__version__: str = _native.__version__

#: An external id: an integer, or a string for tables with string ids.
Id = Union[int, str]
#: A file path.
PathLike = Union[str, "os.PathLike[str]"]

# `PATH [TENSOR]`, what the CLI records as a table's source; TENSOR names the table.
_SOURCE = re.compile(r"^.* \[([^\[\]]*)\]$", re.S)
_U64 = 1 << 64
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16))


def string_id(s: str) -> int:
    """The 64-bit id a string id is stored as (FNV-1a 64, as ``pocketrec::string_id``)."""
    return _native.string_id(s)


def simd_kernels() -> str:
    """The SIMD kernels the runtime uses on this CPU: ``avx512``, ``avx2+f16c``, ``neon`` or
    ``scalar``."""
    return _native.simd_kernels()


# --- turning what users hold into plain arrays ------------------------------------------------


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _is_scipy_sparse(x: Any) -> bool:
    # Duck-typed, so that scipy is needed only by those who pass scipy matrices.
    return hasattr(x, "tocsr") and hasattr(x, "nnz") and hasattr(x, "shape")


def _to_numpy(x: Any) -> np.ndarray:
    """``x`` as a NumPy array: NumPy as is, else through DLPack or ``__array__`` (torch tensors,
    JAX and CuPy arrays, ...), else ``numpy.asarray`` (lists)."""
    if isinstance(x, np.ndarray):
        return x
    if getattr(x, "requires_grad", False) and hasattr(x, "detach"):
        x = x.detach()  # a torch tensor that requires grad exports neither way
    errors = []
    if hasattr(x, "__dlpack__") and hasattr(np, "from_dlpack"):
        try:
            return np.from_dlpack(x)
        except Exception as e:  # unsupported dtype or device: try the other ways
            errors.append(e)
    if hasattr(x, "__array__"):
        try:
            return np.asarray(x)
        except Exception as e:
            errors.append(e)
    if errors and hasattr(x, "cpu"):
        return _to_numpy(x.cpu())  # e.g. a GPU tensor
    if errors:
        raise PocketrecError(f"cannot read {type(x).__name__} as an array: {errors[-1]}") from errors[-1]
    return np.asarray(x)


def _floats(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` as a C-contiguous native-endian float32, float64 or float16 array (bfloat16 is
    widened to float32, exactly); other dtypes are refused as the file readers refuse them."""
    if a.dtype.name == "bfloat16":
        a = a.astype(np.float32)
    if a.dtype.kind != "f" or a.dtype.newbyteorder("=") not in _FLOATS:
        raise PocketrecError(
            f"<array>: tensor '{name}' has dtype {a.dtype}; supported: float32, float64, float16, "
            "bfloat16"
        )
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return np.ascontiguousarray(a)


def _table_arg(x: Any, name: str, tensor: Optional[str]) -> Tuple[Any, ...]:
    if _is_path(x):
        return ("file", os.fspath(x), tensor)
    if tensor is not None:
        raise TypeError(f"a tensor name is for a table read from a file; the {name} table is not a path")
    if _is_scipy_sparse(x):
        m = x.tocsr()
        rows, cols = (int(n) for n in m.shape)
        return (
            "csr",
            rows,
            cols,
            np.ascontiguousarray(m.indptr, dtype=np.int64),
            np.ascontiguousarray(m.indices, dtype=np.int64),
            _floats(np.asarray(m.data), name),
        )
    a = _to_numpy(x)
    if a.ndim != 2:
        raise PocketrecError(
            f"<array>: tensor '{name}': found shape {tuple(a.shape)} ({a.ndim}-D), expected a 2-D "
            "table (rows, columns)"
        )
    return ("dense", _floats(a, name))


def _uint64(values: Any, what: str) -> np.ndarray:
    """Integer ids as a 1-D uint64 array; negative or too large ids are refused."""
    a = values if isinstance(values, np.ndarray) else None
    if a is None or a.dtype.kind not in "iu":
        seq = list(values.tolist() if isinstance(values, np.ndarray) else values)
        for i, v in enumerate(seq):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(
                    f"{what}[{i}] is {type(v).__name__}: ids are all int or all str"
                )
            if not 0 <= int(v) < _U64:
                raise PocketrecError(f"{what}[{i}] = {int(v)} is not in 0..2**64")
        return np.array([int(v) for v in seq], dtype=np.uint64)
    a = a.ravel()
    if a.dtype.kind == "i" and a.size and a.min() < 0:
        i = int(np.argmax(a < 0))
        raise PocketrecError(f"{what}[{i}] = {int(a[i])} is not in 0..2**64")
    return np.ascontiguousarray(a, dtype=np.uint64)


def _ids_arg(ids: Any, what: str) -> Optional[Tuple[Any, ...]]:
    if ids is None:
        return None
    if _is_path(ids):
        return ("file", os.fspath(ids))
    if isinstance(ids, np.ndarray) and ids.dtype.kind in "iu":
        return ("int", _uint64(ids, what))
    seq = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
    if seq and all(isinstance(s, str) for s in seq):
        return ("str", seq)
    return ("int", _uint64(seq, what))


def _bias_arg(bias: Any, what: str) -> Optional[Tuple[Any, ...]]:
    if bias is None:
        return None
    if _is_path(bias):
        return ("file", os.fspath(bias), None)
    a = _to_numpy(bias)
    if a.dtype.kind in "iub":
        a = a.astype(np.float64)
    a = _floats(a, what)
    if a.ndim == 2 and 1 in a.shape:
        a = a.ravel()
    if a.ndim != 1:
        raise PocketrecError(f"{what}: expected a vector, got shape {tuple(a.shape)}")
    return ("array", a)


def _table_name(source: Optional[str], default: str) -> str:
    if source is not None:
        m = _SOURCE.match(source)
        if m:
            return m.group(1)
    return default


def export(
    users: Any,
    items: Any,
    path: PathLike,
    values: str = "f32",
    user_ids: Any = None,
    item_ids: Any = None,
    layout: str = "auto",
    scoring: str = "dot",
    prune_density: Optional[float] = None,
    user_bias: Any = None,
    item_bias: Any = None,
    global_bias: float = 0.0,
    fold_in: bool = True,
    source_users: Optional[str] = None,
    source_items: Optional[str] = None,
    *,
    user_tensor: Optional[str] = None,
    item_tensor: Optional[str] = None,
    list_rows: str = "u16",
    sliced_rows: bool = False,
    id_strings: bool = True,
    fold_in_unobserved_weight: Optional[float] = None,
    fold_in_regularization: Optional[float] = None,
    block_bounds: Union[str, int] = "auto",
    items_only: bool = False,
) -> Dict[str, Any]:
    """Write a user table and an item table as one ``.prec`` file.

    What ``pocketrec export`` does, from Python: the same checks, pruning, encodings, properties
    and atomic write (a temporary file, fsync, rename), and the same bytes for the same input.

    Args:
        users: the user table, ``rows x dim``: a NumPy array (float32, float64, float16, or
            bfloat16 through ml_dtypes), a scipy sparse matrix (CSR, CSC, COO, ...: read through
            ``.tocsr()``), anything exposing ``__dlpack__`` or ``__array__`` (a torch tensor,
            without pocketrec importing torch), or a path to a ``.npy``/``.npz``/safetensors
            file (read by the exporter's readers, as the CLI reads it). ``None`` with
            ``items_only=True``: there is no user table (a two-tower model's item side, say),
            as ``pocketrec export --items ITEMS --items-only``.
        items: the item table, as ``users``; same number of columns. ``None`` when ``users``
            is one file holding both tables (tensors ``user_embedding``, ``item_embedding`` by
            default, as ``pocketrec export model.safetensors``).
        path: the ``.prec`` file to write.
        values: ``f32`` (exact), ``f16``, ``bf16``, ``i8`` or ``i4`` (a per-row scale; ``i4``
            stores two values a byte).
        user_ids: one id per user row: a sequence (or NumPy array) of ints, or of strs (stored
            as 64-bit hashes, with the strings themselves unless ``id_strings=False``), or the
            path of an id file (one id per line). ``None``: row numbers. Duplicates are refused.
        item_ids: the same for the items.
        layout: ``auto`` (chosen from the tables, as ``pocketrec export``: the column layout
            with block bounds for item tables of 4,096 rows and more queried by sparse users,
            row records otherwise), ``rows`` (smallest), ``both`` or ``columns`` for the item
            table.
        scoring: ``dot`` or ``cosine``.
        prune_density: keep the largest-magnitude fraction of each table first, in (0, 1].
        user_bias: one bias per user: a 1-D array or sequence, or a file (``.npy``, text).
        item_bias: one bias per item.
        global_bias: a constant added to every score.
        fold_in: store the item Gramian so that users can be folded in (:meth:`Model.fold_in`).
        source_users: what the file records as ``source.users``. The CLI records
            ``PATH [TENSOR]`` (``users.npy [users]``) and names the table ``TENSOR``; given in
            that form, the table gets that name too, so that exporting the same array gives
            the same bytes as ``pocketrec export`` on the ``.npy``. Default for an array:
            ``<array> [users]``.
        source_items: the same for the items (default ``<array> [items]``).
        user_tensor: the tensor (npz member, safetensors name) to read when ``users`` is a file.
        item_tensor: the same for ``items``.
        list_rows: ``u16`` or ``bitmap`` (the column layout's posting lists).
        sliced_rows: store the item rows sliced (format 1.4; needs ``layout="rows"``).
        id_strings: store the original strings of string ids.
        fold_in_unobserved_weight: the fold-in settings, both or neither (default: scaled to
            the item table, as the CLI's ``--fold-in-unobserved-weight``).
        fold_in_regularization: the fold-in ridge (``--fold-in-regularization``).
        block_bounds: ``auto``, ``off``, or rows per block (64 to 4096, a power of two; needs
            a column layout): bounds that let a query skip blocks of items, with the item rows
            clustered (``--block-bounds``).
        items_only: write no user rows (``--items-only``): every user is folded in on the
            device from their interactions (:meth:`Model.fold_in`), so the file is the item
            table alone; needs ``fold_in``, takes no ``user_bias``.

    Returns:
        ``{"output": str, "file_bytes": int, "dense_f32_bytes": int}``.

    Raises:
        PocketrecError: bad input: a NaN or infinite value (named by table, row and column),
            shapes that do not agree, duplicate ids, an unsupported dtype, a bad file.
        PocketrecIOError: a file could not be read or written. Nothing is written on error.
    """
    if users is None:
        if items is None:
            raise TypeError("give users and items, or items alone with items_only=True")
        if not items_only:
            raise TypeError("users=None writes the item table alone: it needs items_only=True")
    elif items is None:
        if not _is_path(users):
            raise TypeError("items=None needs users to be one file holding both tables")
        items = users
        user_tensor = user_tensor or "user_embedding"
        item_tensor = item_tensor or "item_embedding"
    if (fold_in_unobserved_weight is None) != (fold_in_regularization is None):
        raise TypeError("give both fold_in_unobserved_weight and fold_in_regularization, or neither")
    fold_in_params = None
    if fold_in_unobserved_weight is not None and fold_in_regularization is not None:
        fold_in_params = (float(fold_in_unobserved_weight), float(fold_in_regularization))
    output, file_bytes, dense_f32_bytes = _native.export(
        None if users is None else _table_arg(users, _table_name(source_users, "users"), user_tensor),
        _table_arg(items, _table_name(source_items, "items"), item_tensor),
        os.fspath(path),
        user_name=_table_name(source_users, "users"),
        item_name=_table_name(source_items, "items"),
        values=values,
        user_ids=_ids_arg(user_ids, "user_ids"),
        item_ids=_ids_arg(item_ids, "item_ids"),
        layout=layout,
        block_bounds=str(block_bounds),
        items_only=bool(items_only),
        scoring=scoring,
        prune_density=None if prune_density is None else float(prune_density),
        user_bias=_bias_arg(user_bias, "user bias"),
        item_bias=_bias_arg(item_bias, "item bias"),
        global_bias=float(global_bias),
        fold_in=bool(fold_in),
        source_users=source_users,
        source_items=source_items,
        list_rows=list_rows,
        sliced_rows=bool(sliced_rows),
        id_strings=bool(id_strings),
        fold_in_params=fold_in_params,
    )
    return {"output": os.fspath(output), "file_bytes": file_bytes, "dense_f32_bytes": dense_f32_bytes}


# --- the model --------------------------------------------------------------------------------


def _role(role: str) -> str:
    if role in ("user", "users"):
        return "user"
    if role in ("item", "items"):
        return "item"
    raise PocketrecError(f"role must be 'user' or 'item', got {role!r}")


class Model:
    """A ``.prec`` model, memory-mapped read-only (``pocketrec_export::open_model``).

    Opening checks the header, the section table and the metadata; :meth:`verify` checks every
    byte. The file must not be rewritten in place while it is open (replacing it by rename, as
    :func:`export` and :func:`train` do, is safe). Every method is thread-safe.

    Example::

        model = pocketrec.Model("model.prec")
        model.recommend(42, k=10)                        # [(item, score), ...], best first
        ids, scores = model.recommend_batch(model.ids("user"), k=20, threads=2)
    """

    def __init__(self, path: PathLike) -> None:
        """Open the model at ``path``."""
        self._m = _native.Model(os.fspath(path))
        self._kind = {r: self._m.id_kind(r) for r in ("user", "item")}
        self._strings = {r: self._m.has_id_strings(r) for r in ("user", "item")}

    # -- properties

    @property
    def path(self) -> str:
        """The file's path."""
        return os.fspath(self._m.path)

    @property
    def dim(self) -> int:
        """The embedding dimension."""
        return self._m.dim

    @property
    def scoring(self) -> str:
        """``dot`` or ``cosine``."""
        return self._m.scoring

    @property
    def global_bias(self) -> float:
        """The constant added to every score."""
        return self._m.global_bias

    @property
    def file_bytes(self) -> int:
        """The file's size in bytes."""
        return self._m.file_bytes

    @property
    def num_users(self) -> int:
        """Rows of the user table."""
        return self._m.rows("user")

    @property
    def num_items(self) -> int:
        """Rows of the item table."""
        return self._m.rows("item")

    @property
    def properties(self) -> Dict[str, str]:
        """The free-form properties: provenance (``source.users``, ``created_by``, ...)."""
        return dict(self._m.properties())

    def id_kind(self, role: str) -> str:
        """``integer`` or ``string``: the kind of ids of the ``user`` or ``item`` table."""
        return self._kind[_role(role)]

    def __repr__(self) -> str:
        return (
            f"pocketrec.Model({self.path!r}: {self.num_users} users, {self.num_items} items, "
            f"d={self.dim}, {self.scoring}, {self.file_bytes} bytes)"
        )

    # -- ids

    def _id(self, role: str, x: Id) -> int:
        """The stored id of ``x``: an int as is (the hash, for a table with string ids), a str
        looked up (checked against the stored string)."""
        if isinstance(x, str):
            if self._kind[role] != "string":
                raise PocketrecError(f"{self.path}: {role} ids are integers, got the string {x!r}")
            return self._m.find_str(role, x)
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
            raise TypeError(f"a {role} id is an int or a str, got {type(x).__name__}")
        if not 0 <= int(x) < _U64:
            raise PocketrecError(f"{role} id {int(x)} is not in 0..2**64")
        return int(x)

    def _loose_ids(self, role: str, xs: Iterable[Id]) -> List[int]:
        """Ids to exclude or fold in from: strings are hashed without a lookup (an id the
        table does not have is ignored or counted as unknown, as the runtime does)."""
        out = []
        for x in xs:
            if isinstance(x, str):
                if self._kind[role] != "string":
                    raise PocketrecError(f"{self.path}: {role} ids are integers, got the string {x!r}")
                out.append(_native.string_id(x))
            else:
                out.append(self._id(role, x))
        return out

    def _ids_array(self, role: str, xs: Any) -> np.ndarray:
        if isinstance(xs, np.ndarray) and xs.dtype.kind in "iu":
            if xs.ndim != 1:
                raise PocketrecError(f"expected a 1-D array of {role} ids, got shape {xs.shape}")
            return _uint64(xs, f"{role}s")
        seq = xs.tolist() if isinstance(xs, np.ndarray) else list(xs)
        if seq and all(isinstance(s, str) for s in seq):
            if self._kind[role] != "string":
                raise PocketrecError(f"{self.path}: {role} ids are integers, got strings")
            return self._m.find_strs(role, seq)
        return np.array([self._id(role, x) for x in seq], dtype=np.uint64)

    def _pairs(self, ids: Sequence[int], scores: Sequence[float]) -> List[Tuple[Id, float]]:
        if self._strings["item"]:
            names = self._m.strings("item", np.asarray(ids, dtype=np.uint64))
            return [(n if n is not None else i, s) for n, i, s in zip(names, ids, scores)]
        return list(zip(ids, scores))

    def ids(self, role: str) -> np.ndarray:
        """The ``user`` or ``item`` table's stored ids in row order, as uint64 (the 64-bit
        hashes for string ids: :meth:`strings` gives the strings back)."""
        return self._m.ids(_role(role))

    def strings(self, ids: Any, role: str = "item") -> np.ndarray:
        """The original strings of stored ids, as an object array of the same shape as ``ids``
        (``None`` where there is none: an integer-id table, a model written without its id
        strings, an id not in the table, or the padding of :meth:`recommend_batch`).

        Use it on the ``ids`` of :meth:`recommend_batch` for a model with string item ids.
        """
        role = _role(role)
        a = np.asarray(ids, dtype=np.uint64)
        out = np.empty(a.shape, dtype=object)
        out.ravel()[:] = self._m.strings(role, np.ascontiguousarray(a.ravel()))
        return out

    # -- queries

    def recommend(self, user: Id, k: int = 20, exclude: Iterable[Id] = ()) -> List[Tuple[Id, float]]:
        """The ``k`` best items for ``user``, best first, skipping the items in ``exclude``.

        Returns a list of ``(item, score)`` tuples; ``item`` is the item's original string when
        the model stores string ids with their strings, else its int id. Fewer than ``k`` when
        the catalogue (minus ``exclude``) is smaller. Ties go to the lower item row, exactly as
        the runtime on a device answers.

        Raises:
            PocketrecError: ``user`` is not in the model.
        """
        ids, scores = self._m.recommend(
            self._id("user", user), int(k), self._loose_ids("item", exclude)
        )
        return self._pairs(ids, scores)

    def recommend_batch(self, users: Any, k: int = 20, threads: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items for each of ``users``, on ``threads`` threads (0: one per
        core) with the GIL released.

        Args:
            users: a 1-D integer array or a sequence of ids (ints; strs for string ids).
            k: items per user.
            threads: worker threads; the answer does not depend on it.

        Returns:
            ``(ids, scores)``: ``ids`` a ``len(users) x k`` uint64 array of stored item ids,
            ``scores`` a ``len(users) x k`` float32 array, best first in each row, the same as
            :meth:`recommend` gives each user. Rows with fewer than ``k`` items are padded with
            id ``2**64 - 1`` and score NaN. For string item ids, :meth:`strings` turns ``ids``
            into the original strings.

        Raises:
            PocketrecError: a user is not in the model (the message gives its position).
        """
        return self._m.recommend_batch(self._ids_array("user", users), int(k), int(threads))

    def recommend_vector(
        self, vector: Any, k: int = 20, exclude: Iterable[Id] = ()
    ) -> List[Tuple[Id, float]]:
        """The ``k`` best items for a dense user vector of the model's dimension (e.g. from
        :meth:`fold_in`; no user bias applies), skipping ``exclude``: as :meth:`recommend`."""
        v = np.ascontiguousarray(_to_numpy(vector), dtype=np.float32).ravel()
        ids, scores = self._m.recommend_vector(v, int(k), self._loose_ids("item", exclude))
        return self._pairs(ids, scores)

    def recommend_vector_batch(
        self, vectors: Any, k: int = 20, threads: int = 0
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items for each row of ``vectors`` (``users x dim``, the model's
        dimension, e.g. users folded in with :meth:`fold_in`; no user bias applies), on
        ``threads`` threads (0: one per core) with the GIL released.

        Returns:
            ``(ids, scores)`` as :meth:`recommend_batch` returns them, each row what
            :meth:`recommend_vector` gives that vector.

        Raises:
            PocketrecError: ``vectors`` is not 2-D, has another width than the model's
                dimension, or holds a value that is not finite.
        """
        v = np.ascontiguousarray(_to_numpy(vectors), dtype=np.float32)
        if v.ndim != 2:
            raise PocketrecError(f"vectors must be 2-D (users x dim), got shape {v.shape}")
        return self._m.recommend_vector_batch(v, int(k), int(threads))

    def score(self, user: Id, item: Id) -> float:
        """The score of ``item`` for ``user``: similarity plus biases, as :meth:`recommend`
        ranks by."""
        return float(self._m.score_candidates(self._id("user", user), [self._id("item", item)])[0])

    def score_candidates(self, user: Id, items: Iterable[Id]) -> np.ndarray:
        """The scores of ``items`` for ``user``, as a float32 array (to rerank a shortlist)."""
        return self._m.score_candidates(
            self._id("user", user), [self._id("item", i) for i in items]
        )

    def embedding(self, role: str, id: Id) -> np.ndarray:
        """The stored vector of user or item ``id`` (``role`` is ``user`` or ``item``), as a
        dense float32 array of the model's dimension (quantized values decoded)."""
        role = _role(role)
        return self._m.embedding(role, self._id(role, id))

    def embeddings(self, role: str) -> np.ndarray:
        """The whole ``user`` or ``item`` table, dense float32, rows in the order of
        :meth:`ids` (``rows x dim``: mind the memory for large tables)."""
        return self._m.embeddings(_role(role))

    def fold_in(
        self,
        items: Iterable[Id],
        weights: Optional[Any] = None,
        prior: Optional[Any] = None,
        precision: float = 1.0,
    ) -> np.ndarray:
        """Solve a user's vector from the items they interacted with, the item table fixed
        (implicit ALS's user step, as ``Model::fold_in`` on a device).

        Args:
            items: the items (ids; repeats count each time). Items not in the model are
                skipped.
            weights: one confidence weight per item (default all 1).
            prior: the user's current vector, to move it rather than start afresh.
            precision: how strongly the prior holds (0 ignores it).

        Returns:
            The vector (float32, the model's dimension), for :meth:`recommend_vector`.

        Raises:
            PocketrecError: the model has no fold-in section (exported with
                ``fold_in=False``), no item is known and there is no prior, or a weight is
                negative or not finite.
        """
        item_ids = self._loose_ids("item", items)
        w = [] if weights is None else [float(x) for x in np.asarray(weights, dtype=np.float64).ravel()]
        p = None if prior is None else np.ascontiguousarray(_to_numpy(prior), dtype=np.float32).ravel()
        vector, _used, _unknown = self._m.fold_in(item_ids, w, p, float(precision))
        return vector

    def inspect(self) -> Dict[str, Any]:
        """What ``pocketrec inspect --json`` prints: tables, encodings, bytes per section,
        size against dense f32, properties, the fold-in section."""
        report: Dict[str, Any] = json.loads(self._m.inspect())
        return report

    def verify(self) -> None:
        """Check every byte of the file: checksums, every row, ids sorted, values finite.

        Raises:
            PocketrecError: the first problem found.
        """
        self._m.verify()


# --- training and evaluation ------------------------------------------------------------------


def train(
    train_path: PathLike,
    output: PathLike,
    dim: int = 64,
    density: float = 0.1,
    epochs: Optional[int] = None,
    seed: int = 42,
    values: Union[str, Sequence[str]] = "f32",
    threads: int = 0,
    test_path: Optional[PathLike] = None,
    *,
    loss: str = "bsl",
    layout: str = "auto",
    block_bounds: Union[str, int] = "auto",
    distill: Optional[bool] = None,
    k: int = 20,
    fold_in: bool = True,
    min_rating: Optional[float] = None,
    final_eval: bool = True,
    eval_every: int = 0,
    on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None,
    sparsify: str = "dst",
    rounds: Optional[int] = None,
    rewind_step: Optional[int] = None,
    checkpoint: Optional[PathLike] = None,
    resume: Optional[PathLike] = None,
    prior_strength: Optional[float] = None,
    churn: Optional[float] = None,
    mask_fraction: Optional[float] = None,
    replay: Optional[PathLike] = None,
    replay_share: Optional[float] = None,
    items_only: bool = False,
) -> Dict[str, Any]:
    """Train a sparse matrix factorisation from an interaction log and write it, as
    ``pocketrec train``.

    Args:
        train_path: the training log: the LightGCN split format (``user item item ...`` per
            line) or ``user item [rating] [timestamp]`` lines (tab, comma, space or ``::``).
        output: the ``.prec`` file to write (atomically).
        dim: the embedding dimension.
        density: the fraction of weights kept (dynamic sparse training at a fixed budget);
            1.0 trains the dense model.
        epochs: passes over the log (default: 40 with ``bpr``; with the cosine losses 80, or
            160 for a dense model, ``density=1``).
        seed: the seed; the same seed gives the same tables on any number of threads.
        values: an encoding (``f32``, ``f16``, ``bf16``, ``i8``, ``i4``), or several (a list, or
            ``"f32,i8"``): the first is written to ``output``, each other one beside it as
            ``<stem>.<encoding>.prec``.
        threads: worker threads (0: one per core, at most 8).
        test_path: a test log: validation during training (with ``eval_every``) and the final
            evaluation of each file written.
        loss: ``bsl`` (bilateral softmax on cosine scores, the default), ``ssm`` (sampled
            softmax), ``ccl`` (cosine contrastive) or ``bpr`` (see docs/TRAINING.md, *Losses*).
        layout: ``auto``, ``rows``, ``both`` or ``columns`` (the item table, as ``export``).
        block_bounds: ``auto``, ``off`` or rows per block (as ``export``).
        distill: distil the sparse model from a dense teacher (default: yes below density 1).
        k: the cut-off of Recall@k and NDCG@k.
        fold_in: write the fold-in section.
        min_rating: keep interactions rated at least this.
        final_eval: evaluate each file written when ``test_path`` is given.
        eval_every: validate every this many epochs (0: never; needs ``test_path``).
        on_epoch: called after each epoch with ``{"stage", "epoch", "epochs", "loss",
            "seconds", "recall@k"?, "ndcg@k"?}`` (``stage`` is ``teacher`` while a distilled
            run trains its dense teacher); an exception it raises is raised after training.
        sparsify: how a sparse model reaches ``density``: ``dst`` (dynamic sparse training,
            the default) or ``lottery`` (lottery tickets: train dense, prune the smallest
            weights, rewind the rest to ``rewind_step``, retrain; ``rounds`` times).
        rounds: lottery tickets' pruning rounds after the dense one (default 3).
        rewind_step: the step lottery tickets rewind to (0: the initial weights; default:
            the end of the first epoch).
        checkpoint: also write a checkpoint here, everything ``resume`` needs (see
            docs/INCREMENTAL.md).
        resume: continue this checkpoint on ``train_path``'s (new) interactions instead of
            training from scratch: new users and items get rows at the end, rows without new
            interactions stay as they were; width, loss and density come from the checkpoint
            (``epochs`` counts passes over the new interactions, default 20).
        prior_strength: with ``resume``, the weight of the prior on the previous weights
            (default 0: none).
        churn: with ``resume``, the share of mask swaps (default 0.05).
        mask_fraction: with ``resume``, dynamic sparse training over the update in the rows
            with new interactions: the share of their active weights the first mask update
            moves, decaying on a cosine (default 0.5; 0: the churn swap alone).
        replay: with ``resume``, a log of earlier interactions (the periods so far); those
            of the users with new interactions are trained on again beside the new ones,
            at 4 times the first run's learning rate (replay keeps what earlier periods
            taught; see docs/INCREMENTAL.md).
        replay_share: with ``replay``, replay a random sample of them, this many per new
            interaction (1: as many as the new log has), instead of all of them.
        items_only: write no user rows (``--items-only``): every user is folded in on the
            device from their interactions, so the file is the item table alone; the final
            evaluation folds every user in (``evaluate(..., fold_in=True)``).

    Returns:
        The summary ``pocketrec train --json`` prints: ``output``, ``file_bytes``, ``files``
        (path, values, bytes, eval per file), ``users``, ``items``, ``interactions``, ``nnz``,
        timings, ``loss``, ``sparsify`` (``dense``, ``dst`` or ``lottery``), ``rounds`` (one
        record per lottery round), ``update`` (with ``resume``: new and changed rows), ``density``, ``user_rows`` (``stored``, or ``folded-in`` with ``items_only``), ``final_loss`` and ``eval`` (the first file's evaluation, or ``None``).
    """
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",")]
    summary = _native.train(
        os.fspath(train_path),
        os.fspath(output),
        dim=int(dim),
        density=float(density),
        epochs=None if epochs is None else int(epochs),
        seed=int(seed),
        values=list(values),
        threads=int(threads),
        test_path=None if test_path is None else os.fspath(test_path),
        layout=layout,
        block_bounds=str(block_bounds),
        loss=str(loss),
        distill=distill,
        k=int(k),
        fold_in=bool(fold_in),
        min_rating=None if min_rating is None else float(min_rating),
        final_eval=bool(final_eval),
        eval_every=int(eval_every),
        on_epoch=on_epoch,
        sparsify=str(sparsify),
        rounds=None if rounds is None else int(rounds),
        rewind_step=None if rewind_step is None else int(rewind_step),
        checkpoint=None if checkpoint is None else os.fspath(checkpoint),
        resume=None if resume is None else os.fspath(resume),
        prior_strength=None if prior_strength is None else float(prior_strength),
        churn=None if churn is None else float(churn),
        mask_fraction=None if mask_fraction is None else float(mask_fraction),
        replay=None if replay is None else os.fspath(replay),
        replay_share=None if replay_share is None else float(replay_share),
        items_only=bool(items_only),
    )
    result: Dict[str, Any] = json.loads(summary)
    return result


def evaluate(
    model_path: PathLike,
    train_path: PathLike,
    test_path: PathLike,
    k: int = 20,
    fold_in: bool = False,
    *,
    threads: int = 0,
    min_rating: Optional[float] = None,
) -> Dict[str, Any]:
    """Full-ranking Recall@k and NDCG@k of a ``.prec`` file, as ``pocketrec eval``.

    The LightGCN protocol through the runtime's own ``recommend`` on the file: each user's
    training items excluded, users without test items skipped. With ``fold_in``, each user is
    folded in from their training items instead of read from their row, and users without a
    row are evaluated as new users (folded in from half of their interactions, tested on the
    other half, beside a popularity ranking).

    Returns:
        What ``pocketrec eval --json`` prints, e.g. ``{"k": 20, "users": 29858,
        "recall@20": 0.1116, "ndcg@20": 0.0872, ...}``.
    """
    report = _native.evaluate(
        os.fspath(model_path),
        os.fspath(train_path),
        os.fspath(test_path),
        k=int(k),
        fold_in=bool(fold_in),
        threads=int(threads),
        min_rating=None if min_rating is None else float(min_rating),
    )
    result: Dict[str, Any] = json.loads(report)
    return result
