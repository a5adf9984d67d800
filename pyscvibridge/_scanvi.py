"""scANVI: continue from a trained scVI model with known cell labels, and predict the unknown ones."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from ._conventions import UNS_SCANVI
from ._errors import PyscvibridgeError
from ._jit_cache import numba_steps

if TYPE_CHECKING:
    import anndata as ad
    import pandas as pd
    import scvi

logger = logging.getLogger("pyscvibridge")

UNS_KEY = UNS_SCANVI


def train_scanvi(
    adata: ad.AnnData,
    model: scvi.model.SCVI,
    *,
    labels_key: str,
    unlabeled_category: str = "Unknown",
    max_epochs: int | None = None,
    n_samples_per_label: int | None = None,
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str = "auto",
    progress: bool = True,
    umap: bool = True,
    n_neighbors: int = 15,
    key_added: str = "X_scANVI",
    prediction_key: str = "scanvi_prediction",
    probability_key: str = "scanvi_probability",
    model_kwargs: dict[str, Any] | None = None,
    train_kwargs: dict[str, Any] | None = None,
    return_model: bool = True,
) -> ad.AnnData | tuple[ad.AnnData, scvi.model.SCANVI]:
    """Continue a trained scVI model as scANVI, using known cell labels, and predict every cell's label.

    scANVI (:class:`scvi.model.SCANVI`) starts from the scVI model's weights
    (:meth:`~scvi.model.SCANVI.from_scvi_model`) and adds a label classifier. Cells whose label is
    ``unlabeled_category`` or missing (NA) are unlabeled: scANVI predicts them (and re-predicts the
    labelled ones, which shows how well the labels are separated).

    Parameters
    ----------
    adata
        The AnnData the scVI model was trained on, as :func:`pyscvibridge.integrate` returned it (same cells;
        the model may hold only the highly variable genes).
    model
        The trained :class:`scvi.model.SCVI` (``integrate(..., return_model=True)``).
    labels_key
        ``obs`` column with the known labels.
    unlabeled_category
        Label value meaning "unknown"; NA labels are treated the same way.
    max_epochs
        scANVI training epochs; default scvi-tools' rule for a pretrained model (between 2 and 10).
    n_samples_per_label
        Labelled cells per label in each classifier minibatch (scvi-tools default when None).
    seed
        Seed for scvi-tools (torch, numpy) and the UMAP.
    accelerator, devices
        Passed to Lightning.
    progress
        Show scvi-tools' training progress bar.
    umap
        Also compute neighbours and a UMAP on the scANVI latent, in ``obsm["X_umap_scANVI"]``.
    n_neighbors
        Neighbours for that UMAP.
    key_added, prediction_key, probability_key
        Where the latent (``obsm``), the predicted label and its probability (``obs``) go.
    model_kwargs, train_kwargs
        Extra arguments for :meth:`~scvi.model.SCANVI.from_scvi_model` and :meth:`~scvi.model.SCANVI.train`.
    return_model
        Also return the trained :class:`scvi.model.SCANVI` (save it for query mapping).

    Returns
    -------
    ``adata`` (modified in place) with ``obsm[key_added]`` (cells x n_latent), ``obs[prediction_key]``
    (categorical: the labels seen in training), ``obs[probability_key]`` (the classifier's probability of
    that label), optionally ``obsm["X_umap_scANVI"]``, and ``uns["scanvi"]`` (parameters, label counts,
    agreement with the known labels, training history); and the model when ``return_model``.
    """
    import anndata as ad
    import pandas as pd
    import scvi

    if not isinstance(model, scvi.model.SCVI):
        msg = (
            f"train_scanvi() continues a trained scvi.model.SCVI, not a {type(model).__name__}. "
            "Get one with pyscvibridge.integrate(adata, batch_key, return_model=True)."
        )
        raise PyscvibridgeError(msg)
    ref = model.adata
    _check_same_cells(adata, ref)
    if labels_key not in adata.obs.columns:
        cols = ", ".join(repr(c) for c in adata.obs.columns) or "none"
        msg = f"labels_key {labels_key!r} is not a column of the cell metadata. Available columns: {cols}."
        raise PyscvibridgeError(msg)
    setup = model.adata_manager.registry["setup_args"]
    used = {setup.get("batch_key"), *(setup.get("categorical_covariate_keys") or [])}
    if labels_key in used:
        msg = (
            f"labels_key {labels_key!r} is also a batch or covariate key of the scVI model; "
            "labels must be a separate column (e.g. the cell type)."
        )
        raise PyscvibridgeError(msg)

    labels = _labels(adata.obs[labels_key].reindex(ref.obs_names), unlabeled_category)
    known = labels != unlabeled_category
    if not known.any():
        msg = (
            f"labels_key {labels_key!r} has no known labels: every cell is {unlabeled_category!r} or NA. "
            "scANVI needs some labelled cells."
        )
        raise PyscvibridgeError(msg)
    classes = sorted(set(labels[known]))

    # A light view of the model's AnnData (same count matrix, no copy) with the labels added, so the scVI
    # model's own registration is left as it was.
    obs = ref.obs[[c for c in ref.obs.columns if not str(c).startswith("_scvi")]].copy()
    obs[labels_key] = pd.Categorical(labels, categories=[*classes, unlabeled_category])
    sc_ad = ad.AnnData(X=ref.X, obs=obs, var=ref.var[[]].copy())

    scvi.settings.seed = seed
    scanvi = scvi.model.SCANVI.from_scvi_model(
        model,
        unlabeled_category=unlabeled_category,
        labels_key=labels_key,
        adata=sc_ad,
        **(model_kwargs or {}),
    )
    kwargs: dict[str, Any] = {"enable_progress_bar": progress, "check_val_every_n_epoch": 1}
    if n_samples_per_label is not None:
        kwargs["n_samples_per_label"] = n_samples_per_label
    kwargs.update(train_kwargs or {})
    logger.info(
        "training scANVI from the scVI model (%d labelled cells in %d classes, %d unlabelled)",
        int(known.sum()),
        len(classes),
        int((~known).sum()),
    )
    scanvi.train(max_epochs=max_epochs, accelerator=accelerator, devices=devices, **kwargs)

    order = adata.obs_names
    latent = pd.DataFrame(scanvi.get_latent_representation(), index=sc_ad.obs_names).loc[order]
    adata.obsm[key_added] = latent.to_numpy(dtype=np.float32)
    soft = scanvi.predict(soft=True)
    soft.index = sc_ad.obs_names
    soft = soft.loc[order, [c for c in soft.columns if c != unlabeled_category]]
    best = soft.to_numpy().argmax(axis=1)
    adata.obs[prediction_key] = pd.Categorical(
        np.asarray(soft.columns)[best], categories=list(soft.columns)
    ).astype("category")
    adata.obs[probability_key] = soft.to_numpy()[np.arange(len(best)), best].astype(np.float64)
    logger.info("added .obsm[%r], .obs[%r], .obs[%r]", key_added, prediction_key, probability_key)
    if umap:
        _umap(adata, key_added, n_neighbors=n_neighbors, seed=seed)

    labels_here = pd.Series(labels, index=ref.obs_names).loc[order].to_numpy()
    known_here = labels_here != unlabeled_category
    agreement = float(
        np.mean(adata.obs[prediction_key].astype(str).to_numpy()[known_here] == labels_here[known_here])
    )
    history = {
        key: scanvi.history[key].iloc[:, 0].to_numpy(dtype=np.float64)
        for key in ("elbo_train", "elbo_validation", "train_classification_loss")
        if key in scanvi.history
    }
    adata.uns[UNS_KEY] = {
        "params": {
            "labels_key": labels_key,
            "unlabeled_category": unlabeled_category,
            "max_epochs": -1 if max_epochs is None else int(max_epochs),
            "seed": seed,
            "key_added": key_added,
            "prediction_key": prediction_key,
            "probability_key": probability_key,
        },
        "classes": classes,
        "n_labelled": int(known.sum()),
        "n_unlabelled": int((~known).sum()),
        "labelled_agreement": agreement,
        "epochs_run": len(history.get("elbo_train", ())),
        "history": history,
    }
    logger.info(
        "added .uns[%r] (prediction agrees with %.1f%% of the known labels)", UNS_KEY, 100 * agreement
    )
    return (adata, scanvi) if return_model else adata


def _labels(col: pd.Series, unlabeled_category: str) -> np.ndarray:
    """Labels as strings, NA -> ``unlabeled_category``."""
    out = col.astype(object).where(col.notna(), unlabeled_category)
    return out.astype(str).to_numpy()


def _check_same_cells(adata: ad.AnnData, ref: ad.AnnData) -> None:
    if adata.n_obs != ref.n_obs or not adata.obs_names.isin(ref.obs_names).all():
        missing = adata.obs_names[~adata.obs_names.isin(ref.obs_names)][:3].tolist()
        msg = (
            f"The AnnData ({adata.n_obs} cells) is not the one the model was trained on "
            f"({ref.n_obs} cells; e.g. cells {missing} are not in the model). Pass the AnnData that "
            "integrate() returned with this model, or map new cells with pyscvibridge.map_query()."
        )
        raise PyscvibridgeError(msg)


def _umap(adata: ad.AnnData, rep: str, *, n_neighbors: int, seed: int) -> None:
    import scanpy as sc

    name = rep[2:] if rep.startswith("X_") else rep
    with numba_steps():
        sc.pp.neighbors(adata, n_neighbors=n_neighbors, use_rep=rep, key_added=name, random_state=seed)
        sc.tl.umap(adata, neighbors_key=name, key_added=f"X_umap_{name}", random_state=seed)
    logger.info("added .obsm['X_umap_%s'] (UMAP of %s)", name, rep)
