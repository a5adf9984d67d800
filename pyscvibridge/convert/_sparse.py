"""Matrices between R and Python with no copy (R -> Python) or one copy (Python -> R).

A ``dgCMatrix`` (genes x cells, compressed columns) holds three arrays ``x``, ``i``, ``p``; read as
compressed rows they are a CSR matrix of cells x genes. :func:`dgc_to_csr` builds that CSR matrix
over read-only NumPy views of R's memory. Each view keeps its R vector alive: the array's ``base``
is an :class:`_RBuffer` holding the rpy2 object, and rpy2 protects an R object from R's garbage
collector while a Python proxy of it exists. So the views stay valid as long as any array, matrix
or AnnData built on them does, even after the R object itself is gone.

The views are read-only: modifying them would modify the R object behind R's back. Call
``adata.X = adata.X.copy()`` (or ``from_r(..., copy=True)``) before editing values in place.
Integer counts are stored as doubles in a ``dgCMatrix``, so the values are float64.

Python -> R copies each array once, into a *buffer vector* when the R package is installed (see
:func:`_buffer_routine`): R never runs its garbage collector to make room for it, so the copy costs
what a NumPy copy costs. R frees the buffer when it collects the vector; R's ``gc()`` does not count
its memory.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from pathlib import Path

import numpy as np
from scipy import sparse

from .._errors import PyscvibridgeError
from . import _r
from ._manifest import logger


class _RBuffer:
    """Exposes an R vector's memory through ``__array_interface__`` and keeps the vector alive.

    The memory is found through the buffer protocol rpy2's vectors implement (``memoryview()``).
    """

    __slots__ = ("__array_interface__", "rvector")

    def __init__(
        self, rvector, typestr: str, *, writable: bool = False, shape: tuple[int, ...] | None = None
    ):
        self.rvector = rvector
        if not len(rvector):  # a memoryview of no elements cannot be cast: give it its own memory
            self.__array_interface__ = np.empty(0, dtype=typestr).__array_interface__
            self.__array_interface__["shape"] = shape or (0,)
            return
        memory = np.asarray(rvector.memoryview())
        if memory.dtype != np.dtype(typestr):
            msg = f"internal: an R vector's memory reads as {memory.dtype}, not {typestr}"
            raise TypeError(msg)
        self.__array_interface__ = {
            "shape": shape or memory.shape,
            "typestr": typestr,
            "data": (memory.__array_interface__["data"][0], not writable),
            "version": 3,
        }


def _typestr(rvector) -> str:
    rinterface = _r.ri()
    t = rvector.typeof
    if t == rinterface.RTYPES.REALSXP:
        return "<f8"
    if t in (rinterface.RTYPES.INTSXP, rinterface.RTYPES.LGLSXP):
        return "<i4"
    msg = f"cannot view an R vector of type {t!r} as a NumPy array"
    raise TypeError(msg)


def view(rvector, *, writable: bool = False, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A NumPy array over an R numeric, integer or logical vector's memory (no copy)."""
    return np.asarray(_RBuffer(rvector, _typestr(rvector), writable=writable, shape=shape))


def _slot(obj, name: str):
    return obj.do_slot(name)


def is_dgc(rmat) -> bool:
    return "dgCMatrix" in _r.rclass(rmat)


def dgc_to_csr(rmat, *, copy: bool = False) -> sparse.csr_matrix:
    """A ``dgCMatrix`` (features x cells) as CSR (cells x features) over R's arrays (no copy)."""
    n_rows, n_cols = (int(d) for d in _slot(rmat, "Dim"))
    x = view(_slot(rmat, "x"))
    i = view(_slot(rmat, "i"))
    p = view(_slot(rmat, "p"))
    if copy:
        x, i, p = x.copy(), i.copy(), p.copy()
    # copy=False keeps R's arrays: their dtypes (float64, int32) are what CSR stores.
    m = sparse.csr_matrix((x, i, p), shape=(n_cols, n_rows), copy=False)
    m.has_sorted_indices = True  # dgCMatrix validity requires sorted row indices
    return m


