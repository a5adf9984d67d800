"""``pyscvibridge inspect``: what a file holds, to choose --batch-key, --labels-key and --layer."""

from __future__ import annotations

from pathlib import Path

import click

from .. import _conventions as conv
from . import _files
from ._common import Settings, cli


@cli.command(short_help="Show a file's object type, layers, size and metadata columns.")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@click.pass_obj
def inspect(settings: Settings, path: Path) -> None:
    """Show what FILE (.rds or .h5ad) holds, to choose --batch-key, --labels-key and --layer."""
    from .._checks import counts_problem

    _files.input_path(path)
    adata, _ = _files.read(path)
    man = dict(adata.uns.get(conv.UNS_CONVERSION, {}))
    details = dict(man.get("details", {}))
    kind = man.get("source", "AnnData") if path.suffix.lower() == ".rds" else "AnnData"
    extra = ", ".join(f"{k} {details[k]}" for k in ("assay", "assay_class", "SeuratObject") if k in details)
    out = [f"{path}: {kind}" + (f" ({extra})" if extra else "")]
    out.append(f"  cells x genes: {adata.n_obs:,} x {adata.n_vars:,}")
    if "assays" in details:
        out.append(f"  assays: {_files.short(details['assays'])}")
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
