"""Property-based round trips of metadata: column types, NA patterns and odd names survive R."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyscvibridge.convert import from_r, to_r

pytestmark = [pytest.mark.r, pytest.mark.slow]

N_CELLS = 6
SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# spaces, unicode, underscores, dots, leading digits; no control characters
name_chars = st.characters(
    whitelist_categories=("Lu", "Ll", "Nd", "Zs"), whitelist_characters="_.-ü中é", max_codepoint=0x4FFF
)
odd_names = st.text(name_chars, min_size=1, max_size=8).filter(lambda s: s.strip() == s and s != "")
RESERVED = {"orig.ident", "nCount_RNA", "nFeature_RNA"}


@st.composite
def columns(draw):
    kind = draw(st.sampled_from(["category", "ordered", "bool", "boolean", "int", "Int32", "float", "str"]))
    na = draw(st.lists(st.booleans(), min_size=N_CELLS, max_size=N_CELLS))
    if kind in ("category", "ordered"):
        levels = draw(st.lists(odd_names, min_size=1, max_size=4, unique=True))
        codes = draw(st.lists(st.integers(0, len(levels) - 1), min_size=N_CELLS, max_size=N_CELLS))
        codes = [-1 if m else c for c, m in zip(codes, na, strict=True)]
        return pd.Categorical.from_codes(codes, categories=levels, ordered=kind == "ordered")
    if kind == "bool":
        return np.array(draw(st.lists(st.booleans(), min_size=N_CELLS, max_size=N_CELLS)))
    if kind == "boolean":
        vals = draw(st.lists(st.booleans(), min_size=N_CELLS, max_size=N_CELLS))
        na[0] = True  # at least one NA: without NA, R's logical comes back as numpy bool
        return pd.array([None if m else v for v, m in zip(vals, na, strict=True)], dtype="boolean")
    if kind == "int":
        return np.array(
            draw(st.lists(st.integers(-(2**31) + 1, 2**31 - 1), min_size=N_CELLS, max_size=N_CELLS)),
            dtype=np.int32,
        )
    if kind == "Int32":
        vals = draw(st.lists(st.integers(-1000, 1000), min_size=N_CELLS, max_size=N_CELLS))
        na[0] = True
        return pd.array([None if m else v for v, m in zip(vals, na, strict=True)], dtype="Int32")
    if kind == "float":
        vals = draw(
            st.lists(
                st.floats(allow_nan=False, allow_infinity=True, width=64), min_size=N_CELLS, max_size=N_CELLS
            )
        )
        return np.array([np.nan if m else v for v, m in zip(vals, na, strict=True)], dtype=float)
    vals = draw(st.lists(st.text(name_chars, max_size=6), min_size=N_CELLS, max_size=N_CELLS))
    return np.array([None if m else v for v, m in zip(vals, na, strict=True)], dtype=object)


@st.composite
def obs_frames(draw):
    names = draw(st.lists(odd_names.filter(lambda s: s not in RESERVED), min_size=1, max_size=5, unique=True))
    cells = draw(st.lists(odd_names, min_size=N_CELLS, max_size=N_CELLS, unique=True))
    return pd.DataFrame({n: draw(columns()) for n in names}, index=pd.Index(cells, dtype=object))


def _adata(obs):
    import anndata as ad
    from scipy import sparse

    rng = np.random.default_rng(0)
    x = sparse.csr_matrix(rng.poisson(2.0, size=(N_CELLS, 5)).astype(float))
    adata = ad.AnnData(X=x, obs=obs)
    adata.var_names = ["g_1", "g 2", "3g", "ü", "g.5"]
    adata.layers["counts"] = x
    return adata


@SETTINGS
@given(obs=obs_frames())
def test_obs_round_trip_through_sce(obs):
    adata = _adata(obs)
    back = from_r(to_r(adata, kind="SingleCellExperiment"))
    pd.testing.assert_frame_equal(back.obs, obs)
    assert list(back.var_names) == list(adata.var_names)


@SETTINGS
@given(obs=obs_frames())
def test_obs_round_trip_through_seurat(obs):
    adata = _adata(obs)
    back = from_r(to_r(adata, kind="Seurat"))
    # Seurat adds orig.ident / nCount_RNA / nFeature_RNA when obs lacks them; the rest is unchanged
    assert list(back.obs.columns[:3]) == ["orig.ident", "nCount_RNA", "nFeature_RNA"]
    pd.testing.assert_frame_equal(back.obs[list(obs.columns)], obs)
    assert list(back.var_names) == list(adata.var_names)  # "_" renamed for Seurat, then recovered
    np.testing.assert_array_equal(back.obs["nCount_RNA"].to_numpy(), np.asarray(adata.X.sum(axis=1)).ravel())
