"""The table-lookup count likelihood: scvi-tools' values and gradients, lent to one model while it trains."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pyscvibridge import _likelihood  # noqa: E402
from pyscvibridge._likelihood import TABLE_MAX, count_term, table_likelihood  # noqa: E402


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
    if dist == "zinb":
        cls = _likelihood.TableZeroInflatedNegativeBinomial if table else ZeroInflatedNegativeBinomial
        d = cls(mu=mu, theta=log_theta.exp(), zi_logits=logits)
    else:
        cls = _likelihood.TableNegativeBinomial if table else NegativeBinomial
        d = cls(mu=mu, theta=log_theta.exp())
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


def _vae(**kw):
    from scvi.module import VAE

    torch.manual_seed(0)
    return VAE(n_input=300, n_batch=2, n_latent=4, **kw).eval()  # eval: no dropout


def _px(module, x):
    batch = torch.zeros(x.shape[0], 1, dtype=torch.long)
    inf = module.inference(x, batch)
    return module.generative(inf["qz"].loc, inf["library"], batch)["px"]  # the mean: no sampling


def test_lent_to_one_model_only_while_the_block_runs_even_on_error():
    import scvi.distributions._negative_binomial as nb
    from scvi.distributions import ZeroInflatedNegativeBinomial
    from scvi.module import VAE

    shipped = nb.log_zinb_positive, nb.log_nb_positive, nb.ZeroInflatedNegativeBinomial.log_prob
    x = _counts(0, big=False)[0]
    module, other = _vae(), _vae()
    with table_likelihood(module) as ways, table_likelihood(module) as inner:
        assert type(module).__name__ == "TableLikelihoodVAE"
        assert isinstance(module, VAE)
        assert inner is ways
        px = _px(module, x)
        assert type(px).__name__ == "TableZeroInflatedNegativeBinomial"
        lp = px.log_prob(x)
        assert ways == {"table"}
        # another model in the same process keeps scvi-tools' own likelihood, with the same values
        assert type(other) is VAE
        ref = _px(other, x)
        assert type(ref) is ZeroInflatedNegativeBinomial
        np.testing.assert_allclose(
            lp.detach().numpy(), ref.log_prob(x).detach().numpy(), rtol=1e-5, atol=1e-3
        )
        assert type(module) is not VAE  # the inner block ended; the outer one still lends the class
    assert type(module) is VAE
    assert "_pyscvibridge_ways" not in module.__dict__
    with pytest.raises(RuntimeError, match="boom"), table_likelihood(module):
        raise RuntimeError("boom")
    assert type(module) is VAE
    assert (nb.log_zinb_positive, nb.log_nb_positive, nb.ZeroInflatedNegativeBinomial.log_prob) == shipped
    with table_likelihood(module, enabled=False) as ways:
        assert ways is None
        assert type(module) is VAE


def test_not_lent_where_it_does_not_apply():
    """Poisson / normal likelihoods and modules other than scvi-tools' VAE keep scvi-tools' code."""
    from scvi.module import VAE

    poisson = _vae(gene_likelihood="poisson")
    with table_likelihood(poisson) as ways:
        assert ways is None
        assert type(poisson) is VAE

    class MyVAE(VAE):
        pass

    mine = MyVAE(n_input=30)
    with table_likelihood(mine) as ways:
        assert ways is None
        assert type(mine) is MyVAE


def test_nb_likelihood_and_a_pickled_module_keep_the_table():
    """A module pickled inside the block (as Lightning's ddp_spawn does) unpickles with the table."""
    import pickle

    from scvi.module import VAE

    x = _counts(1, big=False)[0]
    module = _vae(gene_likelihood="nb")
    with table_likelihood(module) as ways:
        copy = pickle.loads(pickle.dumps(module))
        assert type(copy) is type(module) is _likelihood.TableLikelihoodVAE
        px = _px(copy, x)
        assert type(px).__name__ == "TableNegativeBinomial"
        px.log_prob(x)
        assert "table" in copy.__dict__["_pyscvibridge_ways"]
        assert ways == set()  # the copy's steps are its own
    assert type(module) is VAE