def to_cells_by_features(rmat, *, copy: bool = False) -> tuple[sparse.csr_matrix | np.ndarray, str]:
    """Any supported R matrix (features x cells) as cells x features; returns (matrix, how)."""
    rinterface = _r.ri()
    cls = _r.rclass(rmat)
    if "dgCMatrix" in cls:
        return dgc_to_csr(rmat, copy=copy), "view of dgCMatrix" if not copy else "copy of dgCMatrix"
    if rmat.typeof in (rinterface.RTYPES.REALSXP, rinterface.RTYPES.INTSXP) and ("matrix" in cls):
        n_rows, n_cols = (int(d) for d in rinterface.baseenv["dim"](rmat))
        if rmat.typeof == rinterface.RTYPES.INTSXP:
            arr = view(rmat, shape=(n_cols, n_rows)).astype(np.float64)  # NA_integer_ never in counts
            return arr, "copy of integer matrix as float64"
        arr = view(rmat, shape=(n_cols, n_rows))
        return (arr.copy() if copy else arr), "view of dense matrix" if not copy else "copy of dense matrix"
    # Other Matrix classes, DelayedArray, ...: let R coerce to dgCMatrix (one copy, in R).
    try:
        coerced = _r.call(".pysb_as_dgc", rmat)
    except Exception as e:  # rpy2 raises RRuntimeError
        msg = f"cannot convert an R matrix of class {cls[0]!r} to a sparse matrix: {_r.r_error_message(e)}"
        raise PyscvibridgeError(msg) from e
    return dgc_to_csr(coerced), f"{cls[0]} coerced to dgCMatrix in R"


def dense_rows(rmat) -> np.ndarray:
    """An R numeric matrix (n x k, column-major) as a C-ordered float64 (n x k) NumPy array."""
    rinterface = _r.ri()
    n_rows, n_cols = (int(d) for d in rinterface.baseenv["dim"](rmat))
    if rmat.typeof == rinterface.RTYPES.REALSXP:
        col_major = view(rmat, shape=(n_cols, n_rows))
    else:
        col_major = view(rinterface.baseenv["as.double"](rmat), shape=(n_cols, n_rows))
    return np.ascontiguousarray(col_major.T)


# ---------------------------------------------------------------- Python -> R (one copy)


_MADV_HUGEPAGE = 14
_HUGE = 1 << 21


def _advise_huge_pages(addr: int, nbytes: int) -> None:
    """Ask Linux for transparent huge pages over fresh memory (NumPy does this for its arrays).

    R's large vectors are plain ``malloc`` memory; filling 320 MB of it takes ~80,000 page faults
    with 4 KiB pages, several times the cost of the copy itself. A hint only: ignored elsewhere.
    """
    if not sys.platform.startswith("linux") or nbytes < 4 * _HUGE:
        return
    start = (addr + _HUGE - 1) & ~(_HUGE - 1)
    end = (addr + nbytes) & ~(_HUGE - 1)
    if end > start:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), ctypes.c_int(_MADV_HUGEPAGE))
        except (OSError, AttributeError):
            pass


@functools.cache
def _buffer_routine():
    """The R package's buffer-vector allocator (``src/buffers.c``), or None when R cannot find it.

    A buffer vector is an ordinary double or integer vector to R whose memory R's allocator does
    not hand out, so creating one never runs R's garbage collector. R's own allocation of a large
    vector runs a collection whenever the vector outgrows R's heap, a full one when the heap is far
    too small: about a second with Seurat and Bioconductor loaded, several times the copy itself.
    """
    venv_lib = str(Path(sys.prefix) / "Rlib")  # where scripts/setup.sh installs the R package
    routine = _r.call(".pysb_buffer_routine", _r.r_str([venv_lib]))
    if _r.is_null(routine):
        logger.info(
            "the R package 'pyscvibridge' is neither in R's library nor in %s: large matrices are "
            "copied into memory R allocates, which can cost a garbage collection per matrix; install "
            "it (scripts/setup.sh, or R CMD INSTALL on the repository) for copies at NumPy's speed",
            venv_lib,
        )
        return None
    return routine


def _alloc(kind: str, n: int):
    """A new, uninitialised R vector of ``n`` doubles or integers.

    A buffer vector when the R package is installed (no garbage collection, huge pages), else R's
    own allocation with huge pages asked for.
    """
    rinterface = _r.ri()
    routine = _buffer_routine()
    if routine is not None:
        return _r.call(
            ".pysb_buffer_vector",
            routine,
            rinterface.StrSexpVector([kind]),
            rinterface.FloatSexpVector([float(n)]),
        )
    # rpy2 has no public call for an uninitialised vector (vector() zero-fills, touching every page
    # before the huge-page hint): R's C API through rpy2's internals, pinned by rpy2 >=3.5.13,<3.6 and
    # tested with the R package absent (tests/python/test_convert_matrices.py).
    from rpy2.rinterface_lib import _rinterface_capi, memorymanagement, openrlib

    cls = rinterface.FloatSexpVector if kind == "double" else rinterface.IntSexpVector
    with memorymanagement.rmemory() as rmemory:
        cdata = rmemory.protect(openrlib.rlib.Rf_allocVector(cls._R_TYPE, n))
        vec = cls(_rinterface_capi.SexpCapsule(cdata))
    addr = np.asarray(vec.memoryview()).__array_interface__["data"][0]
    _advise_huge_pages(addr, n * (8 if kind == "double" else 4))
    return vec


