"""Training presets: schedules, early stopping, provenance, and a standard scvi-tools model."""

from __future__ import annotations

import os

import numpy as np
import pytest

from pyscvibridge import PyscvibridgeError
from pyscvibridge._training import default_max_epochs, fast_max_epochs, train_scvi, training_plan


@pytest.fixture(scope="module")
def small():
    """400 CellBench cells (80 per batch) x their 300 most expressed genes, raw counts in X."""
    from pyscvibridge.datasets import cellbench

    adata = cellbench()
    rng = np.random.default_rng(0)
    cells = np.concatenate(
        [
            rng.choice(np.flatnonzero(adata.obs["batch"] == b), 80, replace=False)
            for b in adata.obs["batch"].cat.categories
        ]
    )
    adata = adata[np.sort(cells)].copy()
    totals = np.asarray(adata.layers["counts"].sum(axis=0)).ravel()
    genes = np.argsort(-totals)[:300]
    return adata, adata.layers["counts"][:, genes]


def _train(small, **kw):
    adata, counts = small
    args = {
        "batch_key": "batch",
        "n_latent": 4,
        "max_epochs": 3,
        "seed": 0,
        "accelerator": "cpu",
        "devices": 1,
        "progress": False,
        "model_kwargs": {},
        "train_kwargs": {},
    }
    args.update(kw)
    return train_scvi(adata, counts, **args)


def test_scvi_tools_preset_is_scvi_tools_defaults():
    plan = training_plan("scvi-tools", 1408)
    assert plan["max_epochs"] == default_max_epochs(1408) == 400
    assert (plan["batch_size"], plan["lr"], plan["n_epochs_kl_warmup"]) == (128, 1e-3, 400)
    assert plan["early_stopping"] is False
    assert training_plan("scvi-tools", 40000)["max_epochs"] == 200


def test_fast_preset_schedule():
    for n in (500, 1408, 14000, 100_000):
        plan = training_plan("fast", n)
        assert plan["max_epochs"] == fast_max_epochs(n) < default_max_epochs(n) or n > 50_000
        assert plan["early_stopping"] is False  # every epoch of the budget runs
        assert plan["lr"] > 1e-3
        assert plan["n_epochs_kl_warmup"] <= plan["max_epochs"]
        assert plan["threads"] >= 1
    # an explicit epoch count wins over either schedule
    assert training_plan("fast", 1408, max_epochs=7)["max_epochs"] == 7
    assert training_plan("scvi-tools", 1408, max_epochs=7)["max_epochs"] == 7


def test_threads_are_torchs_setting_unless_asked_for():
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        for preset in ("fast", "scvi-tools"):
            plan = training_plan(preset, 1408)
            assert (plan["threads"], plan["threads_from"]) == (1, "torch")
        assert (
            training_plan("fast", 1408, threads=3)["threads"],
            training_plan("fast", 10, threads=3.0)["threads_from"],
        ) == (3, "n_threads")
        auto = training_plan("fast", 1408, threads="auto")
        assert auto["threads_from"] == "auto"
        assert auto["threads"] == 1
    finally:
        torch.set_num_threads(before)
    for bad in (0, -2, 1.5, "two", True):
        with pytest.raises(
            PyscvibridgeError, match=r"n_threads must be a positive number of threads or 'auto', not"
        ):
            training_plan("fast", 100, threads=bad)


def test_bad_preset_and_epochs():
    with pytest.raises(PyscvibridgeError, match=r"Unknown preset 'quick'.*'fast', 'scvi-tools'"):
        training_plan("quick", 100)
    with pytest.raises(PyscvibridgeError, match="max_epochs must be a positive"):
        training_plan("fast", 100, max_epochs=0)


def test_fast_preset_trains_and_records(small):
    model = _train(small)
    rec = model._pyscvibridge_training
    assert rec["preset"] == "fast"
    assert rec["epochs_run"] == len(model.history["elbo_train"]) == 3
    assert rec["stopped_early"] is False
    assert rec["batch_size"] == training_plan("fast", 400)["batch_size"]
    assert np.isfinite(model.history["elbo_validation"].to_numpy(dtype=float)).all()


def test_early_stopping_asked_for_stops_and_is_recorded(small):
    # any epoch that does not improve the validation ELBO by 1e9 counts as no improvement
    es = {"early_stopping": True, "early_stopping_min_delta": 1e9, "early_stopping_patience": 2}
    model = _train(small, max_epochs=10, train_kwargs=es)
    rec = model._pyscvibridge_training
    assert (rec["early_stopping"], rec["early_stopping_patience"]) == (True, 2)
    assert rec["stopped_early"] is True
    assert rec["epochs_run"] < 10
    assert rec["epochs_run"] == len(model.history["elbo_train"])


