"""Which genes scVI sees: gene-expression features with counts, log counts, batch-aware HVGs.

The steps :func:`pyscvibridge.integrate` runs before training, on AnnData and count matrices only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._checks import obs_for_model
from ._errors import PyscvibridgeError

if TYPE_CHECKING:
    import anndata as ad


def gene_mask(adata: ad.AnnData, names: Sequence[str], arg: str) -> np.ndarray:
    """The var mask of ``names``; an error naming ``arg`` for names that are not genes of ``adata``."""
    import pandas as pd

    wanted = pd.Index([str(g) for g in names]).drop_duplicates()
    missing = wanted[~wanted.isin(adata.var_names)]
    if len(missing) or not len(wanted):
        few = ", ".join(repr(g) for g in missing[:5]) + (", ..." if len(missing) > 5 else "")
        msg = (
            f"{arg}: {len(missing)} of the {len(wanted)} genes are not in the data: {few}. "
            f"Use names from var_names, e.g. {', '.join(map(repr, adata.var_names[:3]))}."
            if len(wanted)
            else f"{arg} is empty: name the genes (or leave it out)."
        )
        raise PyscvibridgeError(msg)
    return np.asarray(adata.var_names.isin(wanted))


def kept_genes(adata: ad.AnnData, counts, feature_types: Sequence[str] | None) -> np.ndarray:
    keep = np.ones(adata.n_vars, dtype=bool)
    if feature_types is not None and "feature_types" in adata.var:
        keep &= adata.var["feature_types"].isin(list(feature_types)).to_numpy()
        if not keep.any():
            have = sorted(map(str, adata.var["feature_types"].unique()))
            msg = (
                f"No feature has a gene-expression type {list(feature_types)} in var['feature_types'] "
                f"(types present: {have}). Pass feature_types=[...] with the right value, or None to keep all."
            )
            raise PyscvibridgeError(msg)
    totals = np.asarray(counts.sum(axis=0)).ravel()
    keep &= totals > 0
    if not keep.any():
        msg = "Every gene has zero counts across all cells: there is nothing to integrate."
        raise PyscvibridgeError(msg)
    return keep


def log_normalise(counts, genes: np.ndarray):
    """log1p(counts / library size * median library size), library sizes from the kept genes."""
    import scipy.sparse as sp

    lib = np.asarray(counts[:, np.flatnonzero(genes)].sum(axis=1)).ravel().astype(np.float64)
    if (lib == 0).any():
        msg = (
            f"{int((lib == 0).sum())} cells have no counts in the kept genes; remove them first "
            "(e.g. scanpy.pp.filter_cells(adata, min_counts=1))."
        )
        raise PyscvibridgeError(msg)
    scale = np.median(lib) / lib
    if sp.issparse(counts):
        out = sp.csr_matrix(counts, dtype=np.float32, copy=True)
        out.data *= np.repeat(scale, np.diff(out.indptr)).astype(np.float32)
        np.log1p(out.data, out=out.data)
        return out
    return np.log1p(np.asarray(counts, dtype=np.float32) * scale[:, None].astype(np.float32))


def highly_variable(
    adata: ad.AnnData, genes: np.ndarray, *, batch_key: str | None, n_top_genes: int
) -> np.ndarray:
    import anndata as ad
    import scanpy as sc

    sub = ad.AnnData(
        X=adata.layers["logcounts"][:, np.flatnonzero(genes)],
        obs=obs_for_model(adata, [batch_key]) if batch_key else None,
        var=adata.var.iloc[np.flatnonzero(genes), :0],
    )
    check_hvg_bins(sub, batch_key)
    n_top = min(n_top_genes, sub.n_vars)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # empty bins in the dispersion normalisation
        sc.pp.highly_variable_genes(sub, flavor="cell_ranger", n_top_genes=n_top, batch_key=batch_key)
    for col in sub.var.columns:
        full = (
            np.zeros(adata.n_vars, dtype=sub.var[col].dtype)
            if sub.var[col].dtype == bool
            else np.full(adata.n_vars, np.nan)
        )
        full[genes] = sub.var[col].to_numpy()
        adata.var[col] = full
    if batch_key is None:
        adata.var["highly_variable_nbatches"] = adata.var["highly_variable"].astype(float)
        adata.var["highly_variable_intersection"] = adata.var["highly_variable"].to_numpy()
    adata.var["highly_variable_nbatches"] = np.nan_to_num(adata.var["highly_variable_nbatches"]).astype(
        np.int64
    )
    adata.var["highly_variable_intersection"] = (
        adata.var["highly_variable_intersection"].fillna(False).astype(bool)
    )
    adata.uns["hvg"] = {"flavor": "cell_ranger", "n_top_genes": n_top, "batch_key": batch_key or ""}
    hvg = adata.var["highly_variable"].to_numpy(dtype=bool)
    if not hvg.any():
        msg = (
            f"No gene came out highly variable ({adata.n_obs} cells, {int(genes.sum())} expressed genes): "
            "the cells are too few or too alike to integrate."
        )
        raise PyscvibridgeError(msg)
    return hvg


def check_hvg_bins(sub: ad.AnnData, batch_key: str | None) -> None:
    """Refuse batches too small for scanpy's cell_ranger HVGs, naming them.

    Per batch, that flavour bins the genes expressed in the batch by their mean (of the log
    values) at the 10th, 15th, ..., 100th percentiles; with a few cells many genes share a mean and
    the bin edges repeat ("Bin edges must be unique"). The same computation, done here first.
    """
    groups = sub.obs[batch_key] if batch_key else None
    names = [None] if groups is None else list(groups.cat.categories)
    bad = []
    for name in names:
        x = sub.X if name is None else sub.X[np.flatnonzero((groups == name).to_numpy())]
        n = x.shape[0]
        means = np.asarray(x.mean(axis=0)).ravel()
        if name is not None:  # scanpy leaves out the genes a batch does not express
            means = means[np.asarray((x != 0).sum(axis=0)).ravel() > 0]
        means[means == 0] = 1e-12
        if means.size == 0 or (np.diff(np.percentile(means, np.arange(10, 105, 5))) <= 0).any():
            bad.append((name, n))
    if not bad:
        return
    if batch_key is None:
        msg = (
            f"The {bad[0][1]} cells are too few (or too alike) for the highly variable genes step: "
            "too many genes share the same mean expression. Use more cells."
        )
        raise PyscvibridgeError(msg)
    listed = ", ".join(f"{name!r} ({n} cell{'s' if n != 1 else ''})" for name, n in bad[:10])
    more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
    msg = (
        f"batch_key {batch_key!r}: batch(es) {listed}{more} have too few cells for the per-batch highly "
        "variable genes (too many genes share the same mean expression in them). Remove those cells, or "
        "merge them into a related batch, e.g. adata.obs[batch_key] = adata.obs[batch_key].replace({...})."
    )
    raise PyscvibridgeError(msg)
