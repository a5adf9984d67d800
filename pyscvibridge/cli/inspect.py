"""``pyscvibridge inspect``: what a file holds, to choose --batch-key, --labels-key and --layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import _conventions as conv
from .._errors import PyscvibridgeError
from . import _files
from ._common import Settings, cli, trust_option


def _layers(names: list[str]) -> str:
    """Layer names with split ones grouped: ``counts.<5 split>, data.<5 split>``."""
    groups: dict[str, list[str]] = {}
    for n in map(str, names):
        base = "scale.data" if n.startswith("scale.data") else n.split(".")[0]
        groups.setdefault(base, []).append(n)
    return ", ".join(
        base if members == [base] else f"{base}.<{len(members)} split>" for base, members in groups.items()
    )


def assay_lines(details: dict) -> list[str]:
    """A Seurat object's assays (size, layers, which is active / converted: shown below), a
    SingleCellExperiment's assays and altExps (size), from the conversion's ``details``."""
    out = []
    table = {str(k): dict(v) for k, v in dict(details.get("assay_table", {})).items()}
    if table:
        active, chosen = str(details.get("active_assay", "")), str(details.get("assay", ""))
        out.append(f"  assays ({len(table)}{'; --assay picks one' if len(table) > 1 else ''}):")
        width = max(len(k) for k in table)
        for name, info in table.items():
            marks = [m for m, on in (("active", name == active), ("shown below", name == chosen)) if on]
            out.append(
                f"    {name:<{width}}  {info['class']:<8} {int(info['n_features']):>7,} features x "
                f"{int(info['n_cells']):,} cells; layers: {_layers(list(info['layers'])) or 'none'}"
                + (f"  ({', '.join(marks)})" if marks else "")
            )
    elif "assays" in details:
        out.append(f"  assays: {_files.short(details['assays'])}")
    alt = {str(k): dict(v) for k, v in dict(details.get("alt_exps", {})).items()}
    if alt:
        out.append(
            "  altExps (not converted; SingleCellExperiment::swapAltExp() makes one the main experiment):"
        )
        for name, info in alt.items():
            out.append(
                f"    {name}: {int(info['n_features']):,} features x {int(info['n_cells']):,} cells; "
                f"assays: {_files.short(list(info['assays'])) or 'none'}"
            )
    return out


def check_assay_option(obj: Any, assay: str, path: Path) -> None:
    """``--assay`` names an assay of the Seurat object in ``path`` (an error listing them otherwise)."""
    from ..convert import layout
    from ..convert._seurat import assay_table

    where = layout(obj, assay=assay)
    if where["kind"] != "Seurat":
        msg = (
            f"--assay is for Seurat objects; {str(path)!r} holds a SingleCellExperiment. Its raw counts are "
            "chosen with --layer (an assay name); an altExp becomes the main experiment with "
            "SingleCellExperiment::swapAltExp() in R."
        )
        raise PyscvibridgeError(msg)
    if assay not in where["assays"]:
        table = assay_table(obj)
        have = "; ".join(
            f"{name} ({int(i['n_features']):,} features x {int(i['n_cells']):,} cells)"
            for name, i in table.items()
        )
        msg = f"--assay {assay!r} is not an assay of {str(path)!r}; its assays: {have}."
        raise PyscvibridgeError(msg)


@cli.command(short_help="Show a file's object type, assays, layers, size and metadata columns.")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@click.option(
    "--assay",
    metavar="NAME",
    help="Seurat .rds: the assay to show the matrices of [default: the active one]; all are listed.",
)
@trust_option
@click.pass_obj
def inspect(settings: Settings, path: Path, assay: str | None, trust: bool) -> None:
    """Show what FILE (.rds or .h5ad) holds, to choose --assay, --batch-key, --labels-key and --layer."""
    from .._assays import assay_problem
    from .._checks import counts_problem

    _files.input_path(path)
    adata, _ = _files.read(path, assay=assay, trust=trust)
    man = dict(adata.uns.get(conv.UNS_CONVERSION, {}))
    details = dict(man.get("details", {}))
    kind = man.get("source", "AnnData") if path.suffix.lower() == ".rds" else "AnnData"
    extra = ", ".join(f"{k} {details[k]}" for k in ("assay", "assay_class", "SeuratObject") if k in details)
    out = [f"{path}: {kind}" + (f" ({extra})" if extra else "")]
    out.extend(assay_lines(details))
    out.append(f"  cells x genes: {adata.n_obs:,} x {adata.n_vars:,}")
    if (problem := assay_problem(adata, option="--assay", n_top_option="--n-top-genes")) is not None:
        out.append(f"  warning: {problem}")
    if split := details.get("split_column"):
        n = adata.obs[split].nunique() if split in adata.obs else 0
        out.append(
            f"  split layers: {n} (obs column {split!r}); integrate uses them as the batches unless --batch-key is given"
        )
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
            example = ": " + _files.short(list(map(str, levels)), 5)
            if 2 <= n <= 100 and n < adata.n_obs / 2:
                candidates.append(str(col))
        na_s = f", {na} NA" if na else ""
        unit = "levels" if kind_s in ("categorical", "object", "bool") else "values"
        out.append(f"    {col!s:<{width}}  {kind_s:<11} {n:>6} {unit}{na_s}{example}")
    if candidates:
        out.append(f"  possible batch or label keys: {', '.join(candidates)}")
    click.echo("\n".join(out))  # inspect's output is its result: shown even with -q
