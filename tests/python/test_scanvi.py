"""scANVI continued from the trained scVI model, on CellBench with a third of the labels hidden."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pyscvibridge as psb
from pyscvibridge import PyscvibridgeError
from pyscvibridge._scanvi import train_scanvi


@pytest.fixture(scope="module")
def trained():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = psb.datasets.cellbench()
        rng = np.random.default_rng(0)
        hidden = rng.random(adata.n_obs) < 1 / 3
        labels = adata.obs["cell_line"].astype(object)
        labels[hidden] = "Unknown"
        labels[np.flatnonzero(hidden)[:20]] = np.nan  # NA is unlabelled too
        adata.obs["known_line"] = pd.Categorical(labels)
        adata, model = psb.integrate(adata, "batch", max_epochs=10, progress=False, return_model=True)
        obs_before = adata.obs.copy()
        out, scanvi = train_scanvi(adata, model, labels_key="known_line", max_epochs=4, progress=False)
    return {"adata": out, "model": model, "scanvi": scanvi, "hidden": hidden, "obs_before": obs_before}


@pytest.mark.slow
def test_scanvi_latent_and_predictions(trained):
    import scvi

    adata, hidden = trained["adata"], trained["hidden"]
    assert isinstance(trained["scanvi"], scvi.model.SCANVI)
    z = adata.obsm["X_scANVI"]
    assert z.shape == (adata.n_obs, adata.obsm["X_scVI"].shape[1])
    assert np.isfinite(z).all()
    assert adata.obsm["X_umap_scANVI"].shape == (adata.n_obs, 2)
    pred = adata.obs["scanvi_prediction"]
    lines = sorted(adata.obs["cell_line"].astype(str).unique())
    assert sorted(pred.cat.categories) == lines  # "Unknown" is never predicted
    prob = adata.obs["scanvi_probability"]
    assert prob.between(1 / len(lines), 1).all()
    # The hidden cells get their true cell line back.
    truth = adata.obs["cell_line"].astype(str).to_numpy()
    assert np.mean(pred.astype(str).to_numpy()[hidden] == truth[hidden]) > 0.85


@pytest.mark.slow
def test_scanvi_provenance_and_untouched_metadata(trained):
    adata, hidden = trained["adata"], trained["hidden"]
    rec = adata.uns["scanvi"]
    assert rec["params"]["labels_key"] == "known_line"
    assert rec["params"]["unlabeled_category"] == "Unknown"
    assert rec["n_unlabelled"] == int(hidden.sum())
    assert rec["n_labelled"] == adata.n_obs - int(hidden.sum())
    assert rec["classes"] == sorted(adata.obs["cell_line"].astype(str).unique())
    assert rec["epochs_run"] == 4
    assert 0.85 < rec["labelled_agreement"] <= 1
    before = trained["obs_before"]
    pd.testing.assert_frame_equal(adata.obs[before.columns], before)
    # The scVI model is left as it was: its AnnData has no label column.
    assert "known_line" not in trained["model"].adata.obs


@pytest.mark.slow
def test_scanvi_bad_inputs(trained):
    adata, model = trained["adata"], trained["model"]
    with pytest.raises(PyscvibridgeError, match=r"labels_key 'celltype' is not a column.*'cell_line'"):
        train_scanvi(adata, model, labels_key="celltype")
    with pytest.raises(PyscvibridgeError, match="also a batch or covariate key"):
        train_scanvi(adata, model, labels_key="batch")
    adata.obs["nothing_known"] = "Unknown"
    with pytest.raises(PyscvibridgeError, match="has no known labels"):
        train_scanvi(adata, model, labels_key="nothing_known")
    with pytest.raises(PyscvibridgeError, match="not the one the model was trained on"):
        train_scanvi(adata[:100].copy(), model, labels_key="cell_line")
    with pytest.raises(PyscvibridgeError, match=r"continues a trained scvi\.model\.SCVI"):
        train_scanvi(adata, trained["scanvi"], labels_key="cell_line")


@pytest.mark.slow
def test_corrected_expression_from_scanvi(trained):
    from pyscvibridge import corrected_expression

    adata = trained["adata"].copy()
    genes = list(adata.var_names[adata.var["highly_variable"]][:3])
    corrected_expression(
        adata, trained["scanvi"], genes=genes, transform_batch="all", key_added="scanvi_expr"
    )
    assert list(adata.obsm["scanvi_expr"].columns) == genes
    assert adata.obsm["scanvi_expr"].shape == (adata.n_obs, 3)
    assert adata.uns["scanvi_expr"]["model"] == "SCANVI"
