"""Keep the JIT-compiled code of UMAP (numba) and scib-metrics (JAX) between runs.

A fresh process compiles UMAP's kNN-graph and layout kernels (numba, ``parallel=True``) and
scib-metrics' JAX functions before it can use them, whatever the data size, and neither library keeps
the result: ``pyscvibridge integrate --metrics`` spent 23 s of every run on it on a 2-core CPU
(``benchmarks/end_to_end.py``). Users rerun integration while they choose batch keys and genes, so
both are cached on disk:

- numba: inside :func:`numba_steps` (the workflow runs scanpy's numba steps in it), UMAP's hot
  kernels are replaced by copies jitted from their own Python source with the same options and a
  disk cache, and UMAP's own kernels are put back when the block ends (also on error). The copies
  are built once per process; numba reloads their machine code when UMAP's source is unchanged. The
  numbers are identical. The cache lives in ``numba/`` under pyscvibridge's cache directory (or in
  ``$NUMBA_CACHE_DIR`` when the user set one), never next to UMAP's source. Anything unexpected (a
  kernel that is not a numba function, a missing attribute, an unwritable directory) leaves UMAP as
  shipped and is logged once.
- JAX: its persistent compilation cache, in ``jax/`` under pyscvibridge's cache directory
  (``$PYSCVIBRIDGE_CACHE``, else ``$XDG_CACHE_HOME/pyscvibridge``, else ``~/.cache/pyscvibridge``),
  unless the user configured a JAX cache of their own.

``PYSCVIBRIDGE_JIT_CACHE=0`` turns both off; any other value is the JAX cache directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
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

_lock = threading.RLock()
_depth = 0
_lent: list[tuple[object, str, object, object]] = []  # (module, name, shipped, cached) while lent
_built: dict[tuple[str, str], tuple[object, object]] = {}  # (module, name) -> (shipped, cached copy)
_logged: set[str] = set()


def _log_once(message: str, *args) -> None:
    text = message % args
    if text not in _logged:
        _logged.add(text)
        logger.info(text)


def _setting() -> str | None:
    """The JAX cache directory, or None when caching is off."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in {"0", "off", "false", "no"}:
        return None
    if value:
        return value
    from .datasets._bmmc import cache_dir

    return str(cache_dir() / "jax")


def _numba_dir() -> str | None:
    """Where numba caches the kernels: ``$NUMBA_CACHE_DIR`` if set, else ours; None when off."""
    if _setting() is None:
        return None
    import numba

    if numba.config.CACHE_DIR:
        return str(numba.config.CACHE_DIR)
    from .datasets._bmmc import cache_dir

    return str(cache_dir() / "numba")


@contextlib.contextmanager
def numba_steps() -> Iterator[list[str]]:
    """Around scanpy's steps that run numba code (preprocessing, neighbors, UMAP).

    Inside the block UMAP's kernels are cached copies (yields their names; empty when caching is
    off or not possible); on exit UMAP's own are back, and torch's thread count is put back (numba's
    OpenMP layer changes it; see :func:`pyscvibridge._training.keep_torch_threads`). Re-entrant.
    """
    global _depth
    from ._training import keep_torch_threads

    with _lock:
        if _depth == 0:
            _lend_cached_kernels()
        _depth += 1
        names = [name for _, name, _, _ in _lent]
    try:
        with keep_torch_threads():
            yield names
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _give_back()


def _lend_cached_kernels() -> None:
    for module, name, cached in cache_umap_kernels():
        shipped = getattr(module, name)
        setattr(module, name, cached)
        _lent.append((module, name, shipped, cached))


def _give_back() -> None:
    while _lent:
        module, name, shipped, cached = _lent.pop()
        if getattr(module, name, None) is cached:  # leave anything someone else put there
            setattr(module, name, shipped)


def cache_umap_kernels() -> list[tuple[object, str, object]]:
    """Cached copies of UMAP's kernels, as ``(module, name, copy)``; built once per process.

    Builds nothing and changes nothing in UMAP: :func:`numba_steps` lends the copies. Empty when
    caching is off, or when anything about UMAP or the cache directory is not as expected (logged
    once; UMAP then runs as shipped).
    """
    directory = _numba_dir()
    if directory is None:
        return []
    import importlib

    out = []
    for module_name, name in UMAP_KERNELS:
        try:
            module = importlib.import_module(module_name)
            shipped = getattr(module, name)
        except (ImportError, AttributeError) as err:  # another UMAP version: it still works, uncached
            _log_once("not caching UMAP's %s.%s: %s", module_name, name, err)
            continue
        built = _built.get((module_name, name))
        if built is None or built[0] is not shipped:
            try:
                built = (shipped, _cached_copy(shipped, directory))
            except Exception as err:  # noqa: BLE001 -- any surprise: UMAP stays as shipped
                _log_once("not caching UMAP's compiled code: %s", err)
                return []
            _built[(module_name, name)] = built
        out.append((module, name, built[1]))
    return out


def _cached_copy(kernel, directory: str):
    """A numba dispatcher for ``kernel``'s Python function, with ``kernel``'s options, cached in
    ``directory`` (numba's per-function cache with a locator of our own: no process-wide setting).

    ``numba.core.caching`` has no public way to choose a cache directory per function (only the
    process-wide ``NUMBA_CACHE_DIR``), so this subclasses its locator and sets the copy's cache;
    tests/python/test_jit_cache.py checks it against the installed numba, and any error here
    leaves UMAP uncached (see :func:`cache_umap_kernels`)."""
    import numba
    from numba.core import caching
    from numba.core.registry import CPUDispatcher

    if not isinstance(kernel, CPUDispatcher):
        msg = f"{getattr(kernel, '__name__', kernel)!r} is not a numba CPU function"
        raise TypeError(msg)
    options = {k: v for k, v in kernel.targetoptions.items() if k not in {"nopython", "cache"}}
    copy = numba.njit(**options)(kernel.py_func)

    class Locator(caching.UserProvidedCacheLocator):
        def __init__(self, py_func, py_file):
            super().__init__(py_func, py_file)
            self._cache_path = os.path.join(directory, self.get_suitable_cache_subpath(py_file))

        @classmethod
        def from_function(cls, py_func, py_file):  # numba's, without its check of $NUMBA_CACHE_DIR
            return super(caching.UserProvidedCacheLocator, cls).from_function(py_func, py_file)

    class Impl(caching.CompileResultCacheImpl):
        _locator_classes = (Locator,)

    class Cache(caching.FunctionCache):
        _impl_class = Impl

    if getattr(numba.config, "CACHE_LOCATOR_CLASSES", None):  # the user chose numba's locators
        copy.enable_caching()
    else:
        copy._cache = Cache(copy.py_func)
    return copy


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
