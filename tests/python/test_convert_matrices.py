"""The fast matrix paths give exactly what R's own constructors give."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from pyscvibridge.convert import _r, _sparse, assign, from_r, to_r

pytestmark = pytest.mark.r


def _csr(seed=0, shape=(30, 40), density=0.2, dtype=np.float64):
    rng = np.random.default_rng(seed)
    m = sparse.random(*shape, density=density, format="csr", random_state=rng, dtype=np.float64)
    m.data = np.round(m.data * 10) + 1
    return m.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_csr_to_dgc_is_a_valid_matrix_with_the_same_values(r, rglobal, dtype):
    m = _csr(dtype=dtype)
    cells = [f"c{i}" for i in range(m.shape[0])]
    genes = [f"g{i}" for i in range(m.shape[1])]
    rglobal["m"] = _sparse.csr_to_dgc(m, genes, cells)
    import rpy2.robjects as ro

    # R fills genes x cells column by column: that is cells x genes row by row
    rglobal["dense"] = r["matrix"](
        ro.FloatVector(m.toarray().astype(float).ravel().tolist()), nrow=m.shape[1]
    )
    assert r("validObject(m, complete = TRUE)")[0]
    assert r("all(as.matrix(m) == dense)")[0]
    assert list(r("rownames(m)")) == genes
    assert list(r("colnames(m)")) == cells


def test_unsorted_csr_is_sorted_for_r(r, rglobal):
    m = _csr(seed=3)
    rev = sparse.csr_matrix((m.data.copy(), m.indices.copy(), m.indptr.copy()), shape=m.shape)
    for row in range(rev.shape[0]):  # reverse the column order inside each row
        s, e = rev.indptr[row], rev.indptr[row + 1]
        rev.indices[s:e] = rev.indices[s:e][::-1]
        rev.data[s:e] = rev.data[s:e][::-1]
    rev.has_sorted_indices = False
    rglobal["m"] = _sparse.csr_to_dgc(rev, [f"g{i}" for i in range(40)], [f"c{i}" for i in range(30)])
    assert r("validObject(m, complete = TRUE)")[0]
    np.testing.assert_array_equal(np.asarray(r("as.matrix(m)")), m.toarray().T)


def test_fast_sce_equals_the_plain_constructor(r, rglobal, read_r, v5_joined_path):
    adata = from_r(read_r(v5_joined_path))
    adata.layers["other"] = adata.layers["logcounts"] * 2
    fast = to_r(adata, kind="SingleCellExperiment")
    rglobal["s"] = fast
    plain = r(
        """
        suppressMessages(library(SingleCellExperiment))
        SingleCellExperiment(assays = as.list(assays(s, withDimnames = FALSE)), colData = colData(s),
                             rowData = rowData(s), reducedDims = reducedDims(s), metadata = metadata(s))
        """
    )
    rglobal["p"] = plain
    assert r("identical(s, p)")[0]
    assert r("validObject(s, complete = TRUE)")[0]


def test_views_follow_the_r_vectors(r):
    v = r("c(1.5, 2.5, 3.5)")
    arr = _sparse.view(v)
    np.testing.assert_array_equal(arr, [1.5, 2.5, 3.5])
    assert not arr.flags.writeable
    assert arr.base.rvector is not None  # the R vector is kept alive by the array
    ints = _sparse.view(r("c(1L, NA, 3L)"))
    assert ints.dtype == np.int32
    assert ints[1] == np.iinfo(np.int32).min  # R's NA_integer_
    assert _r.strs(r("c('a', NA, 'ü')")) == ["a", None, "ü"]
    long = [f"name {i} ü" if i % 7 else None for i in range(200)]
    assert _r.strs(_r.r_str(long)) == long


def test_fast_seurat_equals_create_seurat_object(r, rglobal):
    import anndata as ad

    m = _csr(seed=5, shape=(50, 30)).tolil()
    m[3] = 0  # an empty cell
    m = m.tocsr()
    m.eliminate_zeros()
    adata = ad.AnnData(X=m)
    adata.obs_names = [f"sampleA_{i}" if i % 2 else f"sampleB_{i}" for i in range(50)]
    adata.var_names = [f"g{i}" for i in range(30)]
    rglobal["o"] = to_r(adata)
    checks = r(
        """
        suppressMessages(library(SeuratObject))
        p <- suppressWarnings(CreateSeuratObject(counts = GetAssayData(o, slot = "counts")))
        c(meta = identical(o@meta.data, p@meta.data),
          counts = identical(GetAssayData(o, slot = "counts"), GetAssayData(p, slot = "counts")),
          data = identical(GetAssayData(o, slot = "data"), GetAssayData(p, slot = "data")),
          idents = identical(Idents(o), Idents(p)),
          valid = validObject(o))
        """
    )
    failed = [k for k, v in zip(checks.names, checks, strict=True) if not v]
    assert not failed
    assert list(r("levels(o$orig.ident)")) == ["sampleA", "sampleB"]
    assert r("o$nFeature_RNA[4]")[0] == 0


def _is_buffer(r, expr: str) -> bool:
    """Whether the R vector ``expr`` evaluates to is one of the R package's buffer vectors."""
    return r(f"any(grepl('pyscvibridge buffer', capture.output(.Internal(inspect({expr})))))")[0]


