"""The ``pyscvibridge`` command line: integrate, map, convert, inspect, demo.

A thin layer: it parses arguments, checks paths before any long computation, calls the library and
writes outputs atomically. A user error (a :class:`~pyscvibridge.PyscvibridgeError` or a bad
argument) ends with one line on stderr and exit status 1 (2 for usage errors), never a traceback.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from ._atomic import atomic_path, check_writable_dir
from ._errors import PyscvibridgeError

if TYPE_CHECKING:
    import anndata as ad

logger = logging.getLogger("pyscvibridge")

INPUT_SUFFIXES = (".rds", ".h5ad")
KINDS = ("Seurat", "SingleCellExperiment")
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


def _quiet_libraries(settings: Settings) -> None:
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


# ---------------------------------------------------------------- paths and files


def _input_path(path: Path, suffixes: tuple[str, ...] = INPUT_SUFFIXES) -> Path:
    if not path.exists():
        msg = f"No such file: {str(path)!r}."
        raise PyscvibridgeError(msg)
    if not path.is_file():
        msg = f"{str(path)!r} is not a file."
        raise PyscvibridgeError(msg)
    if path.suffix.lower() not in suffixes:
        msg = (
            f"Cannot tell the format of {str(path)!r} from its extension {path.suffix!r}: "
            f"expected {' or '.join(suffixes)}."
        )
        raise PyscvibridgeError(msg)
    if not os.access(path, os.R_OK):
        msg = f"Cannot read {str(path)!r}: permission denied."
        raise PyscvibridgeError(msg)
    return path


def _output_path(path: Path, suffix: str, option: str, inputs: tuple[Path, ...] = ()) -> Path:
    if path.suffix.lower() != suffix:
        msg = f"{option} {str(path)!r} must end in {suffix}."
        raise PyscvibridgeError(msg)
    if path.is_dir():
        msg = f"{option} {str(path)!r} is a directory; give a file name ending in {suffix}."
        raise PyscvibridgeError(msg)
    for inp in inputs:
        if path.exists() and path.resolve() == inp.resolve():
            msg = f"{option} {str(path)!r} is the input file; choose another name so the input is kept."
            raise PyscvibridgeError(msg)
    check_writable_dir(path.parent, f"the directory of {option}")
    return path


def _read(path: Path) -> tuple[ad.AnnData, Any]:
    """Read an ``.h5ad`` (AnnData, None) or an ``.rds`` (AnnData, the rpy2 R object)."""
    if path.suffix.lower() == ".h5ad":
        import anndata as ad

        try:
            return ad.read_h5ad(path), None
        except Exception as e:  # noqa: BLE001 - h5py/anndata raise many kinds for a bad file
            msg = f"Cannot read {str(path)!r} as an .h5ad file: {_first_line(e)}"
            raise PyscvibridgeError(msg) from None
    from .convert import from_r
    from .convert._api import read_r_object

    obj = read_r_object(path)
    try:
        adata = from_r(obj)
    except PyscvibridgeError as e:
        msg = f"{str(path)!r}: {e}"
        raise PyscvibridgeError(msg) from None
    adata.uns["conversion"]["details"]["file"] = str(path)
    return adata, obj


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _write_h5ad(adata: ad.AnnData, path: Path) -> None:
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression="gzip")


def _save_rds(obj, path: Path) -> None:
    from .convert import _r

    with atomic_path(path) as tmp:
        _r.ri().baseenv["saveRDS"](obj, file=_r.r_str([str(tmp)]))


def _rds_kind(adata: ad.AnnData, kind: str | None) -> str:
    if kind is not None:
        return kind
    source = str(dict(adata.uns.get("conversion", {})).get("source", ""))
    return source if source in KINDS else "Seurat"


def _to_rds(adata: ad.AnnData, path: Path, kind: str) -> dict:
    from .convert import to_r

    obj, manifest = to_r(adata, kind=kind, return_manifest=True)
    _save_rds(obj, path)
    return manifest


def _misc(adata: ad.AnnData) -> dict:
    """What goes into the R object's misc/metadata: the run's provenance."""
    prov = dict(adata.uns.get("scvi_integration", {}))
    return {
        k: prov[k] for k in ("params", "versions", "epochs_run", "history", "n_hvg", "seconds") if k in prov
    }


# ---------------------------------------------------------------- printing


def _format_manifest(man: dict) -> str:
    lines = [f"Converted {man.get('source', '?')} ({man.get('direction', '?')})"]
    details = dict(man.get("details", {}))
    if details:
        lines.append("  details:")
        lines += [f"    {k}: {_short(v)}" for k, v in details.items()]
    if man.get("mapped"):
        lines.append("  mapped:")
        lines += [f"    {dest} <- {src}" for dest, src in dict(man["mapped"]).items()]
    for what, pairs in dict(man.get("renamed", {})).items():
        pairs = dict(pairs)
        shown = ", ".join(f"{o!r} -> {n!r}" for o, n in list(pairs.items())[:5])
        more = f" (and {len(pairs) - 5} more)" if len(pairs) > 5 else ""
        lines.append(f"  renamed {len(pairs)} {what}: {shown}{more}")
    if man.get("dropped"):
        lines.append("  not converted:")
        lines += [f"    {what}: {why}" for what, why in dict(man["dropped"]).items()]
    notes = list(man.get("notes", []))
    if notes:
        lines.append("  notes:")
        lines += [f"    - {n}" for n in notes]
    return "\n".join(lines)


def _short(v, n: int = 8) -> str:
    if isinstance(v, dict):
        v = [f"{k}={x}" for k, x in v.items()]
    if isinstance(v, list | tuple) or hasattr(v, "tolist"):
        v = list(v.tolist() if hasattr(v, "tolist") else v)
        more = f", ... ({len(v)} in all)" if len(v) > n else ""
        return ", ".join(map(str, v[:n])) + more
    return str(v)


# ---------------------------------------------------------------- integrate


@dataclass
class Outputs:
    h5ad: Path
    rds: Path | None = None
    rds_kind: str | None = None
    plots: Path | None = None
    metrics: Path | None = None
    written: list[Path] = field(default_factory=list)


@dataclass
class Extras:
    """What ``integrate`` does after scVI: scANVI, corrected expression, a saved model."""

    scanvi: bool = False
    unlabeled_category: str = "Unknown"
    scanvi_epochs: int | None = None
    corrected_genes: list[str] = field(default_factory=list)
    transform_batch: str | None = None
    save_model: Path | None = None
    overwrite_model: bool = False


def _run(
    settings: Settings,
    adata: ad.AnnData,
    robj,
    outputs: Outputs,
    *,
    batch_key: str,
    labels_key: str | None,
    metrics: bool,
    extras: Extras | None = None,
    **params,
) -> None:
    """integrate (-> scANVI -> corrected expression -> saved model) -> metrics -> write -> plots; summary."""
    started = time.perf_counter()
    from ._checks import check_obs_key
    from ._workflow import integrate

    extras = extras or Extras()
    # Everything that can be checked is checked before the long training.
    check_obs_key(adata, batch_key, "batch_key")
    if labels_key is not None:
        check_obs_key(adata, labels_key, "labels_key")
    for key in params.get("categorical_covariate_keys") or ():
        check_obs_key(adata, key, "--categorical-covariate")
    for key in params.get("continuous_covariate_keys") or ():
        check_obs_key(adata, key, "--continuous-covariate")
    if extras.corrected_genes:
        _check_genes(adata, extras.corrected_genes)
    if extras.transform_batch is not None and extras.transform_batch != "all":
        levels = set(map(str, adata.obs[batch_key].dropna().unique()))
        if extras.transform_batch not in levels:
            msg = (
                f"--transform-batch {extras.transform_batch!r} is not a batch of {batch_key!r}: "
                f"choose one of {_short(sorted(levels))}, or 'all'."
            )
            raise PyscvibridgeError(msg)
    if metrics:
        _check_metrics_possible(labels_key)

    _quiet_libraries(settings)
    # Libraries below print some messages (e.g. early stopping) on stdout: -q silences those too.
    silence = contextlib.redirect_stdout(io.StringIO()) if settings.quiet else contextlib.nullcontext()
    added: list[str] = []
    with silence:
        adata, model = integrate(
            adata,
            batch_key,
            labels_key=labels_key,
            extra_genes=extras.corrected_genes or None,  # decoded below, so trained on
            progress=not settings.quiet,
            return_model=True,
            **params,
        )
        strategy = (params.get("train_kwargs") or {}).get("strategy")
        if strategy is not None:
            adata.uns["scvi_integration"]["params"]["strategy"] = str(strategy)
        if extras.scanvi:
            from ._scanvi import train_scanvi

            adata, model = train_scanvi(
                adata,
                model,
                labels_key=labels_key,
                unlabeled_category=extras.unlabeled_category,
                max_epochs=extras.scanvi_epochs,
                seed=params.get("seed", 0),
                accelerator=params.get("accelerator", "auto"),
                devices=params.get("devices", "auto"),
                progress=not settings.quiet,
                train_kwargs=params.get("train_kwargs"),
            )
            rec = adata.uns["scanvi"]
            added.append(
                f"scANVI trained {rec['epochs_run']} epochs on {rec['n_labelled']:,} labelled cells "
                f"({len(rec['classes'])} classes); added .obsm['X_scANVI'], .obs['scanvi_prediction'], "
                f".obs['scanvi_probability']; the predictions agree with "
                f"{100 * rec['labelled_agreement']:.1f}% of the known labels."
            )
        if extras.corrected_genes:
            from ._expression import corrected_expression

            corrected_expression(
                adata, model, genes=extras.corrected_genes, transform_batch=extras.transform_batch
            )
            as_batch = (
                "" if extras.transform_batch is None else f" (decoded as batch {extras.transform_batch!r})"
            )
            added.append(
                f"Added the batch-corrected normalised expression of {len(extras.corrected_genes)} genes"
                f"{as_batch} in .obsm['scvi_normalized']."
            )
    if extras.save_model is not None:
        from ._query import save_model

        path = save_model(adata, model, extras.save_model, overwrite=extras.overwrite_model)
        added.append(f"Saved the {type(model).__name__} model to {path} (recorded in .uns['scvi_model']).")

    table = None
    if metrics:
        from .metrics import benchmark

        settings.echo(
            "Scoring the embeddings with scib-metrics (unintegrated PCA, scVI, Harmony) ...", err=True
        )
        table = benchmark(adata, batch_key=batch_key, labels_key=labels_key, seed=params.get("seed", 0))

    with contextlib.ExitStack() as stack:  # all-or-nothing for the data files
        h5_tmp = stack.enter_context(atomic_path(outputs.h5ad, mkdir=True))
        rds_tmp = stack.enter_context(atomic_path(outputs.rds, mkdir=True)) if outputs.rds else None
        adata.write_h5ad(h5_tmp, compression="gzip")
        if rds_tmp is not None:
            from .convert import _r, add_results, to_r

            if robj is not None:
                out = add_results(robj, adata, misc=_misc(adata))
            else:
                out = to_r(adata, kind=outputs.rds_kind or _rds_kind(adata, None))
            _r.ri().baseenv["saveRDS"](out, file=_r.r_str([str(rds_tmp)]))
    outputs.written += [p for p in (outputs.h5ad, outputs.rds) if p is not None]
    if extras.save_model is not None:
        outputs.written.append(extras.save_model)

    if outputs.plots is not None:
        from .plots import save_plots

        outputs.written += list(
            save_plots(adata, outputs.plots, batch_key=batch_key, labels_key=labels_key).values()
        )
    if table is not None:
        from .metrics import save_metrics

        outputs.written += list(save_metrics(table, outputs.metrics).values())

    prov = adata.uns["scvi_integration"]
    settings.echo(
        f"Integrated {adata.n_obs:,} cells x {adata.n_vars:,} genes "
        f"({prov['n_hvg']:,} highly variable) over {adata.obs[batch_key].nunique()} batches of {batch_key!r}: "
        f"scVI trained {prov['epochs_run']} epochs; the integration took {prov['seconds']:.0f} s, "
        f"everything {time.perf_counter() - started:.0f} s."
    )
    for line in added:
        settings.echo(line)
    settings.echo("Wrote:")
    for path in outputs.written:
        settings.echo(f"  {path}")
    if table is not None:
        from .metrics import format_table

        settings.echo(
            "\nscib-metrics (higher is better; Total = 0.4 batch correction + 0.6 bio conservation):"
        )
        settings.echo(format_table(table))


def _check_genes(adata: ad.AnnData, genes: list[str]) -> None:
    missing = [g for g in genes if g not in adata.var_names]
    if missing:
        few = ", ".join(repr(g) for g in missing[:5]) + (", ..." if len(missing) > 5 else "")
        msg = (
            f"--corrected-genes: {len(missing)} of {len(genes)} genes are not in the data: {few}. "
            f"Gene names look like {', '.join(map(repr, adata.var_names[:3]))}."
        )
        raise PyscvibridgeError(msg)


def _check_model_dir(path: Path, overwrite: bool) -> None:
    """--save-model: a new or empty directory (or --overwrite-model), in a writable place."""
    if path.exists() and not path.is_dir():
        msg = f"--save-model {str(path)!r} is a file; give a directory for the model."
        raise PyscvibridgeError(msg)
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        msg = (
            f"--save-model directory {str(path)!r} exists and is not empty; "
            "choose another directory or pass --overwrite-model."
        )
        raise PyscvibridgeError(msg)
    check_writable_dir(path.parent, "the parent directory of --save-model")


def _check_metrics_possible(labels_key: str | None) -> None:
    if labels_key is None:
        msg = "--metrics needs --labels-key: bio conservation is measured against known cell labels."
        raise PyscvibridgeError(msg)
    from ._errors import import_or_hint

    import_or_hint("scib_metrics", "metrics")
    import_or_hint("harmonypy", "metrics")


_integrate_options = [
    click.option(
        "--labels-key",
        metavar="COLUMN",
        help="Cell metadata column with known cell types; used by the plots and needed by --metrics.",
    ),
    click.option(
        "--layer",
        metavar="NAME",
        help="Layer with raw counts (default: 'counts' if present, else X). From an .rds, Seurat's counts "
        "and SCE's counts assay are the 'counts' layer.",
    ),
    click.option(
        "--n-top-genes",
        type=click.IntRange(min=1),
        default=2000,
        show_default=True,
        help="Highly variable genes.",
    ),
    click.option(
        "--n-latent", type=click.IntRange(min=1), default=10, show_default=True, help="scVI latent size."
    ),
    click.option(
        "--max-epochs",
        type=click.IntRange(min=1),
        help="Training epochs [default: the preset's schedule].",
    ),
    click.option(
        "--preset",
        type=click.Choice(["fast", "scvi-tools"]),
        help="Training schedule: 'fast' (a quarter of the epochs at a higher learning rate) or "
        "'scvi-tools' (its defaults, as in the scVI tutorial) [default: fast].",
    ),
    click.option(
        "--seed", type=int, default=0, show_default=True, help="Random seed (scvi-tools, PCA, UMAP)."
    ),
    click.option(
        "--accelerator",
        type=click.Choice(["auto", "cpu", "gpu", "cuda", "mps"], case_sensitive=False),
        default="auto",
        show_default=True,
        help="Lightning accelerator for training.",
    ),
    click.option(
        "--devices",
        default="auto",
        show_default=True,
        help="Lightning devices: a count, ids like '0,1', or auto.",
    ),
]


def _devices(value: str) -> int | str:
    return int(value) if value.strip().isdigit() else value


def integrate_options(f):
    for option in reversed(_integrate_options):
        f = option(f)
    return f


@cli.command(short_help="Integrate batches with scVI: .rds/.h5ad in, .h5ad (and .rds) out.")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Integrated AnnData to write (.h5ad): every cell and gene, X_scVI, UMAPs, HVG flags, provenance.",
)
@click.option(
    "--rds-out",
    type=click.Path(path_type=Path),
    help="Also write an .rds: for .rds input the same Seurat/SCE object with reductions scVI and the scVI "
    "UMAP added; for .h5ad input a new object (see --rds-kind).",
)
@click.option(
    "--rds-kind",
    type=click.Choice(KINDS),
    help="Object type of --rds-out for .h5ad input [default: the type the .h5ad was converted from, else Seurat].",
)
@click.option("--batch-key", required=True, metavar="COLUMN", help="Cell metadata column with the batch.")
@integrate_options
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Write PNGs here: UMAP before/after by label and batch, HVGs per batch, training curve.",
)
@click.option(
    "--metrics",
    is_flag=True,
    help="Score unintegrated PCA, scVI and Harmony with scib-metrics; writes metrics.csv and "
    "metrics_table.png (into --plots DIR, else next to --output) and prints the table.",
)
@click.option(
    "--categorical-covariate",
    "categorical_covariates",
    multiple=True,
    metavar="COLUMN",
    help="Cell metadata column scVI also conditions on besides the batch (e.g. donor); repeatable.",
)
@click.option(
    "--continuous-covariate",
    "continuous_covariates",
    multiple=True,
    metavar="COLUMN",
    help="Numeric cell metadata column scVI conditions on (e.g. percent mitochondrial counts); repeatable.",
)
@click.option(
    "--scanvi",
    is_flag=True,
    help="Continue with scANVI from the trained scVI model (needs --labels-key): adds X_scANVI, "
    "obs['scanvi_prediction'] and obs['scanvi_probability'].",
)
@click.option(
    "--unlabeled-category",
    default="Unknown",
    show_default=True,
    metavar="LABEL",
    help="With --scanvi: the label of cells whose type is unknown (NA counts as unknown too).",
)
@click.option(
    "--scanvi-epochs",
    type=click.IntRange(min=1),
    help="With --scanvi: scANVI training epochs [default: scvi-tools' schedule].",
)
@click.option(
    "--corrected-genes",
    metavar="GENE,GENE",
    help="Write the batch-corrected normalised expression (scVI's decoder, library size 1e4) of these "
    "highly variable genes to obsm['scvi_normalized'], a cells x genes table; comma-separated.",
)
@click.option(
    "--transform-batch",
    metavar="BATCH",
    help="With --corrected-genes: decode every cell as if from this batch ('all': average over the "
    "batches) [default: each cell's own batch].",
)
@click.option(
    "--save-model",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Save the trained model (scANVI with --scanvi, else scVI) in scvi-tools' format to this new or "
    "empty directory, for 'pyscvibridge map'; recorded in uns['scvi_model'].",
)
@click.option(
    "--overwrite-model", is_flag=True, help="With --save-model: replace a non-empty model directory."
)
@click.option(
    "--strategy",
    metavar="NAME",
    help="Lightning training strategy, e.g. ddp, ddp_spawn, ddp_find_unused_parameters_true (with "
    "--devices N for several GPUs or CPU processes) [default: Lightning's].",
)
@click.pass_obj
def integrate(settings: Settings, input_path: Path, output: Path, rds_out, rds_kind, batch_key, **kw) -> None:
    """Integrate the batches of INPUT (.rds with a Seurat object or SingleCellExperiment, or .h5ad) with scVI.

    Optionally continue with scANVI (--scanvi), add batch-corrected expression of chosen genes
    (--corrected-genes) and save the model (--save-model) to map new samples onto it later
    ('pyscvibridge map').
    """
    extras = _extras(kw)
    _input_path(input_path)
    _output_path(output, ".h5ad", "--output", (input_path,))
    if rds_out is not None:
        _output_path(rds_out, ".rds", "--rds-out", (input_path, output))
    if rds_kind is not None and input_path.suffix.lower() == ".rds":
        msg = "--rds-kind is for .h5ad input; an .rds input is written back as its own type."
        raise PyscvibridgeError(msg)
    plots_dir, metrics = kw.pop("plots_dir"), kw.pop("metrics")
    if plots_dir is not None:
        check_writable_dir(plots_dir, "--plots directory")
    if metrics:
        _check_metrics_possible(kw["labels_key"])
    if extras.save_model is not None:
        _check_model_dir(extras.save_model, extras.overwrite_model)
        for p in (output, rds_out):
            if p is not None and p.resolve() == extras.save_model.resolve():
                msg = "--save-model must be a directory of its own, not an output file."
                raise PyscvibridgeError(msg)
    outputs = Outputs(
        h5ad=output,
        rds=rds_out,
        rds_kind=rds_kind,
        plots=plots_dir,
        metrics=(plots_dir or output.parent) if metrics else None,
    )
    kw["devices"] = _devices(kw["devices"])
    if kw["preset"] is None:
        del kw["preset"]  # the library's default
    adata, robj = _read(input_path)
    _run(settings, adata, robj, outputs, batch_key=batch_key, metrics=metrics, extras=extras, **kw)


def _extras(kw: dict) -> Extras:
    """Take integrate's post-scVI options out of ``kw`` (checking how they combine); adapt the rest."""
    genes = kw.pop("corrected_genes")
    extras = Extras(
        scanvi=kw.pop("scanvi"),
        unlabeled_category=kw.pop("unlabeled_category"),
        scanvi_epochs=kw.pop("scanvi_epochs"),
        corrected_genes=[] if genes is None else [g.strip() for g in genes.split(",") if g.strip()],
        transform_batch=kw.pop("transform_batch"),
        save_model=kw.pop("save_model"),
        overwrite_model=kw.pop("overwrite_model"),
    )
    if extras.scanvi and kw["labels_key"] is None:
        msg = "--scanvi needs --labels-key: scANVI learns from the known cell labels in that column."
        raise click.UsageError(msg)
    if extras.scanvi_epochs is not None and not extras.scanvi:
        msg = "--scanvi-epochs is for --scanvi."
        raise click.UsageError(msg)
    if genes is not None and not extras.corrected_genes:
        msg = "--corrected-genes is empty: name genes separated by commas, e.g. --corrected-genes CD3E,MS4A1."
        raise click.UsageError(msg)
    if extras.corrected_genes:
        extras.corrected_genes = list(dict.fromkeys(extras.corrected_genes))
    if extras.transform_batch is not None and not extras.corrected_genes:
        msg = "--transform-batch is for --corrected-genes."
        raise click.UsageError(msg)
    if extras.overwrite_model and extras.save_model is None:
        msg = "--overwrite-model is for --save-model."
        raise click.UsageError(msg)
    cat, cont = kw.pop("categorical_covariates"), kw.pop("continuous_covariates")
    if cat:
        kw["categorical_covariate_keys"] = list(cat)
    if cont:
        kw["continuous_covariate_keys"] = list(cont)
    strategy = kw.pop("strategy")
    if strategy is not None:
        kw["train_kwargs"] = {"strategy": strategy}
    return extras


