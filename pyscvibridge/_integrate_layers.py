"""The door for Seurat 5's ``IntegrateLayers(method = pyscvibridge::scVIIntegration)``.

``IntegrateLayers()`` hands its method one assay (not the Seurat object), the names of its
normalised layers and the features to integrate on. ``scVIIntegration()`` (``R/integrate_layers.R``)
checks its arguments and binds, in the hand-off environment ``<bridge>``, ``object``: an R list with

- ``assay``: the assay object itself (v5 ``Assay5``, v4 ``Assay`` or ``SCTAssay``);
- ``groups``: a character vector with each cell's batch, in the assay's cell order, or ``NULL`` to
  take the batches from the split counts layers (``counts.<batch>``);
- ``covariates``: ``NULL`` or a data frame (the assay's cells as row names, in order) of further
  covariates, categorical or continuous;
- ``labels``: ``NULL`` or a character vector of known cell labels (``NA`` = unknown), for scANVI;
- ``features``: ``NULL`` or the genes to train on.

:func:`run_integrate_layers` reads them with rpy2 (the counts are a view of R's memory: no
``JoinLayers()``, no copy), trains, and binds ``result`` there: an R list with ``latent`` (cells x
``n_latent``, rows named by cell), for scANVI also ``scanvi`` and ``predictions`` (a data frame with
``scanvi_prediction`` and ``scanvi_probability``), and ``record`` (parameters, versions, training).
R builds the ``DimReduc`` objects from them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ._errors import PyscvibridgeError
from ._r_door import Emit, _bridge_env, _captured, _ProgressCallback, _PyscvibridgeArgError, _silent

BATCH_KEY = "batch"
LABELS_KEY = "labels"


def run_integrate_layers(
    bridge: str,
    *,
    assay: str,
    categorical_covariate_keys: list[str] | None = None,
    continuous_covariate_keys: list[str] | None = None,
    n_top_genes: int = 2000,
    n_latent: int = 10,
    model_kwargs: dict[str, Any] | None = None,
    preset: str | None = None,
    max_epochs: int | None = None,
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str | list[int] = "auto",
    unlabeled_category: str = "Unknown",
    scanvi_epochs: int | None = None,
    groups_from: str = "groups",
    verbose: bool = True,
    emit: Emit | None = None,
) -> dict[str, Any]:
    """Integrate the assay in ``<bridge>$object`` and bind the latent as ``<bridge>$result`` (see the module docstring).

    Parameters
    ----------
    bridge
        Name of the R environment in R's global environment that holds ``object``.
    assay
        The assay's name in its Seurat object (for messages and the record).
    categorical_covariate_keys, continuous_covariate_keys
        Columns of ``object$covariates`` scVI conditions on besides the batch.
    n_top_genes
        Highly variable genes to train on when ``object$features`` is ``NULL``.
    n_latent, model_kwargs, preset, max_epochs, seed, accelerator, devices
        As for :func:`pyscvibridge.integrate`; ``model_kwargs`` reach :class:`scvi.model.SCVI`
        (``n_layers``, ``gene_likelihood``, ...).
    unlabeled_category, scanvi_epochs
        For scANVI (when ``object$labels`` is given): the label meaning unknown, and its epochs.
    groups_from
        Where R took ``object$groups`` from (``"groups"``, ``"the SCT models"``), for messages and the record.
    verbose, emit
        As for :func:`pyscvibridge._r_door.run_integrate`.
    """
    say: Emit = emit if (verbose and emit is not None) else _silent
    with _captured(verbose, say) as caught:
        try:
            info = _integrate_assay(
                bridge,
                assay=str(assay),
                categorical_covariate_keys=[str(k) for k in categorical_covariate_keys or []],
                continuous_covariate_keys=[str(k) for k in continuous_covariate_keys or []],
                n_top_genes=int(n_top_genes),
                n_latent=int(n_latent),
                model_kwargs=dict(model_kwargs or {}),
                preset=preset,
                max_epochs=None if max_epochs is None else int(max_epochs),
                seed=int(seed),
                accelerator=str(accelerator),
                devices=devices,
                unlabeled_category=str(unlabeled_category),
                scanvi_epochs=None if scanvi_epochs is None else int(scanvi_epochs),
                groups_from=str(groups_from),
                say=say,
            )
        except PyscvibridgeError as e:
            return {
                "ok": False,
                "error": str(e),
                "argument": getattr(e, "argument", None),
                "warnings": caught,
            }
    return {"ok": True, "info": info, "warnings": caught}


def _integrate_assay(
    bridge: str,
    *,
    assay: str,
    categorical_covariate_keys: list[str],
    continuous_covariate_keys: list[str],
    n_top_genes: int,
    n_latent: int,
    model_kwargs: dict[str, Any],
    preset: str | None,
    max_epochs: int | None,
    seed: int,
    accelerator: str,
    devices: Any,
    unlabeled_category: str,
    scanvi_epochs: int | None,
    groups_from: str,
    say: Emit,
) -> dict[str, Any]:
    import pandas as pd

    from . import convert
    from ._checks import counts_problem
    from .convert import _frames, _r, _sparse
    from .convert._seurat import from_assay

    started = time.perf_counter()
    env = _bridge_env(bridge)
    parts = _r.as_dict(env["object"])
    assay_obj = parts["assay"]
    assay_class = _r.rclass(assay_obj)[0]
    say(f"Reading the counts of assay {assay!r} ({assay_class}) from R's memory")
    adata = from_assay(assay_obj, name=assay)
    read_s = time.perf_counter() - started
    details = adata.uns["conversion"]["details"]
    if (problem := counts_problem(adata.layers["counts"])) is not None:
        msg = f"The counts of assay {assay!r} must be raw counts (non-negative integers), but {problem}."
        raise _PyscvibridgeArgError(msg, "object")

    cells = pd.Index(adata.obs_names)
    if not _r.is_null(parts.get("groups")):
        batches, _ = _frames.column_to_py(parts["groups"])  # a factor keeps its levels' order
        where = groups_from
    elif details.get("split_column"):
        batches = adata.obs[details["split_column"]].array  # categories in the layers' order
        where = "the split layers"
    else:
        msg = (
            f"assay {assay!r} is not split and no groups were given: nothing says which batch each cell is in. "
            "Split it (obj[['RNA']] <- split(obj[['RNA']], f = obj$batch)) or pass groups = obj$batch."
        )
        raise _PyscvibridgeArgError(msg, "groups")
    if len(batches) != len(cells):
        msg = f"groups has {len(batches)} values but assay {assay!r} has {len(cells)} cells."
        raise _PyscvibridgeArgError(msg, "groups")
    adata.obs[BATCH_KEY] = batches
    n_batches = adata.obs[BATCH_KEY].nunique()
    say(f"Batches: {n_batches} from {where}")

    if not _r.is_null(parts.get("covariates")):
        cov = _frames.r_data_frame(parts["covariates"])
        for key in cov.columns:
            adata.obs[key] = cov[key].to_numpy()
    labels_key = None
    if not _r.is_null(parts.get("labels")):
        labels = pd.Series(_r.strs(parts["labels"]), dtype=object).fillna(unlabeled_category)
        adata.obs[LABELS_KEY] = pd.Categorical(labels.to_numpy())
        labels_key = LABELS_KEY

    genes = None
    if not _r.is_null(parts.get("features")):
        genes = _r.strs(parts["features"])
        missing = [g for g in genes if g not in set(adata.var_names)]
        if missing:
            msg = (
                f"{len(missing)} of the {len(genes)} features are not in the counts of assay {assay!r}: "
                f"{', '.join(map(repr, missing[:5]))}."
            )
            raise _PyscvibridgeArgError(msg, "features")
    say(
        f"Integrating {adata.n_obs} cells over {n_batches} batches on "
        + (f"{len(genes)} given features" if genes is not None else f"{n_top_genes} highly variable genes")
    )
    t0 = time.perf_counter()
    adata, _model = _train(
        adata,
        batch_key=BATCH_KEY,
        labels_key=labels_key,
        layer="counts",
        categorical_covariate_keys=categorical_covariate_keys,
        continuous_covariate_keys=continuous_covariate_keys,
        n_top_genes=n_top_genes,
        genes=genes,
        n_latent=n_latent,
        preset=preset,
        max_epochs=max_epochs,
        seed=seed,
        accelerator=accelerator,
        devices=devices,
        model_kwargs=model_kwargs,
        train_kwargs={"callbacks": [_ProgressCallback(say).callback()]},
        scanvi=labels_key is not None,
        unlabeled_category=unlabeled_category,
        scanvi_epochs=scanvi_epochs,
        scanvi_train_kwargs={"callbacks": [_ProgressCallback(say, "scANVI").callback()]},
    )
    integrate_s = time.perf_counter() - t0

    from ._workflow import UNS_KEY

    record = dict(adata.uns[UNS_KEY])
    record["model_kwargs"] = dict(model_kwargs)
    record["bridge"] = {
        "assay": assay,
        "assay_class": assay_class,
        "batches": where,
        "read_seconds": read_s,
        "integrate_seconds": integrate_s,
    }
    names = _r.r_str([str(c) for c in cells])
    out = {"latent": _matrix(_sparse, adata.obsm["X_scVI"], names)}
    if labels_key is not None:
        from ._scanvi import UNS_KEY as SCANVI_KEY

        record["scanvi"] = dict(adata.uns[SCANVI_KEY])
        out["scanvi"] = _matrix(_sparse, adata.obsm["X_scANVI"], names)
        frame = adata.obs[["scanvi_prediction", "scanvi_probability"]]
        out["predictions"] = _frames.pandas_to_r_data_frame(frame, row_names=names)
    from .convert._values import to_r_value

    out["record"] = to_r_value(record, "record")
    convert.assign("result", _r.named_list(out), envir=env)
    return {
        "n_cells": int(adata.n_obs),
        "n_genes": int(record.get("n_hvg", 0)),
        "n_batches": int(n_batches),
        "epochs": int(record.get("epochs_run", 0)),
        "total_seconds": time.perf_counter() - started,
    }


def _matrix(_sparse, values, rownames):
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    return _sparse.r_matrix(values, rownames=rownames, colnames=None)


def _train(
    adata,
    *,
    batch_key: str,
    labels_key: str | None,
    layer: str,
    categorical_covariate_keys: Sequence[str],
    continuous_covariate_keys: Sequence[str],
    n_top_genes: int,
    genes: Sequence[str] | None,
    n_latent: int,
    preset: str | None,
    max_epochs: int | None,
    seed: int,
    accelerator: str,
    devices: Any,
    model_kwargs: dict[str, Any],
    train_kwargs: dict[str, Any],
    scanvi: bool,
    unlabeled_category: str,
    scanvi_epochs: int | None,
    scanvi_train_kwargs: dict[str, Any],
):
    """scVI (then scANVI when asked) on ``adata``: the one place this door trains.

    Its arguments are the fields of the pipeline's specification (batch_key, labels_key, layer,
    covariate keys, n_top_genes, genes, n_latent, preset, max_epochs, seed, accelerator, devices,
    model_kwargs, train_kwargs, scanvi...), so that it can be replaced by one call of the shared pipeline.
    """
    from ._workflow import integrate

    optional = {"preset": preset} if preset is not None else {}
    adata, model = integrate(
        adata,
        batch_key,
        labels_key=labels_key,
        categorical_covariate_keys=list(categorical_covariate_keys) or None,
        continuous_covariate_keys=list(continuous_covariate_keys) or None,
        layer=layer,
        n_top_genes=n_top_genes,
        genes=genes,
        n_latent=n_latent,
        max_epochs=max_epochs,
        seed=seed,
        accelerator=accelerator,
        devices=devices,
        progress=False,
        model_kwargs=model_kwargs,
        train_kwargs=train_kwargs,
        return_model=True,
        **optional,
    )
    if scanvi:
        from ._scanvi import train_scanvi

        adata, model = train_scanvi(
            adata,
            model,
            labels_key=labels_key,
            unlabeled_category=unlabeled_category,
            max_epochs=scanvi_epochs,
            seed=seed,
            accelerator=accelerator,
            devices=devices,
            progress=False,
            umap=False,
            train_kwargs=scanvi_train_kwargs,
        )
    return adata, model
