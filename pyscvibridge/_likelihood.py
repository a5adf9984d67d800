"""A faster, exact count likelihood for training scVI on raw counts (the model stays standard).

scVI's (zero-inflated) negative binomial log-likelihood spends most of its time in three dense
``lgamma`` calls and, in the backward pass, two dense ``digamma`` calls over every cell x gene entry
of a minibatch: about 30% of a CPU training step. With the default per-gene dispersion ``theta`` and
integer counts ``x``, the term they compute,

    lgamma(x + theta) - lgamma(theta) - lgamma(x + 1),

takes one value per (count, gene) pair. :func:`count_term` tabulates it (and its derivative in
``theta``, ``digamma(k + theta) - digamma(theta)``) for the counts 0..K once per step, ``(K + 1) x
genes`` evaluations instead of ``cells x genes``, and looks every entry up; counts above K (few) are
computed directly. Values and gradients equal scvi-tools' to float32 rounding. It is used on the CPU
only (where it was measured); on a GPU the dense formula runs as in scvi-tools.

:func:`faster_count_likelihood` swaps it into scvi-tools' ``log_zinb_positive`` / ``log_nb_positive``
for the duration of a ``with`` block (``train_scvi`` uses it while training on counts it has checked
to be integers) and puts scvi-tools' functions back afterwards. Nothing about the model changes: the
same parameters are learnt, and a saved model loads in plain scvi-tools.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    import torch

#: Counts up to this value are looked up in the per-step table; larger ones are computed directly.
TABLE_MAX = 32

_lock = threading.Lock()
_depth = 0
_saved: dict[str, object] = {}


@functools.cache
def _count_term_function():
    """The autograd function (built on first use, so that importing this module needs no torch)."""
    import torch

    class _CountTerm(torch.autograd.Function):
        """lgamma(x + theta) - lgamma(theta) - lgamma(x + 1) for integer ``x`` (cells x genes) and
        per-gene ``theta`` (1 x genes); the gradient flows to ``theta`` only."""

        @staticmethod
        def forward(ctx, x, theta, lgamma_fn):
            k_max = min(int(x.max()), TABLE_MAX) if x.numel() else 0
            ks = torch.arange(k_max + 1, dtype=theta.dtype, device=theta.device).unsqueeze(1)
            table = lgamma_fn(ks + theta) - lgamma_fn(theta) - lgamma_fn(ks + 1)
            index = x.to(torch.long).clamp_(max=k_max)
            out = table.gather(0, index)
            big = (x > k_max).nonzero(as_tuple=True) if k_max == TABLE_MAX else None
            if big is not None and big[0].numel():
                xb, tb = x[big], theta.expand_as(x)[big]
                out[big] = lgamma_fn(xb + tb) - lgamma_fn(tb) - lgamma_fn(xb + 1)
            ctx.save_for_backward(x, theta, index, ks)
            ctx.big = big
            return out

        @staticmethod
        def backward(ctx, grad):
            x, theta, index, ks = ctx.saved_tensors
            table = torch.digamma(ks + theta) - torch.digamma(theta)
            d = table.gather(0, index)
            big = ctx.big
            if big is not None and big[0].numel():
                tb = theta.expand_as(x)[big]
                d[big] = torch.digamma(x[big] + tb) - torch.digamma(tb)
            return None, (grad * d).sum(0, keepdim=True), None

    return _CountTerm


def count_term(x: torch.Tensor, theta: torch.Tensor, lgamma_fn=None) -> torch.Tensor:
    """``lgamma(x + theta) - lgamma(theta) - lgamma(x + 1)``, by table when it applies.

    The table applies when ``x`` is a 2-D CPU tensor of integer counts that needs no gradient and
    ``theta`` holds one value per gene (shape ``(genes,)``, ``(1, genes)``, or one such row
    broadcast over the cells); otherwise the dense formula is used. ``x`` is trusted to hold
    integers (the caller checks its data once).
    """
    import torch

    lgamma_fn = lgamma_fn or torch.lgamma
    if theta.ndimension() == 1:
        theta = theta.view(1, -1)
    elif theta.ndimension() == 2 and theta.shape[0] > 1 and theta.stride(0) == 0:
        theta = theta[:1]  # one row broadcast over the cells (scvi-tools' broadcast_all)
    if (
        x.device.type == "cpu"  # measured on CPUs; a GPU computes the dense formula fast enough
        and x.ndimension() == 2
        and not x.requires_grad
        and theta.ndimension() == 2
        and theta.shape[0] == 1
        and theta.shape[1] == x.shape[1]
    ):
        return _count_term_function().apply(x, theta, lgamma_fn)
    return lgamma_fn(x + theta) - lgamma_fn(theta) - lgamma_fn(x + 1)


def log_zinb_positive(x, mu, theta, pi, eps: float = 1e-8, log_fn=None, lgamma_fn=None):
    """scvi-tools' ``log_zinb_positive`` (same formula, same arguments) with :func:`count_term`."""
    import torch
    import torch.nn.functional as F

    log = log_fn or torch.log
    if theta.ndimension() == 1:
        theta = theta.view(1, theta.size(0))
    softplus_pi = F.softplus(-pi)
    log_theta_mu_eps = log(theta + mu + eps)
    pi_theta_log = -pi + theta * (log(theta + eps) - log_theta_mu_eps)
    case_zero = F.softplus(pi_theta_log) - softplus_pi
    mul_case_zero = torch.mul((x < eps).type(torch.float32), case_zero)
    case_non_zero = (
        -softplus_pi + pi_theta_log + x * (log(mu + eps) - log_theta_mu_eps) + count_term(x, theta, lgamma_fn)
    )
    mul_case_non_zero = torch.mul((x > eps).type(torch.float32), case_non_zero)
    return mul_case_zero + mul_case_non_zero


def log_nb_positive(x, mu, theta, eps: float = 1e-8, log_fn=None, lgamma_fn=None):
    """scvi-tools' ``log_nb_positive`` (same formula, same arguments) with :func:`count_term`."""
    import torch

    if not isinstance(x, torch.Tensor):  # scvi-tools also calls it with JAX arrays
        return _saved["log_nb_positive"](x, mu, theta, eps=eps, log_fn=log_fn, lgamma_fn=lgamma_fn)
    log = log_fn or torch.log
    log_theta_mu_eps = log(theta + mu + eps)
    return (
        theta * (log(theta + eps) - log_theta_mu_eps)
        + x * (log(mu + eps) - log_theta_mu_eps)
        + count_term(x, theta, lgamma_fn)
    )


@contextlib.contextmanager
def faster_count_likelihood(enabled: bool = True) -> Iterator[None]:
    """Within the block, scvi-tools' NB / ZINB likelihoods use :func:`count_term` (re-entrant)."""
    global _depth
    if not enabled:
        yield
        return
    from scvi.distributions import _negative_binomial as nb

    with _lock:
        if _depth == 0:
            _saved["log_zinb_positive"] = nb.log_zinb_positive
            _saved["log_nb_positive"] = nb.log_nb_positive
            nb.log_zinb_positive = log_zinb_positive
            nb.log_nb_positive = log_nb_positive
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                nb.log_zinb_positive = _saved["log_zinb_positive"]
                nb.log_nb_positive = _saved["log_nb_positive"]
