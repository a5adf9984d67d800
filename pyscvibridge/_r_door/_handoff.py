"""The hand-off between R and Python: finding the object R handed over, R-style messages,
Python's output kept off the R console, training progress as R messages.

R keeps each call's hand-off environment in the R package's private state
(``pyscvibridge:::.state$bridges``), never in the user's global environment; Python reaches it
there through rpy2 by name. The object is ``object`` in it; the door binds its answer as ``result``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _conventions as conv
from .._errors import PyscvibridgeError
from .._pipeline import OptionError

Emit = Callable[[str], Any]

_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)
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


def r_quote(value: Any) -> str:
    """A value as R prints a string: ``"sample"``."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def r_spelling(renamed: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Option names as R messages write them: the R argument (``renamed`` where it is not the
    field's name, e.g. SCE's ``{"layer": "assay"}``); ``overwrite_model`` has no R argument."""
    spelled: dict[str, str | None] = {"scanvi": "scanvi = TRUE", "overwrite_model": None}
    spelled.update({k: str(v) for k, v in dict(renamed or {}).items()})
    return spelled


def r_kwargs(kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Keyword arguments from an R list: R numbers that are whole (``2``, R's double) as Python
    integers, so that ``list(n_layers = 2)`` reaches scvi-tools as ``n_layers=2``."""
    out: dict[str, Any] = {}
    for key, value in dict(kwargs or {}).items():
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        out[str(key)] = value
    return out


def answer(run: Callable[[], dict[str, Any]], verbose: bool, say: Emit) -> dict[str, Any]:
    """Run a door's body; its plain-value answer for R (``ok``, ``info`` or ``error``, ``warnings``)."""
    with captured(verbose, say) as caught:
        try:
            info = run()
        except PyscvibridgeError as e:
            return {
                "ok": False,
                "error": str(e),
                "argument": getattr(e, "option", None),
                "warnings": caught,
            }
    return {"ok": True, "info": info, "warnings": caught}


def sayer(verbose: bool, emit: Emit | None) -> Emit:
    return emit if (verbose and emit is not None) else _silent


def bridge_env(bridge):
    """The hand-off environment: ``bridge`` itself when it is an R environment, else the one
    the R package keeps under that name (``pyscvibridge:::.state$bridges[[bridge]]``)."""
    from ..convert import _r

    ri = _r.ri()
    if isinstance(bridge, ri.Sexp):
        env = bridge
    else:
        get = ri.baseenv["get"]
        no = ri.BoolSexpVector([False])
        ns = ri.baseenv["getNamespace"](ri.StrSexpVector(["pyscvibridge"]))
        state = get(ri.StrSexpVector([".state"]), envir=ns, inherits=no)
        bridges = get(ri.StrSexpVector(["bridges"]), envir=state, inherits=no)
        env = get(ri.StrSexpVector([str(bridge)]), envir=bridges, inherits=no)
    if env.typeof != ri.RTYPES.ENVSXP:
        msg = f"internal: the hand-off {bridge!r} is not an R environment"
        raise TypeError(msg)
    return env


@dataclass
class Handed:
    """The object R handed over, converted: where it came from and what it is."""

    env: Any
    obj: Any
    adata: Any
    kind: str
    what: str
    assay: str
    layer: str
    counts_layer: str
    split_column: str | None
    read_seconds: float


def read_object(bridge, *, kind: str, assay: str | None, layer: str, say: Emit) -> Handed:
    """Convert ``<bridge>$object`` (a view of R's memory) after checking ``assay`` and ``layer``."""
    from .. import convert

    started = time.perf_counter()
    from ..convert import _r

    env = bridge_env(bridge)
    obj = _r.ri().baseenv["get"](_r.r_str(["object"]), envir=env)
    what = "Seurat object" if kind == "seurat" else "SingleCellExperiment"
    where = convert.layout(obj, assay=assay)
    if kind == "seurat":
        if where["assay"] not in where["assays"]:
            msg = (
                f"{r_quote(where['assay'])} is not an assay of this Seurat object. Assays present: "
                f"{_listed(where['assays'])}."
            )
            raise OptionError(msg, "assay")
        layers = where["layers"]
        split = [n for n in layers if n.startswith(f"{layer}.")] if layer not in layers else []
        if layer not in layers and not split:
            msg = (
                f"{r_quote(layer)} is not a layer of assay {r_quote(where['assay'])}. Layers present: "
                f'{_listed(layers)}. Raw counts are usually in "counts".'
            )
            raise OptionError(msg, "layer")
    elif layer not in where["assays"]:
        have = (
            f"Assays present: {_listed(where['assays'])}." if where["assays"] else "It has no named assays."
        )
        msg = f"{r_quote(layer)} is not an assay of this SingleCellExperiment. {have}"
        raise OptionError(msg, "layer")
    say(f"Reading the {what} from R's memory")
    adata = convert.from_r(obj, assay=assay)
    details = adata.uns.get(conv.UNS_CONVERSION, {}).get("details", {})
    assay_used = str(details.get("assay", assay or ""))
    return Handed(
        env=env,
        obj=obj,
        adata=adata,
        kind=kind,
        what=what,
        assay=assay_used,
        layer=layer,
        counts_layer=_counts_layer(adata, kind, layer, assay_used),
        split_column=details.get("split_column") or None,
        read_seconds=time.perf_counter() - started,
    )


def _listed(values) -> str:
    return ", ".join(r_quote(v) for v in values) or "none"


def _counts_layer(adata, kind: str, layer: str, assay: str) -> str:
    """The AnnData layer that holds the R object's ``layer`` (Seurat) / assay (SCE)."""
    names = {"data": "logcounts"} if kind == "seurat" else {}
    name = names.get(layer, layer)
    if name in adata.layers:
        return name
    have = ", ".join(repr(k) for k in adata.layers) or "none"
    where = f"assay {assay!r}" if kind == "seurat" else "the SingleCellExperiment"
    msg = f"{layer!r} is not a layer of {where} after conversion (layers: {have})."
    raise OptionError(msg, "layer")


def bind_result(handed: Handed, result) -> None:
    """Bind the R object with the results as ``result`` in the hand-off environment (no copy)."""
    from .. import convert

    convert.assign("result", result, envir=handed.env)  # env["result"] = ... would copy it


def _silent(_: str) -> None:
    return None


@contextlib.contextmanager
def captured(verbose: bool, say: Emit) -> Iterator[list[str]]:
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


class ProgressCallback:
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
