"""Training scVI: epoch schedule and trainer settings (the speed levers live here).

Two presets:

- ``"fast"`` (the default): the same :class:`scvi.model.SCVI` model (same architecture, likelihood,
  HVGs, latent size and minibatches of 128), trained on a quarter of scvi-tools' epoch budget (at
  most 100) with a 4x learning rate (4e-3) and the KL warm-up over the first quarter of that budget,
  every epoch run (early stopping on the validation ELBO saved another third of the time, but over
  four Kang PBMC seeds it fell 0.007 short of the defaults' scib total where every epoch came within
  0.001; benchmarks/README.md). The count likelihood is computed by table
  lookup (:mod:`pyscvibridge._likelihood`: the same values, 2-3x cheaper than scvi-tools' dense
  ``lgamma``/``digamma``; a subclass lent to this model's module while it trains).
  ``benchmarks/train.py`` measures it against the scvi-tools defaults; benchmarks/README.md has the
  table.
- ``"scvi-tools"``: exactly what scvi-tools does by default (and what the seed workflow ran):
  ``min(round(20000 / n_cells * 400), 400)`` epochs, minibatches of 128, learning rate 1e-3,
  KL warm-up over 400 epochs, no early stopping.

Either way the result is a standard scvi-tools model: save, load and query it with scvi-tools.

Threads: training runs with torch's current thread count (``torch.get_num_threads()``) unless
``n_threads`` fixes it, so the same seed and settings give the same model whatever else the machine
runs. ``n_threads="auto"`` lowers the count to the cores other processes leave idle (sampled for a
quarter second: an over-subscribed torch thread pool spins instead of computing), at the price of
results that depend on the machine's load. The record says how many threads trained.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._checks import is_counts, obs_for_model
from ._conventions import DEFAULT_PRESET, PRESETS
from ._errors import PyscvibridgeError
from ._likelihood import table_likelihood

if TYPE_CHECKING:
    from collections.abc import Iterator

    import anndata as ad
    import scvi

logger = logging.getLogger("pyscvibridge")

#: The ``"fast"`` preset's settings (see :func:`fast_max_epochs` for the epoch schedule).
FAST = {
    "batch_size": 128,
    "lr": 4e-3,
    "kl_warmup_fraction": 0.25,
}


def default_max_epochs(n_cells: int) -> int:
    """scvi-tools' epoch rule, which the tutorial workflow uses: ``min(round(20000 / n_cells * 400), 400)``."""
    return int(min(round(20000 / max(n_cells, 1) * 400), 400))


def fast_max_epochs(n_cells: int) -> int:
    """The ``"fast"`` preset's epoch budget: a quarter of scvi-tools', between 20 and 100."""
    return int(min(max(round(default_max_epochs(n_cells) / 4), 20), 100))


def resolve_threads(n_threads: int | str | None) -> tuple[int, str]:
    """The torch thread count to train with, and where it came from.

    ``None``: torch's current setting (``"torch"``); a positive integer: that many (``"n_threads"``);
    ``"auto"``: torch's setting lowered to the cores other processes leave idle (``"auto"``).
    """
    import torch

    n_threads = check_threads(n_threads)
    if n_threads is None:
        return torch.get_num_threads(), "torch"
    if n_threads == "auto":
        return _auto_threads(), "auto"
    return int(n_threads), "n_threads"


def check_threads(n_threads: int | str | None) -> int | str | None:
    """``n_threads`` as :func:`resolve_threads` takes it (``None``, a positive int or ``"auto"``)."""
    if n_threads is None:
        return None
    if isinstance(n_threads, str) and n_threads.strip().lower() == "auto":
        return "auto"
    if isinstance(n_threads, float) and n_threads.is_integer():  # R's numbers arrive as floats
        n_threads = int(n_threads)
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        msg = f"n_threads must be a positive number of threads or 'auto', not {n_threads!r}."
        raise PyscvibridgeError(msg)
    return n_threads


def _auto_threads() -> int:
    """torch threads to use: the current setting, lowered to the cores other processes leave idle.

    Other processes' use of the cores this process may run on is sampled for a quarter second
    (``/proc/stat`` minus this process's own CPU time). The load average would count this process's
    own preparation and UMAP too, and train a lone run on an idle machine with fewer threads.
    """
    import torch

    current = torch.get_num_threads()
    try:
        cores = os.sched_getaffinity(0)
        busy = _busy_elsewhere(cores)
    except (AttributeError, OSError, ValueError):  # not Linux
        return current
    return max(1, min(current, int(len(cores) - busy + 0.5)))


