"""integrate() on real data (CellBench): what it adds, what it keeps, and how it refuses bad input."""

from __future__ import annotations

import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import pyscvibridge as psb

N_LATENT = 8


@pytest.fixture(scope="module")
def integrated():
    adata = psb.datasets.cellbench()
    psb.integrate(adata, "batch", labels_key="cell_line", n_latent=N_LATENT, max_epochs=3, progress=False)
    return adata


@pytest.mark.slow
def test_latent_and_umaps_for_every_cell(integrated):
    assert integrated.obsm["X_scVI"].shape == (1408, N_LATENT)
    assert np.isfinite(integrated.obsm["X_scVI"]).all()
    for key in ("X_umap", "X_umap_unintegrated"):
        assert integrated.obsm[key].shape == (1408, 2)
        assert np.isfinite(integrated.obsm[key]).all()
    assert integrated.obsm["X_pca"].shape[0] == 1408
    # the two UMAPs come from different graphs, so they differ
    assert not np.allclose(integrated.obsm["X_umap"], integrated.obsm["X_umap_unintegrated"])
    assert "connectivities" in integrated.obsp
    assert "unintegrated_connectivities" in integrated.obsp


@pytest.mark.slow
def test_hvg_flags_with_per_batch_counts(integrated):
    var = integrated.var
    assert var["highly_variable"].sum() == 2000
    assert var["highly_variable_nbatches"].between(0, 5).all()
    hvg = var[var["highly_variable"]]
    # batch-aware ranking: HVGs are variable in more batches than the rest
    assert (
        hvg["highly_variable_nbatches"].mean()
        > var.loc[~var["highly_variable"], "highly_variable_nbatches"].mean()
    )
    assert var["highly_variable_intersection"].dtype == bool
    assert var["highly_variable_intersection"].sum() == (var["highly_variable_nbatches"] == 5).sum()
    assert integrated.uns["hvg"]["flavor"] == "cell_ranger"


@pytest.mark.slow
def test_nothing_the_user_had_is_lost(integrated):
    fresh = psb.datasets.cellbench()
    assert integrated.shape == fresh.shape
    assert (integrated.obs_names == fresh.obs_names).all()
    assert (integrated.var_names == fresh.var_names).all()
    assert (integrated.layers["counts"] != fresh.layers["counts"]).nnz == 0
    assert (integrated.X != fresh.X).nnz == 0
    pd.testing.assert_frame_equal(integrated.obs, fresh.obs)


