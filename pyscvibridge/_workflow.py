"""The scVI integration workflow on AnnData (knows nothing of R or files)."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._checks import check_obs_key, counts_matrix, obs_for_model
from ._conventions import UNS_INTEGRATION
from ._errors import PyscvibridgeError
from ._jit_cache import numba_steps
from ._training import DEFAULT_PRESET, check_threads, train_scvi, training_record

if TYPE_CHECKING:
    import anndata as ad
    import scvi

logger = logging.getLogger("pyscvibridge")

#: ``var["feature_types"]`` values that mean gene expression (CellRanger writes "Gene Expression",
#: the OpenProblems BMMC file "GEX").
GEX_FEATURE_TYPES = ("GEX", "Gene Expression")
UNS_KEY = UNS_INTEGRATION


MIN_CELLS = 10  # scVI validates on 10% of the cells: fewer than 10 leaves none


def integrate(
    adata: ad.AnnData,
    batch_key: str,
    *,
    labels_key: str | None = None,
    categorical_covariate_keys: Sequence[str] | None = None,
    continuous_covariate_keys: Sequence[str] | None = None,
    layer: str | None = None,
    n_top_genes: int = 2000,
    genes: Sequence[str] | None = None,
    extra_genes: Sequence[str] | None = None,
    n_latent: int = 10,
    max_epochs: int | None = None,
    preset: str = DEFAULT_PRESET,
    seed: int = 0,
    feature_types: Sequence[str] | None = GEX_FEATURE_TYPES,
    n_neighbors: int = 15,
    accelerator: str = "auto",
    devices: int | str = "auto",
    n_threads: int | str | None = None,
    progress: bool = True,
    model_kwargs: dict[str, Any] | None = None,
    train_kwargs: dict[str, Any] | None = None,
    copy: bool = False,
    return_model: bool = False,
) -> ad.AnnData | tuple[ad.AnnData, scvi.model.SCVI]:
    """Integrate batches with scVI: the standard scvi-tools / sc-best-practices workflow.

    Steps: keep gene-expression features (when ``var["feature_types"]`` exists) and drop genes with no
    counts; normalise to the median library size and log1p into ``layers["logcounts"]``; batch-aware
    highly variable genes (flavor ``"cell_ranger"``); an unintegrated PCA and UMAP on those genes for
    comparison; scVI trained on their raw counts with ``batch_key``; neighbours and UMAP on its latent.

    Parameters
    ----------
    adata
        Cells x genes, with raw counts in ``layer`` (default: ``layers["counts"]`` if present, else X).
    batch_key
        ``obs`` column with the batch (sample, protocol, ...) to integrate over.
    labels_key
        ``obs`` column with known cell labels; recorded for plots and metrics (not used in training).
    categorical_covariate_keys, continuous_covariate_keys
        Further ``obs`` columns scVI conditions on besides the batch (e.g. donor; percent mitochondrial counts).
    layer
        Layer holding raw counts. Non-negative integers are required (float storage is fine).
    n_top_genes
        Number of highly variable genes scVI is trained on.
    genes
        Train on these genes instead of the highly variable genes (e.g. Seurat's ``VariableFeatures``
        or the features ``IntegrateLayers()`` chose); genes with no counts are left out. The highly
        variable genes are still flagged in ``var`` (not used).
    extra_genes
        Genes to train on besides the highly variable genes (e.g. those whose corrected expression you
        want): the ones not already among them are added, and listed in the record
        (``params["extra_genes_added"]``) and the log.
    n_latent
        Dimension of the scVI latent space.
    max_epochs
        Training epochs; default: the preset's schedule.
    preset
        Training schedule: ``"fast"`` (a quarter of the epochs at a higher learning rate, a
        cheaper exact likelihood; the same model) or ``"scvi-tools"`` (scvi-tools' defaults exactly:
        ``min(round(20000 / n_cells * 400), 400)`` epochs, minibatches of 128). See
        ``pyscvibridge._training``.
    seed
        Seed for scvi-tools (torch, numpy), the PCA and the UMAPs.
    feature_types
        ``var["feature_types"]`` values kept as gene expression; ``None`` keeps every feature.
    n_neighbors
        Neighbours for both kNN graphs.
    accelerator, devices
        Passed to Lightning (``"cpu"``, ``"gpu"``, ``"auto"``; device count or ids).
    n_threads
        torch threads for training; default: torch's current setting (``torch.get_num_threads()``),
        so the same seed gives the same latent whatever else the machine runs. ``"auto"`` trains with
        fewer threads when other processes keep cores busy (faster there, but the result then depends
        on the machine's load).
    progress
        Show scvi-tools' training progress bar.
    model_kwargs, train_kwargs
        Extra arguments for :class:`scvi.model.SCVI` and :meth:`~scvi.model.SCVI.train`.
    copy
        Work on a copy instead of modifying ``adata`` in place.
    return_model
        Also return the trained :class:`scvi.model.SCVI` (a standard model: save, load, query it).

    Returns
    -------
    The AnnData with every input cell and gene, and added: ``layers["logcounts"]``; ``var`` columns
    ``highly_variable``, ``highly_variable_nbatches``, ``highly_variable_intersection`` (and the
    dispersion statistics); ``obsm["X_pca"]``, ``obsm["X_umap_unintegrated"]``, ``obsm["X_scVI"]``,
    ``obsm["X_umap"]``; the kNN graphs ``obsp["unintegrated_*"]`` and ``obsp["connectivities"]``;
    ``uns["scvi_integration"]`` with the parameters, versions, epochs and the per-epoch ELBO.
    """
    import scanpy as sc

    if copy:
        adata = adata.copy()
    if adata.isbacked:
        msg = (
            "integrate() needs the AnnData in memory, but it was opened in backed mode. "
            "Load it with adata = adata.to_memory() (or read_h5ad without backed=)."
        )
        raise PyscvibridgeError(msg)
    if adata.n_obs == 0 or adata.n_vars == 0:
        msg = f"The AnnData is empty ({adata.n_obs} cells x {adata.n_vars} genes): nothing to integrate."
        raise PyscvibridgeError(msg)
    started = time.perf_counter()
    counts, counts_where = counts_matrix(adata, layer)
    batches = check_obs_key(adata, batch_key, "batch_key")
    if labels_key is not None:
        check_obs_key(
            adata, labels_key, "labels_key", allow_na=True
        )  # NA: unlabeled (scANVI), left out (metrics)
    cat_covs = [str(k) for k in categorical_covariate_keys or ()]
    cont_covs = [str(k) for k in continuous_covariate_keys or ()]
    for key in cat_covs:
        check_obs_key(adata, key, "categorical covariate")
    for key in cont_covs:
        col = check_obs_key(adata, key, "continuous covariate")
        if col.dtype.kind not in "biuf":
            msg = f"continuous covariate {key!r} must be numeric, but its type is {col.dtype}. Pass it as a categorical covariate instead."
            raise PyscvibridgeError(msg)
    if adata.n_obs < MIN_CELLS:
        msg = (
            f"The AnnData has {adata.n_obs} cells; integrate() needs at least {MIN_CELLS} (scVI holds out "
            "10% of the cells to validate the training, and highly variable genes, PCA and UMAP need "
            "more than a handful)."
        )
        raise PyscvibridgeError(msg)
    if n_top_genes < 1 or n_latent < 1:
        msg = f"n_top_genes ({n_top_genes}) and n_latent ({n_latent}) must be positive."
        raise PyscvibridgeError(msg)
    n_threads = check_threads(n_threads)

    use_batch: str | None = batch_key
    n_batches = batches.nunique()
    if n_batches < 2:
        warnings.warn(
            f"batch_key {batch_key!r} has a single level ({batches.iloc[0]!r}): there is nothing to "
            "integrate, so scVI is trained without a batch covariate.",
            UserWarning,
            stacklevel=2,
        )
        use_batch = None

    kept = _kept_genes(adata, counts, feature_types)
    adata.var["scvi_kept"] = kept
    n_genes = int(kept.sum())
    logger.info("using %d of %d features (raw counts from %s)", n_genes, adata.n_vars, counts_where)
    chosen = None if genes is None else _gene_mask(adata, genes, "genes") & kept
    extra = None
    if extra_genes is not None:
        extra = _gene_mask(adata, extra_genes, "extra_genes")
        if (extra & ~kept).any():
            left = [str(g) for g in adata.var_names[extra & ~kept]]
            warnings.warn(
                f"extra_genes: {len(left)} gene(s) have no counts (or are not gene expression) and are "
                f"not trained on: {', '.join(left[:5])}{', ...' if len(left) > 5 else ''}.",
                UserWarning,
                stacklevel=2,
            )
        extra &= kept
    if chosen is not None and not chosen.any():
        msg = (
            "None of the genes given in genes= has counts in the kept features: there is nothing to train on."
        )
        raise PyscvibridgeError(msg)
    with numba_steps():
        hvg = _unintegrated(
            adata,
            counts,
            kept,
            batch_key=use_batch,
            n_top_genes=n_top_genes,
            n_neighbors=n_neighbors,
            seed=seed,
            use=chosen,
        )
    added = []
    if extra is not None and (extra & ~hvg).any():
        added = [str(g) for g in adata.var_names[extra & ~hvg]]
        hvg = hvg | extra
        logger.info(
            "training also on %d gene(s) that were not highly variable: %s",
            len(added),
            ", ".join(added[:10]) + (", ..." if len(added) > 10 else ""),
        )
    adata.var["scvi_trained"] = hvg

    trained = hvg
    model = train_scvi(
        adata,
        counts[:, np.flatnonzero(trained)],
        var_names=adata.var_names[trained],
        batch_key=use_batch,
        categorical_covariate_keys=cat_covs,
        continuous_covariate_keys=cont_covs,
        n_latent=n_latent,
        max_epochs=max_epochs,
        preset=preset,
        seed=seed,
        accelerator=accelerator,
        devices=devices,
        threads=n_threads,
        progress=progress,
        model_kwargs=model_kwargs or {},
        train_kwargs=train_kwargs or {},
    )
    adata.obsm["X_scVI"] = model.get_latent_representation().astype(np.float32)
    with numba_steps():
        sc.pp.neighbors(adata, n_neighbors=n_neighbors, use_rep="X_scVI", random_state=seed)
        sc.tl.umap(adata, random_state=seed)
    logger.info(
        "added .obsm['X_scVI'] (%d x %d), .obsm['X_umap'] (UMAP of the scVI latent)",
        *adata.obsm["X_scVI"].shape,
    )

    adata.uns[UNS_KEY] = _provenance(
        model,
        params={
            "batch_key": batch_key,
            "batch_key_used": use_batch or "",
            "labels_key": labels_key or "",
            "categorical_covariate_keys": cat_covs,
            "continuous_covariate_keys": cont_covs,
            "counts": counts_where,
            "n_top_genes": n_top_genes,
            "genes_from": "given" if genes is not None else "highly variable",
            "extra_genes_added": added,
            "n_latent": n_latent,
            "max_epochs": training_record(model).get("max_epochs", max_epochs or 0),
            "preset": preset,
            "seed": seed,
            "n_neighbors": n_neighbors,
            "accelerator": str(accelerator),
            "devices": str(devices),
            "feature_types": list(feature_types or []),
            **({} if chosen is None else {"genes": [str(g) for g in adata.var_names[trained]]}),
        },
        n_genes_kept=n_genes,
        n_hvg=int(hvg.sum()),
        seconds=time.perf_counter() - started,
    )
    logger.info("added .uns[%r] (parameters, versions, training history)", UNS_KEY)
    return (adata, model) if return_model else adata


def _unintegrated(
    adata: ad.AnnData,
    counts,
    genes: np.ndarray,
    *,
    batch_key: str | None,
    n_top_genes: int,
    n_neighbors: int,
    seed: int,
    use: np.ndarray | None = None,
) -> np.ndarray:
    """Log counts, highly variable genes, PCA and its UMAP, added to ``adata``; returns the mask of
    the genes to train on: the HVGs, or ``use`` when given (the PCA is on those genes)."""
    import scanpy as sc

    adata.layers["logcounts"] = _log_normalise(counts, genes)
    logger.info("added .layers['logcounts'] (normalize_total on kept genes + log1p)")

    hvg = _highly_variable(adata, genes, batch_key=batch_key, n_top_genes=n_top_genes)
    logger.info("flagged %d highly variable genes in .var['highly_variable']", int(hvg.sum()))
    if use is not None:
        hvg = use
        logger.info("training on the %d genes given instead of the highly variable genes", int(hvg.sum()))

    n_pcs = max(1, min(50, adata.n_obs - 1, int(hvg.sum()) - 1))
    sc.pp.pca(adata, n_comps=n_pcs, layer="logcounts", mask_var=hvg, random_state=seed)
    sc.pp.neighbors(
        adata, n_neighbors=n_neighbors, use_rep="X_pca", key_added="unintegrated", random_state=seed
    )
    sc.tl.umap(adata, neighbors_key="unintegrated", key_added="X_umap_unintegrated", random_state=seed)
    logger.info("added .obsm['X_pca'], .obsm['X_umap_unintegrated'] (unintegrated, for comparison)")
    return hvg


def _gene_mask(adata: ad.AnnData, names: Sequence[str], arg: str) -> np.ndarray:
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


def _kept_genes(adata: ad.AnnData, counts, feature_types: Sequence[str] | None) -> np.ndarray:
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


def _log_normalise(counts, genes: np.ndarray):
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


def _highly_variable(
    adata: ad.AnnData, genes: np.ndarray, *, batch_key: str | None, n_top_genes: int
) -> np.ndarray:
    import anndata as ad
    import scanpy as sc

    sub = ad.AnnData(
        X=adata.layers["logcounts"][:, np.flatnonzero(genes)],
        obs=obs_for_model(adata, [batch_key]) if batch_key else None,
        var=adata.var.iloc[np.flatnonzero(genes), :0],
    )
    _check_hvg_bins(sub, batch_key)
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


def _check_hvg_bins(sub: ad.AnnData, batch_key: str | None) -> None:
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


def _provenance(model, *, params: dict, n_genes_kept: int, n_hvg: int, seconds: float) -> dict:
    from importlib.metadata import version

    history = {
        key: model.history[key].iloc[:, 0].to_numpy(dtype=np.float64)
        for key in ("elbo_train", "elbo_validation", "reconstruction_loss_train")
        if key in model.history
    }
    versions = {}
    for pkg in ("pyscvibridge", "scvi-tools", "scanpy", "anndata", "torch"):
        try:
            versions[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - a missing distribution must not fail a finished run
            versions[pkg] = "unknown"
    return {
        "params": params,
        "versions": versions,
        "epochs_run": len(history.get("elbo_train", ())),
        "training": training_record(model),
        "history": history,
        "n_genes_kept": n_genes_kept,
        "n_hvg": n_hvg,
        "seconds": float(seconds),
    }