# ---------------------------------------------------------------- map


@cli.command("map", short_help="Map new samples onto a saved model: .rds/.h5ad query in, .h5ad out.")
@click.argument("query_path", metavar="QUERY", type=click.Path(path_type=Path))
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="A model directory written by 'pyscvibridge integrate --save-model DIR' (scVI or scANVI).",
)
@click.option(
    "--batch-key", required=True, metavar="COLUMN", help="Cell metadata column with the query's batches."
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Mapped query to write (.h5ad): X_scVI in the reference's latent space, X_umap, and for a "
    "scANVI model X_scANVI and obs['scanvi_prediction'] / ['scanvi_probability'].",
)
@click.option(
    "--layer",
    metavar="NAME",
    help="Layer with raw counts (default: 'counts' if present, else X).",
)
@click.option(
    "--max-epochs",
    type=click.IntRange(min=1),
    help="Query training epochs [default: min(round(20000 / n_cells * 400), 400)].",
)
@click.option(
    "--labels-key",
    metavar="COLUMN",
    help="Query column with known labels: with a scANVI model, report how often the predictions agree.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (scvi-tools, UMAP).")
@click.option(
    "--accelerator",
    type=click.Choice(["auto", "cpu", "gpu", "cuda", "mps"], case_sensitive=False),
    default="auto",
    show_default=True,
    help="Lightning accelerator for training.",
)
@click.option(
    "--devices",
    default="auto",
    show_default=True,
    help="Lightning devices: a count, ids like '0,1', or auto.",
)
@click.pass_obj
def map_(
    settings: Settings,
    query_path: Path,
    model_dir: Path,
    batch_key: str,
    output: Path,
    layer: str | None,
    max_epochs: int | None,
    labels_key: str | None,
    seed: int,
    accelerator: str,
    devices: str,
) -> None:
    """Map the cells of QUERY (.rds or .h5ad) onto a saved reference model (scArches).

    Genes are matched by name (Seurat's '_' -> '-' renames included); only the new batches' weights are
    trained. With a scANVI model the query also gets predicted labels.
    """
    started = time.perf_counter()
    _input_path(query_path)
    _output_path(output, ".h5ad", "--output", (query_path,))
    if not (model_dir / "model.pt").is_file():
        what = "does not exist" if not model_dir.exists() else "holds no model.pt"
        msg = (
            f"--model {str(model_dir)!r} {what}: give a directory written by "
            "'pyscvibridge integrate --save-model DIR'."
        )
        raise PyscvibridgeError(msg)
    from ._checks import check_obs_key
    from ._query import map_query

    query, _ = _read(query_path)
    check_obs_key(query, batch_key, "batch_key")
    if labels_key is not None:
        check_obs_key(query, labels_key, "labels_key")
    _quiet_libraries(settings)
    silence = contextlib.redirect_stdout(io.StringIO()) if settings.quiet else contextlib.nullcontext()
    with silence:
        query = map_query(
            query,
            model_dir,
            batch_key=batch_key,
            layer=layer,
            max_epochs=max_epochs,
            seed=seed,
            accelerator=accelerator,
            devices=_devices(devices),
            progress=not settings.quiet,
        )
    _write_h5ad(query, output)

    rec = query.uns["scvi_query"]
    renamed = len(rec["renamed_genes"]["query"])
    settings.echo(
        f"Mapped {query.n_obs:,} cells of {query.obs[batch_key].nunique()} batches of {batch_key!r} onto the "
        f"{rec['model_class']} model in {rec['model_dir']}: {rec['n_shared_genes']:,} of its "
        f"{rec['n_reference_genes']:,} genes found"
        + (f" ({renamed:,} by '_' -> '-')" if renamed else "")
        + f"; trained {rec['epochs_run']} epochs; everything {time.perf_counter() - started:.0f} s."
    )
    if "scanvi_prediction" in query.obs:
        counts = query.obs["scanvi_prediction"].value_counts()
        settings.echo("Predicted labels: " + ", ".join(f"{k} {v:,}" for k, v in counts.items() if v))
        if labels_key is not None:
            agree = float(
                (query.obs["scanvi_prediction"].astype(str) == query.obs[labels_key].astype(str)).mean()
            )
            settings.echo(f"The predictions agree with {labels_key!r} for {100 * agree:.1f}% of the cells.")
    settings.echo(f"Wrote:\n  {output}")


