"""Seurat v4 (Assay) objects: CellBench built in the test with Seurat 4.3, then converted and back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyscvibridge.convert import from_r, to_r

pytestmark = [pytest.mark.r, pytest.mark.slow]


@pytest.fixture(scope="module")
def cellbench():
    from pyscvibridge.datasets import cellbench

    return cellbench()


@pytest.fixture(scope="module")
def v4(r, rglobal, cellbench):
    """CellBench as a Seurat v4 object: normalised, 2,000 HVGs, scaled, PCA, neighbours, an ADT assay."""
    import rpy2.robjects as ro

    from pyscvibridge.convert import _sparse

    a = cellbench
    rglobal["counts"] = _sparse.csr_to_dgc(a.layers["counts"], list(a.var_names), list(a.obs_names))
    rglobal["batch"] = ro.StrVector(a.obs["batch"].astype(str).tolist())
    rglobal["batch_levels"] = ro.StrVector(list(a.obs["batch"].cat.categories))
    rglobal["cell_line"] = ro.StrVector(a.obs["cell_line"].astype(str).tolist())
    rglobal["cl_levels"] = ro.StrVector(list(a.obs["cell_line"].cat.categories))
    rglobal["total"] = ro.IntVector(a.obs["total_count_per_cell"].astype(int).tolist())
    rglobal["outlier"] = ro.BoolVector(a.obs["outlier"].tolist())
    return r(
        """
        suppressMessages(library(Seurat))
        meta <- data.frame(batch = factor(batch, levels = batch_levels),
                           cell_line = factor(cell_line, levels = cl_levels),
                           total_count_per_cell = total, outlier = outlier,
                           note = ifelse(outlier, NA_character_, "ok"),
                           row.names = colnames(counts))
        o <- CreateSeuratObject(counts, meta.data = meta, project = "cellbench")
        o <- NormalizeData(o, verbose = FALSE)
        o <- FindVariableFeatures(o, nfeatures = 2000, verbose = FALSE)
        o <- ScaleData(o, verbose = FALSE)
        o <- RunPCA(o, npcs = 10, verbose = FALSE, seed.use = 1)
        o <- FindNeighbors(o, dims = 1:10, verbose = FALSE)
        adt <- Matrix::Matrix(matrix(rpois(5 * ncol(o), 4), 5, ncol(o),
                              dimnames = list(paste0("CD", 1:5), colnames(o))), sparse = TRUE)
        o[["ADT"]] <- CreateAssayObject(counts = adt)
        Idents(o) <- "cell_line"
        o
        """
    )


def test_v4_counts_data_and_names(r, rglobal, v4, cellbench):
    rglobal["o"] = v4
    adata = from_r(v4)
    assert adata.shape == cellbench.shape
    assert list(adata.obs_names) == list(cellbench.obs_names)
    assert list(adata.var_names) == list(cellbench.var_names)
    assert (adata.layers["counts"] != cellbench.layers["counts"]).nnz == 0
    assert adata.X is adata.layers["counts"]
    data_total = np.asarray(r("Matrix::colSums(GetAssayData(o, slot = 'data'))"))
    np.testing.assert_allclose(np.asarray(adata.layers["logcounts"].sum(axis=1)).ravel(), data_total)
    man = adata.uns["conversion"]
    assert man["details"]["assay_class"] == "Assay"
    assert "2000 features x 1408 cells" in man["dropped"]["RNA scale.data"]
    assert "not chosen" in man["dropped"]["assay 'ADT'"]


def test_v4_obs_hvg_reductions_graphs_idents(r, rglobal, v4):
    rglobal["o"] = v4
    adata = from_r(v4)
    obs = adata.obs
    assert list(obs.columns) == list(r("colnames(o@meta.data)"))
    assert list(obs["batch"].cat.categories) == list(r("levels(o$batch)"))
    assert list(obs["cell_line"].cat.categories) == list(r("levels(o$cell_line)"))
    assert obs["note"].isna().sum() == int(r("sum(is.na(o$note))")[0])
    assert obs["outlier"].dtype == bool
    # active identities equal the cell_line column: recorded, no extra column
    assert adata.uns["seurat"]["ident_column"] == "cell_line"
    hv = list(r("VariableFeatures(o)"))
    assert adata.var["highly_variable"].sum() == 2000
    ranked = adata.var.loc[adata.var["highly_variable"]].sort_values("highly_variable_rank").index
    assert list(ranked) == hv
    assert {"vst.mean", "vst.variance", "vst.variance.standardized"} <= set(adata.var.columns)
    np.testing.assert_allclose(adata.obsm["X_pca"], np.asarray(r("Embeddings(o, 'pca')")))
    pcs = adata.varm["PCs"]
    load_genes = list(r("rownames(Loadings(o, 'pca'))"))
    np.testing.assert_allclose(
        pcs[adata.var_names.get_indexer(load_genes)], np.asarray(r("Loadings(o, 'pca')"))
    )
    assert np.isnan(pcs).all(axis=1).sum() == adata.n_vars - len(load_genes)
    np.testing.assert_allclose(
        adata.uns["seurat"]["reductions"]["pca"]["stdev"], np.asarray(r("Stdev(o, 'pca')"))
    )
    assert set(adata.obsp) == {"RNA_nn", "RNA_snn"}
    snn = adata.obsp["RNA_snn"]
    for i, j in [(0, 0), (3, 10), (100, 7)]:
        assert snn[i, j] == pytest.approx(r(f"o@graphs$RNA_snn[{i + 1}, {j + 1}]")[0])


def test_v4_second_assay(v4):
    adt = from_r(v4, assay="ADT")
    assert list(adt.var_names) == [f"CD{i}" for i in range(1, 6)]
    assert "assay 'RNA'" in adt.uns["conversion"]["dropped"]
    assert "X_pca" in adt.obsm  # cell embeddings apply to every assay
    assert "PCs" not in adt.varm  # loadings are over RNA features


def test_v4_round_trip_value_by_value(r, rglobal, v4):
    back = to_r(from_r(v4))
    rglobal["o"], rglobal["o2"] = v4, back
    checks = r(
        """
        c(counts = identical(GetAssayData(o, slot = "counts"), GetAssayData(o2, slot = "counts")),
          data = identical(GetAssayData(o, slot = "data"), GetAssayData(o2, slot = "data")),
          meta = identical(o@meta.data, o2@meta.data),
          cells = identical(colnames(o), colnames(o2)),
          features = identical(rownames(o), rownames(o2)),
          hvg = identical(VariableFeatures(o), VariableFeatures(o2)),
          idents = identical(Idents(o), Idents(o2)),
          pca = identical(Embeddings(o, "pca"), Embeddings(o2, "pca")),
          loadings = identical(Loadings(o, "pca"), Loadings(o2, "pca")),
          key = identical(Key(o[["pca"]]), Key(o2[["pca"]])),
          stdev = identical(Stdev(o, "pca"), Stdev(o2, "pca")),
          vst = isTRUE(all.equal(o[["RNA"]]@meta.features, o2[["RNA"]]@meta.features[, colnames(o[["RNA"]]@meta.features)])))
        """
    )
    failed = [k for k, v in zip(checks.names, checks, strict=True) if not v]
    assert not failed


def test_v4_manifest_to_r(v4):
    adata = from_r(v4)
    adata.layers["extra"] = adata.X
    _, man = to_r(adata, return_manifest=True)
    assert man["mapped"]["RNA counts"] == "layers['counts']"
    assert man["mapped"]["RNA data"] == "layers['logcounts']"
    assert "layers['extra']" in man["dropped"]
    assert "obsp['RNA_snn']" in man["dropped"]
    assert man["mapped"]["VariableFeatures"] == "var['highly_variable'] (2000 features)"


def test_obs_with_na_types_survive(r, rglobal, v4):
    adata = from_r(v4)
    obs = adata.obs
    obs["int_na"] = pd.array([None if i % 7 == 0 else i for i in range(adata.n_obs)], dtype="Int32")
    obs["bool_na"] = pd.array(
        [None if i % 5 == 0 else i % 2 == 0 for i in range(adata.n_obs)], dtype="boolean"
    )
    back = from_r(to_r(adata))
    pd.testing.assert_frame_equal(back.obs, obs)
