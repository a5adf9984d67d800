"""``run_integrate_layers``: what Seurat 5's ``IntegrateLayers(method = scVIIntegration)`` calls.

``IntegrateLayers()`` hands its method one assay (not the Seurat object), the names of its
normalised layers and the features to integrate on. ``scVIIntegration()`` (``R/integrate_layers.R``)
checks its arguments' types and hands over, as ``object`` in the hand-off environment, an R list with

- ``assay``: the assay object itself (v5 ``Assay5``, v4 ``Assay`` or ``SCTAssay``);
- ``groups``: each cell's batch, in the assay's cell order, or ``NULL`` to take the batches from
  the split counts layers (``counts.<batch>``);
- ``covariates``: ``NULL`` or a data frame (the assay's cells as row names, in order) of further
  covariates, categorical or continuous;
- ``labels``: ``NULL`` or a character vector of known cell labels (``NA`` = unknown), for scANVI;
- ``features``: ``NULL`` or the genes to train on.

:func:`run_integrate_layers` reads them with rpy2 (the counts are a view of R's memory: no
``JoinLayers()``, no copy), runs :func:`pyscvibridge._pipeline.run` (which checks every value,
naming the R argument), and binds ``result`` there: an R list with ``latent`` (cells x
``n_latent``, rows named by cell), for scANVI also ``scanvi`` and ``predictions`` (a data frame with
``scanvi_prediction`` and ``scanvi_probability``), and ``record`` (parameters, versions, training).
R builds the ``DimReduc`` objects from them.
"""

from __future__ import annotations

import time
from typing import Any

from .. import _conventions as conv
from .._checks import counts_problem
from .._pipeline import OptionError, Spec, run
from ._handoff import (
    Emit,
    ProgressCallback,
    answer,
    bridge_env,
    r_kwargs,
    r_quote,
    r_spelling,
    sayer,
)

#: The obs columns the door adds for the batch and the labels (R refuses covariates so named).
BATCH_KEY = "batch"
LABELS_KEY = "labels"


def run_integrate_layers(
    bridge,
    *,
    assay: str,
    categorical_covariate_keys: list[str] | None = None,
    continuous_covariate_keys: list[str] | None = None,
    n_top_genes: int = conv.N_TOP_GENES,
    n_latent: int = conv.N_LATENT,
    model_kwargs: dict[str, Any] | None = None,
    train_kwargs: dict[str, Any] | None = None,
    preset: str | None = None,
    max_epochs: int | None = None,
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str | list[int] = "auto",
    unlabeled_category: str = conv.UNLABELED_CATEGORY,
    scanvi_epochs: int | None = None,
    groups_from: str = "groups",
    renamed: dict[str, str] | None = None,
    verbose: bool = True,
    emit: Emit | None = None,
) -> dict[str, Any]:
    """Integrate the assay in ``<bridge>$object`` and bind the latent as ``<bridge>$result`` (see the module docstring).

    Parameters
    ----------
    bridge
        The name under which the R package keeps the hand-off environment (or that environment).
    assay
        The assay's name in its Seurat object (for messages and the record).
    categorical_covariate_keys, continuous_covariate_keys
        Columns of ``object$covariates`` scVI conditions on besides the batch.
    n_top_genes
        Highly variable genes to train on when ``object$features`` is ``NULL``.
    n_latent, model_kwargs, train_kwargs, preset, max_epochs, seed, accelerator, devices
        The :class:`~pyscvibridge._pipeline.Spec` options; ``model_kwargs`` reach
        :class:`scvi.model.SCVI` (``n_layers``, ``gene_likelihood``, ...).
    unlabeled_category, scanvi_epochs
        For scANVI (when ``object$labels`` is given): the label meaning unknown, and its epochs.
    groups_from
        Where R took ``object$groups`` from (``"groups"``, ``"the SCT models"``), for messages and the record.
    renamed
        The R argument of a :class:`~pyscvibridge._pipeline.Spec` option where it is not the
        field's name (``{"n_layers": "nlayers", "genes": "features"}``), for messages.
    verbose, emit
        As for :func:`pyscvibridge._r_door.run_integrate`.

    Returns
    -------
    As :func:`pyscvibridge._r_door.run_integrate`, with ``argument`` spelled as ``renamed`` says;
    ``info`` has ``n_cells``, ``n_genes``,
    ``n_batches``, ``epochs`` and ``total_seconds``.
    """
    say = sayer(verbose, emit)
    spec = Spec(
        batch_key=BATCH_KEY,
        layer="counts",
        categorical_covariate_keys=[str(k) for k in categorical_covariate_keys or []],
        continuous_covariate_keys=[str(k) for k in continuous_covariate_keys or []],
        n_top_genes=int(n_top_genes),
        n_latent=int(n_latent),
        model_kwargs=r_kwargs(model_kwargs),
        train_kwargs=r_kwargs(train_kwargs),
        preset=preset,
        max_epochs=None if max_epochs is None else int(max_epochs),
        seed=int(seed),
        accelerator=str(accelerator),
        devices=devices,
        unlabeled_category=str(unlabeled_category),
        scanvi_epochs=None if scanvi_epochs is None else int(scanvi_epochs),
    )
    spelled = {"genes": "features", "scanvi": "labels", "labels_key": "labels", **dict(renamed or {})}
    said = answer(
        lambda: _integrate_assay(bridge, str(assay), spec, str(groups_from), spelled, say), verbose, say
    )
    if said.get("argument") is not None:  # the R argument to blame, as scVIIntegration() names it
        said["argument"] = spelled.get(said["argument"], said["argument"])
    return said


