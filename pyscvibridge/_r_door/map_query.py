"""``run_map_query``: what ``MapScVIQuery()`` calls; maps the object R handed over onto a saved model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .. import _conventions as conv
from .._checks import check_obs_key
from .._errors import PyscvibridgeError
from .._pipeline import OptionError
from ._handoff import Emit, ProgressCallback, answer, bind_result, r_kwargs, r_quote, read_object, sayer


def run_map_query(
    bridge,
    *,
    kind: str,
    assay: str | None,
    layer: str,
    model_dir: str,
    batch_key: str | None,
    max_epochs: int | None = None,
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str | list[int] = "auto",
    train_kwargs: dict[str, Any] | None = None,
    verbose: bool = True,
    emit: Emit | None = None,
) -> dict[str, Any]:
    """Map the R object ``<bridge>$object`` onto the saved reference model in ``model_dir``.

    Binds ``<bridge>$result``: the object with the reductions ``scVI`` and ``umap.scVI``
    (SCE: ``UMAP_scVI``), for a scANVI reference also ``scANVI`` and the ``scanvi_prediction`` /
    ``scanvi_probability`` columns, and the mapping's record in ``@misc$scVI`` / ``metadata()$scVI``
    (see :func:`pyscvibridge.map_query`). Arguments and answer as for
    :func:`~pyscvibridge._r_door.run_integrate`. ``train_kwargs`` go to the query model's
    ``train()``; the model options (layers, likelihood, ...) are the reference's and cannot change.
    """
    say = sayer(verbose, emit)
    params = {
        "max_epochs": None if max_epochs is None else int(max_epochs),
        "seed": int(seed),
        "accelerator": str(accelerator),
        "devices": devices,
        "train_kwargs": r_kwargs(train_kwargs),
    }
    return answer(
        lambda: _map(bridge, kind, assay, layer, str(model_dir), batch_key, params, say), verbose, say
    )


def _map(bridge, kind: str, assay, layer: str, model_dir: str, batch_key, params: dict, say: Emit) -> dict:
    from .. import convert
    from .._query import map_query

    started = time.perf_counter()
    if not (Path(model_dir) / "model.pt").is_file():
        msg = f"model_dir {r_quote(model_dir)} holds no saved model (model.pt). Save one with RunScVI(..., save_model = )."
        raise OptionError(msg, "model_dir")
    handed = read_object(bridge, kind=kind, assay=assay, layer=layer, say=say)
    adata = handed.adata
    if batch_key is None:
        batch_key = handed.split_column
        if batch_key is None:
            msg = "batch_key is required: name the cell-metadata column that holds the query's batch."
            raise OptionError(msg, "batch_key")
    try:
        check_obs_key(adata, batch_key, "batch_key", quote=r_quote)
    except PyscvibridgeError as e:
        raise OptionError(str(e), "batch_key") from None
    _drop_unused_levels(adata, [batch_key])
    say(f"Mapping {adata.n_obs} cells onto the reference model in {model_dir}")
    try:
        adata = map_query(
            adata,
            model_dir,
            batch_key=batch_key,
            layer=handed.counts_layer,
            progress=False,
            **{
                **params,
                "train_kwargs": {
                    **params["train_kwargs"],
                    "callbacks": [
                        *params["train_kwargs"].get("callbacks", []),
                        ProgressCallback(say, "query").callback(),
                    ],
                },
            },
        )
    except PyscvibridgeError as e:
        text = str(e)
        option = next((a for a in ("model_dir", "batch_key") if text.startswith(a)), "model_dir")
        raise OptionError(text, option) from e
    reductions = dict(conv.REDUCTIONS[kind])
    obs_columns: list[str] = []
    if conv.OBSM_SCANVI in adata.obsm:
        reductions[conv.OBSM_SCANVI] = conv.SCANVI_REDUCTIONS[kind][conv.OBSM_SCANVI]
        obs_columns = list(conv.SCANVI_COLUMNS)
    out = convert.add_results(
        handed.obj,
        adata,
        reductions=reductions,
        assay=handed.assay if kind == "seurat" else None,
        misc={"query": dict(adata.uns[conv.UNS_QUERY])},
        misc_key=conv.R_RECORD,
        obs_columns=obs_columns,
    )
    bind_result(handed, out)
    names = ", ".join(repr(v) for v in reductions.values())
    columns = f", the columns {', '.join(repr(c) for c in obs_columns)}" if obs_columns else ""
    say(f"Added the reductions {names}{columns} and the mapping record")
    return {
        "n_cells": int(adata.n_obs),
        "batch_key": batch_key,
        "total_seconds": time.perf_counter() - started,
    }


def _drop_unused_levels(adata, keys: list[str]) -> None:
    """Drop the unused categories of these obs columns (R factors keep them after subsetting)."""
    import pandas as pd

    for key in keys:
        col = adata.obs.get(key)
        if col is not None and isinstance(col.dtype, pd.CategoricalDtype):
            adata.obs[key] = col.cat.remove_unused_categories()
