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
    warnings.filterwarnings("ignore")
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import pyscvibridge as psb

    out = sys.argv[1]
    adata = psb.datasets.cellbench()
    keep = adata.obs.groupby("batch", observed=True).head(60).index
    adata = adata[keep].copy()
    adata, model = psb.integrate(
        adata, "batch", n_top_genes=200, max_epochs=2, progress=False,
        accelerator="cpu", devices=2, train_kwargs={"strategy": "ddp_find_unused_parameters_true"},
        return_model=True,
    )
    rank = int(os.environ.get("LOCAL_RANK", 0))
    np.save(os.path.join(out, f"latent{rank}.npy"), adata.obsm["X_scVI"])
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({
            "world_size": model.trainer.world_size,
            "strategy": type(model.trainer.strategy).__name__,
            "accelerator": type(model.trainer.accelerator).__name__,
            "epochs": int(model.trainer.current_epoch),
            "n_cells": adata.n_obs,
        }, f)
    """
)


@pytest.mark.slow
def test_two_process_cpu_ddp(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for info in ranks:
        assert info["world_size"] == 2
        assert info["strategy"] == "DDPStrategy"
        assert info["accelerator"] == "CPUAccelerator"
        assert info["epochs"] == 2
    latents = [np.load(tmp_path / f"latent{r}.npy") for r in (0, 1)]
    assert latents[0].shape == (ranks[0]["n_cells"], 10)
    assert np.isfinite(latents[0]).all()
    # Both ranks end with the same synchronised weights: their latents agree (up to batch-norm statistics,
    # which DDP does not synchronise).
    assert np.corrcoef(latents[0].ravel(), latents[1].ravel())[0, 1] > 0.99
