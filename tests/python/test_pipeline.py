"""The one pipeline behind the doors: Spec checks (with each door's spelling), conventions, run()."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pyscvibridge import _conventions as conv
from pyscvibridge import _training
from pyscvibridge._pipeline import OptionError, Spec, check, run
from pyscvibridge._r_door._handoff import r_quote, r_spelling
from pyscvibridge.cli.integrate import SPELLING


@pytest.fixture
def tiny():
    rng = np.random.default_rng(1)
    counts = sp.csr_matrix(rng.poisson(1.0, size=(40, 30)).astype(np.float32))
    obs = pd.DataFrame(
        {
            "sample": ["a", "b"] * 20,
            "cell_type": ["t", "b", "nk", "t"] * 10,
            "donor": ["d1"] * 20 + ["d2"] * 20,
        },
        index=[f"cell{i}" for i in range(40)],
    )
    var = pd.DataFrame(index=[f"G{i}" for i in range(30)])
    return ad.AnnData(X=counts.copy(), obs=obs, var=var, layers={"counts": counts})


def _option(adata, spec, **kw) -> OptionError:
    with pytest.raises(OptionError) as caught:
        check(adata, spec, **kw)
    return caught.value


def test_a_good_spec_passes(tiny, tmp_path):
    check(
        tiny,
        Spec(
            batch_key="sample",
            labels_key="cell_type",
            layer="counts",
            categorical_covariate_keys=["donor"],
            preset="scvi-tools",
            scanvi=True,
            corrected_genes=["G1", "G2"],
            transform_batch="a",
            save_model=tmp_path / "model",
        ),
    )


@pytest.mark.parametrize(
    ("spec", "option", "words"),
    [
        (Spec(), "batch_key", "is required"),
        (
            Spec(batch_key="plate"),
            "batch_key",
            "'plate' is not a column of the cell metadata. Available columns: 'sample', 'cell_type', 'donor'",
        ),
        (Spec(batch_key="sample", labels_key="celltype"), "labels_key", "'celltype' is not a column"),
        (
            Spec(batch_key="sample", categorical_covariate_keys=["site"]),
            "categorical_covariate_keys",
            "'site'",
        ),
        (
            Spec(batch_key="sample", continuous_covariate_keys=["donor"]),
            "continuous_covariate_keys",
            "must be a numeric column",
        ),
        (
            Spec(batch_key="sample", layer="raw"),
            "layer",
            "'raw' is not a layer of the data (layers: 'counts')",
        ),
        (
            Spec(batch_key="sample", preset="slow"),
            "preset",
            "must be one of 'fast', 'scvi-tools', not 'slow'",
        ),
        (Spec(batch_key="sample", n_latent=0), "n_latent", "at least 1, not 0"),
        (Spec(batch_key="sample", max_epochs=2.5), "max_epochs", "whole number"),
        (Spec(batch_key="sample", scanvi=True), "labels_key", "needs"),
        (
            Spec(batch_key="sample", corrected_genes=["G1", "NOTAGENE"]),
            "corrected_genes",
            "1 of 2 genes are not in the object: 'NOTAGENE'",
        ),
        (
            Spec(batch_key="sample", corrected_genes=["G1"], transform_batch="z"),
            "transform_batch",
            "'z' is not a batch of 'sample'",
        ),
        (Spec(batch_key="sample", transform_batch="a"), "transform_batch", "applies to corrected expression"),
        (Spec(batch_key="sample", genes=["G1", "G99"]), "genes", "'G99'"),
    ],
)
def test_each_bad_option_is_named(tiny, spec, option, words):
    err = _option(tiny, spec)
    assert err.option == option
    assert words in str(err)


def test_missing_values_are_counted(tiny):
    tiny.obs.loc["cell3", "sample"] = None
    assert "has 1 missing value (NA)" in str(_option(tiny, Spec(batch_key="sample")))
    tiny.obs.loc["cell4", "sample"] = None
    assert "has 2 missing (NA) values" in str(_option(tiny, Spec(batch_key="sample")))


def test_a_non_empty_model_directory_is_refused_unless_overwritten(tiny, tmp_path):
    (tmp_path / "model.pt").write_text("x")
    err = _option(tiny, Spec(batch_key="sample", save_model=tmp_path), spell=SPELLING)
    assert err.option == "save_model"
    assert "--save-model directory" in str(err)
    assert "pass --overwrite-model" in str(err)
    check(tiny, Spec(batch_key="sample", save_model=tmp_path, overwrite_model=True))
    # R has no overwrite argument: it is told to delete the directory instead
    err = _option(tiny, Spec(batch_key="sample", save_model=tmp_path), spell=r_spelling(), quote=r_quote)
    assert f'save_model directory "{tmp_path}" already exists' in str(err)
    assert "delete that one first" in str(err)


def test_each_door_spells_options_its_own_way(tiny):
    spec = Spec(batch_key="plate")
    assert str(_option(tiny, spec, spell=SPELLING)).startswith("--batch-key 'plate' is not a column")
    r_err = _option(tiny, spec, spell=r_spelling(), quote=r_quote)
    assert str(r_err).startswith('batch_key "plate" is not a column')
    assert '"sample", "cell_type", "donor"' in str(r_err)
    sce = _option(
        tiny, Spec(batch_key="sample", layer="raw"), spell=r_spelling({"layer": "assay"}), quote=r_quote
    )
    assert str(sce).startswith('assay "raw" is not a layer')
    assert sce.option == "layer"
    scanvi = _option(tiny, Spec(batch_key="sample", scanvi=True), spell=r_spelling(), quote=r_quote)
    assert str(scanvi).startswith("scanvi = TRUE needs labels_key")


def test_conventions_for_r_are_plain_values_matching_the_python_side():
    values = conv.for_r()
    assert values["reductions"]["seurat"] == {
        "scvi": "scVI",
        "umap": "umap.scVI",
        "scanvi": "scANVI",
        "umap_scanvi": "umap.scANVI",
    }
    assert values["reductions"]["sce"]["umap"] == "UMAP_scVI"
    assert values["seurat_keys"] == {
        "scVI": "scVI_",
        "umap.scVI": "umapscVI_",
        "scANVI": "scANVI_",
        "umap.scANVI": "umapscANVI_",
    }
    assert values["presets"] == list(_training.PRESETS)
    assert values["default_preset"] == _training.DEFAULT_PRESET
    assert values["integrate_layers_reduction"] == "integrated.scvi"
    assert (values["n_top_genes"], values["n_latent"]) == (2000, 10)

    def plain(x):
        if isinstance(x, dict):
            return all(isinstance(k, str) and plain(v) for k, v in x.items())
        if isinstance(x, list):
            return all(plain(v) for v in x)
        return isinstance(x, str | int | float | bool)

    assert plain(values)


def test_the_doors_use_the_conventions():
    from pyscvibridge.convert._api import reduction_key

    for name in ("scVI", "umap.scVI", "scANVI", "umap.scANVI", "integrated.scvi"):
        assert conv.seurat_key(name) == reduction_key(name)


def test_a_check_fails_before_any_training(tiny, monkeypatch):
    import pyscvibridge._workflow as workflow

    monkeypatch.setattr(workflow, "integrate", lambda *a, **k: pytest.fail("trained despite a bad option"))
    with pytest.raises(OptionError, match="'plate'"):
        run(tiny, Spec(batch_key="plate"))


@pytest.mark.slow
def test_run_trains_on_the_given_genes_and_records_each_step(tiny, tmp_path):
    chosen = [f"G{i}" for i in range(0, 30, 3)]
    result = run(
        tiny,
        Spec(
            batch_key="sample",
            labels_key="cell_type",
            genes=chosen,
            n_latent=4,
            max_epochs=2,
            scanvi=True,
            scanvi_epochs=1,
            corrected_genes=["G3", "G6"],
            save_model=tmp_path / "model",
            model_kwargs={"n_hidden": 16},
        ),
        progress=False,
    )
    assert list(result.model.adata.var_names) == chosen  # not the highly variable genes
    assert result.model.module.z_encoder.encoder.fc_layers[0][0].out_features == 16  # model_kwargs
    assert result.record["params"]["genes"] == chosen
    assert result.adata.obsm["X_scVI"].shape == (40, 4)
    assert type(result.model).__name__ == "SCANVI"
    assert set(result.record) >= {"params", "history", "scanvi", "corrected_expression", "model"}
    assert result.expression == "scvi_normalized"
    assert list(result.adata.obsm["scvi_normalized"].columns) == ["G3", "G6"]
    assert (tmp_path / "model" / "model.pt").is_file()
    assert [line.split()[0] for line in result.added] == ["scANVI", "Added", "Saved"]
