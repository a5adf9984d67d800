"""Round trips value by value: v5 Seurat -> AnnData -> Seurat, SCE -> AnnData -> SCE; names; .rds files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyscvibridge import PyscvibridgeError
from pyscvibridge.convert import ORIGINAL_NAME_COLUMN, from_r, read_rds, to_r, write_rds

pytestmark = pytest.mark.r


def _assert_same_adata(a, b):
    assert list(a.obs_names) == list(b.obs_names)
    assert list(a.var_names) == list(b.var_names)
    pd.testing.assert_frame_equal(a.obs, b.obs)
    for key in ("counts", "logcounts"):
        assert (a.layers[key] != b.layers[key]).nnz == 0
    assert set(a.obsm) == set(b.obsm)
    for key in a.obsm:
        np.testing.assert_array_equal(a.obsm[key], b.obsm[key])
    for key in a.varm:
        np.testing.assert_array_equal(a.varm[key], b.varm[key])


@pytest.mark.parametrize("fixture", ["v5_joined_path", "v5_split_path"])
def test_v5_seurat_anndata_seurat(request, r, rglobal, read_r, fixture):
    obj = read_r(request.getfixturevalue(fixture))
    adata = from_r(obj)
    back = to_r(adata)
    rglobal["o"], rglobal["o2"] = obj, back
    # the same values, names and levels in R: compare with the v5 object's slots (SeuratObject 4 here
    # builds a v4 Assay)
    checks = r(
        """
        a <- o@assays$RNA
        joined <- function(prefix) {
          ln <- grep(paste0("^", prefix, "(\\\\.|$)"), names(a@layers), value = TRUE)
          cm <- a@cells@.Data; fm <- a@features@.Data
          parts <- lapply(ln, function(l) { m <- a@layers[[l]];
            dimnames(m) <- list(rownames(fm)[fm[, l]], rownames(cm)[cm[, l]]); m })
          m <- do.call(cbind, parts)
          m[, rownames(o@meta.data)]
        }
        meta <- o2@meta.data[, colnames(o@meta.data)]
        c(counts = identical(unname(as.matrix(joined("counts"))), unname(as.matrix(o2@assays$RNA@counts))),
          data = isTRUE(all.equal(unname(as.matrix(joined("data"))), unname(as.matrix(o2@assays$RNA@data)))),
          meta = identical(meta, o@meta.data),
          cells = identical(colnames(o2@assays$RNA@counts), rownames(o@meta.data)),
          features = identical(rownames(o2@assays$RNA@counts), rownames(a@features@.Data)),
          pca = identical(o@reductions$pca@cell.embeddings, o2@reductions$pca@cell.embeddings),
          loadings = identical(o@reductions$pca@feature.loadings, o2@reductions$pca@feature.loadings),
          key = identical(o2@reductions$pca@key, "PC_"),
          idents = identical(unname(o@active.ident), unname(o2@active.ident)))
        """
    )
    failed = [k for k, v in zip(checks.names, checks, strict=True) if not v]
    assert not failed
    again = from_r(back)
    if "split_layer" in adata.obs:
        assert "split_layer" in again.obs  # kept as a plain metadata column
    _assert_same_adata(adata, again)


@pytest.fixture
def sce(r, rglobal, read_r, v5_joined_path):
    """A SingleCellExperiment built in R from the small CellBench fixture, with every kind of part."""
    rglobal["o"] = read_r(v5_joined_path)
    return r(
        """
        suppressMessages(library(SingleCellExperiment))
        a <- o@assays$RNA
        dn <- list(rownames(a@features@.Data), rownames(a@cells@.Data))
        counts <- a@layers$counts; dimnames(counts) <- dn
        logc <- a@layers$data; dimnames(logc) <- dn
        cd <- DataFrame(o@meta.data, check.names = FALSE)
        cd$score <- ifelse(seq_len(ncol(counts)) %% 9 == 0, NA, seq_len(ncol(counts)) / 3)
        cd[["odd name ü"]] <- ifelse(seq_len(ncol(counts)) %% 4 == 0, NA, TRUE)
        rd <- DataFrame(symbol = paste0("S", seq_len(nrow(counts))), n = seq_len(nrow(counts)))
        pca <- o@reductions$pca@cell.embeddings; colnames(pca) <- NULL
        s <- SingleCellExperiment(list(counts = counts, logcounts = logc), colData = cd, rowData = rd,
                                  reducedDims = list(PCA = pca, UMAP = pca[, 1:2]),
                                  metadata = list(study = "cellbench", params = list(k = 10L, genes = c("a", "b"))))
        altExp(s, "spike") <- SingleCellExperiment(list(counts = counts[1:3, ]))
        s
        """
    )


def test_sce_anndata_sce(r, rglobal, sce):
    adata = from_r(sce)
    assert adata.obs["odd name ü"].dtype == "boolean"
    assert adata.obs["score"].isna().sum() == 400 // 9
    assert set(adata.obsm) == {"X_pca", "X_umap"}
    assert adata.uns["study"] == "cellbench"
    assert "altExp 'spike'" in adata.uns["conversion"]["dropped"]
    back = to_r(adata, kind="SingleCellExperiment")
    rglobal["s"], rglobal["s2"] = sce, back
    checks = r(
        """
        c(counts = identical(assay(s, "counts"), assay(s2, "counts")),
          logcounts = identical(assay(s, "logcounts"), assay(s2, "logcounts")),
          assays = identical(assayNames(s), assayNames(s2)),
          coldata = identical(as.data.frame(colData(s), optional = TRUE), as.data.frame(colData(s2), optional = TRUE)),
          rowdata = identical(as.data.frame(rowData(s)), as.data.frame(rowData(s2))),
          pca = identical(unname(reducedDim(s, "PCA")), unname(reducedDim(s2, "PCA"))),
          umap = identical(unname(reducedDim(s, "UMAP")), unname(reducedDim(s2, "UMAP"))),
          rd_names = identical(reducedDimNames(s), reducedDimNames(s2)),
          metadata = identical(metadata(s), metadata(s2)),
          names = identical(dimnames(s), dimnames(s2)))
        """
    )
    failed = [k for k, v in zip(checks.names, checks, strict=True) if not v]
    assert not failed
    _assert_same_adata(adata, from_r(back))


def test_sce_duplicated_cells_and_no_counts(r):
    dup = r(
        """
        suppressMessages(library(SingleCellExperiment))
        m <- matrix(1:20 + 0, 4, 5, dimnames = list(paste0("g", 1:4), c("a", "b", "a", "c", "d")))
        SingleCellExperiment(list(counts = m))
        """
    )
    with pytest.raises(PyscvibridgeError, match=r"duplicated cell names \(e.g. \['a'\]\).*make.unique"):
        from_r(dup)
    no_counts = r("SingleCellExperiment(list(logcounts = matrix(runif(20), 4, 5)))")
    adata = from_r(no_counts)
    assert "counts" not in adata.layers
    assert any("no 'counts' assay" in n for n in adata.uns["conversion"]["notes"])
    with pytest.raises(
        PyscvibridgeError, match=r"assay 'counts' is not in this SingleCellExperiment; it has \['logcounts'\]"
    ):
        from_r(no_counts, assay="counts")


def test_feature_renames_reported_and_recovered(r, rglobal):
    import anndata as ad
    from scipy import sparse

    names = ["GENE_A", "gene|b", "plain", "MT_CO1_x"]
    adata = ad.AnnData(X=sparse.csr_matrix(np.arange(12.0).reshape(3, 4)))
    adata.obs_names = ["c1", "c2", "c3"]
    adata.var_names = names
    obj, man = to_r(adata, return_manifest=True)
    assert man["renamed"]["features"] == {"GENE_A": "GENE-A", "gene|b": "gene-b", "MT_CO1_x": "MT-CO1-x"}
    rglobal["o"] = obj
    assert list(r("rownames(o)")) == ["GENE-A", "gene-b", "plain", "MT-CO1-x"]
    back = from_r(obj)
    assert list(back.var_names) == names
    assert ORIGINAL_NAME_COLUMN not in back.var.columns
    assert back.uns["conversion"]["renamed"]["features"]["GENE-A"] == "GENE_A"
    np.testing.assert_array_equal(back.X.toarray(), adata.X.toarray())
    clash = adata.copy()
    clash.var_names = ["A_B", "A-B", "c", "d"]
    with pytest.raises(PyscvibridgeError, match="collide"):
        to_r(clash)


def test_write_rds_atomic_and_readable(tmp_path, read_r, v5_joined_path):
    adata = from_r(read_r(v5_joined_path))
    for kind in ("Seurat", "SingleCellExperiment"):
        path = tmp_path / f"out_{kind}.rds"
        assert write_rds(adata, path, kind=kind) == path
        back = read_rds(path)
        assert back.uns["conversion"]["source"] == kind
        _assert_same_adata(adata, back)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out_Seurat.rds", "out_SingleCellExperiment.rds"]
    # a failing conversion leaves the existing file as it was and no temporary file behind
    before = (tmp_path / "out_Seurat.rds").read_bytes()
    bad = adata.copy()
    bad.obs_names = ["same"] * bad.n_obs
    with pytest.raises(PyscvibridgeError, match="duplicated cell"):
        write_rds(bad, tmp_path / "out_Seurat.rds")
    assert (tmp_path / "out_Seurat.rds").read_bytes() == before
    assert len(list(tmp_path.iterdir())) == 2
    with pytest.raises(PyscvibridgeError, match="kind must be"):
        to_r(adata, kind="loom")
