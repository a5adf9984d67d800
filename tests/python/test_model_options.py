"""scVI's model options: checked once in the pipeline (Spec check), named as each door spells them;
the CLI's --n-layers, --n-hidden, --gene-likelihood, --dispersion, --dropout-rate."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

from pyscvibridge._pipeline import OptionError, Spec, check
from pyscvibridge.cli import cli
from pyscvibridge.cli.integrate import SPELLING


def _small(n: int = 300, g: int = 200) -> ad.AnnData:
    rng = np.random.default_rng(0)
    types = np.repeat(["T", "B", "NK"], n // 3)
    rates = rng.gamma(2.0, 1.0, size=(3, g))
    counts = rng.poisson(rates[pd.Categorical(types).codes] * 2).astype(np.float32)
    obs = pd.DataFrame(
        {"sample": pd.Categorical(np.tile(["s1", "s2"], n // 2)), "cell_type": pd.Categorical(types)},
        index=[f"cell{i}" for i in range(n)],
    )
    adata = ad.AnnData(sp.csr_matrix(counts), obs=obs)
    adata.var_names = [f"gene{j}" for j in range(g)]
    adata.layers["counts"] = adata.X.copy()
    return adata


@pytest.fixture
def small_h5ad(tmp_path) -> Path:
    path = tmp_path / "small.h5ad"
    _small().write_h5ad(path)
    return path


@pytest.mark.parametrize(
    ("kwargs", "option", "message"),
    [
        ({"n_layers": 0}, "n_layers", "n_layers must be a whole number of at least 1, not 0."),
        ({"n_layers": 2.0}, "n_layers", "n_layers must be a whole number of at least 1, not 2.0."),
        ({"n_layers": True}, "n_layers", "n_layers must be a whole number of at least 1, not True."),
        ({"n_hidden": -3}, "n_hidden", "n_hidden must be a whole number of at least 1, not -3."),
        (
            {"dropout_rate": 1},
            "dropout_rate",
            "dropout_rate must be a number from 0 up to (not including) 1, not 1.",
        ),
        ({"dropout_rate": "0.1"}, "dropout_rate", "dropout_rate must be a number from 0 up to"),
        (
            {"gene_likelihood": "normal"},
            "gene_likelihood",
            "gene_likelihood must be one of 'zinb', 'nb', 'poisson', not 'normal'.",
        ),
        (
            {"dispersion": "cell"},
            "dispersion",
            "dispersion must be one of 'gene', 'gene-batch', 'gene-label', 'gene-cell'",
        ),
        ({"n_latent": 4}, "model_kwargs", "n_latent is an option of its own; leave it out of model_kwargs."),
    ],
)
def test_check_refuses_bad_model_options_naming_them(kwargs, option, message):
    with pytest.raises(OptionError) as e:
        check(_small(60, 20), Spec(batch_key="sample", model_kwargs=kwargs))
    assert e.value.option == option
    assert str(e.value).startswith(message)


def test_check_accepts_good_model_options():
    good = {
        "n_layers": 2,
        "n_hidden": 16,
        "gene_likelihood": "nb",
        "dispersion": "gene-batch",
        "dropout_rate": 0.0,
    }
    check(_small(60, 20), Spec(batch_key="sample", model_kwargs=good))  # no error


def test_check_spells_options_as_the_door_does():
    with pytest.raises(OptionError, match=r"^--n-layers must be a whole number of at least 1, not 0\.$"):
        check(_small(60, 20), Spec(batch_key="sample", model_kwargs={"n_layers": 0}), spell=SPELLING)
    with pytest.raises(OptionError, match=r'^nlayers must be a whole number of at least 1, not "0"\.$'):
        check(
            _small(60, 20),
            Spec(batch_key="sample", model_kwargs={"n_layers": 0}),
            spell={"n_layers": "nlayers"},
            quote=lambda v: f'"{v}"',
        )


def test_cli_bad_values_are_refused_naming_the_option(small_h5ad, tmp_path):
    runner = CliRunner()
    base = ["integrate", str(small_h5ad), "-o", str(tmp_path / "o.h5ad"), "--batch-key", "sample"]
    result = runner.invoke(cli, [*base, "--n-layers", "0"])
    assert result.exit_code != 0
    assert "--n-layers must be a whole number of at least 1, not 0." in result.output
    result = runner.invoke(cli, [*base, "--dropout-rate", "1.5"])
    assert result.exit_code != 0
    assert "--dropout-rate must be a number from 0 up to (not including) 1, not 1.5." in result.output
    result = runner.invoke(cli, [*base, "--gene-likelihood", "normal"])
    assert result.exit_code == 2
    assert "'normal' is not one of 'zinb', 'nb', 'poisson'" in result.output
    assert not (tmp_path / "o.h5ad").exists()


@pytest.mark.slow
def test_cli_n_layers_2_is_trained_and_recorded(small_h5ad, tmp_path):
    out = tmp_path / "o.h5ad"
    result = CliRunner().invoke(
        cli,
        [
            "integrate",
            str(small_h5ad),
            "-o",
            str(out),
            "--batch-key",
            "sample",
            "--n-top-genes",
            "100",
            "--n-latent",
            "4",
            "--max-epochs",
            "2",
            "--n-layers",
            "2",
            "--n-hidden",
            "16",
            "--gene-likelihood",
            "nb",
            "--dispersion",
            "gene-batch",
            "--dropout-rate",
            "0.2",
        ],
    )
    assert result.exit_code == 0, result.output
    rec = ad.read_h5ad(out).uns["scvi_integration"]
    assert dict(rec["model_kwargs"]) == {
        "n_layers": 2,
        "n_hidden": 16,
        "gene_likelihood": "nb",
        "dispersion": "gene-batch",
        "dropout_rate": 0.2,
    }
    assert rec["epochs_run"] == 2
