"""Pure-Python pieces of the conversion layer (no R started)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from pyscvibridge.convert._write import _count_stats


@pytest.mark.parametrize("seed", range(20))
def test_count_stats_match_seurat_definitions(seed):
    rng = np.random.default_rng(seed)
    m = sparse.random(int(rng.integers(1, 9)), 6, density=rng.random(), format="csr", random_state=rng)
    if seed % 2:
        m.data -= 0.3  # negative values are not counted as detected features
    n_count, n_feature = _count_stats(m)
    dense = m.toarray()
    np.testing.assert_allclose(n_count, dense.sum(axis=1))
    np.testing.assert_array_equal(n_feature, (dense > 0).sum(axis=1))
    assert n_feature.dtype == np.int32


def test_count_stats_empty_rows_and_matrix():
    m = sparse.csr_matrix(np.array([[0, 0], [1, 2], [0, 0]], dtype=float))
    n_count, n_feature = _count_stats(m)
    np.testing.assert_array_equal(n_count, [0, 3, 0])
    np.testing.assert_array_equal(n_feature, [0, 2, 0])
    n_count, n_feature = _count_stats(sparse.csr_matrix((3, 4)))
    np.testing.assert_array_equal(n_count, [0, 0, 0])


def test_import_is_lazy():
    import subprocess
    import sys

    code = "import sys, pyscvibridge.convert; print('rpy2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
