"""The entry points the R package calls through reticulate (``RunScVI()`` in ``R/``).

reticulate carries only names and plain values here (Debian's reticulate cannot convert NumPy 2
arrays). R binds an environment in its global environment under a unique name, with the object in
it as ``object``; these functions read it with rpy2 from the same R session, convert it with
:mod:`pyscvibridge.convert` (a view of R's memory), run the workflow, and bind the R object with the
results added as ``result`` in that environment. Nothing is written to disk and no count matrix goes
back to R.

Every function returns a dict of plain values: ``{"ok": True, "info": {...}, "warnings": [...]}``,
or ``{"ok": False, "error": message, "argument": name of the offending argument or None, ...}``
for a :class:`~pyscvibridge.PyscvibridgeError`, which R turns into a ``cli`` error.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._errors import PyscvibridgeError

Emit = Callable[[str], Any]

_PACKAGE_DIR = str(Path(__file__).resolve().parent)
# Loggers that print during a run and that R users have no use for (their own handlers print
# to the process's stdout/stderr, which the R console does not always show and R cannot silence).
_NOISY_LOGGERS = (
    "lightning",
    "lightning.pytorch",
    "lightning.fabric",
    "lightning_fabric",
    "pytorch_lightning",
    "scvi",
    "rpy2",
    "rpy2.rinterface_lib.embedded",
    "anndata2ri",
    "py.warnings",
    "pyro",
    "torchmetrics",
)


_REDUCTIONS = {
    "seurat": {"X_scVI": "scVI", "X_umap": "umap.scVI"},
    "sce": {"X_scVI": "scVI", "X_umap": "UMAP_scVI"},
}
_SCANVI_REDUCTIONS = {
    "seurat": {"X_scANVI": "scANVI", "X_umap_scANVI": "umap.scANVI"},
    "sce": {"X_scANVI": "scANVI", "X_umap_scANVI": "UMAP_scANVI"},
}


class _PyscvibridgeArgError(PyscvibridgeError):
    """A PyscvibridgeError that names the R argument to blame."""

    def __init__(self, msg: str, argument: str):
        super().__init__(msg)
        self.argument = argument


def run_integrate(
    bridge: str,
    *,
    kind: str,
    assay: str | None,
    layer: str,
    batch_key: str | None,
    labels_key: str | None = None,
    categorical_covariate_keys: list[str] | None = None,
    continuous_covariate_keys: list[str] | None = None,
    preset: str | None = None,
    n_top_genes: int = 2000,
    n_latent: int = 10,
    max_epochs: int | None = None,
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str | list[int] = "auto",
    scanvi: bool = False,
    unlabeled_category: str = "Unknown",
    scanvi_epochs: int | None = None,
    save_model: str | None = None,
    overwrite: bool = False,
    corrected_genes: list[str] | None = None,
    transform_batch: list[str] | None = None,
    verbose: bool = True,
    emit: Emit | None = None,
) -> dict[str, Any]:
    """Integrate the R object ``<bridge>$object`` and bind it, with the results added, as ``<bridge>$result``.

    Parameters
    ----------
    bridge
        Name of an R environment in R's global environment; it holds ``object`` (a Seurat object or
        a SingleCellExperiment).
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
    labels_key, categorical_covariate_keys, continuous_covariate_keys, n_top_genes, n_latent, max_epochs, seed, accelerator, devices
        As for :func:`pyscvibridge.integrate`.
    preset
        As for :func:`pyscvibridge.integrate`; ``None`` uses its default.
    scanvi, unlabeled_category, scanvi_epochs
        Continue with scANVI on ``labels_key`` (:func:`pyscvibridge.train_scanvi`, ``max_epochs=scanvi_epochs``):
        adds the ``scANVI`` reductions and the ``scanvi_prediction`` / ``scanvi_probability`` columns.
    save_model, overwrite
        A directory to save the trained model in (:func:`pyscvibridge.save_model`; the scANVI model when
        ``scanvi``); its path is recorded in the provenance (``model``).
    corrected_genes, transform_batch
        Genes to return batch-corrected normalised expression for (:func:`pyscvibridge.corrected_expression`,
        decoded as ``transform_batch``): a Seurat assay / SCE altExp ``scVI``.
    verbose
        Report the steps and the training progress through ``emit``; when false, nothing is printed.
    emit
        An R function taking one string (R's ``message``): how text reaches the R console.
    """
    say: Emit = emit if (verbose and emit is not None) else _silent
    with _captured(verbose, say) as caught:
        try:
            info = _run_integrate(
                bridge,
                kind=kind,
                assay=assay,
                layer=layer,
                batch_key=batch_key,
                labels_key=labels_key,
                params={
                    "categorical_covariate_keys": list(categorical_covariate_keys or []) or None,
                    "continuous_covariate_keys": list(continuous_covariate_keys or []) or None,
                    "preset": preset,
                    "n_top_genes": int(n_top_genes),
                    "n_latent": int(n_latent),
                    "max_epochs": None if max_epochs is None else int(max_epochs),
                    "seed": int(seed),
                    "accelerator": str(accelerator),
                    "devices": devices,
                    "scanvi": bool(scanvi),
                    "unlabeled_category": str(unlabeled_category),
                    "scanvi_epochs": None if scanvi_epochs is None else int(scanvi_epochs),
                    "save_model": None if save_model is None else str(save_model),
                    "overwrite": bool(overwrite),
                    "corrected_genes": None if corrected_genes is None else [str(g) for g in corrected_genes],
                    "transform_batch": None if transform_batch is None else [str(b) for b in transform_batch],
                },
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


def _run_integrate(
    bridge: str,
    *,
    kind: str,
    assay: str | None,
    layer: str,
    batch_key: str | None,
    labels_key: str | None,
    params: dict[str, Any],
    say: Emit,
) -> dict[str, Any]:
    from . import convert
    from ._checks import counts_problem
    from ._workflow import UNS_KEY, integrate

    if params["scanvi"] and labels_key is None:
        msg = "scanvi = TRUE needs labels_key: the cell-metadata column with the known labels."
        raise _PyscvibridgeArgError(msg, "labels_key")
    started = time.perf_counter()
    env = _bridge_env(bridge)
    obj = env["object"]
    what = "Seurat object" if kind == "seurat" else "SingleCellExperiment"
    say(f"Reading the {what} from R's memory")
    adata = convert.from_r(obj, assay=assay)
    read_s = time.perf_counter() - started

    conversion = adata.uns.get("conversion", {})
    details = conversion.get("details", {})
    assay_used = str(details.get("assay", assay or ""))
    counts_layer = _counts_layer(adata, kind, layer, assay_used)
    if (problem := counts_problem(adata.layers[counts_layer])) is not None:
        where = f"layer {layer!r} of assay {assay_used!r}" if kind == "seurat" else f"assay {layer!r}"
        hint = (
            "layer = 'counts' (the raw counts, not 'data' or 'scale.data')"
            if kind == "seurat"
            else "assay = 'counts'"
        )
        msg = f"The {where} must hold raw counts (non-negative integers), but {problem}. Use {hint}."
        raise _PyscvibridgeArgError(msg, "layer")

    if batch_key is None:
        batch_key = details.get("split_column")
        if not batch_key:
            msg = "batch_key is required: name the cell-metadata column that holds the batch."
            raise _PyscvibridgeArgError(msg, "batch_key")
        say(f"Batches: the {adata.obs[batch_key].nunique()} split layers (obs column {batch_key!r})")

    n_cells = adata.n_obs
    say(
        f"Integrating {n_cells} cells x {adata.n_vars} genes over {adata.obs[batch_key].nunique()} "
        f"batches of {batch_key!r}"
    )
    progress = _ProgressCallback(say)
    optional = {"preset": params["preset"]} if params["preset"] is not None else {}
    t0 = time.perf_counter()
    adata, model = integrate(
        adata,
        batch_key,
        labels_key=labels_key,
        categorical_covariate_keys=params["categorical_covariate_keys"],
        continuous_covariate_keys=params["continuous_covariate_keys"],
        layer=counts_layer,
        n_top_genes=params["n_top_genes"],
        extra_genes=params["corrected_genes"],  # decoded later: trained on even if not highly variable
        n_latent=params["n_latent"],
        max_epochs=params["max_epochs"],
        seed=params["seed"],
        accelerator=params["accelerator"],
        devices=params["devices"],
        progress=False,
        train_kwargs={"callbacks": [progress.callback()]},
        return_model=True,
        **optional,
    )
    provenance = dict(adata.uns[UNS_KEY])
    reductions = dict(_REDUCTIONS[kind])
    obs_columns: list[str] = []
    if params["scanvi"]:
        from ._scanvi import UNS_KEY as SCANVI_KEY
        from ._scanvi import train_scanvi

        adata, model = train_scanvi(
            adata,
            model,
            labels_key=labels_key,
            unlabeled_category=params["unlabeled_category"],
            max_epochs=params["scanvi_epochs"],
            seed=params["seed"],
            accelerator=params["accelerator"],
            devices=params["devices"],
            progress=False,
            train_kwargs={"callbacks": [_ProgressCallback(say, "scANVI").callback()]},
        )
        provenance["scanvi"] = dict(adata.uns[SCANVI_KEY])
        reductions.update(_SCANVI_REDUCTIONS[kind])
        obs_columns = ["scanvi_prediction", "scanvi_probability"]
    if params["save_model"] is not None:
        from ._query import MODEL_UNS_KEY
        from ._query import save_model as _save_model

        path = _save_model(adata, model, params["save_model"], overwrite=params["overwrite"])
        provenance["model"] = dict(adata.uns[MODEL_UNS_KEY])
        say(f"Saved the {type(model).__name__} model to {path}")
    expression = None
    if params["corrected_genes"] is not None:
        from ._expression import corrected_expression

        try:
            corrected_expression(
                adata, model, genes=params["corrected_genes"], transform_batch=params["transform_batch"]
            )
        except PyscvibridgeError as e:
            argument = "transform_batch" if str(e).startswith("transform_batch") else "corrected_genes"
            raise _PyscvibridgeArgError(str(e), argument) from e
        expression = "scvi_normalized"
        provenance["corrected_expression"] = dict(adata.uns[expression])
    integrate_s = time.perf_counter() - t0

    provenance["bridge"] = {
        "object": what,
        "assay": assay_used,
        "layer": layer,
        "batch_key": batch_key,
        "read_seconds": read_s,
        "integrate_seconds": integrate_s,
    }
    t0 = time.perf_counter()
    result = convert.add_results(
        obj,
        adata,
        reductions=reductions,
        assay=assay_used if kind == "seurat" else None,
        misc=provenance,
        misc_key="scVI",
        obs_columns=obs_columns,
        expression=expression,
        expression_name="scVI",
    )
    convert.assign("result", result, envir=env)  # env["result"] = ... would copy it
    write_s = time.perf_counter() - t0
    names = ", ".join(repr(v) for v in reductions.values())
    columns = f", the columns {', '.join(repr(c) for c in obs_columns)}" if obs_columns else ""
    if expression is not None:
        columns += ", the assay 'scVI'" if kind == "seurat" else ", the altExp 'scVI'"
    say(
        f"Added the reductions {names}{columns} and the provenance "
        f"('scVI' in {'@misc' if kind == 'seurat' else 'metadata()'})"
    )
    return {
        "n_cells": n_cells,
        "n_genes": int(adata.n_vars),
        "batch_key": batch_key,
        "epochs": int(provenance.get("epochs_run", 0)),
        "read_seconds": read_s,
        "integrate_seconds": integrate_s,
        "write_seconds": write_s,
        "total_seconds": time.perf_counter() - started,
    }


def run_map_query(
    bridge: str,
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
    verbose: bool = True,
    emit: Emit | None = None,
) -> dict[str, Any]:
    """Map the R object ``<bridge>$object`` onto the saved reference model in ``model_dir``.

    Binds ``<bridge>$result``: the object with the reductions ``scVI`` and ``umap.scVI``
    (SCE: ``UMAP_scVI``), for a scANVI reference also ``scANVI`` and the ``scanvi_prediction`` /
    ``scanvi_probability`` columns, and the mapping's record in ``@misc$scVI`` / ``metadata()$scVI``
    (see :func:`pyscvibridge.map_query`). Arguments as for :func:`run_integrate`.
    """
    say: Emit = emit if (verbose and emit is not None) else _silent
    with _captured(verbose, say) as caught:
        try:
            info = _run_map_query(
                bridge,
                kind=kind,
                assay=assay,
                layer=layer,
                model_dir=str(model_dir),
                batch_key=batch_key,
                params={
                    "max_epochs": None if max_epochs is None else int(max_epochs),
                    "seed": int(seed),
                    "accelerator": str(accelerator),
                    "devices": devices,
                },
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


def _run_map_query(
    bridge: str,
    *,
    kind: str,
    assay: str | None,
    layer: str,
    model_dir: str,
    batch_key: str | None,
    params: dict[str, Any],
    say: Emit,
) -> dict[str, Any]:
    from . import convert
    from ._query import QUERY_UNS_KEY, map_query

    started = time.perf_counter()
    env = _bridge_env(bridge)
    obj = env["object"]
    what = "Seurat object" if kind == "seurat" else "SingleCellExperiment"
    say(f"Reading the {what} from R's memory")
    adata = convert.from_r(obj, assay=assay)
    details = adata.uns.get("conversion", {}).get("details", {})
    assay_used = str(details.get("assay", assay or ""))
    counts_layer = _counts_layer(adata, kind, layer, assay_used)
    if batch_key is None:
        batch_key = details.get("split_column")
        if not batch_key:
            msg = "batch_key is required: name the cell-metadata column that holds the query's batch."
            raise _PyscvibridgeArgError(msg, "batch_key")
    _drop_unused_levels(adata, [batch_key])
    say(f"Mapping {adata.n_obs} cells onto the reference model in {model_dir}")
    try:
        adata = map_query(
            adata,
            model_dir,
            batch_key=batch_key,
            layer=counts_layer,
            max_epochs=params["max_epochs"],
            seed=params["seed"],
            accelerator=params["accelerator"],
            devices=params["devices"],
            progress=False,
            train_kwargs={"callbacks": [_ProgressCallback(say, "query").callback()]},
        )
    except PyscvibridgeError as e:
        text = str(e)
        argument = next((a for a in ("model_dir", "batch_key") if text.startswith(a)), "model_dir")
        raise _PyscvibridgeArgError(text, argument) from e
    reductions = dict(_REDUCTIONS[kind])
    obs_columns: list[str] = []
    if "X_scANVI" in adata.obsm:
        reductions["X_scANVI"] = "scANVI"
        obs_columns = ["scanvi_prediction", "scanvi_probability"]
    provenance = {"query": dict(adata.uns[QUERY_UNS_KEY])}
    result = convert.add_results(
        obj,
        adata,
        reductions=reductions,
        assay=assay_used if kind == "seurat" else None,
        misc=provenance,
        misc_key="scVI",
        obs_columns=obs_columns,
    )
    convert.assign("result", result, envir=env)  # env["result"] = ... would copy it
    names = ", ".join(repr(v) for v in reductions.values())
    columns = f", the columns {', '.join(repr(c) for c in obs_columns)}" if obs_columns else ""
    say(f"Added the reductions {names}{columns} and the mapping record")
    return {
        "n_cells": int(adata.n_obs),
        "batch_key": batch_key,
        "total_seconds": time.perf_counter() - started,
    }


def load_cellbench(
    bridge: str, *, kind: str = "seurat", verbose: bool = False, emit: Emit | None = None
) -> dict:
    """Bind the bundled CellBench data as ``<bridge>$result``: a Seurat object or a SingleCellExperiment.

    It is made by :func:`pyscvibridge.convert.to_r` from :func:`pyscvibridge.datasets.cellbench`
    (raw counts only; with SeuratObject 4 a v4 ``Assay``).
    """
    say: Emit = emit if (verbose and emit is not None) else _silent
    with _captured(verbose, say) as caught:
        try:
            from . import convert, datasets

            started = time.perf_counter()
            env = _bridge_env(bridge)
            adata = datasets.cellbench()
            r_kind = "Seurat" if kind == "seurat" else "SingleCellExperiment"
            say(f"CellBench: {adata.n_obs} cells x {adata.n_vars} genes, as a {r_kind}")
            convert.assign("result", convert.to_r(adata, kind=r_kind), envir=env)
        except PyscvibridgeError as e:
            return {"ok": False, "error": str(e), "argument": None, "warnings": caught}
    return {
        "ok": True,
        "info": {"n_cells": int(adata.n_obs), "seconds": time.perf_counter() - started},
        "warnings": caught,
    }


def _counts_layer(adata, kind: str, layer: str, assay: str) -> str:
    """The AnnData layer that holds the R object's ``layer`` (Seurat) / assay (SCE)."""
    names = {"data": "logcounts"} if kind == "seurat" else {}
    name = names.get(layer, layer)
    if name in adata.layers:
        return name
    have = ", ".join(repr(k) for k in adata.layers) or "none"
    where = f"assay {assay!r}" if kind == "seurat" else "the SingleCellExperiment"
    msg = f"{layer!r} is not a layer of {where} after conversion (layers: {have})."
    raise _PyscvibridgeArgError(msg, "layer")


def _drop_unused_levels(adata, keys: list[str]) -> None:
    """Drop the unused categories of these obs columns (R factors keep them after subsetting)."""
    import pandas as pd

    for key in keys:
        col = adata.obs.get(key)
        if col is not None and isinstance(col.dtype, pd.CategoricalDtype):
            adata.obs[key] = col.cat.remove_unused_categories()


def _bridge_env(name: str):
    """The R environment bound as ``name`` in R's global environment (starts rpy2 on first use)."""
    from .convert import _r

    ri = _r.ri()
    env = ri.globalenv.find(name)
    if env.typeof != ri.RTYPES.ENVSXP:
        msg = f"internal: {name!r} in R's global environment is not an environment"
        raise TypeError(msg)
    return env


def _silent(_: str) -> None:
    return None


@contextlib.contextmanager
def _captured(verbose: bool, say: Emit) -> Iterator[list[str]]:
    """Keep the process's output clean while Python runs inside R.

    Python warnings are recorded: pyscvibridge's own are handed back to R (the list yielded),
    the others (deprecations in dependencies, Lightning's advice) are dropped. pyscvibridge's
    INFO log lines go to ``say``; other libraries' loggers are lowered to ERROR. When not
    verbose, anything Python writes to sys.stdout / sys.stderr is swallowed as well.
    """
    forwarded: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Import first: lightning and scvi set their loggers' levels when they are imported.
        import lightning.pytorch  # noqa: F401
        import scvi  # noqa: F401
    saved = {name: logging.getLogger(name).level for name in _NOISY_LOGGERS}
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    ours = logging.getLogger("pyscvibridge")
    ours_level, ours_propagate = ours.level, ours.propagate
    handler = _SayHandler(say)
    # The workflow's steps and training, not the conversion manifest nor what was added to the
    # AnnData (R users get their own object back; RunScVI() says what it added).
    handler.addFilter(
        lambda record: (
            not record.name.startswith("pyscvibridge.convert")
            and not record.getMessage().startswith("added ")
        )
    )
    ours.addHandler(handler)
    ours.setLevel(logging.INFO if verbose else logging.WARNING)
    ours.propagate = False
    sink = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as seen, contextlib.ExitStack() as stack:
            warnings.simplefilter("always")
            if not verbose:
                stack.enter_context(contextlib.redirect_stdout(sink))
                stack.enter_context(contextlib.redirect_stderr(sink))
            yield forwarded
            forwarded.extend(
                str(w.message)
                for w in seen
                if issubclass(w.category, UserWarning)
                and str(Path(w.filename).resolve()).startswith(_PACKAGE_DIR)
            )
    finally:
        ours.removeHandler(handler)
        ours.setLevel(ours_level)
        ours.propagate = ours_propagate
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


class _SayHandler(logging.Handler):
    def __init__(self, say: Emit):
        super().__init__(level=logging.INFO)
        self.say = say

    def emit(self, record: logging.LogRecord) -> None:
        self.say(record.getMessage())


class _ProgressCallback:
    """Training progress as R messages: about ten lines per run, with the ELBO and the time left."""

    def __init__(self, say: Emit, name: str = "scVI"):
        self.say = say
        self.name = name

    def callback(self):
        from lightning.pytorch.callbacks import Callback

        say = self.say
        name = self.name

        class _RProgress(Callback):
            def on_train_start(self, trainer, pl_module):
                self.started = time.perf_counter()
                self.every = max(1, math.ceil(trainer.max_epochs / 10))

            def on_train_epoch_end(self, trainer, pl_module):
                epoch = trainer.current_epoch + 1
                if epoch % self.every and epoch != trainer.max_epochs and epoch != 1:
                    return
                elapsed = time.perf_counter() - self.started
                left = elapsed / epoch * (trainer.max_epochs - epoch)
                metrics = trainer.callback_metrics
                elbo = metrics.get("elbo_validation", metrics.get("elbo_train"))
                elbo_txt = f", ELBO {float(elbo):.1f}" if elbo is not None else ""
                say(
                    f"{name} epoch {epoch}/{trainer.max_epochs}{elbo_txt} "
                    f"({_duration(elapsed)} so far, about {_duration(left)} left)"
                )

            def on_train_end(self, trainer, pl_module):
                epoch = trainer.current_epoch
                if trainer.max_epochs is not None and 0 < epoch < trainer.max_epochs:
                    say(f"{name} stopped early after {epoch} of {trainer.max_epochs} epochs")

        return _RProgress()


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


from ._integrate_layers import run_integrate_layers  # noqa: E402, F401  (R calls it through this module)
