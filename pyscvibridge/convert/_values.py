"""Plain nested values (dicts, lists, scalars, arrays) <-> R lists and vectors.

Used for ``obj@misc`` / ``metadata(sce)`` (Python -> R) and for ``uns`` (R -> Python).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .._errors import PyscvibridgeError
from . import _r, _sparse


def to_r_value(value, path: str = "misc"):
    """A nested dict / list / scalar / array as an R object (dict -> named list)."""
    rinterface = _r.ri()
    if value is None:
        return rinterface.NULL
    if isinstance(value, Mapping):
        items = {str(k): to_r_value(v, f"{path}[{k!r}]") for k, v in value.items()}
        return _r.named_list(items) if items else rinterface.ListSexpVector([])
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return rinterface.BoolSexpVector([value])
    if isinstance(value, int):
        return (
            rinterface.IntSexpVector([value])
            if abs(value) < 2**31 - 1
            else rinterface.FloatSexpVector([float(value)])
        )
    if isinstance(value, float):
        return rinterface.FloatSexpVector([value])
    if isinstance(value, str):
        return rinterface.StrSexpVector([value])
    if isinstance(value, pd.Series | pd.Index):
        value = value.to_numpy()
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, str) for v in value):
            return _r.r_str(list(value))
        if value and all(isinstance(v, bool | np.bool_) for v in value):
            return _sparse.r_vector(np.asarray(value, dtype=np.int32), "logical")
        if value and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value):
            arr = np.asarray(value)
            if np.abs(arr).max() < 2**31 - 1:
                return _sparse.r_vector(arr, "integer")
            return _sparse.r_vector(arr, "double")
        if value and all(isinstance(v, int | float | np.integer | np.floating) for v in value):
            return _sparse.r_vector(np.asarray(value, dtype=float), "double")
        return rinterface.ListSexpVector([to_r_value(v, f"{path}[{i}]") for i, v in enumerate(value)])
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "US" or value.dtype == object:
            if value.ndim != 1:
                msg = f"{path}: only 1-d arrays of strings can go to R (got shape {value.shape})"
                raise PyscvibridgeError(msg)
            return to_r_value(value.tolist(), path)
        if value.ndim == 1:
            if value.dtype.kind == "b":
                return _sparse.r_vector(value.astype(np.int32), "logical")
            if value.dtype.kind in "iu" and (value.size == 0 or np.abs(value).max() < 2**31 - 1):
                return _sparse.r_vector(value, "integer")
            return _sparse.r_vector(value.astype(float), "double")
        if value.ndim == 2:
            return _sparse.r_matrix(value.astype(float))
        msg = f"{path}: arrays with {value.ndim} dimensions cannot go to R"
        raise PyscvibridgeError(msg)
    msg = f"{path}: a value of type {type(value).__name__} cannot go to R; use dicts, lists, numbers, strings or arrays"
    raise PyscvibridgeError(msg)


def from_r_value(x, path: str = "metadata"):
    """An R list / atomic vector as Python values (named list -> dict); None when not convertible."""
    rinterface = _r.ri()
    if _r.is_null(x):
        return None
    t = x.typeof
    if t == rinterface.RTYPES.VECSXP:
        names = _r.strs(x.names) if not _r.is_null(x.names) else []
        vals = [from_r_value(v, f"{path}[{i}]") for i, v in enumerate(x)]
        if names and all(names):
            return {n: v for n, v in zip(names, vals, strict=True) if v is not None}
        return [v for v in vals if v is not None]
    if t in (
        rinterface.RTYPES.REALSXP,
        rinterface.RTYPES.INTSXP,
        rinterface.RTYPES.LGLSXP,
        rinterface.RTYPES.STRSXP,
    ):
        dims = rinterface.baseenv["dim"](x)
        if t == rinterface.RTYPES.STRSXP:
            vals = _r.strs(x)
            return vals[0] if len(vals) == 1 and _r.is_null(dims) else np.array(vals, dtype=object)
        arr = _sparse.view(x).copy()
        if t == rinterface.RTYPES.LGLSXP:
            arr = arr.astype(bool)
        if not _r.is_null(dims):
            d = [int(v) for v in dims]
            if len(d) == 2:
                return np.ascontiguousarray(arr.reshape(d[1], d[0]).T)
        if arr.size == 1:
            return arr[0].item()
        return arr
    return None
