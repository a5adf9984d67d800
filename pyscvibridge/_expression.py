"""Batch-corrected, normalised expression of chosen genes from a trained scVI / scANVI model."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from ._conventions import NORMALIZED
from ._errors import PyscvibridgeError
from ._scanvi import _check_same_cells

if TYPE_CHECKING:
    import anndata as ad
    import pandas as pd
    import scvi

logger = logging.getLogger("pyscvibridge")


def corrected_expression(
    adata: ad.AnnData,
    model: scvi.model.SCVI | scvi.model.SCANVI,
    *,
    genes: Sequence[str] | Literal["all"],
    transform_batch: str | Sequence[str] | None = None,
    library_size: float | Literal["latent"] = 1e4,
    n_samples: int = 1,
    batch_size: int = 1024,
    key_added: str = NORMALIZED,
) -> ad.AnnData:
    """Normalised expression of chosen genes decoded by scVI, optionally as if every cell came from given batches.

    Calls :meth:`scvi.model.SCVI.get_normalized_expression` with ``gene_list`` on chunks of cells and writes
    the result into one preallocated cells x genes ``float32`` table, so memory stays at the size of the
    answer: no dense all-genes x all-cells matrix is formed unless ``genes="all"`` asks for every gene.

    The table goes to ``adata.obsm[key_added]`` as a :class:`pandas.DataFrame` (rows = ``obs_names``,
    columns = gene names). It is a cells x chosen-genes matrix of its own, which is what a Seurat assay
    (``CreateAssayObject(data = t(x))``) or an SCE ``altExp`` holds; a layer would have to span every gene.

    Parameters
    ----------
    adata
        The AnnData the model was trained on (as :func:`pyscvibridge.integrate` returned it).
    model
        Trained :class:`scvi.model.SCVI` or :class:`scvi.model.SCANVI`.
    genes
        Gene names among those the model was trained on (the highly variable genes, and any
        ``extra_genes`` given to :func:`pyscvibridge.integrate`), or ``"all"``.
    transform_batch
        ``None``: each cell is decoded in its own batch (denoised, not batch-corrected). A batch level, or a
        list of levels: every cell is decoded as if it came from that batch (averaged over the list), which
        removes the batch effect; ``"all"`` averages over every batch.
    library_size
        Counts per cell the expression is scaled to (``1e4``: counts per 10k, as Seurat's NormalizeData),
        ``1`` for proportions, or ``"latent"`` for each cell's observed library size.
    n_samples
        Posterior samples averaged per cell (1 uses the posterior mean's decoding).
    batch_size
        Cells per minibatch on the device.
    key_added
        ``obsm`` key of the result; its parameters go to ``uns[key_added]``.

    Returns
    -------
    ``adata`` (modified in place) with ``obsm[key_added]`` and ``uns[key_added]``.
    """
    import pandas as pd

    ref = model.adata
    _check_same_cells(adata, ref)
    model_genes = pd.Index(ref.var_names)
    wanted = _genes(genes, model_genes, adata)
    batches = _transform_batch(model, transform_batch)
    if library_size != "latent" and not (isinstance(library_size, int | float) and library_size > 0):
        msg = f"library_size must be a positive number or 'latent', not {library_size!r}."
        raise PyscvibridgeError(msg)
    if batch_size < 1 or n_samples < 1:
        msg = f"batch_size ({batch_size}) and n_samples ({n_samples}) must be positive."
        raise PyscvibridgeError(msg)

    out = np.empty((ref.n_obs, len(wanted)), dtype=np.float32)
    chunk = 16 * batch_size
    for start in range(0, ref.n_obs, chunk):
        idx = np.arange(start, min(start + chunk, ref.n_obs))
        part = model.get_normalized_expression(
            indices=idx,
            gene_list=list(wanted),
            transform_batch=batches,
            library_size=library_size,
            n_samples=n_samples,
            batch_size=batch_size,
            return_mean=True,
            return_numpy=True,
        )
        out[idx] = part
    table = pd.DataFrame(out, index=pd.Index(ref.obs_names, dtype=str), columns=list(wanted))
    adata.obsm[key_added] = table.loc[adata.obs_names]
    adata.uns[key_added] = {
        "genes": list(wanted),
        "transform_batch": [] if batches is None else [str(b) for b in batches],
        "library_size": str(library_size) if library_size == "latent" else float(library_size),
        "n_samples": int(n_samples),
        "model": type(model).__name__,
    }
    logger.info(
        "added .obsm[%r] (%d cells x %d genes, scVI-normalised%s) and .uns[%r]",
        key_added,
        *out.shape,
        "" if batches is None else f", decoded as batch {batches}",
        key_added,
    )
    return adata


def _genes(genes, model_genes: pd.Index, adata: ad.AnnData) -> pd.Index:
    import pandas as pd

    if isinstance(genes, str):
        if genes == "all":
            return model_genes
        genes = [genes]
    wanted = pd.Index([str(g) for g in genes]).drop_duplicates()
    if len(wanted) == 0:
        msg = "genes is empty: name the genes to return (or genes='all' for every gene of the model)."
        raise PyscvibridgeError(msg)
    missing = wanted[~wanted.isin(model_genes)]
    if len(missing):
        in_data = missing[missing.isin(adata.var_names)]
        few = ", ".join(repr(g) for g in missing[:5]) + (", ..." if len(missing) > 5 else "")
        msg = f"{len(missing)} of the {len(wanted)} genes are not among the {len(model_genes)} genes the model was trained on: {few}."
        if len(in_data):
            msg += (
                f" {len(in_data)} of them are in the data but were not highly variable; retrain with them "
                "added to the training genes (integrate(..., extra_genes=[...])) to decode them."
            )
        else:
            msg += f" Model genes look like: {', '.join(map(repr, model_genes[:3]))}."
        raise PyscvibridgeError(msg)
    return wanted


def _transform_batch(model, transform_batch) -> list[str] | None:
    if transform_batch is None:
        return None
    levels = list(model.adata_manager.get_state_registry("batch").categorical_mapping)
    if isinstance(transform_batch, str):
        transform_batch = levels if transform_batch == "all" else [transform_batch]
    wanted = [str(b) for b in transform_batch]
    unknown = [b for b in wanted if b not in levels]
    if unknown or not wanted:
        msg = (
            f"transform_batch {unknown or wanted!r} is not a batch of the model. "
            f"Batches: {', '.join(map(repr, levels))} (or 'all', or None for each cell's own batch)."
        )
        raise PyscvibridgeError(msg)
    return wanted
