"""Is the converted assay gene expression? A check on the conversion's record, before any training.

A Seurat object from CITE-seq, a multiome or a hashing experiment has several assays (RNA, ADT,
HTO, ATAC / peaks), and the active one is not always RNA. scVI models RNA counts: integrating 30
antibody tags trains, but on the wrong data. :func:`assay_problem` reads what the conversion
recorded (``uns["conversion"]["details"]``: the assay converted, every assay with its size, a
SingleCellExperiment's altExps) and says why the data does not look like gene expression, naming
the assays there are and how to pick one; every door calls it through the pipeline's check.

Not gene expression, when either holds:

- the assay's name is that of another modality (:data:`OTHER_MODALITY`: ADT, HTO, ATAC, peaks,
  prot / protein, antibody, CITE, chromVAR, motifs; case-insensitive, as a prefix: ``ADT_raw``);
- it has at most a quarter of ``n_top_genes`` features while another assay (altExp) has at
  least four times as many: the larger one is the transcriptome. A lone small assay (a test
  object, ``pbmc_small``'s 230 genes) is integrated as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import _conventions as conv

if TYPE_CHECKING:
    import anndata as ad

#: Assay names of modalities that are not gene expression (matched at the start, any case).
OTHER_MODALITY = re.compile(
    r"^(adt|hto|atac|peaks?|prot|proteins?|antibod(?:y|ies)|cite|chromvar|motifs?)(?![a-z])", re.IGNORECASE
)
#: "Far fewer" features than the highly variable genes asked for: at most this fraction of them.
FEW_FEATURES = 0.25


def other_modality(name: str) -> bool:
    """Whether an assay's name says it holds something other than gene expression."""
    return bool(OTHER_MODALITY.match(str(name)))


def setting(option: str, value: str, quote: Callable[[Any], str] = repr) -> str:
    """How a door writes an option with a value: ``--assay RNA`` (CLI), ``assay = "RNA"`` (R)."""
    if option.startswith("-"):
        return f"{option} {value}"
    return f"{option} = {quote(value)}"


def _few(n: int, others: Mapping[str, int], n_top_genes: int) -> bool:
    return n <= FEW_FEATURES * n_top_genes and any(m >= 4 * max(n, 1) for m in others.values())


def _size(info: Mapping[str, Any]) -> str:
    return f"{int(info['n_features']):,} features x {int(info['n_cells']):,} cells"


def assay_problem(
    adata: ad.AnnData,
    n_top_genes: int = conv.N_TOP_GENES,
    *,
    option: str = "assay",
    n_top_option: str = "n_top_genes",
    quote: Callable[[Any], str] = repr,
) -> str | None:
    """Why ``adata``'s data does not look like gene expression (a message), or ``None``.

    Reads ``uns["conversion"]["details"]``; data with no such record (an AnnData made in Python)
    passes. ``option`` and ``n_top_option`` are how the door spells the assay and the number of
    highly variable genes (``--assay``, ``assay``), ``quote`` how it quotes values.
    """
    details = dict(dict(adata.uns.get(conv.UNS_CONVERSION, {})).get("details", {}))
    if "assay_table" in details or "assay_class" in details:
        return _seurat_problem(adata, details, n_top_genes, option, n_top_option, quote)
    if "alt_exps" in details:
        return _sce_problem(adata, details, n_top_genes, n_top_option, quote)
    return None


def _seurat_problem(adata, details, n_top_genes, option, n_top_option, quote) -> str | None:
    chosen = str(details.get("assay", ""))
    table = {str(k): dict(v) for k, v in dict(details.get("assay_table", {})).items()}
    n = int(table[chosen]["n_features"]) if chosen in table else adata.n_vars
    others = {k: int(v["n_features"]) for k, v in table.items() if k != chosen}
    why = []
    if other_modality(chosen):
        why.append("its name is that of another modality (antibody or hashing tags, ATAC peaks)")
    if _few(n, others, n_top_genes):
        why.append(
            f"it has {n:,} features, far fewer than {n_top_option} {n_top_genes:,}, while another assay has "
            "many more"
        )
    if not why:
        return None
    active = str(details.get("active_assay", ""))
    listed = [f"{name} ({_size(info)}{', active' if name == active else ''})" for name, info in table.items()]
    candidates = [k for k in others if not other_modality(k)]
    best = max(candidates, key=others.__getitem__) if candidates else None
    msg = (
        f"assay {quote(chosen)} does not look like gene expression: {' and '.join(why)}. scVI integrates "
        "RNA counts."
    )
    if listed:
        msg += f" Assays in this object: {'; '.join(listed)}."
    if best is not None:
        msg += f" Pick the gene-expression assay: {setting(option, best, quote)}."
    elif table:
        msg += " None of them looks like gene expression; for proteins, see scvi-tools' totalVI."
    else:
        msg += f" Pick the gene-expression assay with {option}."
    return msg


def _sce_problem(adata, details, n_top_genes, n_top_option, quote) -> str | None:
    alt = {str(k): dict(v) for k, v in dict(details.get("alt_exps", {})).items()}
    others = {k: int(v["n_features"]) for k, v in alt.items()}
    if not _few(adata.n_vars, others, n_top_genes):
        return None
    best = max(others, key=others.__getitem__)
    listed = "; ".join(f"{name} ({_size(info)})" for name, info in alt.items())
    return (
        f"the SingleCellExperiment's main experiment does not look like gene expression: it has "
        f"{adata.n_vars:,} features, far fewer than {n_top_option} {n_top_genes:,}, while its altExps are "
        f"{listed}. scVI integrates RNA counts. Make the gene-expression one the main experiment in R: "
        f'sce <- SingleCellExperiment::swapAltExp(sce, {quote(best)}, saved = "main").'
    )