def test_model_is_standard_scvi(small, tmp_path):
    """Trained with the table likelihood, yet a plain scvi-tools model and module that stock scvi-tools loads."""
    import scvi

    model = _train(small, max_epochs=2)
    assert model._pyscvibridge_training["count_likelihood"] == "table"
    assert type(model) is scvi.model.SCVI
    assert type(model.module) is scvi.module.VAE
    z = model.get_latent_representation()
    model.save(tmp_path / "model", save_anndata=True)
    loaded = scvi.model.SCVI.load(tmp_path / "model", accelerator="cpu")
    assert type(loaded) is scvi.model.SCVI
    assert type(loaded.module) is scvi.module.VAE
    assert loaded.is_trained
    np.testing.assert_allclose(loaded.get_latent_representation(), z, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_integrate_records_preset(small):
    import pyscvibridge as psb

    adata, _ = small
    out = psb.integrate(adata.copy(), "batch", n_top_genes=300, max_epochs=2, progress=False)
    prov = out.uns["scvi_integration"]
    assert prov["params"]["preset"] == "fast"
    assert prov["params"]["max_epochs"] == 2
    assert prov["training"]["preset"] == "fast"
    assert prov["training"]["epochs_run"] == prov["epochs_run"] == 2
    assert out.obsm["X_scVI"].shape == (adata.n_obs, 10)

    ref = psb.integrate(
        adata.copy(), "batch", n_top_genes=300, max_epochs=2, preset="scvi-tools", progress=False
    )
    assert ref.uns["scvi_integration"]["training"]["batch_size"] == 128
    assert ref.uns["scvi_integration"]["params"]["preset"] == "scvi-tools"


def test_table_likelihood_trains_the_same_model(small):
    """The fast preset's table likelihood follows the same optimisation path as scvi-tools' code
    (same seed: the same ELBO per epoch, to float rounding); non-integer input falls back."""
    table = _train(small, max_epochs=3)
    stock = _train(small, max_epochs=3, count_likelihood="scvi-tools")
    assert table._pyscvibridge_training["count_likelihood"] == "table"
    assert stock._pyscvibridge_training["count_likelihood"] == "scvi-tools"
    np.testing.assert_allclose(
        table.history["elbo_validation"].to_numpy(dtype=float),
        stock.history["elbo_validation"].to_numpy(dtype=float),
        rtol=1e-4,
    )
    np.testing.assert_allclose(
        table.get_latent_representation(), stock.get_latent_representation(), atol=1e-3
    )
    adata, counts = small
    scaled = counts.astype(np.float32) * 0.5  # not integers: the table does not apply
    fallback = _train((adata, scaled), max_epochs=1)
    assert fallback._pyscvibridge_training["count_likelihood"] == "scvi-tools"
    with pytest.raises(PyscvibridgeError, match="count_likelihood must be"):
        _train(small, count_likelihood="fastest")


def test_other_processes_cpu_is_measured_without_our_own(monkeypatch):
    from pyscvibridge._training import _others_busy

    monkeypatch.setattr("os.sysconf", lambda name: 100)  # clock ticks per second
    before = "cpu  9 9 9 9 9 0 0 0 0 0\ncpu0 100 0 0 500 0 0 0 0 0 0\ncpu1 200 0 0 500 0 0 0 0 0 0\ncpu2 0 0 0 0 0 0 0 0 0 0\nintr 1 2\n"
    # one second later: cpu0 busy 50 ticks, cpu1 30 (20 user + 10 system), idle/iowait ticks are not busy;
    # cpu2 is outside this process's affinity
    after = "cpu  9 9 9 9 9 0 0 0 0 0\ncpu0 150 0 0 550 7 0 0 0 0 0\ncpu1 220 0 10 570 0 0 0 0 0 0\ncpu2 100 0 0 0 0 0 0 0 0 0\nintr 1 2\n"
    assert _others_busy(before, after, own_cpu=0.0, wall=1.0, cores={0, 1}) == pytest.approx(0.8)
    # this process's own 0.3 CPU seconds (its preparation, its UMAP) are not someone else's
    assert _others_busy(before, after, own_cpu=0.3, wall=1.0, cores={0, 1}) == pytest.approx(0.5)
    assert _others_busy(before, after, own_cpu=2.0, wall=1.0, cores={0, 1}) == 0.0
    assert _others_busy(before, after, own_cpu=0.0, wall=1.0, cores={2}) == pytest.approx(1.0)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="measures through Linux's /proc")
def test_auto_threads_leave_a_core_to_a_busy_process():
    import subprocess
    import sys
    import time

    import torch

    from pyscvibridge._training import _auto_threads, _busy_elsewhere

    cores = os.sched_getaffinity(0)
    before = torch.get_num_threads()
    torch.set_num_threads(len(cores))
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert _busy_elsewhere(cores) >= 0.7
        assert _auto_threads() <= max(1, len(cores) - 1)
    finally:
        spinner.kill()
        spinner.wait()
        torch.set_num_threads(before)
