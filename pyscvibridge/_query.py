"""Saved models and query mapping: save a trained reference, map new samples onto it (scArches)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._checks import counts_matrix
from ._conventions import UNS_MODEL, UNS_QUERY
from ._errors import PyscvibridgeError
from ._jit_cache import numba_steps
from ._training import default_max_epochs

if TYPE_CHECKING:
    import os

    import anndata as ad
    import pandas as pd
    import scvi

logger = logging.getLogger("pyscvibridge")

MODEL_UNS_KEY = UNS_MODEL
QUERY_UNS_KEY = UNS_QUERY


def save_model(
    adata: ad.AnnData,
    model: scvi.model.SCVI | scvi.model.SCANVI,
    dir_path: str | os.PathLike,
    *,
    overwrite: bool = False,
) -> Path:
    """Save a trained model in scvi-tools' format and record where in ``adata.uns["scvi_model"]``.

    The directory holds ``model.pt`` (weights, registry with the gene names and batch levels); load it
    with ``scvi.model.SCVI.load(dir_path, adata=...)`` or map new cells onto it with :func:`map_query`.
    The training AnnData is not saved (the ``.h5ad`` next to it holds the data).

    Parameters
    ----------
    adata
        The AnnData the model belongs to; gets ``uns["scvi_model"]`` (path, model class, genes, batches).
    model
        A trained :class:`scvi.model.SCVI` or :class:`scvi.model.SCANVI`.
    dir_path
        Directory to create (conventionally next to the output, e.g. ``integrated_scvi_model/``).
    overwrite
        Replace an existing model directory.

    Returns
    -------
    The absolute path of the directory.
    """
    from ._scanvi import _check_same_cells

    _check_same_cells(adata, model.adata)
    path = Path(dir_path).expanduser().resolve()
    if path.exists() and any(path.iterdir()) and not overwrite:
        msg = f"Model directory {str(path)!r} already exists and is not empty; pass overwrite=True or another path."
        raise PyscvibridgeError(msg)
    model.save(str(path), overwrite=True, save_anndata=False)
    setup = model.adata_manager.registry["setup_args"]
    adata.uns[MODEL_UNS_KEY] = {
        "path": str(path),
        "model_class": type(model).__name__,
        "n_genes": int(model.adata.n_vars),
        "batch_key": setup.get("batch_key") or "",
        "labels_key": setup.get("labels_key") or "",
        "batches": [str(b) for b in model.adata_manager.get_state_registry("batch").categorical_mapping],
    }
    logger.info("saved the %s model to %s; added .uns[%r]", type(model).__name__, path, MODEL_UNS_KEY)
    return path


def map_query(
    query: ad.AnnData,
    model_dir: str | os.PathLike,
    *,
    batch_key: str,
    layer: str | None = None,
    max_epochs: int | None = None,
    min_shared_genes: float = 0.5,
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str = "auto",
    progress: bool = True,
    umap: bool = True,
    n_neighbors: int = 15,
    train_kwargs: dict[str, Any] | None = None,
    copy: bool = False,
    return_model: bool = False,
) -> ad.AnnData | tuple[ad.AnnData, scvi.model.SCVI | scvi.model.SCANVI]:
    """Map new samples onto a saved reference model (scArches: only the new batches' weights are trained).

    The query's genes are matched to the reference model's genes by name, then by name with ``"_"`` read
    as ``"-"`` (Seurat renames ``"_"`` to ``"-"``, so a model trained from Seurat and a query from AnnData,
    or the other way round, still match). Reference genes the query lacks are zero-filled
    (:meth:`scvi.model.SCVI.prepare_query_anndata`); query genes the reference lacks are ignored. Then
    :meth:`~scvi.model.SCVI.load_query_data` adds the query's batches and trains on the query alone.

    Parameters
    ----------
    query
        New cells x genes with raw counts in ``layer`` (default ``layers["counts"]`` if present, else X).
        May be opened in backed mode (``anndata.read_h5ad(path, backed="r")``): then only the reference
        genes' columns are read into memory, and the results are added to the object in memory
        (``copy`` is ignored; save them with ``query.to_memory().write_h5ad(...)``).
    model_dir
        A model saved by :func:`save_model` (or ``model.save()``): scVI or scANVI.
    batch_key
        ``obs`` column with the query's batches (new levels are added to the model's).
    layer
        Layer holding raw counts.
    max_epochs
        Query training epochs; default ``min(round(20000 / n_cells * 400), 400)``.
    min_shared_genes
        Fewest reference genes (fraction) the query must have; fewer means the model was trained on other
        genes (another species, annotation or gene set) and the mapping would be meaningless.
    seed
        Seed for scvi-tools and the UMAP.
    accelerator, devices
        Passed to Lightning.
    progress
        Show scvi-tools' training progress bar.
    umap
        Neighbours and a UMAP of the query on its mapped latent (``obsm["X_umap"]``).
    n_neighbors
        Neighbours for that UMAP.
    train_kwargs
        Extra arguments for ``train()`` (default ``plan_kwargs={"weight_decay": 0.0}``, as scArches).
    copy
        Work on a copy of ``query``.
    return_model
        Also return the query model.

    Returns
    -------
    The query with ``obsm["X_scVI"]`` (the reference's latent space), ``obsm["X_umap"]``; for a scANVI
    reference also ``obsm["X_scANVI"]``, ``obs["scanvi_prediction"]`` and ``obs["scanvi_probability"]``;
    and ``uns["scvi_query"]`` (model path and class, genes matched, renamed and missing, epochs).
    """
    import anndata as ad
    import pandas as pd
    import scvi

    started = time.perf_counter()
    if copy and not query.isbacked:
        query = query.copy()
    path = Path(model_dir).expanduser()
    if not (path / "model.pt").is_file():
        what = "does not exist" if not path.exists() else "holds no model.pt"
        msg = f"model_dir {str(path)!r} {what}: pass a directory written by save_model() or model.save()."
        raise PyscvibridgeError(msg)
    registry = scvi.model.base.BaseModelClass.load_registry(str(path))
    cls_name = registry["model_name"]
    if cls_name not in ("SCVI", "SCANVI"):
        msg = f"map_query() maps onto scVI or scANVI models; {str(path)!r} holds a {cls_name} model."
        raise PyscvibridgeError(msg)
    cls = getattr(scvi.model, cls_name)
    setup = registry["setup_args"]
    if query.n_obs == 0:
        msg = "The query has no cells."
        raise PyscvibridgeError(msg)
    if batch_key not in query.obs.columns:
        cols = ", ".join(repr(c) for c in query.obs.columns) or "none"
        msg = f"batch_key {batch_key!r} is not a column of the query's cell metadata. Available columns: {cols}."
        raise PyscvibridgeError(msg)

    ref_genes = pd.Index(cls.prepare_query_anndata(query, str(path), return_reference_var_names=True))
    cols, renamed = align_genes(ref_genes, query.var_names)
    n_shared = int((cols >= 0).sum())
    if n_shared == 0:
        msg = (
            f"The query shares no gene with the reference model ({len(ref_genes)} genes, e.g. "
            f"{', '.join(map(repr, ref_genes[:3]))}; query genes e.g. "
            f"{', '.join(map(repr, query.var_names[:3]))}). Use the same gene identifiers (symbols or Ensembl "
            "ids) as the reference."
        )
        raise PyscvibridgeError(msg)
    if n_shared < min_shared_genes * len(ref_genes):
        missing = ref_genes[cols < 0]
        msg = (
            f"The query has only {n_shared} of the reference model's {len(ref_genes)} genes "
            f"({100 * n_shared / len(ref_genes):.0f}% < {100 * min_shared_genes:.0f}%): the model was trained on "
            f"other genes (missing e.g. {', '.join(map(repr, missing[:5]))}). Map onto a model trained on "
            "these genes, or lower min_shared_genes if this is intended."
        )
        raise PyscvibridgeError(msg)

    import scipy.sparse as sp

    shared = np.flatnonzero(cols >= 0)
    if query.isbacked:
        # Read only the reference genes' columns from the file, never the whole matrix.
        counts, counts_where = counts_matrix(query[:, cols[shared]].to_memory(), layer)
        x = sp.csr_matrix(counts)
    else:
        counts, counts_where = counts_matrix(query, layer)
        x = sp.csr_matrix(counts)[:, cols[shared]]
    obs = _query_obs(query, batch_key, setup)
    qad = ad.AnnData(X=x.astype(np.float32), obs=obs)
    qad.obs_names = query.obs_names.astype(str)
    qad.var_names = ref_genes[shared]
    qad = cls.prepare_query_anndata(qad, str(path), inplace=False)
    logger.info(
        "query: %d of %d reference genes found (%d by '_'->'-' renaming), %d zero-filled",
        n_shared,
        len(ref_genes),
        len(renamed),
        len(ref_genes) - n_shared,
    )

    scvi.settings.seed = seed
    qmodel = cls.load_query_data(qad, str(path), accelerator=accelerator, device="auto")
    epochs = default_max_epochs(qad.n_obs) if max_epochs is None else int(max_epochs)
    kwargs: dict[str, Any] = {
        "plan_kwargs": {"weight_decay": 0.0},
        "enable_progress_bar": progress,
        "check_val_every_n_epoch": 1,
        **(train_kwargs or {}),
    }
    logger.info("training the %s query model for %d epochs on %d cells", cls_name, epochs, qad.n_obs)
    qmodel.train(max_epochs=epochs, accelerator=accelerator, devices=devices, **kwargs)

    latent = qmodel.get_latent_representation().astype(np.float32)
    added = ["obsm['X_scVI']"]
    query.obsm["X_scVI"] = latent
    if cls_name == "SCANVI":
        query.obsm["X_scANVI"] = latent
        soft = qmodel.predict(soft=True)
        unlabeled = setup.get("unlabeled_category")
        soft = soft[[c for c in soft.columns if c != unlabeled]]
        best = soft.to_numpy().argmax(axis=1)
        query.obs["scanvi_prediction"] = pd.Categorical(
            np.asarray(soft.columns)[best], categories=list(soft.columns)
        )
        query.obs["scanvi_probability"] = soft.to_numpy()[np.arange(len(best)), best].astype(np.float64)
        added += ["obsm['X_scANVI']", "obs['scanvi_prediction']", "obs['scanvi_probability']"]
    if umap:
        import scanpy as sc

        with numba_steps():
            sc.pp.neighbors(
                query, n_neighbors=min(n_neighbors, query.n_obs - 1), use_rep="X_scVI", random_state=seed
            )
            sc.tl.umap(query, random_state=seed)
        added.append("obsm['X_umap']")
    epochs_run = len(qmodel.history["elbo_train"]) if "elbo_train" in qmodel.history else 0
    query.uns[QUERY_UNS_KEY] = {
        "model_dir": str(path.resolve()),
        "model_class": cls_name,
        "batch_key": batch_key,
        "reference_batch_key": setup.get("batch_key") or "",
        "counts": counts_where,
        "n_reference_genes": len(ref_genes),
        "n_shared_genes": n_shared,
        "renamed_genes": {"query": [q for q, _ in renamed], "reference": [r for _, r in renamed]},
        "missing_genes": [str(g) for g in ref_genes[cols < 0]],
        "max_epochs": epochs,
        "epochs_run": epochs_run,
        "seed": seed,
        "seconds": float(time.perf_counter() - started),
    }
    logger.info("added .%s and .uns[%r]", ", .".join(added), QUERY_UNS_KEY)
    return (query, qmodel) if return_model else query


def align_genes(reference: pd.Index, query: pd.Index) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """For each reference gene, the query column holding it (or -1).

    A gene matches by exact name first, then by name with ``"_"`` read as ``"-"`` (Seurat's renaming),
    when that gives exactly one query gene. Returns the column indices and the ``(query, reference)``
    name pairs matched only by renaming.
    """
    import pandas as pd

    query = pd.Index(query.astype(str))
    pos = pd.Series(np.arange(len(query)), index=query)
    pos = pos[~pos.index.duplicated(keep="first")]
    cols = pos.reindex(reference.astype(str)).fillna(-1).to_numpy(dtype=np.int64)
    renamed: list[tuple[str, str]] = []
    if (cols < 0).any():
        used = set(cols[cols >= 0].tolist())
        norm = pd.Series(np.arange(len(query)), index=query.str.replace("_", "-", regex=False))
        unique = norm[~norm.index.duplicated(keep=False)]
        for i in np.flatnonzero(cols < 0):
            key = str(reference[i]).replace("_", "-")
            j = unique.get(key)
            if j is not None and int(j) not in used:
                cols[i] = int(j)
                used.add(int(j))
                renamed.append((str(query[j]), str(reference[i])))
    return cols, renamed


def _query_obs(query: ad.AnnData, batch_key: str, setup: dict) -> pd.DataFrame:
    """The obs columns the reference registry expects, taken from the query."""
    import pandas as pd

    obs = pd.DataFrame(index=query.obs_names.astype(str))
    ref_batch = setup.get("batch_key")
    if ref_batch:
        obs[ref_batch] = query.obs[batch_key].astype(str).to_numpy()
    for key in setup.get("categorical_covariate_keys") or []:
        if key not in query.obs.columns:
            msg = f"The reference model uses the categorical covariate {key!r}; the query needs that obs column too."
            raise PyscvibridgeError(msg)
        obs[key] = query.obs[key].astype(str).to_numpy()
    for key in setup.get("continuous_covariate_keys") or []:
        if key not in query.obs.columns:
            msg = f"The reference model uses the continuous covariate {key!r}; the query needs that obs column too."
            raise PyscvibridgeError(msg)
        obs[key] = pd.to_numeric(query.obs[key]).to_numpy(dtype=np.float64)
    labels_key = setup.get("labels_key")
    if labels_key:
        # scANVI: every query cell is unlabelled; the model predicts its label.
        obs[labels_key] = setup.get("unlabeled_category") or "Unknown"
    return obs


def transfer_labels(
    query: ad.AnnData,
    reference: ad.AnnData,
    *,
    labels_key: str,
    use_rep: str = "X_scVI",
    n_neighbors: int = 15,
    key_added: str = "knn_prediction",
) -> ad.AnnData:
    """Label query cells by a vote of their nearest reference cells in a shared latent space.

    For a scVI reference (a scANVI one predicts labels itself): after :func:`map_query`, the query's
    ``obsm["X_scVI"]`` lies in the reference's latent space, so reference labels transfer by kNN.

    Parameters
    ----------
    query, reference
        AnnData with ``obsm[use_rep]`` in the same latent space; ``reference.obs[labels_key]`` holds labels.
    labels_key
        Reference ``obs`` column with the labels.
    use_rep
        The shared latent.
    n_neighbors
        Reference neighbours voting for each query cell.
    key_added
        Query ``obs`` column for the label; ``{key_added}_fraction`` gets the share of votes it won.

    Returns
    -------
    ``query`` (modified in place).
    """
    import pandas as pd
    from sklearn.neighbors import NearestNeighbors

    for what, a in (("query", query), ("reference", reference)):
        if use_rep not in a.obsm:
            msg = f"The {what} has no obsm[{use_rep!r}] (it has {list(a.obsm)}); map the query with map_query() first."
            raise PyscvibridgeError(msg)
    if labels_key not in reference.obs.columns:
        msg = f"labels_key {labels_key!r} is not a column of the reference's cell metadata."
        raise PyscvibridgeError(msg)
    ref_x, q_x = np.asarray(reference.obsm[use_rep]), np.asarray(query.obsm[use_rep])
    if ref_x.shape[1] != q_x.shape[1]:
        msg = f"obsm[{use_rep!r}] has {q_x.shape[1]} dimensions in the query and {ref_x.shape[1]} in the reference."
        raise PyscvibridgeError(msg)
    labels = reference.obs[labels_key].astype(str).to_numpy()
    k = min(n_neighbors, reference.n_obs)
    _, idx = NearestNeighbors(n_neighbors=k).fit(ref_x).kneighbors(q_x)
    classes, codes = np.unique(labels, return_inverse=True)
    votes = np.zeros((query.n_obs, len(classes)))
    np.add.at(votes, (np.repeat(np.arange(query.n_obs), k), codes[idx].ravel()), 1)
    best = votes.argmax(axis=1)
    query.obs[key_added] = pd.Categorical(classes[best], categories=classes)
    query.obs[f"{key_added}_fraction"] = votes[np.arange(query.n_obs), best] / k
    logger.info("added .obs[%r] and .obs[%r] (%d-NN vote)", key_added, f"{key_added}_fraction", k)
    return query
