"""The CLI's scANVI, covariates, corrected expression, saved model and ``map`` (issue 7) on CellBench.

One integrate run with every option trains on three CellBench batches and saves its model; ``map`` puts
the other two batches onto it. Bad-input checks run before any training.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.neighbors import KNeighborsClassifier

import pyscvibridge as psb
from pyscvibridge.cli import cli

REFERENCE_BATCHES = ["CEL-seq2_5cl_p1", "CEL-seq2_5cl_p2", "CEL-seq2_5cl_p3"]


def _one_line_error(result) -> str:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> dict[str, Path]:
    """CellBench split in two .h5ad files: reference (3 batches) and query (the other 2).

    The reference gets a 'plate' covariate (a coarser grouping than batch) and a numeric 'log_umi'.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = psb.datasets.cellbench()
    data.obs["plate"] = pd.Categorical(np.where(data.obs["batch"] == REFERENCE_BATCHES[0], "A", "B"))
    data.obs["log_umi"] = np.log1p(np.asarray(data.layers["counts"].sum(axis=1)).ravel())
    in_ref = data.obs["batch"].isin(REFERENCE_BATCHES).to_numpy()
    root = tmp_path_factory.mktemp("cellbench")
    paths = {"ref": root / "ref.h5ad", "query": root / "query.h5ad"}
    data[in_ref].copy().write_h5ad(paths["ref"])
    data[~in_ref].copy().write_h5ad(paths["query"])
    return paths


