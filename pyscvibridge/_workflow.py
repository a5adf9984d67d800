"""The scVI integration workflow on AnnData (knows nothing of R or files)."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._checks import check_obs_key, counts_matrix
from ._conventions import UNS_INTEGRATION
from ._errors import PyscvibridgeError
from ._genes import gene_mask, highly_variable, kept_genes, log_normalise
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

    kept = kept_genes(adata, counts, feature_types)
    adata.var["scvi_kept"] = kept
    n_genes = int(kept.sum())
    logger.info("using %d of %d features (raw counts from %s)", n_genes, adata.n_vars, counts_where)
    chosen = None if genes is None else gene_mask(adata, genes, "genes") & kept
    extra = None
    if extra_genes is not None:
        extra = gene_mask(adata, extra_genes, "extra_genes")
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

    adata.layers["logcounts"] = log_normalise(counts, genes)
    logger.info("added .layers['logcounts'] (normalize_total on kept genes + log1p)")

    hvg = highly_variable(adata, genes, batch_key=batch_key, n_top_genes=n_top_genes)
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
