"""Input checks shared by the workflow, the converters and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import PyscvibridgeError

if TYPE_CHECKING:
    import anndata as ad
    import pandas as pd


def _values(x) -> np.ndarray:
    """The stored values of a dense or sparse matrix (sparse: only the non-zeros)."""
    data = getattr(x, "data", None)
    if data is not None and not isinstance(x, np.ndarray):
        return np.asarray(data)
    return np.asarray(x).ravel()


def counts_problem(x) -> str | None:
    """Why ``x`` does not hold raw counts (a sentence), or ``None`` when it does."""
    v = _values(x)
    if v.size == 0:
        return None
    if v.dtype.kind in "iub":
        return "it has negative values" if v.dtype.kind == "i" and v.min() < 0 else None
    finite = np.isfinite(v)
    if not finite.all():
        bad = v[~finite][0]
        return f"it has {int((~finite).sum())} NaN or infinite values (e.g. {bad})"
    if (vmin := v.min()) < 0:
        return f"it has negative values (min {vmin:g}), as scaled or centred data does"
    frac = v != np.round(v)
    if frac.any():
        example = v[frac][0]
        hint = "log-normalised" if v.max() < 30 else "normalised"
        return f"it has non-integer values (e.g. {example:g}, max {v.max():g}): it looks {hint}"
    return None


def is_counts(x) -> bool:
    return counts_problem(x) is None


def check_counts(x, where: str) -> None:
    """Raise a clear error unless ``x`` holds raw counts (non-negative integers, any float storage)."""
    if (problem := counts_problem(x)) is not None:
        msg = (
            f"{where} must hold raw counts (non-negative integers), but {problem}. "
            "scVI models raw counts: pass the layer that holds them (e.g. layer='counts'; "
            "for Seurat the 'counts' slot/layer, not 'data' or 'scale.data')."
        )
        raise PyscvibridgeError(msg)


def check_obs_key(
    adata: ad.AnnData, key: str, what: str, *, quote: Callable[[Any], str] = repr, allow_na: bool = False
) -> pd.Series:
    """The ``obs`` column ``key``; an error naming ``what`` when it is missing or (unless ``allow_na``)
    has NA values, with their count."""
    if key not in adata.obs.columns:
        cols = ", ".join(quote(c) for c in adata.obs.columns) or "none"
        msg = f"{what} {quote(key)} is not a column of the cell metadata. Available columns: {cols}."
        raise PyscvibridgeError(msg)
    col = adata.obs[key]
    if not allow_na and (n_na := int(col.isna().sum())):
        values = "1 missing value (NA)" if n_na == 1 else f"{n_na} missing (NA) values"
        msg = (
            f"{what} {quote(key)} has {values}; every cell needs one. "
            "Fill them (e.g. with 'unknown') or drop those cells first."
        )
        raise PyscvibridgeError(msg)
    return col


def counts_matrix(adata: ad.AnnData, layer: str | None):
    """The raw-count matrix: ``layers[layer]``; with ``layer=None`` the 'counts' layer, else X."""
    if layer is not None:
        if layer not in adata.layers:
            have = ", ".join(repr(k) for k in adata.layers) or "none"
            msg = (
                f"layer {layer!r} is not in the AnnData (layers present: {have}). "
                "Name the layer that holds raw counts, or layer=None to use X."
            )
            raise PyscvibridgeError(msg)
        x, where = adata.layers[layer], f"layers[{layer!r}]"
    elif "counts" in adata.layers:
        x, where = adata.layers["counts"], "layers['counts']"
    else:
        x, where = adata.X, "X"
    check_counts(x, where)
    return x, where


def as_categories(col: pd.Series) -> pd.Series:
    """A batch-like column as a categorical of strings.

    Integers, logicals and strings become categories in the order of their values (``2`` before
    ``10``); a categorical keeps its order, with unused categories dropped (an empty batch breaks the
    per-batch HVGs and adds a dead batch to the model). Strings, as :func:`pyscvibridge.map_query`
    gives the query's batches, so a saved model's batches and a query's compare equal.
    """
    import pandas as pd

    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.cat.remove_unused_categories()
        names = [str(c) for c in col.cat.categories]
        if len(set(names)) == len(names):
            return col.cat.rename_categories(names)
        return col.astype(str).astype("category")
    values = col.dropna().unique()
    try:
        values = sorted(values)
    except TypeError:  # mixed types: by their text
        values = sorted(values, key=str)
    levels = list(dict.fromkeys(str(v) for v in values))
    return pd.Series(
        pd.Categorical(col.astype(str).where(col.notna()), categories=levels), index=col.index, name=col.name
    )


def obs_for_model(adata: ad.AnnData, keys: list[str], categorical: list[str] | None = None) -> pd.DataFrame:
    """A copy of these ``obs`` columns; those in ``categorical`` (default: all) as categoricals
    (see :func:`as_categories`: a batch column may be of any type)."""
    obs = adata.obs[keys].copy()
    for key in keys if categorical is None else [k for k in keys if k in categorical]:
        obs[key] = as_categories(obs[key])
    return obs
