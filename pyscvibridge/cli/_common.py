"""What every command shares: the click group, settings, logging, and the options declared once."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from dataclasses import dataclass

import click

from .. import __version__
from .. import _conventions as conv
from .._errors import PyscvibridgeError

logger = logging.getLogger("pyscvibridge")

#: Libraries whose loggers talk at INFO (shown only with -vv).
_LIBS = ("scvi", "lightning", "pytorch_lightning", "lightning_fabric", "jax")


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
            with warnings.catch_warnings(), _restored_loggers():
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            code = 1
        except click.ClickException as e:
            message = e.format_message()
            if isinstance(e, click.UsageError) and e.ctx is not None:
                message = f"{message} (see '{e.ctx.command_path} --help')"
            _error(message)
            code = e.exit_code
        except PyscvibridgeError as e:
            _error(str(e))
            code = 1
        except OSError as e:  # a disk that fills up, a file that vanishes: the system's words suffice
            where = f" ({e.filename})" if e.filename else ""
            _error(f"{e.strerror or e}{where}")
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


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
    names = ["pyscvibridge", *[n for n in logging.root.manager.loggerDict if n.split(".")[0] in _LIBS]]
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


def max_epochs_option(default: str):
    """``--max-epochs``, whose default (``default``, said in the help) each command chooses."""
    return click.option(
        "--max-epochs", type=click.IntRange(min=1), help=f"Training epochs [default: {default}]."
    )


def parse_devices(value: str) -> int | str:
    """``--devices``: a count as an int, anything else (``auto``, ``0,1``) as given."""
    return int(value) if value.strip().isdigit() else value


def quiet_stdout(settings: Settings):
    """Libraries print some messages (e.g. early stopping) on stdout: -q silences those too."""
    import io

    return contextlib.redirect_stdout(io.StringIO()) if settings.quiet else contextlib.nullcontext()
