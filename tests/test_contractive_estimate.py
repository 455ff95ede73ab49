"""The contractive penalty's Hutchinson estimate is unbiased for the exact Frobenius norm, and
'auto' picks the estimate only where the exact term is expensive (convolutional encoders)."""

from __future__ import annotations

import pytest
import torch

from aetool.models.regularized import ContractiveAE
from aetool.variants.contractive import ContractiveConfig


@pytest.mark.parametrize("shape,backbone", [((10,), "mlp"), ((1, 8, 8), "conv")])
def test_estimate_is_unbiased_for_the_exact_penalty(shape, backbone):
    torch.manual_seed(0)
    model = ContractiveAE(shape, ContractiveConfig(backbone=backbone, code_size=4))
    x = torch.rand(16, *shape)
    exact = float(model.exact_jacobian_penalty(x).detach())
    estimates = torch.stack([model.estimated_jacobian_penalty(x).detach() for _ in range(400)])
    mean, spread = float(estimates.mean()), float(estimates.std()) / 20  # standard error
    assert abs(mean - exact) < 4 * spread + 1e-6


def test_auto_is_exact_for_mlp_and_estimated_for_conv():
    assert ContractiveAE((10,), ContractiveConfig(code_size=4)).jacobian_mode == "exact"
    conv = ContractiveAE((1, 8, 8), ContractiveConfig(backbone="conv", code_size=4))
    assert conv.jacobian_mode == "estimate"
    forced = ContractiveAE((1, 8, 8), ContractiveConfig(backbone="conv", jacobian="exact"))
    assert forced.jacobian_mode == "exact"
    with pytest.raises(ValueError, match="jacobian"):
        ContractiveConfig(jacobian="approximately")


def test_the_estimate_trains_the_encoder():
    model = ContractiveAE((1, 8, 8), ContractiveConfig(backbone="conv", code_size=4, lam=1.0))
    x = torch.rand(8, 1, 8, 8)
    penalty = model.estimated_jacobian_penalty(x)
    penalty.backward()
    grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


def test_the_estimate_works_under_no_grad_for_validation():
    model = ContractiveAE((1, 8, 8), ContractiveConfig(backbone="conv", code_size=4))
    with torch.no_grad():
        penalty = model.estimated_jacobian_penalty(torch.rand(4, 1, 8, 8))
    assert float(penalty) > 0 and not penalty.requires_grad
