"""The command line through click's CliRunner: help, version, inspect, convert, integrate, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

from pyscvibridge import __version__
from pyscvibridge.cli import cli

COMMANDS = ("integrate", "map", "convert", "inspect", "demo")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def small_h5ad(tmp_path) -> Path:
    """300 cells x 200 genes of Poisson counts, two batches, three cell types."""
    rng = np.random.default_rng(0)
    n, g = 300, 200
    types = np.repeat(["T", "B", "NK"], n // 3)
    rates = rng.gamma(2.0, 1.0, size=(3, g))
    counts = rng.poisson(rates[pd.Categorical(types).codes] * 2).astype(np.float32)
    obs = pd.DataFrame(
        {
            "sample": pd.Categorical(np.tile(["s1", "s2"], n // 2)),
            "cell_type": pd.Categorical(types),
            "n_counts": counts.sum(1),
        },
        index=[f"cell{i}" for i in range(n)],
    )
    adata = ad.AnnData(sp.csr_matrix(counts), obs=obs)
    adata.var_names = [f"gene{j}" for j in range(g)]
    adata.layers["counts"] = adata.X.copy()
    path = tmp_path / "in" / "small.h5ad"
    path.parent.mkdir()
    adata.write_h5ad(path)
    return path


def _one_line_error(result) -> str:
    """The user-error contract: non-zero exit, one 'Error: ...' line, no traceback."""
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_version_and_help(runner):
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"pyscvibridge {__version__}"
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output
    assert "--quiet" in result.output
    assert "--verbose" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help(runner, command):
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert cli.commands[command].help.split()[0] in result.output
    params = [p for p in cli.commands[command].params if p.param_type_name == "option"]
    for param in params:
        assert param.help, f"{command} {param.opts} has no help"
        assert param.opts[-1] in result.output


def test_missing_required_option_is_one_line(runner, small_h5ad, tmp_path):
    line = _one_line_error(runner.invoke(cli, ["integrate", str(small_h5ad), "-o", str(tmp_path / "o.h5ad")]))
    assert "--batch-key" in line
    assert "integrate --help" in line


def test_inspect_h5ad_lists_what_a_user_needs(runner, small_h5ad):
    result = runner.invoke(cli, ["inspect", str(small_h5ad)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "AnnData" in out
    assert "300 x 200" in out
    assert "layers['counts']: raw counts" in out
    assert "sample" in out
    assert "2 levels: s1, s2" in out
    assert "cell_type" in out
    assert "3 levels" in out
    assert "possible batch or label keys: sample, cell_type" in out


def test_inspect_flags_normalised_values(runner, small_h5ad):
    adata = ad.read_h5ad(small_h5ad)
    adata.layers["counts"] = adata.layers["counts"].copy()
    adata.X = sp.csr_matrix(np.log1p(adata.X.toarray()))
    adata.write_h5ad(small_h5ad)
    result = runner.invoke(cli, ["inspect", str(small_h5ad)])
    assert result.exit_code == 0
    assert "X: not raw counts" in result.output
    assert "log-normalised" in result.output


@pytest.mark.parametrize("command", ["inspect", "integrate", "convert", "map"])
def test_nonexistent_input(runner, tmp_path, command):
    args = {
        "inspect": [],
        "integrate": ["-o", str(tmp_path / "out.h5ad"), "--batch-key", "batch"],
        "convert": [str(tmp_path / "out.rds")],
        "map": ["-o", str(tmp_path / "out.h5ad"), "--batch-key", "batch", "--model", str(tmp_path)],
    }[command]
    line = _one_line_error(runner.invoke(cli, [command, str(tmp_path / "nope.h5ad"), *args]))
    assert "No such file" in line
    assert "nope.h5ad" in line
    assert sorted(tmp_path.iterdir()) == []


def test_wrong_extension(runner, tmp_path, small_h5ad):
    bad = tmp_path / "counts.csv"
    bad.write_text("a,b\n1,2\n")
    line = _one_line_error(runner.invoke(cli, ["inspect", str(bad)]))
    assert "'.csv'" in line
    assert ".rds or .h5ad" in line
    line = _one_line_error(
        runner.invoke(
            cli, ["integrate", str(small_h5ad), "-o", str(tmp_path / "out.loom"), "--batch-key", "sample"]
        )
    )
    assert "must end in .h5ad" in line
    assert not (tmp_path / "out.loom").exists()


@pytest.mark.parametrize("suffix", [".h5ad", ".rds"])
def test_unreadable_file(runner, tmp_path, suffix):
    bad = tmp_path / f"broken{suffix}"
    bad.write_bytes(b"this is not a " + suffix.encode() + b" file\n" * 20)
    out = tmp_path / "out.h5ad"
    line = _one_line_error(
        runner.invoke(cli, ["integrate", str(bad), "-o", str(out), "--batch-key", "batch"])
    )
    assert "broken" in line
    assert "read" in line.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == [bad.name]


def test_unknown_batch_key_lists_the_columns(runner, small_h5ad, tmp_path):
    out, plots = tmp_path / "out" / "x.h5ad", tmp_path / "plots"
    (tmp_path / "out").mkdir()
    result = runner.invoke(
        cli, ["integrate", str(small_h5ad), "-o", str(out), "--batch-key", "donor", "--plots", str(plots)]
    )
    line = _one_line_error(result)
    assert "'donor'" in line
    assert "Available columns: 'sample', 'cell_type', 'n_counts'" in line
    assert list((tmp_path / "out").iterdir()) == []
    assert not plots.exists()


def _unwritable_dirs(tmp_path) -> list[Path]:
    """Directories no file can be created in: below a regular file; and a read-only directory
    (chmod works for a normal user; root ignores permissions, so for root /proc stands in)."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    if os.geteuid() != 0:
        ro = tmp_path / "read_only"
        ro.mkdir()
        ro.chmod(0o555)
    else:
        ro = Path("/proc")
    return [blocker / "sub", ro]


