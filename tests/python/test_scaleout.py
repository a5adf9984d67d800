"""Scale-out: accelerator / devices / strategy reach Lightning; a real 2-process CPU DDP training.

Lightning's "ddp" strategy starts the other ranks by re-running the launching script, so DDP runs from a
script (as users run it on a multi-GPU node), here in a subprocess, never inside pytest's own process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, warnings


    def main(out, strategy):
        warnings.filterwarnings("ignore")
        import numpy as np
        import torch

        torch.set_num_threads(1)
        import pyscvibridge as psb

        adata = psb.datasets.cellbench()
        keep = adata.obs.groupby("batch", observed=True).head(60).index
        adata = adata[keep].copy()
        adata, model = psb.integrate(
            adata, "batch", n_top_genes=200, max_epochs=2, progress=False,
            accelerator="cpu", devices=2, train_kwargs={"strategy": strategy}, return_model=True,
        )
        rank = int(os.environ.get("LOCAL_RANK", 0))
        np.save(os.path.join(out, f"latent{rank}.npy"), adata.obsm["X_scVI"])
        history = model.history["elbo_train"] if "elbo_train" in model.history else ()
        with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
            json.dump({
                "world_size": model.trainer.world_size,
                "strategy": type(model.trainer.strategy).__name__,
                "accelerator": type(model.trainer.accelerator).__name__,
                "epochs": int(model.trainer.current_epoch),
                "n_cells": adata.n_obs,
                "history_epochs": len(history),
                "uns_epochs": int(adata.uns["scvi_integration"]["epochs_run"]),
                "count_likelihood": adata.uns["scvi_integration"]["training"]["count_likelihood"],
                "module": type(model.module).__name__,
            }, f)


    if __name__ == "__main__":  # ddp_spawn's workers import this file; only the launcher runs main()
        main(sys.argv[1], sys.argv[2])
    """
)


def _run(tmp_path, strategy: str) -> None:
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path), strategy],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.slow
def test_two_process_cpu_ddp(tmp_path):
    """ "ddp": Lightning re-runs the script once per extra rank; every rank finishes integrate()."""
    _run(tmp_path, "ddp_find_unused_parameters_true")
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for info in ranks:
        assert info["world_size"] == 2
        assert info["strategy"] == "DDPStrategy"
        assert info["accelerator"] == "CPUAccelerator"
        assert info["epochs"] == 2
        assert info["count_likelihood"] == "table"
    latents = [np.load(tmp_path / f"latent{r}.npy") for r in (0, 1)]
    assert latents[0].shape == (ranks[0]["n_cells"], 10)
    assert np.isfinite(latents[0]).all()
    # Both ranks end with the same synchronised weights: their latents agree (up to batch-norm statistics,
    # which DDP does not synchronise).
    assert np.corrcoef(latents[0].ravel(), latents[1].ravel())[0, 1] > 0.99


@pytest.mark.slow
def test_two_process_cpu_ddp_spawn(tmp_path):
    """ "ddp_spawn": workers are spawned from the calling process and the trained model comes back to it,
    so it also works where no script can be re-run (a notebook, R through reticulate)."""
    _run(tmp_path, "ddp_spawn_find_unused_parameters_true")
    info = json.loads((tmp_path / "rank0.json").read_text())
    assert not (tmp_path / "rank1.json").exists()  # only the caller returns from integrate()
    assert info["world_size"] == 2
    assert info["strategy"] == "DDPStrategy"
    assert info["history_epochs"] == 2
    assert info["uns_epochs"] == 2
    # the workers trained the module pickled with the table likelihood; the caller's is plain again
    assert info["count_likelihood"] == "table (in worker processes)"
    assert info["module"] == "VAE"
    latent = np.load(tmp_path / "latent0.npy")
    assert latent.shape == (info["n_cells"], 10)
    assert np.isfinite(latent).all()
