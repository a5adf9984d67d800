"""``run_integrate``: what ``RunScVI()`` calls; the pipeline on the object R handed over."""

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
    bind_result,
    r_kwargs,
    r_quote,
    r_spelling,
    read_object,
    sayer,
)


def run_integrate(
    bridge,
    *,
    kind: str,
    assay: str | None,
    layer: str,
    batch_key: str | None,
    labels_key: str | None = None,
    categorical_covariate_keys: list[str] | None = None,
    continuous_covariate_keys: list[str] | None = None,
    preset: str | None = None,
    n_top_genes: int = conv.N_TOP_GENES,
    n_latent: int = conv.N_LATENT,
    max_epochs: int | None = None,
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str | list[int] = "auto",
    scanvi: bool = False,
    unlabeled_category: str = conv.UNLABELED_CATEGORY,
    scanvi_epochs: int | None = None,
    save_model: str | None = None,
    overwrite: bool = False,
    corrected_genes: list[str] | None = None,
    transform_batch: list[str] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    train_kwargs: dict[str, Any] | None = None,
    renamed: dict[str, str] | None = None,
    verbose: bool = True,
    emit: Emit | None = None,
) -> dict[str, Any]:
    """Integrate the R object ``<bridge>$object`` and bind it, with the results added, as ``<bridge>$result``.

    Parameters
    ----------
    bridge
        The name under which the R package keeps the hand-off environment (or that environment);
        it holds ``object`` (a Seurat object or a SingleCellExperiment).
    kind
        ``"seurat"`` or ``"sce"``.
    assay
        Seurat: the assay (``None``: the active one). SCE: the assay holding raw counts.
    layer
        Seurat: the layer / slot holding raw counts (``"counts"``, ``"data"``, ...). SCE: the assay
        name again.
    batch_key
        Cell-metadata column with the batch; ``None`` for a Seurat v5 object with split layers
        integrates over the split.
    labels_key, categorical_covariate_keys, continuous_covariate_keys, preset, n_top_genes, n_latent, max_epochs, seed, accelerator, devices, scanvi, unlabeled_category, scanvi_epochs, save_model, corrected_genes, transform_batch, model_kwargs, train_kwargs
        The :class:`pyscvibridge._pipeline.Spec` options; ``overwrite`` is its ``overwrite_model``.
        R's whole numbers in ``model_kwargs`` / ``train_kwargs`` become integers.
    renamed
        The R name of an option where it is not the :class:`~pyscvibridge._pipeline.Spec` field's
        (SCE: ``{"layer": "assay"}``), for messages.
    verbose
        Report the steps and the training progress through ``emit``; when false, nothing is printed.
    emit
        An R function taking one string (R's ``message``): how text reaches the R console.

    Returns
    -------
    ``{"ok": True, "info": {...}, "warnings": [...]}``, or ``{"ok": False, "error": message,
    "argument": the offending option or None, "warnings": [...]}`` for a bad input.
    """
    say = sayer(verbose, emit)
    spec = Spec(
        batch_key=batch_key,
        labels_key=labels_key,
        categorical_covariate_keys=[str(k) for k in categorical_covariate_keys or []],
        continuous_covariate_keys=[str(k) for k in continuous_covariate_keys or []],
        preset=preset,
        n_top_genes=int(n_top_genes),
        n_latent=int(n_latent),
        max_epochs=None if max_epochs is None else int(max_epochs),
        seed=int(seed),
        accelerator=str(accelerator),
        devices=devices,
        scanvi=bool(scanvi),
        unlabeled_category=str(unlabeled_category),
        scanvi_epochs=None if scanvi_epochs is None else int(scanvi_epochs),
        save_model=None if save_model is None else str(save_model),
        overwrite_model=bool(overwrite),
        corrected_genes=None
        if corrected_genes is None
        else list(dict.fromkeys(str(g) for g in corrected_genes)),
        transform_batch=None if transform_batch is None else [str(b) for b in transform_batch],
        model_kwargs=r_kwargs(model_kwargs),
        train_kwargs=r_kwargs(train_kwargs),
    )
    return answer(
        lambda: _integrate(bridge, kind, assay, layer, spec, dict(renamed or {}), say), verbose, say
    )


def _integrate(
    bridge, kind: str, assay: str | None, layer: str, spec: Spec, renamed: dict, say: Emit
) -> dict:
    started = time.perf_counter()
    handed = read_object(bridge, kind=kind, assay=assay, layer=layer, say=say)
    adata = handed.adata
    if (problem := counts_problem(adata.layers[handed.counts_layer])) is not None:
        where = f"layer {layer!r} of assay {handed.assay!r}" if kind == "seurat" else f"assay {layer!r}"
        hint = (
            "layer = 'counts' (the raw counts, not 'data' or 'scale.data')"
            if kind == "seurat"
            else "assay = 'counts'"
        )
        msg = f"The {where} must hold raw counts (non-negative integers), but {problem}. Use {hint}."
        raise OptionError(msg, "layer")
    spec.layer = handed.counts_layer
    if spec.batch_key is None and handed.split_column is not None:
        spec.batch_key = handed.split_column
        say(
            f"Batches: the {adata.obs[spec.batch_key].nunique()} split layers (obs column {spec.batch_key!r})"
        )
    spell = r_spelling(renamed)
    progress = {name: ProgressCallback(say, name) for name in ("scVI", "scANVI")}
    t0 = time.perf_counter()
    result = run(
        adata,
        spec,
        progress=False,
        callbacks=lambda name: [progress[name].callback()],
        say=say,
        spell=spell,
        quote=r_quote,
    )
    adata, record = result.adata, result.record
    integrate_s = time.perf_counter() - t0

    reductions = dict(conv.REDUCTIONS[kind])
    obs_columns: list[str] = []
    if spec.scanvi:
        reductions.update(conv.SCANVI_REDUCTIONS[kind])
        obs_columns = list(conv.SCANVI_COLUMNS)
    record["bridge"] = {
        "object": handed.what,
        "assay": handed.assay,
        "layer": layer,
        "batch_key": spec.batch_key,
        "read_seconds": handed.read_seconds,
        "integrate_seconds": integrate_s,
    }
    t0 = time.perf_counter()
    from .. import convert

    out = convert.add_results(
        handed.obj,
        adata,
        reductions=reductions,
        assay=handed.assay if kind == "seurat" else None,
        misc=record,
        misc_key=conv.R_RECORD,
        obs_columns=obs_columns,
        expression=result.expression,
        expression_name=conv.R_EXPRESSION,
    )
    bind_result(handed, out)
    write_s = time.perf_counter() - t0
    names = ", ".join(repr(v) for v in reductions.values())
    columns = f", the columns {', '.join(repr(c) for c in obs_columns)}" if obs_columns else ""
    if result.expression is not None:
        columns += (
            f", the assay {conv.R_EXPRESSION!r}"
            if kind == "seurat"
            else f", the altExp {conv.R_EXPRESSION!r}"
        )
    say(
        f"Added the reductions {names}{columns} and the provenance "
        f"({conv.R_RECORD!r} in {'@misc' if kind == 'seurat' else 'metadata()'})"
    )
    return {
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "batch_key": spec.batch_key,
        "epochs": int(record.get("epochs_run", 0)),
        "read_seconds": handed.read_seconds,
        "integrate_seconds": integrate_s,
        "write_seconds": write_s,
        "total_seconds": time.perf_counter() - started,
    }
