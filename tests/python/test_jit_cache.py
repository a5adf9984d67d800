"""UMAP's numba kernels and JAX's compilations are cached on disk, so a rerun does not compile again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# A fresh process: builds a kNN graph and a UMAP layout as scanpy does (unless argv[1] == "no-umap")
# inside numba_steps(), jits one JAX function, and reports which kernels were lent, what numba loaded
# from its cache or compiled, whether UMAP's own kernels are back afterwards, and where JAX's cache points.
RUN = """
import json, sys, numpy as np
from pyscvibridge import _jit_cache
import umap.layouts as ul, umap.umap_ as uu
def current():
    kernels = {n: getattr(uu, n) for n in ("smooth_knn_dist", "compute_membership_strengths")}
    kernels["layout"] = ul._nb_optimize_layout_euclidean_single_epoch
    return kernels
shipped = current()
jax_dir = _jit_cache.cache_jax_compilations()
import anndata as ad, scanpy as sc, jax, jax.numpy as jnp
rng = np.random.default_rng(0)
a = ad.AnnData(rng.normal(size=(300, 8)).astype(np.float32))
with _jit_cache.numba_steps() as cached:
    kernels = current()
    if sys.argv[1] != "no-umap":
        sc.pp.neighbors(a, n_neighbors=10, use_rep="X", random_state=0)
        sc.tl.umap(a, random_state=0)
