"""``pyscvibridge map``: map a query onto a saved reference model."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .. import _conventions as conv
from .._errors import PyscvibridgeError
from .._pipeline import Spec
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
    "--batch-key",
    metavar="COLUMN",
    help="Cell metadata column with the query's batches [default for a Seurat v5 object with split "
    "layers: the split].",
)
@click.option(
    "--assay",
    metavar="NAME",
    help="Seurat .rds query: the assay with the gene expression [default: the active one].",
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
@max_epochs_option("min(round(20000 / n_cells * 400), 400)")
@click.option(
    "--labels-key",
    metavar="COLUMN",
    help="Query column with known labels: with a scANVI model, report how often the predictions agree.",
)
@seed_option
@accelerator_option
@devices_option
@trust_option
@click.pass_obj
def map_(
    settings: Settings,
    query_path: Path,
    model_dir: Path,
    batch_key: str | None,
    assay: str | None,
    output: Path,
    layer: str | None,
    max_epochs: int | None,
    labels_key: str | None,
    seed: int,
    accelerator: str,
    devices: str,
    trust: bool,
) -> None:
    """Map the cells of QUERY (.rds or .h5ad) onto a saved reference model (scArches).

    Genes are matched by name (Seurat's '_' -> '-' renames included); only the new batches' weights are
    trained. With a scANVI model the query also gets predicted labels.
    """
    started = time.perf_counter()
    devices_ = parse_devices(devices, accelerator)
    _files.input_path(query_path)
    _files.output_path(output, ".h5ad", "--output", (query_path,))
    if not (model_dir / "model.pt").is_file():
        what = "does not exist" if not model_dir.exists() else "holds no model.pt"
        msg = (
            f"--model {str(model_dir)!r} {what}: give a directory written by "
            "'pyscvibridge integrate --save-model DIR'."
        )
        raise PyscvibridgeError(msg)
    from .._assays import assay_problem
    from .._checks import check_obs_key
    from .._query import map_query
    from .integrate import default_batch_key

    query, _ = _files.read(query_path, assay=assay, trust=trust)
    if (problem := assay_problem(query, option="--assay", n_top_option="the usual")) is not None:
        raise PyscvibridgeError(problem)
    spec = Spec(batch_key=batch_key)
    default_batch_key(settings, query, spec, query_path)
    batch_key = str(spec.batch_key)
    check_obs_key(query, batch_key, "--batch-key")
    if labels_key is not None:
        check_obs_key(query, labels_key, "labels_key")
    quiet_libraries(settings)
    shown = progress(settings)
    with quiet_stdout(settings):
        query = map_query(
            query,
            model_dir,
            batch_key=batch_key,
            layer=layer,
            max_epochs=max_epochs,
            seed=seed,
            accelerator=accelerator,
            devices=devices_,
            progress=shown["progress"],
            train_kwargs={"callbacks": shown["callbacks"]("query")} if shown["callbacks"] else None,
        )
    _files.write_h5ad(query, output)

    rec = query.uns[conv.UNS_QUERY]
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
