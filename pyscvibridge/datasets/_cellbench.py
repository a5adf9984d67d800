from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import anndata as ad


def cellbench() -> ad.AnnData:
    """CellBench cell-line mixtures: 1,408 cells x 11,533 genes, 5 technical batches, 5 cell lines.

    Real scRNA-seq of mixtures of lung adenocarcinoma cell lines profiled with CEL-seq2 (four plates /
    runs) and Drop-seq (Tian et al. 2019, Nature Methods 16, 479-487; data from
    github.com/LuyiTian/sc_mixology, MIT licence, see ``datasets/CELLBENCH.md`` in the package).

    Returns
    -------
    AnnData with raw UMI counts in ``X`` and ``layers["counts"]``, Ensembl gene IDs as ``var_names``
    and ``obs`` columns ``batch`` (5 levels, the protocol run / plate), ``protocol``, ``cell_line``
    (called from each cell's genotype by demuxlet: a true label), ``demuxlet_cls`` (SNG/DBL),
    ``total_count_per_cell`` and ``outlier``. Cells are named ``<batch>_<barcode>``, as in the Seurat
    v5 test fixtures.
    """
    import anndata as ad

    with files("pyscvibridge.datasets").joinpath("cellbench.h5ad").open("rb") as fh:
        adata = ad.read_h5ad(fh)
    adata.layers["counts"] = adata.X.copy()
    return adata
