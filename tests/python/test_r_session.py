"""The embedded R session: the conversion's R code is shielded from the user's definitions, and
R's vectors are read through rpy2's public buffer protocol."""

from __future__ import annotations

import numpy as np
import pytest

from pyscvibridge import convert
from pyscvibridge.convert import _r, _sparse

pytestmark = pytest.mark.r


def test_the_conversion_code_does_not_see_the_users_global_definitions(r, pbmc_small_path):
    # _helpers.R is evaluated with R's base environment as parent: a user's readRDS in the global
    # environment must not replace base::readRDS inside it.
    r('assign("readRDS", function(...) stop("the user\'s readRDS"), envir = globalenv())')
    try:
        obj = convert.read_r_object(pbmc_small_path)
        assert "Seurat" in _r.rclass(obj)
    finally:
        r('rm("readRDS", envir = globalenv())')
    parent = r("function(e) environmentName(parent.env(e))")(_r.helpers())
    assert list(parent) == ["base"]


def test_views_share_the_r_vectors_memory(r):
    v = r("x <- c(1.5, 2.5, 3.5); x")
    arr = _sparse.view(v)
    assert arr.__array_interface__["data"][0] == np.asarray(v.memoryview()).__array_interface__["data"][0]
    writable = _sparse.view(v, writable=True)
    writable[0] = 9.0  # writes into R's vector
    assert list(v) == [9.0, 2.5, 3.5]
    assert _sparse.view(r("numeric(0)")).shape == (0,)


def test_dgc_to_csr_is_a_view_built_with_the_public_constructor(r):
    m = r("Matrix::sparseMatrix(i = c(1L, 3L, 2L), j = c(1L, 1L, 2L), x = c(1, 2, 3), dims = c(3L, 2L))")
    csr = _sparse.dgc_to_csr(m)
    assert csr.shape == (2, 3)  # cells x features
    np.testing.assert_array_equal(csr.toarray(), [[1, 0, 2], [0, 3, 0]])
    assert np.shares_memory(csr.data, _sparse.view(m.do_slot("x")))
    assert not csr.data.flags.writeable
    assert csr.has_sorted_indices
