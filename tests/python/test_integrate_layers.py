"""convert's from_assay() and the IntegrateLayers() door (pyscvibridge._r_door.run_integrate_layers), driven through rpy2.

The R package's tests (tests/testthat/test-integrate-layers.R) call the door the real way, through
scVIIntegration() and reticulate; these check the Python side of the hand-off.
"""

from __future__ import annotations

import numpy as np
import pytest

from pyscvibridge import _r_door
from pyscvibridge.convert import SPLIT_COLUMN, from_r
from pyscvibridge.convert._seurat import from_assay

pytestmark = pytest.mark.r


def test_from_assay_reads_the_split_assay_alone(r, rglobal, read_r, v5_split_path):
    obj = read_r(v5_split_path)
    rglobal["o"] = obj
    whole = from_r(obj)
    adata = from_assay(r("o@assays$RNA"), name="RNA")
    assert list(adata.obs_names) == list(r("rownames(o@assays$RNA@cells@.Data)"))
    assert list(adata.var_names) == list(whole.var_names)
    assert list(adata.obs.columns) == [SPLIT_COLUMN]  # an assay has no cell metadata
    layers = [n[len("counts.") :] for n in r("names(o@assays$RNA@layers)") if n.startswith("counts.")]
    assert list(adata.obs[SPLIT_COLUMN].cat.categories) == layers
    order = whole.obs_names.get_indexer(adata.obs_names)
    assert (adata.layers["counts"] != whole.layers["counts"][order]).nnz == 0
    assert "logcounts" in adata.layers
    details = adata.uns["conversion"]["details"]
    assert details["assay"] == "RNA"
    assert details["assay_class"] == "Assay5"
    assert details["split_column"] == SPLIT_COLUMN


def test_from_assay_on_a_v4_assay(r, rglobal):
    r("suppressMessages(requireNamespace('SeuratObject'))")
    rglobal["p"] = r("SeuratObject::pbmc_small")
    adata = from_assay(r("p@assays$RNA"), name="RNA")
    assert adata.shape == (80, 230)
    assert list(adata.obs_names) == list(r("colnames(p@assays$RNA@counts)"))
    np.testing.assert_array_equal(
        np.asarray(adata.X.sum(axis=1)).ravel(), np.asarray(r("Matrix::colSums(p@assays$RNA@counts)"))
    )
    assert adata.uns["conversion"]["details"]["assay_class"] == "Assay"


@pytest.fixture
def handoff(r):
    """A hand-off environment holding `object` = list(assay = ..., ...), as scVIIntegration() makes
    it; bound as `.il_test` in R's global environment for the test's own R code only."""

    def _make(path, extra=""):
        r('assign(".il_test", new.env(parent = emptyenv()), envir = globalenv())')
        r(f'.il_test$object <- local({{o <- readRDS("{path}"); list(assay = o@assays$RNA{extra})}})')
        return r(".il_test")

    yield _make
    r('rm(list = intersect(".il_test", ls(globalenv(), all.names = TRUE)), envir = globalenv())')


@pytest.mark.slow
def test_the_door_binds_a_latent_over_the_assays_cells(r, handoff, v5_split_path):
    name = handoff(v5_split_path, ", features = rownames(o@assays$RNA@features@.Data)[1:150]")
    said: list[str] = []
    answer = run_integrate_layers(name, said, max_epochs=2, n_latent=4, model_kwargs={"n_layers": 2})
    assert answer["ok"], answer
    assert answer["info"]["n_batches"] == 5
    assert answer["info"]["n_genes"] == 150
    assert list(r("dim(.il_test$result$latent)")) == [400, 4]
    assert list(r("rownames(.il_test$result$latent)")) == list(
        r("rownames(.il_test$object$assay@cells@.Data)")
    )
    assert r(".il_test$result$record$model_kwargs$n_layers")[0] == 2
    assert r(".il_test$result$record$bridge$batches")[0] == "the split layers"
    assert "Batches: 5 from the split layers" in said
    assert any(s.startswith("scVI epoch 2/2") for s in said)


def test_the_door_names_bad_model_options_as_scviintegration_spells_them(handoff, v5_split_path):
    env = handoff(v5_split_path, ", features = rownames(o@assays$RNA@features@.Data)[1:50]")
    answer = run_integrate_layers(
        env, [], max_epochs=1, model_kwargs={"n_layers": 0.0}, renamed={"n_layers": "nlayers"}
    )
    assert not answer["ok"]
    assert answer["argument"] == "nlayers"
    assert answer["error"] == 'nlayers must be a whole number of at least 1, not "0".'
    answer = run_integrate_layers(env, [], max_epochs=1, model_kwargs={"gene_likelihood": "normal"})
    assert answer["argument"] == "gene_likelihood"
    assert answer["error"].startswith('gene_likelihood must be one of "zinb", "nb", "poisson"')


def test_the_door_names_the_argument_for_a_joined_assay_without_groups(handoff, v5_joined_path):
    answer = run_integrate_layers(handoff(v5_joined_path), [], max_epochs=1)
    assert not answer["ok"]
    assert answer["argument"] == "groups"
    assert "is not split and no groups were given" in answer["error"]


def test_the_door_names_features_absent_from_the_counts(handoff, v5_split_path):
    answer = run_integrate_layers(
        handoff(v5_split_path, ', features = c("NOTAGENE", "GAPDH")'), [], max_epochs=1
    )
    assert not answer["ok"]
    assert answer["argument"] == "features"
    assert '"NOTAGENE"' in answer["error"]  # quoted as R prints a string
    assert answer["error"].startswith("features: 2 of 2 genes are not in the object")


def run_integrate_layers(name, said, **kwargs):
    return _r_door.run_integrate_layers(name, assay="RNA", verbose=True, emit=said.append, **kwargs)
