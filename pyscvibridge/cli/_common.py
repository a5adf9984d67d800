"""What every command shares: the click group, settings, logging, and the options declared once."""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import sys
import warnings
from dataclasses import dataclass

import click

from .. import __version__, _signals
from .. import _conventions as conv
from .._errors import PyscvibridgeError

logger = logging.getLogger("pyscvibridge")

#: Libraries whose loggers talk at INFO (shown only with -vv).
_LIBS = ("scvi", "lightning", "pytorch_lightning", "lightning_fabric", "jax")
#: rpy2 logs what R writes to its console's error stream (package start-up messages) here, at WARNING.
_R_CONSOLE = "rpy2.rinterface_lib.callbacks"


@dataclass
class Settings:
    quiet: bool = False
    verbose: int = 0

    def echo(self, message: str = "", **kwargs) -> None:
        if not self.quiet:
            click.echo(message, **kwargs)


class _Group(click.Group):
    """A click group whose errors are one line: ``Error: <message>`` and a non-zero exit status."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            # Logging and warning settings are the command's own: restored afterwards, so that
            # calling the CLI in-process (tests, notebooks) leaves the caller's settings alone.
            with warnings.catch_warnings(), _restored_loggers(), _signals.handling():
                remove_stale_r_tempdirs()
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
                _signals.check()  # a signal whose exception a library swallowed still ends the run
            code = rv if isinstance(rv, int) else 0
        except BaseException as e:  # noqa: BLE001 - _exit_code re-raises what is not a user's error
            code = _exit_code(e)
        if standalone_mode:
            sys.exit(code)
        return code


def _exit_code(e: BaseException) -> int:
    """Say in one line on stderr what ended the command and return the exit status; re-raise bugs."""
    if (signal_ := _signals.received()) is not None:  # whatever a library made of the signal's
        _error(str(signal_))  # exception (Lightning: SystemExit 0 or 1; scvi-tools: printed, raised)
        return signal_.exit_code
    if isinstance(e, click.exceptions.Abort):
        click.echo("Aborted.", err=True)
        return 1
    if isinstance(e, click.ClickException):
        message = e.format_message()
        if isinstance(e, click.UsageError) and e.ctx is not None:
            message = f"{message} (see '{e.ctx.command_path} --help')"
        _error(message)
        return e.exit_code
    if isinstance(e, PyscvibridgeError):
        _error(str(e))
        return 1
    if isinstance(e, OSError):  # a disk that fills up, a file that vanishes: the system's words suffice
        _error(os_error_message(e))
        return 1
    raise e


def os_error_message(e: OSError) -> str:
    """``No space left on device (errno 28, ENOSPC): /path``: what, the errno and where."""
    name = errno.errorcode.get(e.errno, "") if e.errno else ""
    code = f" (errno {e.errno}, {name})" if name else ""
    where = f": {e.filename}" if e.filename else ""
    return f"{e.strerror or e}{code}{where}"


def remove_stale_r_tempdirs() -> None:
    """R's session directories of killed runs, cleaned up by the next run (see pyscvibridge._atomic)."""
    from .._atomic import remove_stale_r_tempdirs as remove

    remove()


def quiet_libraries(settings: Settings) -> None:
    """scvi-tools and Lightning set their loggers to INFO when imported; keep them for -vv."""
    import lightning.pytorch  # noqa: F401
    import scvi

    level = logging.INFO if settings.verbose >= 2 else logging.WARNING
    scvi.settings.verbosity = level
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in _LIBS:
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _restored_loggers():
    names = ["pyscvibridge", _R_CONSOLE]
    names += [n for n in logging.root.manager.loggerDict if n.split(".")[0] in _LIBS]
    saved = {}
    for name in names:
        log = logging.getLogger(name)
        saved[name] = (log.level, list(log.handlers), log.propagate)
    try:
        yield
    finally:
        for name, (level, handlers, propagate) in saved.items():
            log = logging.getLogger(name)
            log.setLevel(level)
            log.handlers = handlers
            log.propagate = propagate
        fresh = logging.getLogger("pyscvibridge")  # in case it was created during the command
        fresh.handlers = [h for h in fresh.handlers if h.get_name() != "pyscvibridge-cli"]
        if "pyscvibridge" not in saved:
            fresh.propagate = True


def _error(message: str) -> None:
    click.echo(f"Error: {' '.join(str(message).split())}", err=True)


