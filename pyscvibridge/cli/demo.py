"""``pyscvibridge demo``: integrate the bundled CellBench data with plots and metrics."""

from __future__ import annotations

from pathlib import Path

import click

from .._atomic import check_writable_dir
from .._pipeline import Spec
from ._common import Settings, accelerator_option, cli, max_epochs_option, parse_devices, seed_option
from .integrate import Outputs, run_and_write


@cli.command(short_help="Integrate the bundled CellBench data; write .h5ad, plots, metrics.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("results/cellbench"),
    show_default=True,
    help="Directory for the integrated .h5ad, the PNGs and the metrics.",
)
@max_epochs_option("the default preset's schedule")
@seed_option
@accelerator_option
@click.option("--metrics/--no-metrics", default=True, show_default=True, help="Compute scib-metrics.")
@click.pass_obj
def demo(settings: Settings, out_dir: Path, max_epochs, seed, accelerator, metrics) -> None:
    """Integrate the bundled CellBench data (1,408 cells, 5 batches, 5 cell lines) with plots and metrics."""
    from ..datasets import cellbench

    parse_devices("auto", accelerator)  # --accelerator gpu without a GPU: refused before anything runs
    check_writable_dir(out_dir, "--out directory")
    h5ad = out_dir / "cellbench_integrated.h5ad"
    outputs = Outputs(h5ad=h5ad, plots=out_dir, metrics=out_dir if metrics else None)
    settings.echo(
        "CellBench: batch_key='batch' (5 protocols/plates), labels_key='cell_line' (5 lines)", err=True
    )
    spec = Spec(
        batch_key="batch", labels_key="cell_line", max_epochs=max_epochs, seed=seed, accelerator=accelerator
    )
    run_and_write(settings, cellbench(), None, outputs, spec, metrics=metrics)
    settings.echo(f"\nResults are in {out_dir}/")
