"""Batch-corrected normalised expression of chosen genes (scVI decoder), on CellBench."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pyscvibridge as psb
from pyscvibridge import PyscvibridgeError
from pyscvibridge._expression import corrected_expression


@pytest.fixture(scope="module")
def trained():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = psb.datasets.cellbench()
        adata, model = psb.integrate(
            adata, "batch", n_top_genes=500, max_epochs=3, progress=False, return_model=True
        )
    genes = list(adata.var_names[adata.var["highly_variable"]][:7])
    return adata, model, genes


@pytest.mark.slow
def test_chosen_genes_in_obsm_table(trained):
    adata, model, genes = trained
    adata = adata.copy()
    corrected_expression(adata, model, genes=genes, transform_batch="CEL-seq2_3cl")
    table = adata.obsm["scvi_normalized"]
    assert isinstance(table, pd.DataFrame)
    assert table.shape == (adata.n_obs, len(genes))
    assert list(table.columns) == genes
    assert list(table.index) == list(adata.obs_names)
    assert table.dtypes.eq(np.float32).all()
    assert (table.to_numpy() > 0).all()
    rec = adata.uns["scvi_normalized"]
    assert rec["genes"] == genes
    assert rec["transform_batch"] == ["CEL-seq2_3cl"]
    assert rec["library_size"] == 1e4
    assert rec["model"] == "SCVI"
    # Nothing else changed size: the counts and X keep every gene.
    assert adata.shape == trained[0].shape


@pytest.mark.slow
def test_all_genes_sum_to_library_size(trained):
    adata, model, _ = trained
    adata = adata.copy()
    corrected_expression(adata, model, genes="all", transform_batch="all", library_size=1e4, key_added="all")
    table = adata.obsm["all"]
    assert table.shape == (adata.n_obs, 500)
    np.testing.assert_allclose(table.sum(axis=1), 1e4, rtol=1e-3)
    assert adata.uns["all"]["transform_batch"] == list(adata.obs["batch"].cat.categories)


@pytest.mark.slow
def test_chunks_give_the_same_values_as_one_call(trained):
    adata, model, genes = trained
    adata = adata.copy()
    # Decoding samples the posterior; averaging 30 samples makes the two runs comparable cell by cell.
    corrected_expression(adata, model, genes=genes, batch_size=50, n_samples=30)  # two chunks of <= 800 cells
    whole = model.get_normalized_expression(
        gene_list=genes, library_size=1e4, n_samples=30, batch_size=2000, return_numpy=True
    )
    chunked = adata.obsm["scvi_normalized"].to_numpy()
    for j in range(len(genes)):
        assert np.corrcoef(np.log(chunked[:, j]), np.log(whole[:, j]))[0, 1] > 0.95
    np.testing.assert_allclose(chunked.mean(axis=0), whole.mean(axis=0), rtol=0.05)


@pytest.mark.slow
def test_decoding_batch_changes_values(trained):
    adata, model, genes = trained
    a, b = adata.copy(), adata.copy()
    corrected_expression(a, model, genes=genes, transform_batch="CEL-seq2_3cl", library_size=1)
    corrected_expression(b, model, genes=genes, transform_batch="Drop-seq_3cl", library_size=1)
    x, y = a.obsm["scvi_normalized"].to_numpy(), b.obsm["scvi_normalized"].to_numpy()
    assert (x < 1).all()
    assert (y < 1).all()
    assert not np.allclose(x, y, rtol=0.05)


@pytest.mark.slow
def test_bad_genes_and_batches(trained):
    adata, model, genes = trained
    with pytest.raises(PyscvibridgeError, match=r"2 of the 3 genes are not among the 500 genes.*'NOTAGENE'"):
        corrected_expression(adata, model, genes=[genes[0], "NOTAGENE", "ALSO_NOT"])
    not_hvg = adata.var_names[~adata.var["highly_variable"]][0]
    with pytest.raises(PyscvibridgeError, match="in the data but were not highly variable"):
        corrected_expression(adata, model, genes=[not_hvg])
    with pytest.raises(
        PyscvibridgeError, match=r"transform_batch \['plate9'\] is not a batch.*'Drop-seq_3cl'"
    ):
        corrected_expression(adata, model, genes=genes, transform_batch="plate9")
    with pytest.raises(PyscvibridgeError, match="genes is empty"):
        corrected_expression(adata, model, genes=[])
    with pytest.raises(PyscvibridgeError, match="library_size"):
        corrected_expression(adata, model, genes=genes, library_size=0)
    with pytest.raises(PyscvibridgeError, match="not the one the model was trained on"):
        corrected_expression(adata[:10].copy(), model, genes=genes)