def _setup_logging(settings: Settings) -> None:
    level = logging.WARNING
    if settings.quiet:
        level = logging.ERROR
    elif settings.verbose:
        level = logging.INFO if settings.verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.set_name("pyscvibridge-cli")
    for name in ("pyscvibridge",):
        log = logging.getLogger(name)
        log.handlers = [h for h in log.handlers if h.get_name() != "pyscvibridge-cli"]
        log.addHandler(handler)
        log.setLevel(level)
        log.propagate = False

    # R's messages (e.g. 94 lines of package start-up for a SingleCellExperiment): not with -q.
    logging.getLogger(_R_CONSOLE).setLevel(logging.ERROR if settings.quiet else logging.NOTSET)

    # Our own warnings are one line each; other libraries' only with -v.
    warnings.resetwarnings()
    if settings.quiet:
        warnings.simplefilter("ignore")
    elif settings.verbose:
        warnings.simplefilter("default")
    else:
        warnings.simplefilter("ignore")
        warnings.filterwarnings("default", category=UserWarning, module=r"pyscvibridge")

    def show(message, category, filename, lineno, file=None, line=None):
        click.echo(f"Warning: {' '.join(str(message).split())}", err=True)

    warnings.showwarning = show


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(
    __version__, "-V", "--version", prog_name="pyscvibridge", message="%(prog)s %(version)s"
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors: no progress bar, no summary.")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log each step and what it added (-v); also scvi-tools/Lightning messages (-vv).",
)
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: int) -> None:
    """scVI batch integration for Seurat / SingleCellExperiment (.rds) and AnnData (.h5ad) files.

    \b
    Examples:
      pyscvibridge inspect pbmc.rds
      pyscvibridge integrate pbmc.rds -o pbmc_scvi.h5ad --rds-out pbmc_scvi.rds \\
          --batch-key sample --labels-key cell_type --plots figures/ --metrics
      pyscvibridge integrate ref.h5ad -o ref_scvi.h5ad --batch-key sample --labels-key cell_type \\
          --scanvi --corrected-genes CD3E,MS4A1 --save-model ref_model/
      pyscvibridge map query.rds --model ref_model/ --batch-key sample -o query_mapped.h5ad
      pyscvibridge convert pbmc.rds pbmc.h5ad
      pyscvibridge demo --out results/cellbench
    """
    if quiet and verbose:
        msg = "-q/--quiet and -v/--verbose contradict each other; use one."
        raise click.UsageError(msg)
    settings = Settings(quiet=quiet, verbose=verbose)
    _setup_logging(settings)
    ctx.obj = settings


# ---------------------------------------------------------------- options shared by several commands

seed_option = click.option(
    "--seed", type=int, default=0, show_default=True, help="Random seed (scvi-tools, PCA, UMAP)."
)
accelerator_option = click.option(
    "--accelerator",
    type=click.Choice(list(conv.ACCELERATORS), case_sensitive=False),
    default="auto",
    show_default=True,
    help="Lightning accelerator for training.",
)
devices_option = click.option(
    "--devices",
    default="auto",
    show_default=True,
    help="Lightning devices: a count, ids like '0,1', or auto.",
)


trust_option = click.option(
    "--trust",
    is_flag=True,
    help="Read an .rds file even if it holds R code (promises, closures, active bindings, ...), which R "
    "before 4.4.0 runs when the object is used (CVE-2024-27322). Only for files whose origin you trust.",
)


def max_epochs_option(default: str):
    """``--max-epochs``, whose default (``default``, said in the help) each command chooses."""
    return click.option(
        "--max-epochs", type=click.IntRange(min=1), help=f"Training epochs [default: {default}]."
    )