# ---------------------------------------------------------------- convert, inspect, demo


@cli.command(short_help="Convert .rds (Seurat/SCE) <-> .h5ad, printing what went where.")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output", metavar="OUTPUT", type=click.Path(path_type=Path))
@click.option("--assay", help="Seurat: the assay to convert (default: active); SCE: the assay to use as X.")
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    help="For .h5ad -> .rds: the R object to make [default: the type the .h5ad came from, else Seurat].",
)
@click.pass_obj
def convert(settings: Settings, input_path: Path, output: Path, assay: str | None, kind: str | None) -> None:
    """Convert INPUT to OUTPUT: .rds (Seurat or SingleCellExperiment) <-> .h5ad; prints what went where."""
    _input_path(input_path)
    src, dst = input_path.suffix.lower(), output.suffix.lower()
    if dst not in INPUT_SUFFIXES or dst == src:
        want = ".h5ad" if src == ".rds" else ".rds"
        msg = f"OUTPUT {str(output)!r} must end in {want} (converting from {src})."
        raise PyscvibridgeError(msg)
    _output_path(output, dst, "OUTPUT", (input_path,))
    if src == ".rds":
        if kind is not None:
            msg = "--kind is for .h5ad -> .rds conversion."
            raise PyscvibridgeError(msg)
        from .convert import from_r
        from .convert._api import read_r_object

        adata = from_r(read_r_object(input_path), assay=assay)
        adata.uns["conversion"]["details"]["file"] = str(input_path)
        _write_h5ad(adata, output)
        manifest = dict(adata.uns["conversion"])
    else:
        if assay is not None:
            msg = "--assay is for .rds -> .h5ad conversion."
            raise PyscvibridgeError(msg)
        adata, _ = _read(input_path)
        manifest = _to_rds(adata, output, _rds_kind(adata, kind))
    settings.echo(_format_manifest(manifest))
    settings.echo(f"{adata.n_obs:,} cells x {adata.n_vars:,} genes; wrote {output}")


