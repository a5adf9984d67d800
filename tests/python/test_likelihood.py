"""The table-lookup count likelihood: scvi-tools' values and gradients, swapped in only while training."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pyscvibridge._likelihood import TABLE_MAX, count_term, faster_count_likelihood  # noqa: E402


def _counts(seed: int, n: int = 64, p: int = 300, big: bool = True):
    g = torch.Generator().manual_seed(seed)
    mu = torch.rand(n, p, generator=g) * 8 + 0.01
    x = torch.poisson(mu, generator=g) * (torch.rand(n, p, generator=g) < 0.4)
    if big:  # a few counts above the table, computed directly
        x[0, :5] = torch.tensor([TABLE_MAX, TABLE_MAX + 1, 250.0, 4000.0, 0.0])
    log_theta = (torch.rand(p, generator=g) * 4 - 2).requires_grad_()
    logits = torch.randn(n, p, generator=g).requires_grad_()
    mu.requires_grad_()
    return x, mu, log_theta, logits


def _log_prob_and_grads(dist: str, x, mu, log_theta, logits, *, table: bool):
    from scvi.distributions import NegativeBinomial, ZeroInflatedNegativeBinomial

    for t in (mu, log_theta, logits):
        t.grad = None
    with faster_count_likelihood(table):
        if dist == "zinb":
            d = ZeroInflatedNegativeBinomial(mu=mu, theta=log_theta.exp(), zi_logits=logits)
        else:
            d = NegativeBinomial(mu=mu, theta=log_theta.exp())
        lp = d.log_prob(x)
        (lp * torch.linspace(0.5, 1.5, lp.numel()).view_as(lp)).sum().backward()
    grads = [mu.grad.clone(), log_theta.grad.clone()]
    if dist == "zinb":
        grads.append(logits.grad.clone())
    return lp.detach(), grads


@pytest.mark.parametrize("dist", ["zinb", "nb"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_values_and_gradients_as_scvi_tools(dist, seed):
    x, mu, log_theta, logits = _counts(seed)
    ref, ref_grads = _log_prob_and_grads(dist, x, mu, log_theta, logits, table=False)
    got, got_grads = _log_prob_and_grads(dist, x, mu, log_theta, logits, table=True)
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-5, atol=1e-3)
    for g, r in zip(got_grads, ref_grads, strict=True):
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-4, atol=1e-4 * float(r.abs().max()))


def test_all_zero_and_small_counts():
    x = torch.zeros(5, 7)
    theta = torch.rand(7) + 0.5
    np.testing.assert_array_equal(count_term(x, theta).numpy(), np.zeros((5, 7), dtype=np.float32))
    x[1, 2] = 3.0
    expected = torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1)
    np.testing.assert_allclose(count_term(x, theta).numpy(), expected.numpy(), atol=1e-5)


def test_per_cell_dispersion_uses_the_dense_formula():
    """A dispersion that differs between cells (e.g. dispersion='gene-batch') cannot be tabulated per
    gene: the dense formula gives the answer."""
    x, _, _, _ = _counts(3, big=False)
    theta = (torch.rand(x.shape) + 0.1).requires_grad_()
    got = count_term(x, theta)
    assert "CountTerm" not in type(got.grad_fn).__name__
    per_gene = count_term(x, theta[0].detach().requires_grad_())
    assert "CountTerm" in type(per_gene.grad_fn).__name__
    expected = torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1)
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-6)


def test_swapped_in_only_inside_the_block_even_on_error():
    from scvi.distributions import _negative_binomial as nb

    original = nb.log_zinb_positive, nb.log_nb_positive
    with faster_count_likelihood(), faster_count_likelihood():
        assert nb.log_zinb_positive is not original[0]
    assert (nb.log_zinb_positive, nb.log_nb_positive) == original
    with pytest.raises(RuntimeError, match="boom"), faster_count_likelihood():
        raise RuntimeError("boom")
    assert (nb.log_zinb_positive, nb.log_nb_positive) == original
    with faster_count_likelihood(enabled=False):
        assert nb.log_zinb_positive is original[0]
