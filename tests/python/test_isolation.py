"""integrate() leaves the libraries it uses as shipped, and its result does not depend on the machine's load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

# A fresh process: records every function and class in the modules of scvi-tools, UMAP and numba,
# imports every pyscvibridge module, runs integrate() for 2 epochs on CellBench (checking scvi-tools
# during every training step through a Lightning callback), and reports what differs from the
# shipped objects at each point.
RUN = r"""
import importlib, json, pkgutil, sys, types
import numba, scanpy, scvi, scvi.distributions, scvi.module, torch, umap, umap.layouts, umap.umap_
import lightning.pytorch as pl

LIBS = ("scvi", "umap", "numba")

def snapshot():
    out = {}
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in LIBS:
            continue
        for attr, value in list(vars(module).items()):
            if callable(value) and not isinstance(value, types.ModuleType):
                out[f"{name}.{attr}"] = value
    return out

def differences(before, now):
    changed = [k for k, v in before.items() if k in now and now[k] is not v]
    ours = [k for k, v in now.items() if k not in before and str(getattr(v, "__module__", "")).startswith("pyscvibridge")]
    return sorted(changed + ours)

shipped = snapshot()
numba_cache_dir = numba.config.CACHE_DIR
threads = torch.get_num_threads()
import pyscvibridge
for info in pkgutil.walk_packages(pyscvibridge.__path__, "pyscvibridge."):
    if not info.name.endswith(".__main__"):  # running a package's __main__ runs its command line
        importlib.import_module(info.name)
at_import = differences(shipped, snapshot())

class Check(pl.Callback):
    steps, during = 0, set()
    def on_train_batch_end(self, *args):
        Check.steps += 1
        Check.during.update(k for k in differences(shipped, snapshot()) if k.startswith("scvi"))

adata = pyscvibridge.datasets.cellbench()
out, model = pyscvibridge.integrate(
    adata, "batch", max_epochs=2, progress=False, accelerator="cpu", return_model=True,
    train_kwargs={"callbacks": [Check()]},
)
print(json.dumps({
    "at_import": at_import,
    "during_training": sorted(Check.during),
    "steps": Check.steps,
    "after": differences(shipped, snapshot()),
    "numba_cache_dir_kept": numba.config.CACHE_DIR == numba_cache_dir,
    "threads_kept": torch.get_num_threads() == threads,
    "module": type(model.module).__module__ + "." + type(model.module).__name__,
    "training": {k: out.uns["scvi_integration"]["training"].get(k) for k in ("count_likelihood", "threads_from")},
}))
"""


@pytest.mark.slow
def test_integrate_leaves_scvi_umap_and_numba_as_shipped(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"PYSCVIBRIDGE_JIT_CACHE", "NUMBA_CACHE_DIR"}}
    env["PYSCVIBRIDGE_CACHE"] = str(tmp_path / "cache")  # the JIT cache is on (compiling afresh)
    proc = subprocess.run([sys.executable, "-c", RUN], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["at_import"] == []
    assert got["steps"] > 0
    assert got["during_training"] == []  # the table likelihood is the model's own, not scvi-tools'
    assert got["after"] == []  # UMAP's kernels are back
    assert got["numba_cache_dir_kept"] is True
    assert got["threads_kept"] is True
    assert got["module"] == "scvi.module._vae.VAE"
    assert got["training"] == {"count_likelihood": "table", "threads_from": "torch"}
    # the kernels were cached, into pyscvibridge's cache directory
    assert any(p.suffix == ".nbi" for p in (tmp_path / "cache" / "numba").rglob("*"))


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="pins the spinners to this process's cores")
def test_same_seed_same_latent_while_every_core_is_busy():
    import torch

    import pyscvibridge as psb
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
    args = {"n_top_genes": 300, "max_epochs": 3, "seed": 3, "progress": False, "accelerator": "cpu"}

    cores = sorted(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    torch.set_num_threads(len(cores))  # one thread per core: what a busy machine would make it lower
    spin = "import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True: pass"
    try:
        quiet = psb.integrate(adata.copy(), "batch", **args)
        spinners = [subprocess.Popen([sys.executable, "-c", spin, str(c)]) for c in cores]
        try:
            busy = psb.integrate(adata.copy(), "batch", **args)
            assert all(s.poll() is None for s in spinners)  # they spun all along
        finally:
            for s in spinners:
                s.kill()
                s.wait()
    finally:
        torch.set_num_threads(before)
    q, b = quiet.uns["scvi_integration"]["training"], busy.uns["scvi_integration"]["training"]
    assert q["torch_threads"] == b["torch_threads"] == len(cores)
    assert (b["threads"], b["threads_from"]) == (len(cores), "torch")
    assert np.array_equal(quiet.obsm["X_scVI"], busy.obsm["X_scVI"])
