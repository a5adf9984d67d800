"""``pyscvibridge convert``: .rds (Seurat / SingleCellExperiment) <-> .h5ad, printing what went where."""

from __future__ import annotations

from pathlib import Path

import click

from .. import _conventions as conv
from .._errors import PyscvibridgeError
from . import _files
from ._common import Settings, cli, trust_option


@cli.command(short_help="Convert .rds (Seurat/SCE) <-> .h5ad, printing what went where.")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output", metavar="OUTPUT", type=click.Path(path_type=Path))
@click.option("--assay", help="Seurat: the assay to convert (default: active); SCE: the assay to use as X.")
@click.option(
    "--kind",
    type=click.Choice(_files.KINDS),
    help="For .h5ad -> .rds: the R object to make [default: the type the .h5ad came from, else Seurat].",
)
@trust_option
@click.pass_obj
def convert(
    settings: Settings, input_path: Path, output: Path, assay: str | None, kind: str | None, trust: bool
) -> None:
    """Convert INPUT to OUTPUT: .rds (Seurat or SingleCellExperiment) <-> .h5ad; prints what went where."""
    _files.input_path(input_path)
    src, dst = input_path.suffix.lower(), output.suffix.lower()
    if dst not in _files.INPUT_SUFFIXES or dst == src:
        want = ".h5ad" if src == ".rds" else ".rds"
        msg = f"OUTPUT {str(output)!r} must end in {want} (converting from {src})."
        raise PyscvibridgeError(msg)
    _files.output_path(output, dst, "OUTPUT", (input_path,))
    if src == ".rds":
        if kind is not None:
            msg = "--kind is for .h5ad -> .rds conversion."
            raise PyscvibridgeError(msg)
        from ..convert import from_r, read_r_object

        adata = from_r(read_r_object(input_path, trust=trust, trust_hint="--trust"), assay=assay)
        adata.uns[conv.UNS_CONVERSION]["details"]["file"] = str(input_path)
        _files.write_h5ad(adata, output)
        manifest = dict(adata.uns[conv.UNS_CONVERSION])
    else:
        if assay is not None:
            msg = "--assay is for .rds -> .h5ad conversion."
            raise PyscvibridgeError(msg)
        adata, _ = _files.read(input_path, trust=trust)
        manifest = _files.to_rds(adata, output, _files.rds_kind(adata, kind))
    settings.echo(_files.format_manifest(manifest))
    settings.echo(f"{adata.n_obs:,} cells x {adata.n_vars:,} genes; wrote {output}")
