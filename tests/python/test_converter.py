"""pyscvibridge.converter: anndata2ri's converter with pyscvibridge's Seurat / SCE <-> AnnData rules first."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import pyscvibridge
from pyscvibridge import PyscvibridgeError
from pyscvibridge.convert import from_r, make_converter

pytestmark = [pytest.mark.r]


def _dense(m):
    return m.toarray() if sp.issparse(m) else np.asarray(m)


def assert_same_anndata(got, want):
    assert got.shape == want.shape
    assert list(got.obs_names) == list(want.obs_names)
    assert list(got.var_names) == list(want.var_names)
    np.testing.assert_array_equal(_dense(got.X), _dense(want.X))
    assert sorted(got.layers) == sorted(want.layers)
    for k in want.layers:
        np.testing.assert_array_equal(_dense(got.layers[k]), _dense(want.layers[k]))
    pd.testing.assert_frame_equal(got.obs, want.obs)
    pd.testing.assert_frame_equal(got.var, want.var)
    assert sorted(got.obsm) == sorted(want.obsm)
    for k in want.obsm:
        np.testing.assert_array_equal(np.asarray(got.obsm[k]), np.asarray(want.obsm[k]))
    assert sorted(got.varm) == sorted(want.varm)
    assert got.uns["conversion"] == want.uns["conversion"]


@pytest.fixture(scope="module")
def objects(r, v5_joined_path, v5_split_path):
    """The small CellBench fixture as a Seurat v5 split object, a Seurat v4 object and an SCE."""
    r(
        f"""
        suppressMessages({{library(SeuratObject); library(SingleCellExperiment)}})
        v5 <- readRDS("{v5_joined_path}")
        layer <- function(o, name) {{
          a <- o@assays$RNA
          m <- a@layers[[name]]
          dimnames(m) <- list(rownames(a@features)[a@features[, name]], rownames(a@cells)[a@cells[, name]])
          m
        }}
        conv_split <- readRDS("{v5_split_path}")
        conv_v4 <- suppressWarnings(CreateSeuratObject(layer(v5, "counts"), meta.data = v5@meta.data))
        conv_sce <- SingleCellExperiment(
          assays = list(counts = layer(v5, "counts"), logcounts = layer(v5, "data")),
          colData = S4Vectors::DataFrame(v5@meta.data, check.names = FALSE)
        )
        """
    )
    return {"Seurat v4": "conv_v4", "Seurat v5 split": "conv_split", "SCE": "conv_sce"}


@pytest.mark.parametrize("kind", ["Seurat v4", "Seurat v5 split", "SCE"])
def test_localconverter_gives_the_same_anndata_as_from_r(rglobal, objects, kind):
    from anndata import AnnData
    from rpy2.robjects.conversion import localconverter

    name = objects[kind]
    with localconverter(pyscvibridge.converter):
        got = rglobal[name]
    assert isinstance(got, AnnData)
    want = from_r(rglobal[name])
    assert_same_anndata(got, want)
    if kind == "Seurat v5 split":
        assert got.obs["split_layer"].nunique() == 5


def test_what_anndata2ri_converts_still_converts(r, rglobal):
    import anndata2ri
    from rpy2.robjects.conversion import localconverter

    r(
        """
        conv_df <- data.frame(a = 1:3, b = c("x", "y", "z"), row.names = c("r1", "r2", "r3"))
        conv_s4df <- S4Vectors::DataFrame(a = 1:3, row.names = c("r1", "r2", "r3"))
        conv_dgc <- Matrix::sparseMatrix(i = c(1, 3), j = c(1, 2), x = c(5, 7), dims = c(3, 2))
        conv_mat <- matrix(as.numeric(1:6), 2, 3)
        """
    )
    for name in ["conv_df", "conv_s4df", "conv_dgc", "conv_mat"]:
        with localconverter(pyscvibridge.converter):
            got = rglobal[name]
        with localconverter(anndata2ri.converter):
            want = rglobal[name]
        assert type(got) is type(want), name
        if isinstance(want, pd.DataFrame):
            pd.testing.assert_frame_equal(got, want)
        else:
            np.testing.assert_array_equal(_dense(got), _dense(want))
    assert isinstance(got, np.ndarray)
    assert got.shape == (2, 3)


def test_anndata_becomes_an_sce_or_by_option_a_seurat_object(r, rglobal):
    import anndata as ad
    from rpy2 import robjects
    from rpy2.robjects.conversion import localconverter

    rng = np.random.default_rng(0)
    adata = ad.AnnData(
        X=sp.csr_matrix(rng.poisson(1.0, (30, 20)).astype(np.float32)),
        obs=pd.DataFrame({"batch": pd.Categorical(["a", "b"] * 15)}, index=[f"c{i}" for i in range(30)]),
        var=pd.DataFrame(index=[f"g{i}" for i in range(20)]),
    )
    with localconverter(pyscvibridge.converter):
        rglobal["conv_in"] = adata
    assert list(r("class(conv_in)")) == ["SingleCellExperiment"]
    assert list(r("dim(conv_in)")) == [20, 30]
    assert list(r("levels(conv_in$batch)")) == ["a", "b"]
    np.testing.assert_array_equal(
        np.asarray(r("as.matrix(SummarizedExperiment::assay(conv_in, 'X'))")), adata.X.toarray().T
    )
    with localconverter(make_converter(kind="Seurat")):
        rglobal["conv_in_seurat"] = adata
    assert list(r("class(conv_in_seurat)")) == ["Seurat"]
    assert list(r("colnames(conv_in_seurat)")) == list(adata.obs_names)
    # and back: the SCE made from the AnnData reads back with the same counts and metadata
    with localconverter(pyscvibridge.converter):
        back = rglobal["conv_in"]
    np.testing.assert_array_equal(_dense(back.X), adata.X.toarray())
    assert list(back.obs["batch"].cat.categories) == ["a", "b"]
    # other Python objects still go through anndata2ri's rules (numpy2ri here)
    with localconverter(pyscvibridge.converter):
        rglobal["conv_arr"] = np.arange(6).reshape(2, 3)
    assert list(r("dim(conv_arr)")) == [2, 3]
    assert isinstance(robjects.r("conv_arr"), robjects.vectors.IntMatrix)


def test_make_converter_refuses_an_unknown_kind():
    with pytest.raises(PyscvibridgeError, match="kind must be 'Seurat' or 'SingleCellExperiment'"):
        make_converter(kind="loom")


NOTEBOOK_CELLS = [
    "%load_ext rpy2.ipython\nimport numpy as np, scipy.sparse as sp, pandas as pd, anndata as ad\nimport pyscvibridge",
    (
        "rng = np.random.default_rng(1)\n"
        "adata = ad.AnnData(X=sp.csr_matrix(rng.poisson(2.0, (40, 25)).astype(np.float32)),\n"
        "    obs=pd.DataFrame({'batch': pd.Categorical(['b1', 'b2'] * 20)}, index=[f'cell{i}' for i in range(40)]),\n"
        "    var=pd.DataFrame(index=[f'gene{i}' for i in range(25)]))"
    ),
    (
        "%%R -c pyscvibridge.converter -i adata -o sub\n"
        "stopifnot(is(adata, 'SingleCellExperiment'))\n"
        "sub <- adata[, adata$batch == 'b2']\n"
        "cat('R got', class(adata), nrow(adata), 'x', ncol(adata), '\\n')"
    ),
    (
        "print('Python got', type(sub).__name__, sub.shape)\n"
        "assert list(sub.obs_names) == [f'cell{i}' for i in range(1, 40, 2)]\n"
        "assert (sub.X.toarray() == adata[sub.obs_names].X.toarray()).all()\n"
        "assert set(sub.obs['batch']) == {'b2'}"
    ),
]


@pytest.mark.slow
def test_r_magic_round_trip_in_an_executed_notebook(tmp_path):
    import nbclient
    import nbformat
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    client = nbclient.NotebookClient(
        nb, kernel_name=NATIVE_KERNEL_NAME, timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    text = "".join(
        o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream"
    )
    assert "R got SingleCellExperiment 25 x 40" in text
    assert "Python got AnnData (20, 25)" in text


def test_import_does_not_start_r_until_the_converter_is_asked_for():
    import subprocess
    import sys

    code = (
        "import sys, pyscvibridge\n"
        "from pyscvibridge import *\n"
        "print('before', 'rpy2' in sys.modules)\n"
        "c = pyscvibridge.converter\n"
        "print('after', 'rpy2' in sys.modules, type(c).__name__, c is pyscvibridge.converter)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "before False" in out
    assert "after True Converter True" in out