@cli.command(short_help="Show a file's object type, layers, size and metadata columns.")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@click.pass_obj
def inspect(settings: Settings, path: Path) -> None:
    """Show what FILE (.rds or .h5ad) holds, to choose --batch-key, --labels-key and --layer."""
    from ._checks import counts_problem

    _input_path(path)
    adata, _ = _read(path)
    man = dict(adata.uns.get("conversion", {}))
    details = dict(man.get("details", {}))
    kind = man.get("source", "AnnData") if path.suffix.lower() == ".rds" else "AnnData"
    extra = ", ".join(f"{k} {details[k]}" for k in ("assay", "assay_class", "SeuratObject") if k in details)
    out = [f"{path}: {kind}" + (f" ({extra})" if extra else "")]
    out.append(f"  cells x genes: {adata.n_obs:,} x {adata.n_vars:,}")
    if "assays" in details:
        out.append(f"  assays: {_short(details['assays'])}")
    rows = [("X", adata.X)] + [(f"layers[{k!r}]", v) for k, v in adata.layers.items()]
    out.append("  matrices:")
    for name, x in rows:
        if x is None:
            continue
        problem = counts_problem(x)
        verdict = "raw counts" if problem is None else f"not raw counts ({problem})"
        out.append(f"    {name}: {verdict}")
    if len(adata.obsm):
        out.append("  embeddings: " + ", ".join(f"{k} ({v.shape[1]} dims)" for k, v in adata.obsm.items()))
    out.append(f"  cell metadata ({adata.obs.shape[1]} columns):")
    width = max((len(str(c)) for c in adata.obs.columns), default=0)
    candidates = []
    for col in adata.obs.columns:
        s = adata.obs[col]
        n = int(s.nunique(dropna=True))
        kind_s = "categorical" if str(s.dtype) == "category" else str(s.dtype)
        na = int(s.isna().sum())
        example = ""
        if kind_s in ("categorical", "object", "bool") or n <= 20:
            levels = (
                list(s.cat.categories) if kind_s == "categorical" else sorted(map(str, s.dropna().unique()))
            )
            example = ": " + _short(list(map(str, levels)), 5)
            if 2 <= n <= 100 and n < adata.n_obs / 2:
                candidates.append(str(col))
        na_s = f", {na} NA" if na else ""
        unit = "levels" if kind_s in ("categorical", "object", "bool") else "values"
        out.append(f"    {col!s:<{width}}  {kind_s:<11} {n:>6} {unit}{na_s}{example}")
    if candidates:
        out.append(f"  possible batch or label keys: {', '.join(candidates)}")
    click.echo("\n".join(out))  # inspect's output is its result: shown even with -q


