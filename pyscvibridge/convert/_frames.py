"""R data.frame / S4 DataFrame columns <-> pandas columns, keeping types, levels and NA.

=====================  ===========================================  ==========================
R column               pandas column                                back to R
=====================  ===========================================  ==========================
factor                 ``category`` (levels and their order kept)    factor, same levels
ordered factor         ordered ``category``                          ordered factor
logical                ``bool``; ``boolean`` when it has NA          logical
integer                ``int32``; ``Int32`` when it has NA           integer
double                 ``float64`` (NA -> NaN)                       double
character              ``object`` of str; NA -> None                 character
Date                   ``float64`` days since 1970-01-01            Date
POSIXct                ``float64`` seconds since 1970-01-01 UTC      POSIXct (time zone kept)
=====================  ===========================================  ==========================

Anything else (list or matrix columns, nested DataFrames) is left out and reported.

The R class of each column is recorded in the manifest (``column_classes``); AnnData -> R uses it,
so a column keeps its class through ``.h5ad`` (where strings become categoricals): a ``character``
column comes back as character, not factor, a ``Date`` as Date, a whole-number ``double`` as double.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _r, _sparse

_NA_INT = np.iinfo(np.int32).min  # R's NA_integer_ and NA (logical)
_PARTS = {"meta.data": "obs", "colData": "obs", "rowData": "var"}  # where -> AnnData part
_CLASSES = ("factor", "ordered", "character", "logical", "integer", "double", "Date")


def column_to_py(rcol) -> tuple[object | None, str]:
    """One R column as a pandas-ready array; (None, reason) when it cannot be converted."""
    rinterface = _r.ri()
    t = rcol.typeof
    cls = _r.rclass(rcol)
    if t == rinterface.RTYPES.INTSXP and "factor" in cls:
        codes = _sparse.view(rcol).astype(np.int64) - 1
        codes[codes == _NA_INT - 1] = -1
        levels = _r.strs(rinterface.baseenv["levels"](rcol))
        return pd.Categorical.from_codes(codes, categories=levels, ordered="ordered" in cls), "factor"
    if rinterface.baseenv["is.matrix"](rcol)[0] or not rinterface.baseenv["is.atomic"](rcol)[0]:
        return None, f"column of class {cls[0]!r} (not an atomic vector)"
    if t == rinterface.RTYPES.LGLSXP:
        raw = _sparse.view(rcol)
        na = raw == _NA_INT
        if na.any():
            return pd.arrays.BooleanArray(raw.astype(bool) & ~na, na.copy()), "logical"
        return raw.astype(bool), "logical"
    if t == rinterface.RTYPES.INTSXP:
        raw = _sparse.view(rcol)
        na = raw == _NA_INT
        if na.any():
            return pd.arrays.IntegerArray(np.where(na, 0, raw).astype(np.int32), na.copy()), "integer"
        return raw.astype(np.int32), "integer"
    if t == rinterface.RTYPES.REALSXP:
        if cls[0] in ("numeric", "double"):
            note = "double"
        elif "Date" in cls:
            note = "Date"
        elif "POSIXct" in cls:
            tz = _r.strs(rinterface.baseenv["attr"](rcol, rinterface.StrSexpVector(["tzone"])))
            note = f"POSIXct:{tz[0] if tz and tz[0] else ''}"
        else:
            note = f"{cls[0]} kept as numbers"
        return _sparse.view(rcol).copy(), note
    if t == rinterface.RTYPES.STRSXP:
        return np.array(_r.strs(rcol), dtype=object), "character"
    return None, f"column of R type {t!r}"


def frame_to_pandas(columns: dict, index: list[str], manifest=None, where: str = "") -> pd.DataFrame:
    """A dict of R columns (in order) as a DataFrame with ``index``; unconvertible columns reported."""
    out = {}
    for name, rcol in columns.items():
        values, how = column_to_py(rcol)
        if values is None:
            if manifest is not None:
                manifest.drop(f"{where}${name}", f"cannot convert {how}")
            continue
        out[name] = values
        if manifest is not None and (part := _PARTS.get(where, "var" if "feature" in where else None)):
            rclass = "ordered" if how == "factor" and values.ordered else how
            if rclass in _CLASSES or rclass.startswith("POSIXct:"):
                manifest.column_class(part, name, rclass)
    df = pd.DataFrame(out, index=pd.Index(index, dtype=object))
    df.columns = pd.Index(list(out.keys()), dtype=object)
    return df


def r_data_frame(rdf) -> pd.DataFrame:
    """A base R data.frame as a pandas DataFrame (row names as index)."""
    rinterface = _r.ri()
    names = _r.strs(rinterface.baseenv["names"](rdf))
    index = _r.strs(rinterface.baseenv["rownames"](rdf))
    return frame_to_pandas(dict(zip(names, list(rdf), strict=True)), index)


# ---------------------------------------------------------------- pandas -> R


def _with_class(values: pd.Series, rclass: str):
    """The column as the R class it had (from the manifest), or None when the values do not fit it."""
    rinterface = _r.ri()
    dtype = values.dtype
    categorical = isinstance(dtype, pd.CategoricalDtype)
    if rclass == "character" and (
        categorical or pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)
    ):
        arr = values.to_numpy(dtype=object)
        return _r.r_str([None if missing else str(v) for v, missing in zip(arr, pd.isna(arr), strict=True)])
    if categorical:
        return None  # a factor, as stored
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    if rclass == "double" and numeric:
        return _sparse.r_vector(values.to_numpy(dtype="float64", na_value=np.nan), "double")
    if rclass == "integer" and numeric and not pd.api.types.is_integer_dtype(dtype):
        x = values.to_numpy(dtype="float64", na_value=np.nan)
        finite = x[~np.isnan(x)]
        if np.all(finite == np.round(finite)) and (finite.size == 0 or np.abs(finite).max() < 2**31 - 1):
            return _sparse.r_vector(
                np.where(np.isnan(x), _NA_INT, np.nan_to_num(x)).astype(np.int32), "integer"
            )
        return None
    if (rclass == "Date" or rclass.startswith("POSIXct:")) and numeric:
        vec = _sparse.r_vector(values.to_numpy(dtype="float64", na_value=np.nan), "double")
        if rclass == "Date":
            return rinterface.baseenv["structure"](vec, **{"class": _r.r_str(["Date"])})
        return rinterface.baseenv["structure"](
            vec, tzone=_r.r_str([rclass.split(":", 1)[1]]), **{"class": _r.r_str(["POSIXct", "POSIXt"])}
        )
    return None


def column_to_r(values: pd.Series, rclass: str | None = None):
    """One pandas column as an R vector (see the module's table); str() for anything else.

    ``rclass``: the column's R class from the manifest (``column_classes``); used when the values fit it.
    """
    rinterface = _r.ri()
    if rclass is not None and (vec := _with_class(values, rclass)) is not None:
        return vec
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy().astype(np.int32) + 1
        codes[codes == 0] = _NA_INT
        vec = _sparse.r_vector(codes, "integer")
        levels = [str(c) for c in dtype.categories]
        factor = rinterface.baseenv["structure"](
            vec,
            levels=_r.r_str(levels),
            **{"class": _r.r_str(["ordered", "factor"] if dtype.ordered else ["factor"])},
        )
        return factor
    if pd.api.types.is_bool_dtype(dtype):
        arr = values.to_numpy(dtype=object) if isinstance(dtype, pd.BooleanDtype) else values.to_numpy()
        na = pd.isna(arr)
        out = np.where(na, _NA_INT, np.where(na, 0, arr).astype(bool).astype(np.int32))
        return _sparse.r_vector(out, "logical")
    if pd.api.types.is_integer_dtype(dtype):
        na = values.isna().to_numpy()
        ints = values.to_numpy(dtype="float64", na_value=np.nan)
        finite = ints[~na]
        if finite.size and (finite.min() <= _NA_INT or finite.max() > np.iinfo(np.int32).max):
            return _sparse.r_vector(ints, "double")
        out = np.where(na, _NA_INT, np.nan_to_num(ints)).astype(np.int32)
        return _sparse.r_vector(out, "integer")
    if pd.api.types.is_float_dtype(dtype):
        return _sparse.r_vector(values.to_numpy(dtype="float64", na_value=np.nan), "double")
    arr = values.to_numpy(dtype=object)
    return _r.r_str([None if missing else str(v) for v, missing in zip(arr, pd.isna(arr), strict=True)])


def pandas_to_r_data_frame(df: pd.DataFrame, row_names=None, classes: dict | None = None):
    """A pandas DataFrame as a base R data.frame with the index as row names (names kept as-is).

    ``row_names``: the index already as an R character vector (saves converting it again).
    ``classes``: ``{column: R class}`` recorded when the columns came from R (see :func:`column_to_r`).
    """
    rinterface = _r.ri()
    classes = classes or {}
    cols = [
        column_to_r(df[c], classes.get(str(c))) if not isinstance(df[c], pd.DataFrame) else None
        for c in df.columns
    ]
    lst = rinterface.ListSexpVector(cols)
    lst.names = _r.r_str([str(c) for c in df.columns])
    rn = row_names if row_names is not None else _r.r_str([str(i) for i in df.index])
    return rinterface.baseenv["structure"](
        lst, **{"row.names": rn, "class": rinterface.StrSexpVector(["data.frame"])}
    )