@pytest.fixture(scope="module")
def trained(data_files, tmp_path_factory) -> dict:
    """integrate with scANVI, covariates, corrected expression, a saved model and a strategy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ad.read_h5ad(data_files["ref"])
    out_dir = tmp_path_factory.mktemp("out")
    out, model_dir = out_dir / "ref_scvi.h5ad", out_dir / "model"
    # Two genes scVI is trained on: the top of the same batch-aware cell_ranger HVG ranking integrate uses.
    import scanpy as sc

    sub = ref[:, np.asarray(ref.layers["counts"].sum(axis=0)).ravel() > 0].copy()
    sub.X = sub.layers["counts"].astype(np.float32)
    sc.pp.normalize_total(sub)
    sc.pp.log1p(sub)
    sc.pp.highly_variable_genes(sub, flavor="cell_ranger", n_top_genes=1000, batch_key="batch")
    ranked = sub.var.sort_values(["highly_variable_nbatches", "dispersions_norm"], ascending=False)
    genes = list(ranked.index[:2])
    args = [
        "integrate", str(data_files["ref"]), "-o", str(out), "--batch-key", "batch",
        "--labels-key", "cell_line", "--max-epochs", "5", "--n-top-genes", "1000",
        "--categorical-covariate", "plate", "--continuous-covariate", "log_umi",
        "--scanvi", "--scanvi-epochs", "2",
        "--corrected-genes", ",".join(genes), "--transform-batch", REFERENCE_BATCHES[1],
        "--save-model", str(model_dir), "--strategy", "auto",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = ad.read_h5ad(out)
    return {"result": result, "out": out, "model_dir": model_dir, "genes": genes, "adata": adata}


@pytest.mark.slow
def test_integrate_options_show_in_the_output(trained):
    adata, genes, model_dir = trained["adata"], trained["genes"], trained["model_dir"]
    assert adata.n_obs == 909
    # scANVI
    assert adata.obsm["X_scANVI"].shape == (909, 10)
    assert np.isfinite(adata.obsm["X_scANVI"]).all()
    assert set(adata.obs["scanvi_prediction"].cat.categories) == set(adata.obs["cell_line"].unique())
    assert ((adata.obs["scanvi_probability"] > 0) & (adata.obs["scanvi_probability"] <= 1)).all()
    assert adata.uns["scanvi"]["epochs_run"] == 2
    # covariates and strategy reached the scVI training
    params = adata.uns["scvi_integration"]["params"]
    assert list(params["categorical_covariate_keys"]) == ["plate"]
    assert list(params["continuous_covariate_keys"]) == ["log_umi"]
    assert params["strategy"] == "auto"
    # corrected expression survived write_h5ad as a cells x genes table
    table = adata.obsm["scvi_normalized"]
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == genes
    assert list(table.index) == list(adata.obs_names)
    assert (table.to_numpy() >= 0).all()
    assert np.isfinite(table.to_numpy()).all()
    assert list(adata.uns["scvi_normalized"]["transform_batch"]) == [REFERENCE_BATCHES[1]]
    # the model
    assert (model_dir / "model.pt").is_file()
    assert adata.uns["scvi_model"]["path"] == str(model_dir.resolve())
    assert adata.uns["scvi_model"]["model_class"] == "SCANVI"
    # the summary says what was added and where
    text = trained["result"].output
    assert "scANVI trained 2 epochs" in text
    assert "obsm['scvi_normalized']" in text
    assert f"Saved the SCANVI model to {model_dir.resolve()}" in text


@pytest.mark.slow
def test_save_model_refuses_a_non_empty_directory_before_training(trained, data_files, tmp_path):
    out = tmp_path / "o.h5ad"
    base = ["integrate", str(data_files["ref"]), "-o", str(out), "--batch-key", "batch"]
    line = _one_line_error(CliRunner().invoke(cli, [*base, "--save-model", str(trained["model_dir"])]))
    assert "--overwrite-model" in line
    assert str(trained["model_dir"]) in line
    assert not out.exists()


@pytest.mark.slow
def test_map_puts_the_other_batches_onto_the_saved_model(trained, data_files, tmp_path):
    out = tmp_path / "query_mapped.h5ad"
    args = [
        "map", str(data_files["query"]), "--model", str(trained["model_dir"]), "--batch-key", "batch",
        "-o", str(out), "--max-epochs", "2", "--labels-key", "cell_line",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        query = ad.read_h5ad(out)
    assert query.n_obs == 499
    assert query.obsm["X_scVI"].shape == (499, 10)
    assert query.obsm["X_umap"].shape == (499, 2)
    assert "X_scANVI" in query.obsm
    assert query.uns["scvi_query"]["model_class"] == "SCANVI"
    assert set(query.obs["scanvi_prediction"].cat.categories) <= set(trained["adata"].obs["cell_line"])
    # The mapped cells' nearest reference neighbours carry their true cell line.
    ref = trained["adata"]
    knn = KNeighborsClassifier(n_neighbors=15).fit(ref.obsm["X_scVI"], ref.obs["cell_line"].astype(str))
    accuracy = float(np.mean(knn.predict(query.obsm["X_scVI"]) == query.obs["cell_line"].astype(str)))
    assert accuracy > 0.9, accuracy
    assert "Mapped 499 cells of 2 batches" in result.output
    assert "agree with 'cell_line'" in result.output


@pytest.mark.slow
def test_map_query_with_no_shared_genes(trained, data_files, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        query = ad.read_h5ad(data_files["query"])
    query.var_names = [f"other{i}" for i in range(query.n_vars)]
    path = tmp_path / "alien.h5ad"
    query.write_h5ad(path)
    out = tmp_path / "o.h5ad"
    args = ["map", str(path), "--model", str(trained["model_dir"]), "--batch-key", "batch", "-o", str(out)]
    line = _one_line_error(CliRunner().invoke(cli, args))
    assert "shares no gene" in line
    assert not out.exists()


# ---------------------------------------------------------------- bad input, before any training


def test_scanvi_needs_labels_key(data_files, tmp_path):
    out = tmp_path / "o.h5ad"
    args = ["integrate", str(data_files["ref"]), "-o", str(out), "--batch-key", "batch", "--scanvi"]
    result = CliRunner().invoke(cli, args)
    line = _one_line_error(result)
    assert result.exit_code == 2
    assert "--scanvi needs --labels-key" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--transform-batch", "CEL-seq2_5cl_p1"], "--transform-batch is for --corrected-genes"),
        (["--overwrite-model"], "--overwrite-model is for --save-model"),
        (["--corrected-genes", ","], "--corrected-genes is empty"),
    ],
)
def test_options_that_need_another(data_files, tmp_path, extra, words):
    out = tmp_path / "o.h5ad"
    args = ["integrate", str(data_files["ref"]), "-o", str(out), "--batch-key", "batch", *extra]
    assert words in _one_line_error(CliRunner().invoke(cli, args))
    assert list(tmp_path.iterdir()) == []


def test_unknown_corrected_gene_is_named_and_nothing_written(data_files, tmp_path):
    out, model_dir = tmp_path / "o.h5ad", tmp_path / "model"
    args = [
        "integrate", str(data_files["ref"]), "-o", str(out), "--batch-key", "batch",
        "--corrected-genes", "ENSG00000124126,NOTAGENE", "--save-model", str(model_dir),
    ]  # fmt: skip
    line = _one_line_error(CliRunner().invoke(cli, args))
    assert "'NOTAGENE'" in line
    assert "ENSG00000124126" not in line.split("look like")[0]
    assert list(tmp_path.iterdir()) == []


def test_unknown_transform_batch_and_covariate(data_files, tmp_path):
    out = tmp_path / "o.h5ad"
    base = ["integrate", str(data_files["ref"]), "-o", str(out), "--batch-key", "batch"]
    line = _one_line_error(
        CliRunner().invoke(cli, [*base, "--corrected-genes", "ENSG00000124126", "--transform-batch", "p9"])
    )
    assert "'p9'" in line
    assert REFERENCE_BATCHES[0] in line
    line = _one_line_error(CliRunner().invoke(cli, [*base, "--categorical-covariate", "donor"]))
    assert "'donor'" in line
    assert "plate" in line
    assert list(tmp_path.iterdir()) == []


def test_map_without_a_model_directory(data_files, tmp_path):
    out = tmp_path / "o.h5ad"
    for model in (tmp_path / "missing", tmp_path):
        args = [
            "map",
            str(data_files["query"]),
            "--model",
            str(model),
            "--batch-key",
            "batch",
            "-o",
            str(out),
        ]
        line = _one_line_error(CliRunner().invoke(cli, args))
        assert str(model) in line
        assert "--save-model" in line
    assert not out.exists()
