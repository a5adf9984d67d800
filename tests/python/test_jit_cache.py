"""UMAP's numba kernels and JAX's compilations are cached on disk, so a rerun does not compile again."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# A fresh process: builds a kNN graph and a UMAP layout as scanpy does (unless argv[1] == "no-umap"),
# jits one JAX function, and reports what numba loaded from its cache, what it compiled, and where
# JAX's cache points.
RUN = """
import json, sys, numpy as np
from pyscvibridge import _jit_cache
cached = _jit_cache.cache_umap_kernels()
jax_dir = _jit_cache.cache_jax_compilations()
import anndata as ad, scanpy as sc, jax, jax.numpy as jnp
rng = np.random.default_rng(0)
a = ad.AnnData(rng.normal(size=(300, 8)).astype(np.float32))
if sys.argv[1] != "no-umap":
    sc.pp.neighbors(a, n_neighbors=10, use_rep="X", random_state=0)
    sc.tl.umap(a, random_state=0)
jax.jit(lambda x: jnp.tanh(x) * 3.0)(jnp.ones(7)).block_until_ready()
import umap.layouts as ul, umap.umap_ as uu
kernels = {n: getattr(uu, n) for n in ("smooth_knn_dist", "compute_membership_strengths")}
kernels["layout"] = ul._nb_optimize_layout_euclidean_single_epoch
print(json.dumps({
    "cached": cached,
    "jax_dir": jax_dir,
    "patched": [n for n, k in kernels.items() if getattr(k, "_pyscvibridge_cached", False)],
    "hits": {n: len(k.stats.cache_hits) for n, k in kernels.items()},
    "misses": {n: len(k.stats.cache_misses) for n, k in kernels.items()},
    "umap": a.obsm["X_umap"].tolist() if "X_umap" in a.obsm else None,
}))
"""


def _run(tmp_path, *, umap: bool = True, **env) -> dict:
    environ = {
        k: v for k, v in os.environ.items() if k not in {"PYSCVIBRIDGE_JIT_CACHE", "PYSCVIBRIDGE_CACHE"}
    }
    environ |= {"NUMBA_CACHE_DIR": str(tmp_path / "numba"), "XDG_CACHE_HOME": str(tmp_path / "xdg"), **env}
    proc = subprocess.run(
        [sys.executable, "-c", RUN, "umap" if umap else "no-umap"],
        env=environ,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _files(path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()} if path.exists() else set()


@pytest.mark.slow
def test_rerun_loads_compiled_code_and_gives_the_same_umap(tmp_path):
    first = _run(tmp_path)
    assert first["patched"] == ["smooth_knn_dist", "compute_membership_strengths", "layout"]
    assert first["cached"] == [
        "smooth_knn_dist",
        "compute_membership_strengths",
        "_nb_optimize_layout_euclidean_single_epoch",
    ]
    assert first["jax_dir"] == str(tmp_path / "xdg" / "pyscvibridge" / "jax")
    assert all(n == 0 for n in first["hits"].values()), first  # nothing on disk yet: compiled
    assert all(n == 1 for n in first["misses"].values()), first
    numba_files = _files(tmp_path / "numba")
    assert any("smooth_knn_dist" in f and f.endswith(".nbi") for f in numba_files), numba_files
    jax_files = _files(tmp_path / "xdg" / "pyscvibridge" / "jax")
    assert jax_files, "JAX wrote nothing to its persistent cache"

    second = _run(tmp_path)
    assert all(n == 1 for n in second["hits"].values()), second  # loaded, not compiled
    assert all(n == 0 for n in second["misses"].values()), second
    assert _files(tmp_path / "xdg" / "pyscvibridge" / "jax") == jax_files  # every JAX lookup hit
    assert second["umap"] == first["umap"]


@pytest.mark.slow
def test_switched_off_and_a_users_own_jax_cache_are_respected(tmp_path):
    off = _run(tmp_path, umap=False, PYSCVIBRIDGE_JIT_CACHE="0")
    assert off["cached"] == []
    assert off["patched"] == []
    assert off["jax_dir"] is None
    assert not (tmp_path / "xdg" / "pyscvibridge").exists()

    own = tmp_path / "users-jax-cache"
    mine = _run(
        tmp_path,
        umap=False,
        JAX_COMPILATION_CACHE_DIR=str(own),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )
    assert mine["jax_dir"] == str(own)
    assert _files(own), "the user's JAX cache was not used"
    assert not (tmp_path / "xdg" / "pyscvibridge").exists()


def test_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    from pyscvibridge import _jit_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("PYSCVIBRIDGE_JIT_CACHE", raising=False)
    monkeypatch.delenv("PYSCVIBRIDGE_CACHE", raising=False)
    assert _jit_cache._setting() == str(tmp_path / "pyscvibridge" / "jax")
    monkeypatch.setenv("PYSCVIBRIDGE_CACHE", str(tmp_path / "mine"))  # where downloads go too
    assert _jit_cache._setting() == str(tmp_path / "mine" / "jax")
    monkeypatch.setenv("PYSCVIBRIDGE_JIT_CACHE", str(tmp_path / "elsewhere"))
    assert _jit_cache._setting() == str(tmp_path / "elsewhere")
    for off in ("0", "off", "false", "no", " OFF "):
        monkeypatch.setenv("PYSCVIBRIDGE_JIT_CACHE", off)
        assert _jit_cache._setting() is None


def test_without_a_writable_cache_umap_stays_as_it_was(monkeypatch, caplog):
    import logging

    import numba
    import umap.umap_ as uu

    from pyscvibridge import _jit_cache

    plain = numba.njit(uu.smooth_knn_dist.py_func)  # as UMAP ships it: not cached
    monkeypatch.setattr(uu, "smooth_knn_dist", plain)
    monkeypatch.delenv("PYSCVIBRIDGE_JIT_CACHE", raising=False)

    def no_locator(*args, **kwargs):  # what numba raises when no cache directory is writable
        msg = "cannot cache function 'smooth_knn_dist': no locator available for file 'umap_.py'"
        raise RuntimeError(msg)

    monkeypatch.setattr(numba, "njit", no_locator)
    with caplog.at_level(logging.INFO, logger="pyscvibridge"):
        assert _jit_cache.cache_umap_kernels() == []
    assert uu.smooth_knn_dist is plain
    assert "not caching UMAP's compiled code: cannot cache function" in caplog.text
