"""Each regulariser equals its formula."""

from __future__ import annotations

import math

import pytest
import torch

from aetool.models.regularized import kl_sparsity
from aetool.models.vae import gaussian_kl
from aetool.plugins import get_variant


def test_sparse_kl_on_known_activations():
    code = torch.tensor([[0.1, 0.5], [0.3, 0.5]])  # mean activations 0.2 and 0.5
    rho = 0.05

    def kl(p, q):
        return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))

    expected = kl(rho, 0.2) + kl(rho, 0.5)
    assert kl_sparsity(code, rho).item() == pytest.approx(expected, rel=1e-6)


def test_sparse_penalty_enters_loss_with_beta():
    variant = get_variant("sparse")
    config = variant.make_config({"beta": 0.5, "weight_penalty": 0})
    model = variant.build((6,), config)
    x = torch.randn(10, 6)
    out = model(x)
    _, parts = model.loss(x, out)
    assert parts["sparsity"].item() == pytest.approx(0.5 * kl_sparsity(out["code"], 0.05).item())
    assert ((out["code"] > 0) & (out["code"] < 1)).all()


@pytest.mark.parametrize("hidden", [[16], [16, 12, 8]])
def test_contractive_term_is_exact_frobenius_norm(hidden):
    variant = get_variant("contractive")
    model = variant.build((5,), variant.make_config({"hidden": hidden, "code_size": 3}))
    x = torch.randn(4, 5)
    expected = torch.stack([
        torch.autograd.functional.jacobian(lambda v: model.encoder(v.unsqueeze(0)).squeeze(0),
                                           x[i]).pow(2).sum()
        for i in range(4)
    ]).mean()
    assert model.jacobian_penalty(x).item() == pytest.approx(expected.item(), rel=1e-5)
    _, parts = model.loss(x, model(x))
    assert parts["contractive"].item() == pytest.approx(0.01 * expected.item(), rel=1e-5)


def test_contractive_penalty_is_differentiable():
    variant = get_variant("contractive")
    model = variant.build((5,), variant.Config())
    penalty = model.jacobian_penalty(torch.randn(3, 5))
    penalty.backward()
    weights = [p for n, p in model.encoder.named_parameters() if n.endswith("weight")]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)


def test_vae_kl_matches_torch_distributions():
    mu = torch.randn(7, 4)
    logvar = torch.randn(7, 4)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(4), torch.ones(4))
    expected = torch.distributions.kl_divergence(q, p).sum(dim=1)
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-5)


def test_vae_scoring_is_deterministic_and_uses_mean():
    variant = get_variant("vae")
    model = variant.build((6,), variant.Config()).eval()
    x = torch.randn(5, 6)
    mu, _ = model.encode_distribution(x)
    assert torch.equal(model.reconstruct(x), model.decode(mu))


def test_cvae_samples_differ_by_label():
    variant = get_variant("cvae")
    torch.manual_seed(0)
    model = variant.build((6,), variant.Config(), n_classes=3).eval()
    g = torch.Generator().manual_seed(1)
    a = model.sample(4, torch.zeros(4, dtype=torch.long), generator=g)
    g = torch.Generator().manual_seed(1)
    b = model.sample(4, torch.full((4,), 2, dtype=torch.long), generator=g)
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="label"):
        model.encode(torch.randn(2, 6))


def test_cvae_uses_one_hot_labels():
    variant = get_variant("cvae")
    model = variant.build((6,), variant.Config(), n_classes=4)
    first = model.encoder.net[0]
    assert first.in_features == 6 + 4


@pytest.mark.parametrize("spec,level", [("gaussian:0.3", 0.3), ("masking:0.25", 0.25),
                                        ("salt_pepper:0.2", 0.2)])
def test_dae_corruption_level_is_what_config_says(spec, level):
    variant = get_variant("dae")
    model = variant.build((50,), variant.make_config({"noise": spec}))
    x = torch.rand(400, 50) * 0.8 + 0.1  # strictly inside (0, 1)
    noisy = model.corrupt(x, torch.Generator().manual_seed(0))
    if spec.startswith("gaussian"):
        assert (noisy - x).std().item() == pytest.approx(level, rel=0.03)
    elif spec.startswith("masking"):
        assert (noisy == 0).float().mean().item() == pytest.approx(level, abs=0.01)
    else:
        changed = (noisy != x).float().mean().item()
        assert changed == pytest.approx(level, abs=0.01)
        assert set(noisy[noisy != x].unique().tolist()) <= {x.min().item(), x.max().item()}


def test_corruption_is_seeded():
    variant = get_variant("dae")
    model = variant.build((10,), variant.Config())
    x = torch.rand(20, 10)
    a = model.corrupt(x, torch.Generator().manual_seed(3))
    b = model.corrupt(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_ae_l2_penalty_equals_lambda_times_squared_weights():
    variant = get_variant("ae")
    model = variant.build((6,), variant.make_config({"weight_penalty": 0.1}))
    x = torch.randn(3, 6)
    _, parts = model.loss(x, model(x))
    squares = sum(p.pow(2).sum() for n, p in model.named_parameters() if n.endswith("weight"))
    assert parts["l2"].item() == pytest.approx(0.1 * squares.item(), rel=1e-6)