def _buffer_bytes(r) -> float:
    """Bytes held by the R package's buffer vectors that R has not freed yet."""
    return r(".Call(getNativeSymbolInfo('pysb_buffer_bytes', 'pyscvibridge'))")[0]


def test_matrices_cross_in_buffers_that_r_owns_and_frees(r):
    assert _sparse._buffer_routine() is not None, (
        "R finds the R package neither in its library nor in <venv>/Rlib: run scripts/setup.sh"
    )
    m = _csr(seed=7, shape=(60, 50))
    cells, genes = [f"c{i}" for i in range(60)], [f"g{i}" for i in range(50)]
    r("invisible(gc())")
    before = _buffer_bytes(r)
    assign("m", _sparse.csr_to_dgc(m, genes, cells))  # rglobal["m"] = ... would copy
    # x (double), i and p (integer) are buffer vectors: R's allocator handed out none of that memory
    assert _buffer_bytes(r) - before == m.nnz * 8 + m.nnz * 4 + (60 + 1) * 4
    assert _is_buffer(r, "m@x")
    assert r("validObject(m, complete = TRUE)")[0]
    np.testing.assert_array_equal(np.asarray(r("as.matrix(m)")), m.toarray().T)
    checks = r(
        """
        m2 <- m
        m2@x[1] <- -1                          # copy on modify: m keeps its value
        f <- tempfile(fileext = ".rds")
        saveRDS(m, f)
        back <- readRDS(f)                     # a plain vector in the file: readable without the package
        c(unchanged = m@x[1] != -1, modified = m2@x[1] == -1, file = identical(back, m),
          subset = identical(m@x[c(3, 1)], back@x[c(3, 1)]), sums = all(Matrix::colSums(m) == Matrix::colSums(back)))
        """
    )
    assert all(checks), dict(zip(checks.names, checks, strict=True))
    assert not _is_buffer(r, "back@x")  # a plain vector in the file: readable without the package
    r("rm(m, m2, back); invisible(gc())")
    assert _buffer_bytes(r) == before  # R freed every buffer when it collected the vectors


def test_without_the_r_package_matrices_go_to_r_allocated_memory(r, monkeypatch):
    m = _csr(seed=8)
    cells, genes = [f"c{i}" for i in range(30)], [f"g{i}" for i in range(40)]
    assign("a", _sparse.csr_to_dgc(m, genes, cells))
    monkeypatch.setattr(_sparse, "_buffer_routine", lambda: None)
    assign("b", _sparse.csr_to_dgc(m, genes, cells))
    assert r("identical(a, b)")[0]
    assert not _is_buffer(r, "b@x")


def test_a_missing_r_package_is_reported(monkeypatch, caplog):
    real_call = _r.call

    def no_package(name, *args, **kwargs):
        return _r.ri().NULL if name == ".pysb_buffer_routine" else real_call(name, *args, **kwargs)

    monkeypatch.setattr(_r, "call", no_package)
    find = _sparse._buffer_routine.__wrapped__  # uncached: the cached answer is the installed package
    with caplog.at_level("INFO", logger="pyscvibridge.convert"):
        assert find() is None
    assert "R package 'pyscvibridge' is neither in R's library" in caplog.text


def test_the_r_package_is_found_in_the_virtual_environment(r):
    # scripts/setup.sh installs it into <venv>/Rlib: found there when R's library lacks it (a CLI run
    # without R_LIBS_USER)
    venv_lib = Path(sys.prefix) / "Rlib"
    assert (venv_lib / "pyscvibridge").is_dir(), "run the tests in the environment scripts/setup.sh makes"
    r(f".pysb_old <- .libPaths(); .libPaths(setdiff(.pysb_old, normalizePath({str(venv_lib)!r})))")
    try:
        assert _r.is_null(_r.call(".pysb_buffer_routine"))  # not in R's library now
        assert _sparse._buffer_routine.__wrapped__() is not None  # found in <venv>/Rlib
    finally:
        r(".libPaths(.pysb_old); rm(.pysb_old)")
