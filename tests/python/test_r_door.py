"""pyscvibridge._r_door, the functions the R package calls, driven from Python through rpy2.

The R package's own tests (tests/testthat) call them the real way, through reticulate; these check
the contract with R: the object is read from a hand-off environment (kept by the R package in its
private state, or handed over directly), the result is bound next to it, and only plain values come
back.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pyscvibridge import _r_door

pytestmark = [pytest.mark.r, pytest.mark.slow]


@pytest.fixture
def bridge(r):
    """A fresh hand-off environment (handed to the door itself) holding the object of an .rds file."""

    def _make(path):
        return r(f'local({{e <- new.env(); e$object <- readRDS("{path}"); e}})')

    return _make


def in_env(env, code: str):
    """Evaluate R ``code`` with ``env`` bound to the hand-off environment."""
    import rpy2.robjects as ro

    return ro.r(f"function(env) {code}")(env)


def test_run_integrate_binds_the_result_and_reports_progress(r, bridge, pbmc_small_path):
    name = bridge(pbmc_small_path)
    said: list[str] = []
    answer = _r_door.run_integrate(
        name,
        kind="seurat",
        assay=None,
        layer="counts",
        batch_key="groups",
        max_epochs=3,
        n_latent=6,
        verbose=True,
        emit=said.append,
    )
    assert answer["ok"] is True
    assert answer["info"]["n_cells"] == 80
    assert answer["info"]["epochs"] == 3
    assert any(s.startswith("scVI epoch 3/3, ELBO") for s in said)
    assert list(in_env(name, "names(env$result@reductions)"))[-2:] == ["scVI", "umap.scVI"]
    assert tuple(in_env(name, "dim(env$result@reductions$scVI@cell.embeddings)")) == (80, 6)
    assert list(in_env(name, "env$result@reductions$scVI@key")) == ["scVI_"]
    assert list(
        in_env(name, "identical(colnames(env$result@reductions$scVI@cell.embeddings), paste0('scVI_', 1:6))")
    ) == [True]
    # the input object is not modified
    assert list(in_env(name, "length(env$object@reductions)")) == [0]


def test_run_integrate_silent_when_not_verbose(bridge, pbmc_small_path, capsys):
    name = bridge(pbmc_small_path)
    said: list[str] = []
    answer = _r_door.run_integrate(
        name,
        kind="seurat",
        assay=None,
        layer="counts",
        batch_key="groups",
        max_epochs=2,
        verbose=False,
        emit=said.append,
    )
    assert answer["ok"] is True
    assert said == []
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == ""


def test_normalised_layer_is_an_error_naming_layer(bridge, v5_joined_path):
    name = bridge(v5_joined_path)
    answer = _r_door.run_integrate(
        name, kind="seurat", assay=None, layer="data", batch_key="batch", max_epochs=2, verbose=False
    )
    assert answer["ok"] is False
    assert answer["argument"] == "layer"
    assert "raw counts" in answer["error"]
    assert "non-integer" in answer["error"]


def test_split_layers_default_to_the_split_column(r, bridge, v5_split_path):
    name = bridge(v5_split_path)
    answer = _r_door.run_integrate(
        name, kind="seurat", assay=None, layer="counts", batch_key=None, max_epochs=2, verbose=False
    )
    assert answer["ok"] is True
    assert answer["info"]["batch_key"] == "split_layer"
    assert tuple(in_env(name, "dim(env$result@reductions$umap.scVI@cell.embeddings)")) == (400, 2)


def test_run_integrate_scanvi_needs_labels_key(r, bridge, pbmc_small_path):
    name = bridge(pbmc_small_path)
    answer = _r_door.run_integrate(
        name, kind="seurat", assay=None, layer="counts", batch_key="groups", scanvi=True, verbose=False
    )
    assert answer["ok"] is False
    assert answer["argument"] == "labels_key"
    assert "scanvi = TRUE needs labels_key" in answer["error"]
    assert list(in_env(name, 'exists("result", envir = env)')) == [False]


def test_run_map_query_bad_model_dir_names_the_argument(bridge, pbmc_small_path, tmp_path):
    name = bridge(pbmc_small_path)
    answer = _r_door.run_map_query(
        name,
        kind="seurat",
        assay=None,
        layer="counts",
        model_dir=str(tmp_path / "none"),
        batch_key="groups",
        verbose=False,
    )
    assert answer["ok"] is False
    assert answer["argument"] == "model_dir"
    assert "model_dir" in answer["error"]


def test_a_door_finds_the_hand_off_by_name_and_leaves_the_global_environment_alone(r, v5_joined_path):
    # The R package keeps hand-off environments in its private state; the door looks them up there.
    lib = Path(sys.prefix) / "Rlib"
    r(f'suppressMessages(loadNamespace("pyscvibridge", lib.loc = c("{lib}", .libPaths())))')
    before = list(r("ls(globalenv(), all.names = TRUE)"))
    name = str(r("pyscvibridge:::.bridge_open(NULL)")[0])
    try:
        answer = _r_door.load_cellbench(name, kind="sce")
        assert answer["ok"] is True, answer
        found = f'get("{name}", envir = pyscvibridge:::.state$bridges)$result'
        assert list(r(f"class({found})")) == ["SingleCellExperiment"]
        assert tuple(r(f"dim({found})")) == (11533, 1408)
    finally:
        r(f'pyscvibridge:::.bridge_close("{name}")')
    assert list(r("ls(globalenv(), all.names = TRUE)")) == before
    assert list(r(f'exists("{name}", envir = pyscvibridge:::.state$bridges)')) == [False]