@cli.command(short_help="Integrate the bundled CellBench data; write .h5ad, plots, metrics.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("results/cellbench"),
    show_default=True,
    help="Directory for the integrated .h5ad, the PNGs and the metrics.",
)
@click.option(
    "--max-epochs",
    type=click.IntRange(min=1),
    help="Training epochs [default: the default preset's schedule].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--accelerator",
    type=click.Choice(["auto", "cpu", "gpu", "cuda", "mps"], case_sensitive=False),
    default="auto",
    show_default=True,
    help="Lightning accelerator for training.",
)
@click.option("--metrics/--no-metrics", default=True, show_default=True, help="Compute scib-metrics.")
@click.pass_obj
def demo(settings: Settings, out_dir: Path, max_epochs, seed, accelerator, metrics) -> None:
    """Integrate the bundled CellBench data (1,408 cells, 5 batches, 5 cell lines) with plots and metrics."""
    from .datasets import cellbench

    check_writable_dir(out_dir, "--out directory")
    h5ad = out_dir / "cellbench_integrated.h5ad"
    outputs = Outputs(h5ad=h5ad, plots=out_dir, metrics=out_dir if metrics else None)
    settings.echo(
        "CellBench: batch_key='batch' (5 protocols/plates), labels_key='cell_line' (5 lines)", err=True
    )
    _run(
        settings,
        cellbench(),
        None,
        outputs,
        batch_key="batch",
        labels_key="cell_line",
        metrics=metrics,
        max_epochs=max_epochs,
        seed=seed,
        accelerator=accelerator,
    )
    settings.echo(f"\nResults are in {out_dir}/")


def main(args: list[str] | None = None) -> int:
    """Console-script entry point (``pyscvibridge``)."""
    return cli.main(args=args, prog_name="pyscvibridge")


if __name__ == "__main__":
    main()