def _busy_elsewhere(cores: set[int], seconds: float = 0.25) -> float:
    """Cores' worth of CPU time that other processes used on ``cores`` during the next ``seconds``."""
    stat = Path("/proc/stat")
    own_before, stat_before, started = _own_cpu(), stat.read_text(), time.perf_counter()
    time.sleep(seconds)
    own_after, stat_after, wall = _own_cpu(), stat.read_text(), time.perf_counter() - started
    return _others_busy(stat_before, stat_after, own_after - own_before, wall, cores)


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _others_busy(stat_before: str, stat_after: str, own_cpu: float, wall: float, cores: set[int]) -> float:
    """From two ``/proc/stat`` readings: busy CPU seconds per second on ``cores``, less ``own_cpu``."""

    def busy(text: str) -> float:
        ticks = 0
        for line in text.splitlines():
            name, *fields = line.split()
            if name[:3] == "cpu" and name[3:].isdigit() and int(name[3:]) in cores:
                values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
                ticks += sum(values) - values[3] - values[4]
        return ticks / os.sysconf("SC_CLK_TCK")

    return max(0.0, (busy(stat_after) - busy(stat_before) - own_cpu) / wall)


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def keep_torch_threads() -> contextlib.AbstractContextManager[None]:
    """Put torch's thread count back after a block that runs numba's parallel code (scanpy's, UMAP's).

    numba's OpenMP threading layer sets the OpenMP thread count of the calling thread to numba's
    own (all cores), and torch shares that count: after scanpy's steps, a torch limited to one
    thread (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``) would train with every core, which
    on a busy machine spins and slows training down severalfold.
    """
    return _torch_threads(None)


def training_plan(
    preset: str, n_cells: int, max_epochs: int | None = None, threads: int | str | None = None
) -> dict[str, Any]:
    """The settings ``preset`` uses for ``n_cells`` cells (an explicit ``max_epochs`` wins).

    Returns a flat dict (recorded in ``uns["scvi_integration"]["training"]``): ``preset``,
    ``max_epochs``, ``batch_size``, ``lr``, ``n_epochs_kl_warmup``, ``early_stopping``,
    ``early_stopping_patience``, ``count_likelihood`` (``"table"``: the same likelihood computed by
    :mod:`pyscvibridge._likelihood`; ``"scvi-tools"``: scvi-tools' own code), ``threads`` (torch
    threads to train with, see :func:`resolve_threads`) and ``threads_from`` (``"torch"``,
    ``"n_threads"`` or ``"auto"``).
    """
    if preset not in PRESETS:
        msg = f"Unknown preset {preset!r}: choose one of {list(PRESETS)}."
        raise PyscvibridgeError(msg)
    if max_epochs is not None and int(max_epochs) < 1:
        msg = f"max_epochs must be a positive number of epochs, not {max_epochs!r}."
        raise PyscvibridgeError(msg)
    n_threads, threads_from = resolve_threads(threads)
    if preset == "scvi-tools":
        epochs = default_max_epochs(n_cells) if max_epochs is None else int(max_epochs)
        return {
            "preset": preset,
            "max_epochs": epochs,
            "batch_size": 128,
            "lr": 1e-3,
            "n_epochs_kl_warmup": 400,
            "early_stopping": False,
            "early_stopping_patience": 0,
            "count_likelihood": "scvi-tools",
            "threads": n_threads,
            "threads_from": threads_from,
        }
    epochs = fast_max_epochs(n_cells) if max_epochs is None else int(max_epochs)
    return {
        "preset": preset,
        "max_epochs": epochs,
        "batch_size": FAST["batch_size"],
        "lr": FAST["lr"],
        "n_epochs_kl_warmup": max(1, round(epochs * FAST["kl_warmup_fraction"])),
        "early_stopping": False,
        "early_stopping_patience": 0,
        "count_likelihood": "table",
        "threads": n_threads,
        "threads_from": threads_from,
    }


