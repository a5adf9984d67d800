"""Seurat v5 (Assay5) objects -> AnnData, read with SeuratObject 4 (the version installed here)."""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
import pytest

from pyscvibridge import PyscvibridgeError
from pyscvibridge.convert import SPLIT_COLUMN, from_r, read_rds

pytestmark = pytest.mark.r


def _r_obs(r, name: str) -> pd.DataFrame:
    """meta.data of the R object ``name`` as plain Python lists, read column by column in R."""
    cols = list(r(f"names({name}@meta.data)"))
    out = {}
    for c in cols:
        v = r(f"{name}@meta.data[[{c!r}]]")
        out[c] = v
    return out


def test_joined_v5_counts_data_and_names(r, rglobal, read_r, v5_joined_path):
    obj = read_r(v5_joined_path)
    rglobal["o"] = obj
    adata = from_r(obj)
    assert adata.shape == (400, 2000)
    assert list(adata.obs_names) == list(r("rownames(o@meta.data)"))
    assert list(adata.var_names) == list(r("rownames(o@assays$RNA@features@.Data)"))
    # counts: per-cell totals and single values as R sees them (genes x cells in R)
    totals = np.asarray(r("Matrix::colSums(o@assays$RNA@layers$counts)"))
    np.testing.assert_array_equal(np.asarray(adata.layers["counts"].sum(axis=1)).ravel(), totals)
    assert adata.X is adata.layers["counts"]
    for gi, ci in [(0, 0), (4, 6), (1999, 399), (123, 250)]:
        expect = r(f"o@assays$RNA@layers$counts[{gi + 1}, {ci + 1}]")[0]
        assert adata.X[ci, gi] == expect
        expect_data = r(f"o@assays$RNA@layers$data[{gi + 1}, {ci + 1}]")[0]
        assert adata.layers["logcounts"][ci, gi] == pytest.approx(expect_data)
    assert adata.X.nnz == r("length(o@assays$RNA@layers$counts@x)")[0]


def test_joined_v5_obs_types_levels_and_na(r, rglobal, read_r, v5_joined_path):
    obj = read_r(v5_joined_path)
    rglobal["o"] = obj
    obs = from_r(obj).obs
    assert list(obs.columns) == list(r("names(o@meta.data)"))
    for col in ("batch", "cell_line", "orig.ident"):
        assert isinstance(obs[col].dtype, pd.CategoricalDtype)
        assert list(obs[col].cat.categories) == list(r(f"levels(o@meta.data[[{col!r}]])"))
        assert list(obs[col].astype(str)) == list(r(f"as.character(o@meta.data[[{col!r}]])"))
    assert obs["outlier"].dtype == bool
    assert list(obs["outlier"]) == [bool(v) for v in r("o@meta.data$outlier")]
    assert obs["nFeature_RNA"].dtype == np.int32
    np.testing.assert_array_equal(obs["nCount_RNA"].to_numpy(), np.asarray(r("o@meta.data$nCount_RNA")))
    assert obs["demuxlet_cls"].tolist() == list(r("o@meta.data$demuxlet_cls"))


def test_v5_reductions_and_loadings(r, rglobal, read_r, v5_joined_path):
    obj = read_r(v5_joined_path)
    rglobal["o"] = obj
    adata = from_r(obj)
    emb = np.asarray(r("o@reductions$pca@cell.embeddings"))
    np.testing.assert_allclose(adata.obsm["X_pca"], emb)
    load_genes = list(r("rownames(o@reductions$pca@feature.loadings)"))
    load = np.asarray(r("o@reductions$pca@feature.loadings"))
    pcs = adata.varm["PCs"]
    pos = adata.var_names.get_indexer(load_genes)
    np.testing.assert_allclose(pcs[pos], load)
    others = np.setdiff1d(np.arange(adata.n_vars), pos)
    assert np.isnan(pcs[others]).all()
    assert adata.uns["seurat"]["reductions"]["pca"]["key"] == "PC_"


def test_split_equals_joined_up_to_cell_order(read_r, v5_joined_path, v5_split_path):
    joined = from_r(read_r(v5_joined_path))
    split = from_r(read_r(v5_split_path))
    assert SPLIT_COLUMN in split.obs.columns
    assert split.uns["conversion"]["details"]["split_column"] == SPLIT_COLUMN
    # split by batch: each cell's layer suffix is its batch
    assert list(split.obs[SPLIT_COLUMN].astype(str)) == list(split.obs["batch"].astype(str))
    assert sorted(split.obs_names) == sorted(joined.obs_names)
    split = split[joined.obs_names]
    assert (split.var_names == joined.var_names).all()
    for key in ("counts", "logcounts"):
        assert (split.layers[key] != joined.layers[key]).nnz == 0
    pd.testing.assert_frame_equal(split.obs.drop(columns=[SPLIT_COLUMN]), joined.obs)
    np.testing.assert_allclose(split.obsm["X_pca"], joined.obsm["X_pca"])


def test_counts_view_r_memory_and_outlive_the_r_object(r, v5_joined_path):
    obj = r["readRDS"](str(v5_joined_path))
    adata = from_r(obj)
    x = adata.X
    assert not x.data.flags.writeable  # a view of R's memory: read-only
    expected = x.toarray()
    del obj, adata
    r("invisible(gc(full = TRUE)); junk <- lapply(1:200, function(i) runif(1e5)); rm(junk); invisible(gc())")
    gc.collect()
    np.testing.assert_array_equal(x.toarray(), expected)
    copied = from_r(r["readRDS"](str(v5_joined_path)), copy=True)
    assert copied.X.data.flags.writeable
    np.testing.assert_array_equal(copied.X.toarray(), expected)


def test_pbmc_small_manifest(pbmc_small_path):
    adata = read_rds(pbmc_small_path)
    man = adata.uns["conversion"]
    assert man["source"] == "Seurat"
    assert man["details"]["assay"] == "RNA"
    assert man["details"]["assay_class"] == "Assay5"
    assert man["details"]["file"] == str(pbmc_small_path)
    assert "layers['counts']" in man["mapped"]
    assert "view of dgCMatrix" in man["mapped"]["layers['counts']"]
    assert list(adata.obs["RNA_snn_res.1"].cat.categories) == ["0", "1", "2"]


def test_manifest_is_logged(caplog, v5_split_path):
    with caplog.at_level("INFO", logger="pyscvibridge.convert"):
        read_rds(v5_split_path)
    text = caplog.text
    assert "layers['counts']" in text
    assert "split_layer" in text


def test_missing_assay_lists_assays(v5_joined_path):
    with pytest.raises(
        PyscvibridgeError, match=r"assay 'ADT' is not in this Seurat object; it has \['RNA'\]"
    ):
        read_rds(v5_joined_path, assay="ADT")


def test_v5_without_counts_layer(r, rglobal, read_r, v5_joined_path):
    rglobal["o"] = read_r(v5_joined_path)
    # attr<- rather than @<-: SeuratObject 4 does not define the Assay5 class
    obj = r(
        """
        a <- o@assays$RNA; l <- attr(a, "layers"); l$counts <- NULL; attr(a, "layers") <- l
        o2 <- o; o2@assays$RNA <- a; o2
        """
    )
    with pytest.raises(PyscvibridgeError, match=r"no counts layer \(it has \['data'\]\)"):
        from_r(obj)
