"""Training scVI: epoch schedule and trainer settings (the speed levers live here)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import anndata as ad
    import scvi

logger = logging.getLogger("pyscvibridge")


def default_max_epochs(n_cells: int) -> int:
    """scvi-tools' epoch rule, which the tutorial workflow uses: ``min(round(20000 / n_cells * 400), 400)``."""
    return int(min(round(20000 / max(n_cells, 1) * 400), 400))


def train_scvi(
    adata: ad.AnnData,
    hvg_counts,
    *,
    batch_key: str | None,
    categorical_covariate_keys: list[str] | None = None,
    continuous_covariate_keys: list[str] | None = None,
    n_latent: int,
    max_epochs: int,
    seed: int,
    accelerator: str,
    devices: int | str,
    progress: bool,
    model_kwargs: dict[str, Any],
    train_kwargs: dict[str, Any],
) -> scvi.model.SCVI:
    """Train scVI on ``hvg_counts`` (cells x HVGs, raw counts) with ``adata``'s cells and batch column."""
    import anndata as ad
    import scvi

    scvi.settings.seed = seed
    keys = [
        k for k in [batch_key, *(categorical_covariate_keys or []), *(continuous_covariate_keys or [])] if k
    ]
    obs = adata.obs[keys].copy() if keys else None
    train_ad = ad.AnnData(X=hvg_counts, obs=obs)
    train_ad.obs_names = adata.obs_names
    scvi.model.SCVI.setup_anndata(
        train_ad,
        batch_key=batch_key,
        categorical_covariate_keys=categorical_covariate_keys or None,
        continuous_covariate_keys=continuous_covariate_keys or None,
    )
    model = scvi.model.SCVI(train_ad, n_latent=n_latent, **model_kwargs)
    kwargs = {"check_val_every_n_epoch": 1, "enable_progress_bar": progress, **train_kwargs}
    logger.info("training scVI for up to %d epochs on %d cells x %d genes", max_epochs, *train_ad.shape)
    model.train(max_epochs=max_epochs, accelerator=accelerator, devices=devices, **kwargs)
    return model
