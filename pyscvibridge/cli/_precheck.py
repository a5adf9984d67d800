"""Every cheap check of a run, after reading the input and before scvi-tools, PyTorch or any training.

Importing scvi-tools and Lightning takes tens of seconds on a small machine, and a run can train for
an hour before it writes its files: a wrong key, a log-normalised layer or names an ``.rds`` output
cannot hold are found here first, in about a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._checks import counts_matrix
from .._errors import PyscvibridgeError
from .._pipeline import Spec, check

if TYPE_CHECKING:
    import anndata as ad


def before_training(
    adata: ad.AnnData,
    spec: Spec,
    *,
    spell: Mapping[str, str | None],
    rds_out: Any = None,
    rds_kind: str | None = None,
    robj: Any = None,
) -> None:
    """The pipeline's checks, the raw counts, and (with ``--rds-out``) names R can take back."""
    check(adata, spec, spell=spell)
    layer = spell.get("layer") or "--layer"
    try:
        counts_matrix(adata, spec.layer)
    except PyscvibridgeError as e:
        msg = (
            str(e).replace("layer='counts'", f"{layer} counts").replace("layer=None to use X", "leave it out")
        )
        raise PyscvibridgeError(msg) from None
    if rds_out is not None:
        from ._files import rds_kind as kind_of

        new_seurat = robj is None and kind_of(adata, rds_kind) == "Seurat"
        rds_names(adata, rds_out, new_seurat=new_seurat)


def rds_names(adata: ad.AnnData, rds_out, *, new_seurat: bool) -> None:
    """Cell and gene names an R object can hold: unique, and for a new Seurat object unique after
    Seurat turns '_' and '|' into '-' (otherwise writing --rds-out fails after all the training)."""
    import pandas as pd

    checks = [("cell", pd.Index(adata.obs_names)), ("gene", pd.Index(adata.var_names))]
    if new_seurat and not checks[1][1].has_duplicates:
        seurat = pd.Index([str(n).replace("_", "-").replace("|", "-") for n in adata.var_names])
        checks.append(("gene (after Seurat's '_' and '|' -> '-')", seurat))
    for what, names in checks:
        if names.has_duplicates:
            dups = sorted({str(n) for n in names[names.duplicated()]})
            shown = ", ".join(repr(d) for d in dups[:5]) + (", ..." if len(dups) > 5 else "")
            msg = (
                f"--rds-out {str(rds_out)!r}: {len(dups)} {what} names occur more than once ({shown}), "
                "which the R object cannot hold. Make them unique first (AnnData: obs_names_make_unique() / "
                "var_names_make_unique()), or leave --rds-out out."
            )
            raise PyscvibridgeError(msg)