def _integrate_assay(bridge, assay: str, spec: Spec, groups_from: str, renamed: dict, say: Emit) -> dict:
    import pandas as pd

    from .. import convert
    from ..convert import _frames, _r, _sparse
    from ..convert._seurat import from_assay

    started = time.perf_counter()
    env = bridge_env(bridge)
    parts = _r.as_dict(_r.ri().baseenv["get"](_r.r_str(["object"]), envir=env))
    assay_obj = parts["assay"]
    assay_class = _r.rclass(assay_obj)[0]
    say(f"Reading the counts of assay {assay!r} ({assay_class}) from R's memory")
    adata = from_assay(assay_obj, name=assay)
    read_s = time.perf_counter() - started
    details = adata.uns[conv.UNS_CONVERSION]["details"]
    if (problem := counts_problem(adata.layers["counts"])) is not None:
        msg = (
            f"The counts of assay {r_quote(assay)} must be raw counts (non-negative integers), but {problem}."
        )
        raise OptionError(msg, "object")

    n_cells = adata.n_obs
    if not _r.is_null(parts.get("groups")):
        batches, _ = _frames.column_to_py(parts["groups"])  # a factor keeps its levels' order
        where = groups_from
    elif details.get("split_column"):
        batches = adata.obs[details["split_column"]].array  # categories in the layers' order
        where = "the split layers"
    else:
        msg = (
            f"assay {r_quote(assay)} is not split and no groups were given: nothing says which batch each "
            "cell is in. Split it (obj[['RNA']] <- split(obj[['RNA']], f = obj$batch)) or pass groups = obj$batch."
        )
        raise OptionError(msg, "groups")
    if len(batches) != n_cells:
        msg = f"groups has {len(batches)} values but assay {r_quote(assay)} has {n_cells} cells."
        raise OptionError(msg, "groups")
    adata.obs[BATCH_KEY] = batches
    n_batches = adata.obs[BATCH_KEY].nunique()
    say(f"Batches: {n_batches} from {where}")

    if not _r.is_null(parts.get("covariates")):
        cov = _frames.r_data_frame(parts["covariates"])
        for key in cov.columns:
            adata.obs[key] = cov[key].to_numpy()
    if not _r.is_null(parts.get("labels")):
        labels = pd.Series(_r.strs(parts["labels"]), dtype=object).fillna(spec.unlabeled_category)
        adata.obs[LABELS_KEY] = pd.Categorical(labels.to_numpy())
        spec.labels_key, spec.scanvi = LABELS_KEY, True
    if not _r.is_null(parts.get("features")):
        spec.genes = list(dict.fromkeys(_r.strs(parts["features"])))

    progress = {name: ProgressCallback(say, name) for name in ("scVI", "scANVI")}
    t0 = time.perf_counter()
    result = run(
        adata,
        spec,
        progress=False,
        callbacks=lambda name: [progress[name].callback()],
        say=say,
        spell=r_spelling(renamed),
        quote=r_quote,
    )
    adata, record = result.adata, result.record
    integrate_s = time.perf_counter() - t0

    record["bridge"] = {
        "assay": assay,
        "assay_class": assay_class,
        "batches": where,
        "read_seconds": read_s,
        "integrate_seconds": integrate_s,
    }
    names = _r.r_str([str(c) for c in adata.obs_names])
    out = {"latent": _matrix(_sparse, adata.obsm[conv.OBSM_SCVI], names)}
    if spec.scanvi:
        out["scanvi"] = _matrix(_sparse, adata.obsm[conv.OBSM_SCANVI], names)
        frame = adata.obs[list(conv.SCANVI_COLUMNS)]
        out["predictions"] = _frames.pandas_to_r_data_frame(frame, row_names=names)
    from ..convert._values import to_r_value

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

    return _sparse.r_matrix(np.asarray(values, dtype=np.float64), rownames=rownames, colnames=None)
