"""integrate(genes=, extra_genes=): which genes scVI trains on, and corrected expression of added genes."""

from __future__ import annotations

import numpy as np
import pytest

import pyscvibridge as psb


def _small(n_cells=150, n_genes=300, seed=0):
    """Real counts: a slice of CellBench with its batches."""
    adata = psb.datasets.cellbench()
    rng = np.random.default_rng(seed)
    cells = np.sort(rng.choice(adata.n_obs, n_cells, replace=False))
    genes = np.argsort(-np.asarray(adata.X.sum(axis=0)).ravel())[:n_genes]
    return adata[cells, np.sort(genes)].copy()


@pytest.mark.slow
def test_given_genes_replace_the_highly_variable_ones():
    adata = _small()
    chosen = list(adata.var_names[::7][:40])
    _, model = psb.integrate(
        adata, "batch", n_top_genes=100, genes=chosen, max_epochs=1, progress=False, return_model=True
    )
    assert list(model.adata.var_names) == chosen
    assert adata.var["scvi_trained"].sum() == 40
    assert adata.var["highly_variable"].sum() == 100  # still flagged, not used
    rec = adata.uns["scvi_integration"]
    assert rec["params"]["genes_from"] == "given"
    assert rec["n_hvg"] == 40


@pytest.mark.slow
def test_extra_genes_are_added_and_reported_then_decodable(caplog):
    adata = _small()
    psb.integrate(adata, "batch", n_top_genes=50, max_epochs=1, progress=False)
    not_hvg = list(adata.var_names[~adata.var["highly_variable"].to_numpy()][:3])
    hvg = list(adata.var_names[adata.var["highly_variable"].to_numpy()][:2])

    adata = _small()
    with caplog.at_level("INFO", logger="pyscvibridge"):
        _, model = psb.integrate(
            adata,
            "batch",
            n_top_genes=50,
            extra_genes=not_hvg + hvg,
            max_epochs=1,
            progress=False,
            return_model=True,
        )
    assert model.adata.n_vars == 53
    assert set(not_hvg + hvg) <= set(model.adata.var_names)
    assert list(adata.uns["scvi_integration"]["params"]["extra_genes_added"]) == not_hvg
    assert f"training also on 3 gene(s) that were not highly variable: {', '.join(not_hvg)}" in caplog.text
    psb.corrected_expression(adata, model, genes=not_hvg)
    assert adata.obsm["scvi_normalized"].shape == (adata.n_obs, 3)
    assert list(adata.obsm["scvi_normalized"].columns) == not_hvg


def test_unknown_genes_are_named_before_training():
    adata = _small(n_cells=40, n_genes=60)
    with pytest.raises(
        psb.PyscvibridgeError, match=r"genes: 1 of the 2 genes are not in the data: 'NOTAGENE'"
    ):
        psb.integrate(adata, "batch", genes=[adata.var_names[0], "NOTAGENE"], max_epochs=1, progress=False)
    with pytest.raises(psb.PyscvibridgeError, match=r"extra_genes: 1 of the 1 genes are not in the data"):
        psb.integrate(adata, "batch", extra_genes=["NOTAGENE"], max_epochs=1, progress=False)
    with pytest.raises(psb.PyscvibridgeError, match="extra_genes is empty"):
        psb.integrate(adata, "batch", extra_genes=[], max_epochs=1, progress=False)


@pytest.mark.slow
def test_extra_genes_without_counts_are_named_in_a_warning():
    adata = _small(n_cells=60, n_genes=80)
    counts = adata.layers["counts"].tolil()
    counts[:, 3] = 0
    adata.layers["counts"] = counts.tocsr()
    empty = adata.var_names[3]
    with pytest.warns(
        UserWarning, match=rf"extra_genes: 1 gene\(s\) have no counts .* not trained on: {empty}\."
    ):
        _, model = psb.integrate(
            adata,
            "batch",
            n_top_genes=20,
            extra_genes=[empty],
            max_epochs=1,
            progress=False,
            return_model=True,
        )
    assert empty not in set(model.adata.var_names)