@pytest.mark.slow
def test_logcounts_are_log_normalised_counts(integrated):
    counts = integrated.layers["counts"].toarray()
    kept = integrated.var["scvi_kept"].to_numpy()
    lib = counts[:, kept].sum(axis=1)
    expected = np.log1p(counts / lib[:, None] * np.median(lib))
    np.testing.assert_allclose(integrated.layers["logcounts"].toarray(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_provenance(integrated):
    info = integrated.uns["scvi_integration"]
    assert info["params"]["batch_key"] == "batch"
    assert info["params"]["n_latent"] == N_LATENT
    assert info["params"]["seed"] == 0
    assert info["epochs_run"] == 3
    assert len(info["history"]["elbo_train"]) == 3
    assert len(info["history"]["elbo_validation"]) == 3
    # training makes progress, even over a few epochs
    assert info["history"]["elbo_train"][-1] < info["history"]["elbo_train"][0]
    assert info["versions"]["scvi-tools"].startswith("1.")
    assert info["n_hvg"] == 2000


@pytest.mark.slow
def test_result_writes_to_h5ad_and_reads_back(integrated, tmp_path):
    path = tmp_path / "out.h5ad"
    integrated.write_h5ad(path)
    back = ad.read_h5ad(path)
    np.testing.assert_array_equal(back.obsm["X_scVI"], integrated.obsm["X_scVI"])
    assert back.uns["scvi_integration"]["epochs_run"] == 3


def _knn_batch_mixing_and_label_purity(x, batch, label, k=30):
    """Mean normalised entropy of batches among each cell's k neighbours, and the fraction of neighbours
    sharing the cell's label."""
    from sklearn.neighbors import NearestNeighbors

    idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    codes = pd.Categorical(batch).codes[idx]
    n_batches = len(np.unique(batch))
    p = np.stack([(codes == b).mean(axis=1) for b in range(n_batches)], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=1) / np.log(n_batches)
    purity = (np.asarray(label)[idx] == np.asarray(label)[:, None]).mean()
    return float(entropy.mean()), float(purity)


@pytest.mark.slow
def test_scvi_mixes_batches_and_keeps_cell_lines_apart():
    """With the default schedule, as a user runs it. Perfect mixing is impossible on CellBench: two of
    the five batches hold only three of the five cell lines."""
    adata = psb.datasets.cellbench()
    psb.integrate(adata, "batch", labels_key="cell_line", progress=False)
    batch, label = adata.obs["batch"].to_numpy(), adata.obs["cell_line"].to_numpy()
    pca_mix, pca_purity = _knn_batch_mixing_and_label_purity(adata.obsm["X_pca"][:, :10], batch, label)
    scvi_mix, scvi_purity = _knn_batch_mixing_and_label_purity(adata.obsm["X_scVI"], batch, label)
    assert scvi_mix > pca_mix + 0.1, (pca_mix, scvi_mix)
    # cell lines stay apart: neighbours share the cell line about as often as without integration
    assert scvi_purity > 0.8, scvi_purity
    assert scvi_purity > pca_purity - 0.1, (pca_purity, scvi_purity)


# --- options ----------------------------------------------------------------------------------------


def _small(n_cells=120, n_genes=300, seed=0):
    """Real counts: a slice of CellBench with its batches."""
    adata = psb.datasets.cellbench()
    rng = np.random.default_rng(seed)
    cells = np.sort(rng.choice(adata.n_obs, n_cells, replace=False))
    genes = np.argsort(-np.asarray(adata.X.sum(axis=0)).ravel())[:n_genes]
    return adata[cells, np.sort(genes)].copy()


@pytest.mark.slow
def test_counts_in_x_only_and_copy_leaves_input_alone():
    adata = _small()
    del adata.layers["counts"]
    before = adata.copy()
    out = psb.integrate(adata, "batch", n_top_genes=100, max_epochs=1, progress=False, copy=True)
    assert out is not adata
    assert out.uns["scvi_integration"]["params"]["counts"] == "X"
    assert set(adata.obsm) == set(before.obsm) == set()
    assert list(adata.layers) == []


@pytest.mark.slow
def test_a_users_torch_thread_count_holds_through_the_umaps():
    # numba's OpenMP layer sets the process's OpenMP thread count when UMAP's parallel kernels run;
    # torch shares it, so without care scvi-tools' defaults would train on every core.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = psb.integrate(
            _small(), "batch", n_top_genes=100, max_epochs=1, preset="scvi-tools", progress=False
        )
        assert out.uns["scvi_integration"]["training"]["torch_threads"] == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_non_gex_features_and_all_zero_genes_are_left_out():
    adata = _small()
    adata.var["feature_types"] = ["Gene Expression"] * 250 + ["Antibody Capture"] * 50
    adata.layers["counts"][:, 0] = 0
    adata.layers["counts"].eliminate_zeros()
    psb.integrate(adata, "batch", n_top_genes=100, max_epochs=1, progress=False)
    kept = adata.var["scvi_kept"].to_numpy()
    assert kept.sum() == 249
    assert not kept[0]
    assert not kept[250:].any()
    assert not adata.var["highly_variable"].to_numpy()[~kept].any()
    assert adata.var["highly_variable"].sum() == 100


@pytest.mark.slow
def test_covariates_reach_the_model():
    adata = _small()
    adata.obs["log_total"] = np.log1p(adata.obs["total_count_per_cell"].astype(float))
    _, model = psb.integrate(
        adata,
        "batch",
        categorical_covariate_keys=["protocol"],
        continuous_covariate_keys=["log_total"],
        n_top_genes=100,
        max_epochs=1,
        progress=False,
        return_model=True,
    )
    assert model.summary_stats["n_extra_categorical_covs"] == 1
    assert model.summary_stats["n_extra_continuous_covs"] == 1
    # the model knows its genes by name (needed to save it, choose genes and map queries)
    assert list(model.adata.var_names) == list(adata.var_names[adata.var["highly_variable"]])


@pytest.mark.slow
def test_unused_batch_levels_are_ignored():
    """A subset keeps its factor's unused levels (as R objects do): they are no batches."""
    adata = _small()
    levels = adata.obs["batch"].cat.categories
    adata = adata[adata.obs["batch"].isin(["CEL-seq2_3cl", "Drop-seq_3cl"])].copy()
    adata.obs["batch"] = adata.obs["batch"].cat.set_categories(levels)
    _, model = psb.integrate(adata, "batch", n_top_genes=100, max_epochs=1, progress=False, return_model=True)
    assert model.summary_stats["n_batch"] == 2
    assert adata.var["highly_variable_nbatches"].max() <= 2
    assert len(adata.obs["batch"].cat.categories) == 5, "the user's levels are left as they were"


@pytest.mark.slow
def test_single_batch_warns_and_trains_without_batches():
    adata = _small()
    adata.obs["one"] = "all"
    with pytest.warns(UserWarning, match="single level"):
        psb.integrate(adata, "one", n_top_genes=100, max_epochs=1, progress=False)
    assert adata.obsm["X_scVI"].shape == (adata.n_obs, 10)
    assert adata.uns["scvi_integration"]["params"]["batch_key_used"] == ""


# --- bad input: each a clear error naming the problem -----------------------------------------------


@pytest.fixture
def tiny():
    rng = np.random.default_rng(1)
    counts = sp.csr_matrix(rng.poisson(1.0, size=(40, 30)).astype(np.float32))
    obs = pd.DataFrame({"sample": ["a", "b"] * 20}, index=[f"cell{i}" for i in range(40)])
    return ad.AnnData(X=counts.copy(), obs=obs, layers={"counts": counts})


def _fails(adata, match, **kwargs):
    kwargs.setdefault("batch_key", "sample")
    with pytest.raises(psb.PyscvibridgeError, match=match):
        psb.integrate(adata, max_epochs=1, progress=False, **kwargs)


def test_log_normalised_values_are_refused(tiny):
    tiny.layers["counts"] = tiny.layers["counts"].log1p()
    _fails(tiny, r"layers\['counts'\] must hold raw counts.*non-integer.*looks log-normalised")


def test_negative_values_are_refused(tiny):
    tiny.layers["counts"].data[0] = -1
    _fails(tiny, "negative values")


def test_nan_is_refused(tiny):
    tiny.layers["counts"].data[3] = np.nan
    _fails(tiny, "NaN")


def test_missing_layer_is_named(tiny):
    _fails(tiny, r"layer 'raw' is not in the AnnData \(layers present: 'counts'\)", layer="raw")


def test_missing_batch_key_lists_columns(tiny):
    _fails(tiny, r"batch_key 'donor' is not a column.*Available columns: 'sample'", batch_key="donor")


def test_missing_labels_key(tiny):
    _fails(tiny, "labels_key 'celltype' is not a column", labels_key="celltype")


def test_batch_with_missing_values(tiny):
    tiny.obs.loc["cell3", "sample"] = None
    _fails(tiny, "batch_key 'sample' has 1 missing")


def test_unknown_covariate(tiny):
    _fails(tiny, "categorical covariate 'donor' is not a column", categorical_covariate_keys=["donor"])


def test_non_numeric_continuous_covariate(tiny):
    _fails(tiny, "continuous covariate 'sample' must be numeric", continuous_covariate_keys=["sample"])


def test_no_genes_left(tiny):
    tiny.layers["counts"] = sp.csr_matrix(tiny.shape, dtype=np.float32)
    _fails(tiny, "Every gene has zero counts")


def test_no_gene_expression_features(tiny):
    tiny.var["feature_types"] = "Peaks"
    _fails(tiny, r"No feature has a gene-expression type.*types present: \['Peaks'\]")


def test_backed_anndata_is_refused(tiny, tmp_path):
    tiny.write_h5ad(tmp_path / "tiny.h5ad")
    backed = ad.read_h5ad(tmp_path / "tiny.h5ad", backed="r")
    try:
        _fails(backed, r"backed mode.*adata.to_memory\(\)")
    finally:
        backed.file.close()


def test_no_cells(tiny):
    _fails(tiny[:0].copy(), r"empty \(0 cells x 30 genes\)")


def test_cells_without_counts(tiny):
    dense = tiny.layers["counts"].toarray()
    dense[5] = 0
    tiny.layers["counts"] = sp.csr_matrix(dense)
    _fails(tiny, "1 cells have no counts")


def test_import_is_light():
    """`import pyscvibridge` loads none of the heavy stacks (they load inside the functions that need them)."""
    code = "import sys, pyscvibridge; print(sorted(m for m in ('torch','scvi','scanpy','rpy2','anndata','jax','matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_default_epochs_follow_scvi_rule():
    assert psb.default_max_epochs(1408) == 400
    assert psb.default_max_epochs(40000) == 200
    assert psb.default_max_epochs(200000) == 40