def _listing(directory: Path) -> list[str]:
    """The directory's entries, less /proc's process ids (processes come and go while tests run)."""
    return sorted(n for n in os.listdir(directory) if not (directory == Path("/proc") and n.isdigit()))


def test_unwritable_output_directory_fails_before_training(runner, small_h5ad, tmp_path):
    for directory in _unwritable_dirs(tmp_path):
        before = _listing(directory) if directory.is_dir() else None
        for args in (
            ["-o", str(directory / "out.h5ad")],
            ["-o", str(tmp_path / "ok.h5ad"), "--plots", str(directory / "plots")],
            ["-o", str(tmp_path / "ok.h5ad"), "--rds-out", str(directory / "out.rds")],
        ):
            result = runner.invoke(cli, ["integrate", str(small_h5ad), "--batch-key", "sample", *args])
            line = _one_line_error(result)
            assert "Cannot write" in line, line
            assert not (tmp_path / "ok.h5ad").exists()
        if before is not None:
            assert _listing(directory) == before


def test_output_must_not_overwrite_the_input(runner, small_h5ad):
    line = _one_line_error(
        runner.invoke(cli, ["integrate", str(small_h5ad), "-o", str(small_h5ad), "--batch-key", "sample"])
    )
    assert "is the input file" in line


def test_metrics_need_labels(runner, small_h5ad, tmp_path):
    out = tmp_path / "o.h5ad"
    line = _one_line_error(
        runner.invoke(
            cli, ["integrate", str(small_h5ad), "-o", str(out), "--batch-key", "sample", "--metrics"]
        )
    )
    assert "--labels-key" in line
    assert not out.exists()


