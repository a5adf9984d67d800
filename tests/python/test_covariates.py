"""Categorical and continuous covariates reach the scVI model (CellBench: protocol, log library size)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import pyscvibridge as psb
from pyscvibridge import PyscvibridgeError


@pytest.fixture(scope="module")
def cellbench():
    adata = psb.datasets.cellbench()
    adata.obs["log_total_counts"] = np.log1p(np.asarray(adata.layers["counts"].sum(axis=1)).ravel())
    return adata


@pytest.mark.slow
def test_covariates_reach_the_model(cellbench):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata, model = psb.integrate(
            cellbench.copy(),
            "batch",
            categorical_covariate_keys=["protocol"],
            continuous_covariate_keys=["log_total_counts"],
            n_top_genes=500,
            max_epochs=2,
            progress=False,
            return_model=True,
        )
    stats = model.adata_manager.summary_stats
    assert stats["n_extra_categorical_covs"] == 1
    assert stats["n_extra_continuous_covs"] == 1
    setup = model.adata_manager.registry["setup_args"]
    assert setup["categorical_covariate_keys"] == ["protocol"]
    assert setup["continuous_covariate_keys"] == ["log_total_counts"]
    cat = model.adata_manager.get_state_registry("extra_categorical_covs")
    assert list(cat.mappings["protocol"]) == sorted(cellbench.obs["protocol"].astype(str).unique())
    cont = model.adata_manager.get_from_registry("extra_continuous_covs")
    np.testing.assert_allclose(np.asarray(cont).ravel(), cellbench.obs["log_total_counts"].to_numpy())
    # The decoder is conditioned on the batch, one input per protocol level, and the continuous covariate.
    decoder = model.module.decoder.px_decoder
    n_protocols = cellbench.obs["protocol"].nunique()
    assert decoder.n_cat_list == [cellbench.obs["batch"].nunique(), n_protocols]
    n_latent = adata.obsm["X_scVI"].shape[1]
    assert (
        decoder.fc_layers[0][0].in_features == n_latent + 1 + cellbench.obs["batch"].nunique() + n_protocols
    )
    params = adata.uns["scvi_integration"]["params"]
    assert list(params["categorical_covariate_keys"]) == ["protocol"]
    assert list(params["continuous_covariate_keys"]) == ["log_total_counts"]
    assert np.isfinite(adata.obsm["X_scVI"]).all()


def test_unknown_covariate(cellbench):
    with pytest.raises(PyscvibridgeError, match=r"categorical covariate 'donor' is not a column.*'protocol'"):
        psb.integrate(cellbench, "batch", categorical_covariate_keys=["donor"], copy=True)
    with pytest.raises(PyscvibridgeError, match=r"continuous covariate 'percent_mito' is not a column"):
        psb.integrate(cellbench, "batch", continuous_covariate_keys=["percent_mito"], copy=True)


def test_non_numeric_continuous_covariate(cellbench):
    with pytest.raises(
        PyscvibridgeError, match=r"continuous covariate 'protocol' must be numeric.*categorical"
    ):
        psb.integrate(cellbench, "batch", continuous_covariate_keys=["protocol"], copy=True)


def test_covariate_with_missing_values(cellbench):
    adata = cellbench.copy()
    adata.obs.loc[adata.obs_names[:3], "log_total_counts"] = np.nan
    with pytest.raises(PyscvibridgeError, match=r"'log_total_counts' has 3 missing \(NA\) values"):
        psb.integrate(adata, "batch", continuous_covariate_keys=["log_total_counts"])


@pytest.mark.slow
def test_query_mapping_needs_the_reference_covariates(cellbench, tmp_path):
    in_ref = cellbench.obs["batch"].str.startswith("CEL-seq2_5cl").to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, model = psb.integrate(
            cellbench[in_ref].copy(),
            "batch",
            continuous_covariate_keys=["log_total_counts"],
            n_top_genes=300,
            max_epochs=2,
            progress=False,
            return_model=True,
        )
        model_dir = psb.save_model(ref, model, tmp_path / "model")
        query = cellbench[~in_ref].copy()
        without = query.copy()
        del without.obs["log_total_counts"]
        with pytest.raises(
            PyscvibridgeError, match="continuous covariate 'log_total_counts'; the query needs"
        ):
            psb.map_query(without, model_dir, batch_key="batch", max_epochs=1, progress=False)
        out = psb.map_query(query, model_dir, batch_key="batch", max_epochs=1, progress=False, umap=False)
    assert out.obsm["X_scVI"].shape == (query.n_obs, 10)
    assert np.isfinite(out.obsm["X_scVI"]).all()