jax.jit(lambda x: jnp.tanh(x) * 3.0)(jnp.ones(7)).block_until_ready()
print(json.dumps({
    "cached": cached,
    "jax_dir": jax_dir,
    "lent": [n for n, k in kernels.items() if k is not shipped[n]],
    "restored": all(k is shipped[n] for n, k in current().items()),
    "hits": {n: len(k.stats.cache_hits) for n, k in kernels.items()},
    "misses": {n: len(k.stats.cache_misses) for n, k in kernels.items()},
    "umap": a.obsm["X_umap"].tolist() if "X_umap" in a.obsm else None,
}))
"""


def _run(tmp_path, *, umap: bool = True, **env) -> dict:
    drop = {"PYSCVIBRIDGE_JIT_CACHE", "PYSCVIBRIDGE_CACHE", "NUMBA_CACHE_DIR", "NUMBA_CACHE_LOCATOR_CLASSES"}
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    environ |= {"XDG_CACHE_HOME": str(tmp_path / "xdg"), **env}
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


def _stamps(path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in path.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_rerun_loads_compiled_code_and_gives_the_same_umap(tmp_path):
    import umap

    umap_dir = Path(umap.__file__).parent
    umap_files = _stamps(umap_dir)
    first = _run(tmp_path)
    assert first["lent"] == ["smooth_knn_dist", "compute_membership_strengths", "layout"]
    assert first["restored"] is True  # UMAP's own kernels are back after the block
    assert first["cached"] == [
        "smooth_knn_dist",
        "compute_membership_strengths",
        "_nb_optimize_layout_euclidean_single_epoch",
    ]
    assert first["jax_dir"] == str(tmp_path / "xdg" / "pyscvibridge" / "jax")
    assert all(n == 0 for n in first["hits"].values()), first  # nothing on disk yet: compiled
    assert all(n == 1 for n in first["misses"].values()), first
    numba_files = _files(tmp_path / "xdg" / "pyscvibridge" / "numba")
    assert any("smooth_knn_dist" in f and f.endswith(".nbi") for f in numba_files), numba_files
    assert _stamps(umap_dir) == umap_files  # nothing written into the installed UMAP
    jax_files = _files(tmp_path / "xdg" / "pyscvibridge" / "jax")
    assert jax_files, "JAX wrote nothing to its persistent cache"

    second = _run(tmp_path)
    assert all(n == 1 for n in second["hits"].values()), second  # loaded, not compiled
    assert all(n == 0 for n in second["misses"].values()), second
    assert _files(tmp_path / "xdg" / "pyscvibridge" / "jax") == jax_files  # every JAX lookup hit
    assert second["umap"] == first["umap"]

    # a user's NUMBA_CACHE_DIR is where numba's cache goes
    mine = _run(tmp_path, umap=False, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    assert mine["cached"] == first["cached"]
    assert any(f.endswith(".nbi") for f in _files(tmp_path / "numba"))


@pytest.mark.slow
def test_switched_off_and_a_users_own_jax_cache_are_respected(tmp_path):
    off = _run(tmp_path, umap=False, PYSCVIBRIDGE_JIT_CACHE="0")
    assert off["cached"] == []
    assert off["lent"] == []
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
    assert not (tmp_path / "xdg" / "pyscvibridge" / "jax").exists()


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


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """_jit_cache with nothing built or logged yet, caching into tmp_path (numba's own setting unset)."""
    import numba

    from pyscvibridge import _jit_cache

    monkeypatch.setattr(_jit_cache, "_built", {})
    monkeypatch.setattr(_jit_cache, "_logged", set())
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    monkeypatch.delenv("PYSCVIBRIDGE_JIT_CACHE", raising=False)
    monkeypatch.setenv("PYSCVIBRIDGE_CACHE", str(tmp_path / "cache"))
    return _jit_cache


def _kernels():
    import umap.layouts as ul
    import umap.umap_ as uu

    return uu.smooth_knn_dist, uu.compute_membership_strengths, ul._nb_optimize_layout_euclidean_single_epoch


def test_lent_only_inside_the_block_nested_and_on_error(fresh):
    shipped = _kernels()
    with fresh.numba_steps() as names:
        assert names == [name for _, name in fresh.UMAP_KERNELS]
        lent = _kernels()
        assert all(k is not s for k, s in zip(lent, shipped, strict=True))
        assert all(k.py_func is s.py_func for k, s in zip(lent, shipped, strict=True))
        with fresh.numba_steps() as inner:
            assert inner == names
        assert _kernels() == lent  # the inner block leaves the outer one's kernels
    assert _kernels() == shipped
    with pytest.raises(RuntimeError, match="boom"), fresh.numba_steps():
        raise RuntimeError("boom")
    assert _kernels() == shipped
    with fresh.numba_steps():  # built once per process: the same copies again
        assert _kernels() == lent


def test_without_a_writable_cache_umap_stays_as_shipped(fresh, monkeypatch, tmp_path, caplog):
    import logging

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("PYSCVIBRIDGE_CACHE", str(tmp_path / "a-file" / "cache"))  # cannot be created
    shipped = _kernels()
    with caplog.at_level(logging.INFO, logger="pyscvibridge"):
        for _ in range(2):
            with fresh.numba_steps() as names:
                assert names == []
                assert _kernels() == shipped
    assert _kernels() == shipped
    assert caplog.text.count("not caching UMAP's compiled code: cannot cache function") == 1  # once


def test_a_kernel_that_is_not_numba_leaves_umap_as_shipped(fresh, monkeypatch, caplog):
    import logging

    import umap.umap_ as uu

    def plain(*args, **kwargs):  # a future UMAP's kernel that is not a numba function
        return None

    monkeypatch.setattr(uu, "smooth_knn_dist", plain)
    with caplog.at_level(logging.INFO, logger="pyscvibridge"), fresh.numba_steps() as names:
        assert names == []
        assert uu.smooth_knn_dist is plain
    assert uu.smooth_knn_dist is plain
    assert "'plain' is not a numba CPU function" in caplog.text


def test_a_missing_kernel_is_left_out(fresh, monkeypatch, caplog):
    import logging

    import umap.layouts as ul

    monkeypatch.delattr(ul, "_nb_optimize_layout_euclidean_single_epoch")  # a renamed kernel
    with caplog.at_level(logging.INFO, logger="pyscvibridge"), fresh.numba_steps() as names:
        assert names == ["smooth_knn_dist", "compute_membership_strengths"]
    assert not hasattr(ul, "_nb_optimize_layout_euclidean_single_epoch")
    assert "not caching UMAP's umap.layouts._nb_optimize_layout_euclidean_single_epoch" in caplog.text