@pytest.mark.slow
def test_integrate_h5ad_writes_outputs_and_summary(runner, small_h5ad, tmp_path):
    out, plots = tmp_path / "res" / "int.h5ad", tmp_path / "plots"
    args = [
        "integrate",
        str(small_h5ad),
        "-o",
        str(out),
        "--batch-key",
        "sample",
        "--labels-key",
        "cell_type",
    ]
    args += ["--max-epochs", "3", "--n-top-genes", "100", "--n-latent", "5", "--plots", str(plots)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    adata = ad.read_h5ad(out)
    assert adata.shape == (300, 200)
    assert adata.obsm["X_scVI"].shape == (300, 5)
    assert {"X_pca", "X_umap", "X_umap_unintegrated"} <= set(adata.obsm)
    assert int(adata.var["highly_variable"].sum()) == 100
    assert adata.uns["scvi_integration"]["params"]["batch_key"] == "sample"
    assert adata.uns["scvi_integration"]["epochs_run"] == 3
    assert sorted(p.name for p in plots.iterdir()) == sorted(
        ["umap_before_after.png", "hvg_batches.png", "training_curve.png"]
    )
    assert "Integrated 300 cells x 200 genes" in result.output
    assert "3 epochs" in result.output
    assert str(out) in result.output
    assert [p.name for p in out.parent.iterdir()] == ["int.h5ad"]  # no temporary file left


@pytest.mark.slow
def test_quiet_prints_nothing_and_verbose_logs_what_was_added(runner, small_h5ad, tmp_path):
    base = ["integrate", str(small_h5ad), "--batch-key", "sample", "--max-epochs", "2", "--n-top-genes", "50"]
    quiet = runner.invoke(cli, ["-q", *base, "-o", str(tmp_path / "q.h5ad")])
    assert quiet.exit_code == 0
    assert quiet.output == ""
    assert (tmp_path / "q.h5ad").exists()
    loud = runner.invoke(cli, ["-v", *base, "-o", str(tmp_path / "v.h5ad")])
    assert loud.exit_code == 0
    assert "added .obsm['X_scVI'] (300 x 10)" in loud.output
    assert "Integrated 300 cells" in loud.output


@pytest.mark.slow
@pytest.mark.r
def test_inspect_and_convert_rds(runner, v5_joined_path, tmp_path):
    result = runner.invoke(cli, ["inspect", str(v5_joined_path)])
    assert result.exit_code == 0, result.output
    assert "Seurat" in result.output
    assert "400 x 2,000" in result.output
    assert "batch" in result.output
    assert "5 levels" in result.output

    h5 = tmp_path / "cb.h5ad"
    result = runner.invoke(cli, ["convert", str(v5_joined_path), str(h5)])
    assert result.exit_code == 0, result.output
    assert "Converted Seurat (R -> AnnData)" in result.output
    assert "layers['counts'] <-" in result.output
    adata = ad.read_h5ad(h5)
    assert adata.shape == (400, 2000)
    assert list(adata.obs["batch"].cat.categories)[:2] == ["CEL-seq2_3cl", "Drop-seq_3cl"]

    rds = tmp_path / "back.rds"
    result = runner.invoke(cli, ["convert", str(h5), str(rds)])
    assert result.exit_code == 0, result.output
    assert "AnnData -> R" in result.output
    result = runner.invoke(cli, ["inspect", str(rds)])
    assert result.exit_code == 0, result.output
    assert "Seurat" in result.output
    assert "400 x 2,000" in result.output

    line = _one_line_error(runner.invoke(cli, ["convert", str(h5), str(tmp_path / "x.h5ad")]))
    assert "must end in .rds" in line


@pytest.mark.slow
@pytest.mark.r
def test_integrate_h5ad_with_rds_out_as_sce(runner, small_h5ad, tmp_path, r):
    out, rds = tmp_path / "int.h5ad", tmp_path / "int.rds"
    args = ["integrate", str(small_h5ad), "-o", str(out), "--rds-out", str(rds), "--batch-key", "sample"]
    args += ["--rds-kind", "SingleCellExperiment", "--max-epochs", "2", "--n-top-genes", "50"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    sce = r["readRDS"](str(rds))
    assert "SingleCellExperiment" in list(r["class"](sce))
    dims = set(r("SingleCellExperiment::reducedDimNames")(sce))
    assert {"scVI", "UMAP", "PCA"} <= dims, dims
    emb = np.asarray(r("SingleCellExperiment::reducedDim")(sce, "scVI"))
    assert emb.shape == (300, 10)
    assert np.allclose(emb, ad.read_h5ad(out).obsm["X_scVI"], atol=1e-5)

    again = ["integrate", str(rds), "-o", str(tmp_path / "x.h5ad"), "--batch-key", "sample"]
    line = _one_line_error(runner.invoke(cli, [*again, "--rds-kind", "Seurat"]))
    assert "--rds-kind is for .h5ad input" in line
