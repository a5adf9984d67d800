"""add_results: embeddings and a misc record back into the R object, nothing else touched."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pyscvibridge import PyscvibridgeError
from pyscvibridge.convert import add_results, assign, from_r, reduction_key

pytestmark = pytest.mark.r

KEY_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9]*_$")


@pytest.mark.parametrize(
    ("name", "key"),
    [("scVI", "scVI_"), ("umap.scVI", "umapscVI_"), ("UMAP_scVI", "UMAPscVI_"), ("2d", "X2d_")],
)
def test_reduction_key(name, key):
    assert reduction_key(name) == key
    assert KEY_RE.match(key)


def _with_results(adata, seed=0):
    rng = np.random.default_rng(seed)
    adata.obsm["X_scVI"] = rng.normal(size=(adata.n_obs, 10))
    adata.obsm["X_umap"] = rng.normal(size=(adata.n_obs, 2))
    return adata


@pytest.mark.parametrize("fixture", ["v5_joined_path", "v5_split_path"])
def test_add_results_to_v5_under_seuratobject4(request, r, rglobal, read_r, fixture):
    obj = read_r(request.getfixturevalue(fixture))
    adata = _with_results(from_r(obj))
    shuffled = adata[np.random.default_rng(1).permutation(adata.n_obs)].copy()
    misc = {"params": {"n_latent": 10, "genes": ["a", "b"]}, "elbo": np.arange(3.0), "converged": True}
    new = add_results(obj, shuffled, misc=misc)
    rglobal["old"], rglobal["new"] = obj, new
    assert list(r("names(new@reductions)")) == ["pca", "scVI", "umap.scVI"]
    assert list(r("names(old@reductions)")) == ["pca"]  # the input object is unchanged
    assert r("new@reductions$scVI@key")[0] == "scVI_"
    assert r("new@reductions$umap.scVI@key")[0] == "umapscVI_"
    assert r("new@reductions$scVI@assay.used")[0] == "RNA"
    assert list(r("rownames(new@reductions$scVI@cell.embeddings)")) == list(r("rownames(old@meta.data)"))
    assert list(r("colnames(new@reductions$umap.scVI@cell.embeddings)")) == ["umapscVI_1", "umapscVI_2"]
    np.testing.assert_array_equal(np.asarray(r("new@reductions$scVI@cell.embeddings")), adata.obsm["X_scVI"])
    np.testing.assert_array_equal(
        np.asarray(r("new@reductions$umap.scVI@cell.embeddings")), adata.obsm["X_umap"]
    )
    assert r("new@misc$scVI$params$n_latent")[0] == 10
    assert list(r("new@misc$scVI$params$genes")) == ["a", "b"]
    assert list(r("new@misc$scVI$elbo")) == [0.0, 1.0, 2.0]
    assert r("isTRUE(new@misc$scVI$converged)")[0]
    unchanged = r(
        """
        s <- setdiff(slotNames("Seurat"), c("reductions", "misc"))
        c(vapply(s, function(n) identical(slot(new, n), slot(old, n)), TRUE),
          pca = identical(new@reductions$pca, old@reductions$pca))
        """
    )
    assert all(unchanged), dict(zip(unchanged.names, unchanged, strict=True))


def test_add_results_to_v4_object_works_with_seurat_methods(r, rglobal):
    obj = r(
        """
        suppressMessages(library(SeuratObject))
        set.seed(1)
        m <- Matrix::Matrix(matrix(rpois(600, 3), 20, 30, dimnames = list(paste0("g", 1:20), paste0("c", 1:30))),
                            sparse = TRUE)
        CreateSeuratObject(m)
        """
    )
    adata = _with_results(from_r(obj))
    new = add_results(obj, adata, reductions={"X_scVI": "scVI"})
    rglobal["new"] = new
    assert list(r("dim(Embeddings(new, 'scVI'))")) == [30, 10]
    assert list(r("Reductions(new)")) == ["scVI"]
    assert r("Key(new[['scVI']])")[0] == "scVI_"
    assert r("DefaultAssay(new[['scVI']])")[0] == "RNA"
    assert r("validObject(new)")[0]


def test_add_results_cells_must_match(read_r, v5_joined_path):
    obj = read_r(v5_joined_path)
    adata = _with_results(from_r(obj))
    with pytest.raises(PyscvibridgeError, match="the cells of adata and of the Seurat object differ: 10 of"):
        add_results(obj, adata[10:].copy())
    renamed = adata.copy()
    renamed.obs_names = [f"x{i}" for i in range(adata.n_obs)]
    with pytest.raises(PyscvibridgeError, match="400 cells of adata are not in the object"):
        add_results(obj, renamed)


def test_add_results_missing_obsm_key(read_r, v5_joined_path):
    obj = read_r(v5_joined_path)
    adata = from_r(obj)
    with pytest.raises(PyscvibridgeError, match=r"adata.obsm has no 'X_scVI'"):
        add_results(obj, adata, reductions={"X_scVI": "scVI"})
    with pytest.raises(PyscvibridgeError, match="nothing to add"):
        add_results(obj, adata)


def test_add_results_to_sce(r, rglobal):
    sce = r(
        """
        suppressMessages(library(SingleCellExperiment))
        set.seed(2)
        m <- matrix(rpois(200, 2), 20, 10, dimnames = list(paste0("g", 1:20), paste0("c", 1:10)))
        SingleCellExperiment(list(counts = m), colData = DataFrame(b = factor(rep(c("y", "x"), 5))),
                             reducedDims = list(PCA = matrix(rnorm(30), 10, 3)), metadata = list(study = "s"))
        """
    )
    adata = _with_results(from_r(sce))
    new = add_results(sce, adata[::-1].copy(), misc={"n_latent": 10})
    rglobal["old"], rglobal["new"] = sce, new
    assert list(r("reducedDimNames(new)")) == ["PCA", "scVI", "UMAP_scVI"]
    assert list(r("reducedDimNames(old)")) == ["PCA"]
    np.testing.assert_array_equal(np.asarray(r("reducedDim(new, 'scVI')")), adata.obsm["X_scVI"])
    np.testing.assert_array_equal(np.asarray(r("reducedDim(new, 'UMAP_scVI')")), adata.obsm["X_umap"])
    assert r("metadata(new)$scVI$n_latent")[0] == 10
    assert r("metadata(new)$study")[0] == "s"
    unchanged = r(
        """
        c(assays = identical(assays(new), assays(old)), coldata = identical(colData(new), colData(old)),
          rowdata = identical(rowData(new), rowData(old)),
          pca = identical(reducedDim(new, "PCA"), reducedDim(old, "PCA")), valid = validObject(new))
        """
    )
    assert all(unchanged)


def _with_predictions(adata):
    rng = np.random.default_rng(3)
    adata.obs["scanvi_prediction"] = pd.Categorical(
        rng.choice(["z", "a", "m"], adata.n_obs), categories=["z", "a", "m"]
    )
    adata.obs["scanvi_probability"] = rng.uniform(size=adata.n_obs)
    return adata


def test_add_results_obs_columns_to_seurat(r, rglobal, read_r, v5_joined_path):
    obj = read_r(v5_joined_path)
    adata = _with_predictions(_with_results(from_r(obj)))
    shuffled = adata[np.random.default_rng(1).permutation(adata.n_obs)].copy()
    new = add_results(obj, shuffled, obs_columns=["scanvi_prediction", "scanvi_probability"])
    rglobal["old"], rglobal["new"] = obj, new
    old_cols = list(r("colnames(old@meta.data)"))
    assert list(r("colnames(new@meta.data)")) == [*old_cols, "scanvi_prediction", "scanvi_probability"]
    assert list(r("levels(new@meta.data$scanvi_prediction)")) == ["z", "a", "m"]
    assert list(r("as.character(new@meta.data$scanvi_prediction)")) == list(
        adata.obs["scanvi_prediction"].astype(str)
    )
    np.testing.assert_array_equal(
        np.asarray(r("new@meta.data$scanvi_probability")), adata.obs["scanvi_probability"].to_numpy()
    )
    assert r("identical(new@meta.data[, colnames(old@meta.data)], old@meta.data)")[0]


def test_add_results_obs_columns_to_sce_and_replaces_same_name(r, rglobal):
    sce = r(
        """
        suppressMessages(library(SingleCellExperiment))
        m <- matrix(rpois(200, 2), 20, 10, dimnames = list(paste0("g", 1:20), paste0("c", 1:10)))
        SingleCellExperiment(list(counts = m), colData = DataFrame(b = factor(rep(c("y", "x"), 5)),
                                                                   scanvi_probability = 0))
        """
    )
    adata = _with_predictions(from_r(sce))
    new = add_results(sce, adata[::-1].copy(), obs_columns=["scanvi_prediction", "scanvi_probability"])
    rglobal["old"], rglobal["new"] = sce, new
    assert list(r("colnames(colData(new))")) == ["b", "scanvi_probability", "scanvi_prediction"]
    assert r("identical(colData(new)$b, colData(old)$b)")[0]
    assert list(r("levels(colData(new)$scanvi_prediction)")) == ["z", "a", "m"]
    np.testing.assert_array_equal(
        np.asarray(r("colData(new)$scanvi_probability")), adata.obs["scanvi_probability"].to_numpy()
    )
    assert list(r("reducedDimNames(new)")) == []
    with pytest.raises(PyscvibridgeError, match=r"adata\.obs has no column .nope."):
        add_results(sce, adata, obs_columns=["nope"])


def _with_expression(adata, genes):
    rng = np.random.default_rng(4)
    adata.obsm["scvi_normalized"] = pd.DataFrame(
        rng.uniform(size=(adata.n_obs, len(genes))).astype(np.float32), index=adata.obs_names, columns=genes
    )
    return adata


def test_add_results_expression_as_seurat_assay(r, rglobal, read_r, v5_joined_path):
    obj = read_r(v5_joined_path)
    adata = from_r(obj)
    genes = list(adata.var_names[[5, 0, 17]])
    adata = _with_expression(adata, genes)
    shuffled = adata[np.random.default_rng(1).permutation(adata.n_obs)].copy()
    new = add_results(obj, shuffled, expression="scvi_normalized")
    rglobal["old"], rglobal["new"] = obj, new
    assert list(r("names(new@assays)")) == ["RNA", "scVI"]
    assert list(r("rownames(new@assays$scVI@data)")) == genes
    assert list(r("colnames(new@assays$scVI@data)")) == list(r("rownames(old@meta.data)"))
    np.testing.assert_allclose(
        np.asarray(r("new@assays$scVI@data")), adata.obsm["scvi_normalized"].to_numpy().T, rtol=1e-6
    )
    assert r("new@assays$scVI@key")[0] == "scvi_"
    assert r("identical(new@assays$RNA, old@assays$RNA) && identical(new@meta.data, old@meta.data)")[0]
    with pytest.raises(PyscvibridgeError, match="must be a cells x genes DataFrame"):
        add_results(obj, adata, expression="X_nothing")


def test_add_results_expression_as_sce_altexp(r, rglobal):
    sce = r(
        """
        suppressMessages(library(SingleCellExperiment))
        m <- matrix(rpois(200, 2), 20, 10, dimnames = list(paste0("g", 1:20), paste0("c", 1:10)))
        SingleCellExperiment(list(counts = m))
        """
    )
    adata = _with_expression(from_r(sce), ["g3", "g1"])
    new = add_results(sce, adata[::-1].copy(), expression="scvi_normalized")
    rglobal["new"] = new
    assert list(r("altExpNames(new)")) == ["scVI"]
    assert list(r("assayNames(altExp(new, 'scVI'))")) == ["normalized"]
    assert list(r("rownames(altExp(new, 'scVI'))")) == ["g3", "g1"]
    assert list(r("colnames(altExp(new, 'scVI'))")) == [f"c{i}" for i in range(1, 11)]
    np.testing.assert_allclose(
        np.asarray(r("assay(altExp(new, 'scVI'), 'normalized')")),
        adata.obsm["scvi_normalized"].to_numpy().T,
        rtol=1e-6,
    )


def test_assign_binds_the_object_itself_where_rpy2_would_copy_it(r):
    import rpy2.robjects as ro

    obj = r("local(Matrix::rsparsematrix(50, 40, 0.2))")
    address = "function(m) sub(' .*', '', capture.output(.Internal(inspect(m@x)))[1])"
    assign("bound", obj)
    ro.globalenv["copied"] = obj  # rpy2 duplicates: the reason assign() exists
    assert r(f"({address})(bound)")[0] == r(address)(obj)[0]
    assert r(f"({address})(copied)")[0] != r(address)(obj)[0]
    env = r("new.env()")
    assign("inside", obj, envir=env)
    assert r("get")("inside", envir=env).rid == obj.rid