def r_vector(arr: np.ndarray, kind: str):
    """A new R vector with ``arr``'s values: ``kind`` is 'double', 'integer' or 'logical'."""
    rinterface = _r.ri()
    arr = np.asarray(arr)
    n = arr.size
    if n and kind in ("double", "integer"):
        rvec = _alloc(kind, n)  # not zero-filled: every element is written just below
        np.copyto(view(rvec, writable=True), arr.reshape(-1), casting="unsafe")
        return rvec
    rvec = rinterface.baseenv["vector"](rinterface.StrSexpVector([kind]), rinterface.IntSexpVector([n]))
    if n:
        out = view(rvec, writable=True)
        np.copyto(out, arr.reshape(-1), casting="unsafe")
    return rvec


def r_matrix(arr: np.ndarray, rownames=None, colnames=None):
    """A new R double matrix (n x k) with ``arr``'s values (one copy, into column-major order)."""
    rinterface = _r.ri()
    arr = np.asarray(arr)
    n, k = arr.shape
    rvec = _alloc("double", n * k)
    if n * k:
        out = view(rvec, writable=True, shape=(k, n))
        np.copyto(out, arr.T, casting="unsafe")
    rvec.do_slot_assign("dim", rinterface.IntSexpVector([n, k]))
    dimnames = rinterface.ListSexpVector(
        [
            rinterface.NULL if rownames is None else _r.r_str(rownames),
            rinterface.NULL if colnames is None else _r.r_str(colnames),
        ]
    )
    rvec.do_slot_assign("dimnames", dimnames)
    return rvec


def csr_to_dgc(m, feature_names, cell_names):
    """Cells x features (sparse or dense) as a ``dgCMatrix`` (features x cells), about one copy."""
    rinterface = _r.ri()
    if not sparse.issparse(m):
        m = sparse.csr_matrix(np.asarray(m))
    elif m.format != "csr":
        m = m.tocsr()
    if not m.has_sorted_indices:
        m = m.sorted_indices()
    n_cells, n_features = m.shape
    x = r_vector(m.data, "double")
    i = r_vector(m.indices, "integer")
    p = r_vector(m.indptr, "integer")
    dimnames = rinterface.ListSexpVector([_r.r_str(feature_names), _r.r_str(cell_names)])
    return _r.call(
        ".pysb_new_dgc",
        i=i,
        p=p,
        x=x,
        Dim=rinterface.IntSexpVector([n_features, n_cells]),
        Dimnames=dimnames,
    )


def stack_rows(
    parts: list[sparse.csr_matrix], feature_index: list[np.ndarray | None], n_features: int
) -> sparse.csr_matrix:
    """Stack CSR blocks (cells x their features) into one CSR over ``n_features`` columns (one copy).

    ``feature_index[k]`` maps block k's columns to positions in the full feature list (None: identity).
    """
    nnz = sum(p.nnz for p in parts)
    n_rows = sum(p.shape[0] for p in parts)
    idx_dtype = np.int32 if nnz < 2**31 else np.int64
    data = np.empty(nnz, dtype=np.float64)
    indices = np.empty(nnz, dtype=idx_dtype)
    indptr = np.empty(n_rows + 1, dtype=idx_dtype)
    indptr[0] = 0
    at, row = 0, 0
    needs_sort = False
    for part, fidx in zip(parts, feature_index, strict=True):
        k = part.nnz
        data[at : at + k] = part.data
        if fidx is None:
            indices[at : at + k] = part.indices
        else:
            indices[at : at + k] = fidx[part.indices]
            needs_sort = needs_sort or bool(np.any(np.diff(fidx) < 0))
        indptr[row + 1 : row + part.shape[0] + 1] = part.indptr[1:] + at
        at += k
        row += part.shape[0]
    out = sparse.csr_matrix((data, indices, indptr), shape=(n_rows, n_features), copy=False)
    if needs_sort:
        out.sort_indices()
    return out