def parse_devices(
    value: str, accelerator: str = "auto", strategy: str | None = None
) -> int | str | list[int]:
    """``--devices`` checked against ``--accelerator`` and ``--strategy`` before anything is read.

    A count as an int, GPU ids (``0,1``) as a list, ``auto`` as given. Several devices need GPUs and
    a strategy that trains in processes it spawns: Lightning's default for several devices (DDP
    with its script launcher) starts the whole command again once per device, and on the CPU one
    process already trains on every core (PyTorch's threads). ``--accelerator gpu`` / ``mps``
    without such a device is refused here (importing PyTorch, about a second, not scvi-tools).
    """
    text = str(value).strip().strip("[]")
    devices: int | str | list[int]
    if text.lower() == "auto":
        devices = "auto"
    elif re.fullmatch(r"-?[0-9]+", text):
        devices = int(text)
        if devices == 0 or devices < -1:
            msg = f"--devices {value!r}: give a count of at least 1, -1 for every GPU, ids like 0,1, or auto."
            raise click.UsageError(msg)
    elif re.fullmatch(r"[0-9]+(\s*,\s*[0-9]+)*\s*,?", text):
        devices = [int(d) for d in text.split(",") if d.strip()]
    else:
        msg = f"--devices {value!r} is not a device count, a list of GPU ids like 0,1, or auto."
        raise click.UsageError(msg)
    accelerator = str(accelerator).lower()
    several = devices == -1 or (isinstance(devices, int) and devices > 1) or isinstance(devices, list)
    if accelerator == "auto" and not several:
        return devices
    gpu = _gpu(accelerator)
    if not several:
        return devices
    if not gpu:
        msg = (
            f"--devices {value}: several devices need GPUs, and this run trains on the CPU, where one "
            "process already uses every core (PyTorch's threads); several CPU processes would each run "
            "the whole command. Leave --devices out."
        )
        raise click.UsageError(msg)
    if strategy is None or "spawn" not in strategy:
        who = "Lightning's default" if strategy is None else repr(strategy)
        msg = (
            f"--devices {value}: training on several GPUs from the command line needs a strategy that "
            f"spawns its workers, e.g. --strategy ddp_spawn_find_unused_parameters_true; {who} would "
            "start the whole command again once per GPU."
        )
        raise click.UsageError(msg)
    return devices


def _gpu(accelerator: str) -> bool:
    """Whether ``accelerator`` trains on a GPU; an error when it names one this machine lacks."""
    if accelerator == "cpu":
        return False
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if accelerator in ("gpu", "cuda") and not (cuda or (accelerator == "gpu" and mps)):
        msg = (
            f"--accelerator {accelerator}: PyTorch finds no GPU here (PyTorch {torch.__version__}, "
            f"torch.cuda.is_available() is False). Use --accelerator cpu (or auto), or install "
            "PyTorch with CUDA on a machine with a GPU."
        )
        raise click.UsageError(msg)
    if accelerator == "mps" and not mps:
        msg = "--accelerator mps: PyTorch finds no Apple GPU (MPS) here. Use --accelerator cpu (or auto)."
        raise click.UsageError(msg)
    return cuda or (mps and accelerator != "auto")


def quiet_stdout(settings: Settings):
    """Libraries print some messages (e.g. early stopping) on stdout: -q silences those too."""
    import io

    return contextlib.redirect_stdout(io.StringIO()) if settings.quiet else contextlib.nullcontext()


def progress(settings: Settings, stream=None) -> dict:
    """How training shows progress: ``progress`` / ``callbacks`` arguments of the pipeline.

    A terminal gets scvi-tools' progress bar; anything else (a log file, a pipe) one line per 5%
    of the epochs (a bar redraws itself at every step, thousands of lines in a log); -q nothing.
    """
    stream = sys.stderr if stream is None else stream
    if settings.quiet:
        return {"progress": False, "callbacks": None}
    if stream.isatty():
        return {"progress": True, "callbacks": None}
    return {"progress": False, "callbacks": lambda name: [progress_lines(name, stream)]}


def progress_lines(name: str, stream, every: float = 0.05):
    """A Lightning callback writing ``scVI: epoch 10/100 (10%), 4 s, about 36 s left`` every 5%."""
    import time

    from lightning.pytorch.callbacks import Callback

    class _Lines(Callback):
        def on_train_start(self, trainer, pl_module):
            self.started = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module):
            epoch, total = trainer.current_epoch + 1, trainer.max_epochs or 0
            steps = round(1 / every)  # a line whenever the epochs cross the next 5%
            if total <= 0 or epoch * steps // total == (epoch - 1) * steps // total:
                return
            done = epoch / total
            elapsed = time.perf_counter() - self.started
            left = elapsed / epoch * (total - epoch)
            stream.write(
                f"{name}: epoch {epoch}/{total} ({100 * done:.0f}%), {elapsed:.0f} s, about {left:.0f} s left\n"
            )
            stream.flush()

    return _Lines()
