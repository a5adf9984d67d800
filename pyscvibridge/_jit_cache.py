"""Keep the JIT-compiled code of UMAP (numba) and scib-metrics (JAX) between runs.

A fresh process compiles UMAP's kNN-graph and layout kernels (numba, ``parallel=True``) and
scib-metrics' JAX functions before it can use them, whatever the data size, and neither library keeps
the result: ``pyscvibridge integrate --metrics`` spent 23 s of every run on it on a 2-core CPU
(``benchmarks/end_to_end.py``). Users rerun integration while they choose batch keys and genes, so
both are cached on disk:

- numba: UMAP's hot kernels are re-jitted from their own Python source with the same options plus
  ``cache=True``; numba writes the machine code next to UMAP's source (or in ``~/.cache/numba`` if
  that is read-only) and reloads it when UMAP's source file is unchanged. The numbers are identical.
- JAX: its persistent compilation cache, in ``jax/`` under pyscvibridge's cache directory
  (``$PYSCVIBRIDGE_CACHE``, else ``$XDG_CACHE_HOME/pyscvibridge``, else ``~/.cache/pyscvibridge``),
  unless the user configured a JAX cache of their own.

``PYSCVIBRIDGE_JIT_CACHE=0`` turns both off; any other value is the JAX cache directory. The
workflow runs scanpy's numba steps inside :func:`numba_steps`, which also keeps torch's thread count.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger("pyscvibridge")

#: (module, attribute) of UMAP's numba kernels that scanpy's neighbors / umap compile on every run.
UMAP_KERNELS = (
    ("umap.umap_", "smooth_knn_dist"),
    ("umap.umap_", "compute_membership_strengths"),
    # scanpy's UMAP layout runs single-threaded; the parallel variant shares its Python function, and
    # numba names cache files after the Python function, so only one of the two may be cached.
    ("umap.layouts", "_nb_optimize_layout_euclidean_single_epoch"),
)
ENV = "PYSCVIBRIDGE_JIT_CACHE"


def _setting() -> str | None:
    """The JAX cache directory, or None when caching is off."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in {"0", "off", "false", "no"}:
        return None
    if value:
        return value
    from .datasets._bmmc import cache_dir

    return str(cache_dir() / "jax")


@contextlib.contextmanager
def numba_steps() -> Iterator[None]:
    """Around scanpy's steps that run numba code (preprocessing, neighbors, UMAP).

    UMAP's kernels load from the disk cache, and torch's thread count is put back afterwards
    (numba's OpenMP layer changes it; see :func:`pyscvibridge._training.keep_torch_threads`).
    """
    from ._training import keep_torch_threads

    cache_umap_kernels()
    with keep_torch_threads():
        yield


def cache_umap_kernels() -> list[str]:
    """Re-jit UMAP's kernels with ``cache=True`` (once per process); returns the names now cached."""
    if _setting() is None:
        return []
    import importlib

    import numba

    cached = []
    for module_name, name in UMAP_KERNELS:
        try:
            module = importlib.import_module(module_name)
            kernel = getattr(module, name)
        except (ImportError, AttributeError):  # another UMAP version: it still works, uncached
            continue
        if not getattr(kernel, "_pyscvibridge_cached", False):
            options = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}
            try:
                kernel = numba.njit(cache=True, **options)(kernel.py_func)
            except RuntimeError as err:  # numba found no writable cache directory
                logger.info("not caching UMAP's compiled code: %s", err)
                return cached
            kernel._pyscvibridge_cached = True
            setattr(module, name, kernel)
        cached.append(name)
    return cached


def cache_jax_compilations() -> str | None:
    """Point JAX's persistent compilation cache at our cache directory unless one is configured."""
    directory = _setting()
    if directory is None:
        return None
    import jax

    configured = jax.config.jax_compilation_cache_dir
    if configured:
        return configured
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        logger.info("not caching JAX compilations: cannot create %s (%s)", directory, err)
        return None
    jax.config.update("jax_compilation_cache_dir", directory)
    # scib-metrics compiles many small functions (0.1-0.3 s each); JAX caches only slower ones by default.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory
