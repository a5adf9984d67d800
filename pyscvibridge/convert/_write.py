"""AnnData -> Seurat / SingleCellExperiment (placeholder, filled in next)."""

from __future__ import annotations


def to_r(adata, *, kind="Seurat", assay="RNA"):
    raise NotImplementedError


def write_rds(adata, path, *, kind="Seurat", assay="RNA"):
    raise NotImplementedError
