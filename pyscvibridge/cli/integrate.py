"""``pyscvibridge integrate``: read, run the pipeline, score, write the files, print a summary."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import _conventions as conv
from .._atomic import atomic_path, check_writable_dir
from .._errors import PyscvibridgeError
from .._pipeline import OptionError, Spec, run
from . import _files
from ._common import (
    Settings,
    accelerator_option,
    cli,
    devices_option,
    max_epochs_option,
    parse_devices,
    progress,
    quiet_libraries,
    quiet_stdout,
    seed_option,
    trust_option,
)
from ._precheck import before_training

if TYPE_CHECKING:
    import anndata as ad

#: How the CLI spells the pipeline's options in messages.
SPELLING = {
    "assay": "--assay",
    "batch_key": "--batch-key",
    "labels_key": "--labels-key",
    "layer": "--layer",
    "categorical_covariate_keys": "--categorical-covariate",
    "continuous_covariate_keys": "--continuous-covariate",
    "n_top_genes": "--n-top-genes",
    "n_latent": "--n-latent",
    "preset": "--preset",
    "max_epochs": "--max-epochs",
    "seed": "--seed",
    "genes": "genes",
    "scanvi": "--scanvi",
    "scanvi_epochs": "--scanvi-epochs",
    "corrected_genes": "--corrected-genes",
    "transform_batch": "--transform-batch",
    "save_model": "--save-model",
    "overwrite_model": "--overwrite-model",
    "n_layers": "--n-layers",
    "n_hidden": "--n-hidden",
    "gene_likelihood": "--gene-likelihood",
    "dispersion": "--dispersion",
    "dropout_rate": "--dropout-rate",
}


@dataclass
class Outputs:
    h5ad: Path
    rds: Path | None = None
    rds_kind: str | None = None
    plots: Path | None = None
    metrics: Path | None = None
    written: list[Path] = field(default_factory=list)


def run_and_write(
    settings: Settings, adata: ad.AnnData, robj: Any, outputs: Outputs, spec: Spec, *, metrics: bool
) -> None:
    """The pipeline -> metrics -> the data files (all or nothing) -> plots; then the summary."""
    started = time.perf_counter()
    if metrics:
        check_metrics_possible(spec.labels_key)
    before_training(adata, spec, spell=SPELLING, rds_out=outputs.rds, rds_kind=outputs.rds_kind, robj=robj)
    quiet_libraries(settings)
    with quiet_stdout(settings):
        result = run(adata, spec, spell=SPELLING, **progress(settings))
    adata = result.adata
    if spec.save_model is not None:
        outputs.written.append(Path(spec.save_model))

    table = None
    if metrics:
        from ..metrics import benchmark

        settings.echo(
            "Scoring the embeddings with scib-metrics (unintegrated PCA, scVI, Harmony) ...", err=True
        )
        table = benchmark(adata, batch_key=spec.batch_key, labels_key=spec.labels_key, seed=spec.seed)

    with contextlib.ExitStack() as stack:  # all-or-nothing for the data files
        h5_tmp = stack.enter_context(atomic_path(outputs.h5ad, mkdir=True))
        rds_tmp = stack.enter_context(atomic_path(outputs.rds, mkdir=True)) if outputs.rds else None
        _files.write_h5ad_to(adata, h5_tmp, outputs.h5ad)
        if rds_tmp is not None:
            from .. import convert

            if robj is not None:
                out = convert.add_results(robj, adata, misc=_files.misc(adata))
            else:
                out = convert.to_r(adata, kind=outputs.rds_kind or _files.rds_kind(adata, None))
            _files.save_rds_to(out, rds_tmp, outputs.rds)
    outputs.written[:0] = [p for p in (outputs.h5ad, outputs.rds) if p is not None]

    if outputs.plots is not None:
        from ..plots import save_plots

        outputs.written += list(
            save_plots(adata, outputs.plots, batch_key=spec.batch_key, labels_key=spec.labels_key).values()
        )
    if table is not None:
        from ..metrics import save_metrics

        outputs.written += list(save_metrics(table, outputs.metrics).values())

    prov = adata.uns[conv.UNS_INTEGRATION]
    settings.echo(
        f"Integrated {adata.n_obs:,} cells x {adata.n_vars:,} genes "
        f"({prov['n_hvg']:,} highly variable) over {adata.obs[spec.batch_key].nunique()} batches of "
        f"{spec.batch_key!r}: scVI trained {prov['epochs_run']} epochs; the integration took "
        f"{prov['seconds']:.0f} s, everything {time.perf_counter() - started:.0f} s."
    )
    for line in result.added:
        settings.echo(line)
    settings.echo("Wrote:")
    for path in outputs.written:
        settings.echo(f"  {path}")
    if table is not None:
        from ..metrics import format_table

        settings.echo(
            "\nscib-metrics (higher is better; Total = 0.4 batch correction + 0.6 bio conservation):"
        )
        settings.echo(format_table(table))


def check_metrics_possible(labels_key: str | None) -> None:
    if labels_key is None:
        msg = "--metrics needs --labels-key: bio conservation is measured against known cell labels."
        raise PyscvibridgeError(msg)
    from .._errors import import_or_hint

    import_or_hint("scib_metrics", "metrics")
    import_or_hint("harmonypy", "metrics")


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
    type=click.Choice(_files.KINDS),
    help="Object type of --rds-out for .h5ad input [default: the type the .h5ad was converted from, else Seurat].",
)
@click.option(
    "--batch-key",
    metavar="COLUMN",
    help="Cell metadata column with the batch [default for a Seurat v5 object with split layers "
    "(counts.<batch>): the split].",
)
@click.option(
    "--assay",
    metavar="NAME",
    help="Seurat .rds: the assay with the gene expression [default: the active one]. An assay that does "
    "not look like gene expression (ADT, HTO, ATAC, peaks; far fewer features than --n-top-genes) is refused.",
)
@click.option(
    "--labels-key",
    metavar="COLUMN",
    help="Cell metadata column with known cell types; used by the plots and needed by --metrics.",
)
@click.option(
    "--layer",
    metavar="NAME",
    help="Layer with raw counts (default: 'counts' if present, else X). From an .rds, Seurat's counts "
    "and SCE's counts assay are the 'counts' layer.",
)
@click.option(
    "--n-top-genes",
    type=click.IntRange(min=1),
    default=conv.N_TOP_GENES,
    show_default=True,
    help="Highly variable genes.",
)
@click.option(
    "--n-latent",
    type=click.IntRange(min=1),
    default=conv.N_LATENT,
    show_default=True,
    help="scVI latent size.",
)
@max_epochs_option("the preset's schedule")
@click.option(
    "--preset",
    type=click.Choice(list(conv.PRESETS)),
    help="Training schedule: 'fast' (a quarter of the epochs at a higher learning rate) or "
    f"'scvi-tools' (its defaults, as in the scVI tutorial) [default: {conv.DEFAULT_PRESET}].",
)
@seed_option
@accelerator_option
@devices_option
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
    default=conv.UNLABELED_CATEGORY,
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
@trust_option
@click.option("--n-layers", type=int, help="scVI's hidden layers [default: scvi-tools' 1].")
@click.option("--n-hidden", type=int, help="Nodes per hidden layer [default: scvi-tools' 128].")
@click.option(
    "--gene-likelihood",
    type=click.Choice(list(conv.GENE_LIKELIHOODS)),
    help="Count distribution [default: scvi-tools' zinb].",
)
@click.option(
    "--dispersion",
    type=click.Choice(list(conv.DISPERSIONS)),
    help="Dispersion parameter per gene, gene and batch, ... [default: scvi-tools' gene].",
)
@click.option("--dropout-rate", type=float, help="Encoder dropout, in [0, 1) [default: scvi-tools' 0.1].")
@click.pass_obj
def integrate(settings: Settings, input_path: Path, output: Path, rds_out, rds_kind, **kw) -> None:
    """Integrate the batches of INPUT (.rds with a Seurat object or SingleCellExperiment, or .h5ad) with scVI.

    Optionally continue with scANVI (--scanvi), add batch-corrected expression of chosen genes
    (--corrected-genes) and save the model (--save-model) to map new samples onto it later
    ('pyscvibridge map').
    """
    plots_dir, metrics, assay = kw.pop("plots_dir"), kw.pop("metrics"), kw.pop("assay")
    trust = kw.pop("trust")
    spec = parse_spec(kw)
    _files.input_path(input_path)
    _files.output_path(output, ".h5ad", "--output", (input_path,))
    if rds_out is not None:
        _files.output_path(rds_out, ".rds", "--rds-out", (input_path, output))
    if rds_kind is not None and input_path.suffix.lower() == ".rds":
        msg = "--rds-kind is for .h5ad input; an .rds input is written back as its own type."
        raise PyscvibridgeError(msg)
    if plots_dir is not None:
        check_writable_dir(plots_dir, "--plots directory")
    if metrics:
        check_metrics_possible(spec.labels_key)
    if spec.save_model is not None:
        for p in (output, rds_out):
            if p is not None and p.resolve() == Path(spec.save_model).resolve():
                msg = "--save-model must be a directory of its own, not an output file."
                raise PyscvibridgeError(msg)
    outputs = Outputs(
        h5ad=output,
        rds=rds_out,
        rds_kind=rds_kind,
        plots=plots_dir,
        metrics=(plots_dir or output.parent) if metrics else None,
    )
    adata, robj = _files.read(input_path, assay=assay, trust=trust)
    default_batch_key(settings, adata, spec, input_path)
    try:
        run_and_write(settings, adata, robj, outputs, spec, metrics=metrics)
    except OptionError as e:
        if e.option != "assay" or robj is not None:
            raise
        src = dict(dict(adata.uns.get(conv.UNS_CONVERSION, {})).get("details", {})).get("file", "obj.rds")
        msg = (
            f"{e} --assay reads .rds files: convert the object again with the gene-expression assay, "
            f"e.g. 'pyscvibridge convert {src} OUT.h5ad --assay NAME'."
        )
        raise PyscvibridgeError(msg) from None


def default_batch_key(settings: Settings, adata: ad.AnnData, spec: Spec, path: Path) -> None:
    """Without --batch-key: the split of a split Seurat v5 object (as RunScVI() does), said; else an error."""
    if spec.batch_key is not None:
        return
    details = dict(dict(adata.uns.get(conv.UNS_CONVERSION, {})).get("details", {}))
    split = details.get("split_column")
    if split and split in adata.obs:
        spec.batch_key = str(split)
        settings.echo(
            f"Batches: the {adata.obs[spec.batch_key].nunique()} split layers of assay "
            f"{details.get('assay', '?')!r} (obs column {spec.batch_key!r}); pass --batch-key to use another column.",
            err=True,
        )
        return
    columns = ", ".join(map(str, adata.obs.columns[:12])) or "none"
    msg = (
        f"--batch-key is required: {str(path)!r} has no split layers to take the batches from. Name the "
        f"cell-metadata column that holds the batch (columns: {columns}; 'pyscvibridge inspect' shows them)."
    )
    raise click.UsageError(msg)


def parse_spec(kw: dict) -> Spec:
    """The pipeline's options from integrate's arguments; how they combine is a usage error."""
    genes = kw.pop("corrected_genes")
    corrected = None if genes is None else [g.strip() for g in genes.split(",") if g.strip()]
    if kw["scanvi"] and kw["labels_key"] is None:
        msg = "--scanvi needs --labels-key: scANVI learns from the known cell labels in that column."
        raise click.UsageError(msg)
    if kw["scanvi_epochs"] is not None and not kw["scanvi"]:
        msg = "--scanvi-epochs is for --scanvi."
        raise click.UsageError(msg)
    if genes is not None and not corrected:
        msg = "--corrected-genes is empty: name genes separated by commas, e.g. --corrected-genes CD3E,MS4A1."
        raise click.UsageError(msg)
    if kw["transform_batch"] is not None and not corrected:
        msg = "--transform-batch is for --corrected-genes."
        raise click.UsageError(msg)
    if kw["overwrite_model"] and kw["save_model"] is None:
        msg = "--overwrite-model is for --save-model."
        raise click.UsageError(msg)
    strategy = kw.pop("strategy")
    model = {name: kw.pop(name) for name in conv.MODEL_OPTIONS}
    return Spec(
        model_kwargs={name: value for name, value in model.items() if value is not None},
        categorical_covariate_keys=list(kw.pop("categorical_covariates")),
        continuous_covariate_keys=list(kw.pop("continuous_covariates")),
        corrected_genes=None if corrected is None else list(dict.fromkeys(corrected)),
        devices=parse_devices(kw.pop("devices"), kw["accelerator"], strategy),
        train_kwargs={} if strategy is None else {"strategy": strategy},
        **kw,
    )