def train_scvi(
    adata: ad.AnnData,
    hvg_counts,
    *,
    var_names=None,
    batch_key: str | None,
    categorical_covariate_keys: list[str] | None = None,
    continuous_covariate_keys: list[str] | None = None,
    n_latent: int,
    max_epochs: int | None,
    seed: int,
    accelerator: str,
    devices: int | str,
    progress: bool,
    model_kwargs: dict[str, Any],
    train_kwargs: dict[str, Any],
    preset: str = DEFAULT_PRESET,
    threads: int | str | None = None,
    count_likelihood: str | None = None,
) -> scvi.model.SCVI:
    """Train scVI on ``hvg_counts`` (cells x HVGs, raw counts) with ``adata``'s cells and batch column.

    ``preset`` picks the schedule (see the module docstring); ``max_epochs`` overrides its epoch
    budget; ``threads`` fixes torch's thread count during training (default: torch's current setting;
    ``"auto"``: lowered to the idle cores, see :func:`resolve_threads`);
    ``count_likelihood`` (``"table"`` or ``"scvi-tools"``) overrides how the preset computes the
    likelihood. ``train_kwargs`` (and ``train_kwargs["plan_kwargs"]``) override anything the preset sets.
    The settings used are in ``training_record(model)``.
    """
    import anndata as ad
    import scvi
    import torch

    plan = training_plan(preset, adata.n_obs, max_epochs, threads)
    if count_likelihood is not None:
        if count_likelihood not in ("table", "scvi-tools"):
            msg = f"count_likelihood must be 'table' or 'scvi-tools', not {count_likelihood!r}."
            raise PyscvibridgeError(msg)
        plan["count_likelihood"] = count_likelihood
    scvi.settings.seed = seed
    keys = [
        k for k in [batch_key, *(categorical_covariate_keys or []), *(continuous_covariate_keys or [])] if k
    ]
    categorical = [k for k in [batch_key, *(categorical_covariate_keys or [])] if k]
    obs = obs_for_model(adata, keys, categorical) if keys else None
    train_ad = ad.AnnData(X=hvg_counts, obs=obs)
    train_ad.obs_names = adata.obs_names
    if var_names is not None:
        train_ad.var_names = [str(g) for g in var_names]
    scvi.model.SCVI.setup_anndata(
        train_ad,
        batch_key=batch_key,
        categorical_covariate_keys=categorical_covariate_keys or None,
        continuous_covariate_keys=continuous_covariate_keys or None,
    )
    model = scvi.model.SCVI(train_ad, n_latent=n_latent, **model_kwargs)

    user_train = dict(train_kwargs)
    plan_kwargs = {"lr": plan["lr"], "n_epochs_kl_warmup": plan["n_epochs_kl_warmup"]}
    plan_kwargs.update(user_train.pop("plan_kwargs", None) or {})
    kwargs: dict[str, Any] = {
        "batch_size": plan["batch_size"],
        "check_val_every_n_epoch": 1,
        "enable_progress_bar": progress,
        "plan_kwargs": plan_kwargs,
    }
    kwargs.update(user_train)
    if kwargs.get("early_stopping"):  # asked for in train_kwargs (scvi-tools' patience unless given)
        plan["early_stopping"] = True
        plan["early_stopping_patience"] = int(kwargs.get("early_stopping_patience", 45))
    logger.info(
        "training scVI (%s preset) for up to %d epochs on %d cells x %d genes",
        preset,
        plan["max_epochs"],
        *train_ad.shape,
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    if plan["count_likelihood"] == "table" and not is_counts(hvg_counts):
        plan["count_likelihood"] = "scvi-tools"  # the table needs integer counts
    with (
        _torch_threads(plan["threads"]),
        table_likelihood(model.module, plan["count_likelihood"] == "table") as ways,
    ):
        plan["torch_threads"] = torch.get_num_threads()  # what training ran with, either preset
        model.train(max_epochs=plan["max_epochs"], accelerator=accelerator, devices=devices, **kwargs)
    plan["count_likelihood"] = _likelihood_used(ways)
    plan["train_seconds"] = time.perf_counter() - started
    plan["train_cpu_seconds"] = time.process_time() - cpu_started
    plan["epochs_run"] = len(model.history["elbo_train"]) if "elbo_train" in model.history else 0
    plan["stopped_early"] = plan["epochs_run"] < plan["max_epochs"]
    plan["batch_size"] = int(kwargs["batch_size"])
    plan["lr"] = float(plan_kwargs["lr"])
    plan["n_epochs_kl_warmup"] = plan_kwargs["n_epochs_kl_warmup"]
    model._pyscvibridge_training = plan
    return model


def _likelihood_used(ways: set[str] | None) -> str:
    """What computed the count likelihood, from what :func:`table_likelihood` saw."""
    if ways is None or ways == {"scvi-tools"}:
        return "scvi-tools"  # not asked for, not applicable, or every minibatch fell back (a GPU)
    if ways == {"table"}:
        return "table"
    if not ways:  # no step ran in this process (ddp_spawn workers train with the same class)
        return "table (in worker processes)"
    return "table and scvi-tools"  # some minibatches could not use the table


def training_record(model) -> dict[str, Any]:
    """The schedule :func:`train_scvi` used for ``model`` (empty for a model trained elsewhere)."""
    return dict(getattr(model, "_pyscvibridge_training", {}))
