"""The deterministic autoencoders: plain (L2), denoising, sparse (KL) and contractive."""

from __future__ import annotations

from typing import Any

import torch
from torch.func import jacrev, vmap

from aetool.models.base import DeterministicAE, weight_l2
from aetool.models.blocks import resolve_backbone


class PlainAE(DeterministicAE):
    """J + λ‖W‖²: reconstruction error plus an L2 penalty on all weights (``weight_penalty``)."""

    def regularizers(self, x: torch.Tensor, output: dict[str, torch.Tensor],
                     y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        lam = float(getattr(self.config, "weight_penalty", 0.0))
        return {"l2": lam * weight_l2(self)} if lam > 0 else {}


class DenoisingAE(PlainAE):
    """Trained to map corrupted inputs back to the clean ones; the corruption is a noise model."""

    def __init__(self, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None,
                 noise: Any = None):
        super().__init__(input_shape, config, n_classes)
        if noise is None:
            raise ValueError("a denoising autoencoder needs its noise model (built by the "
                             "variant from the 'noise' setting)")
        self.noise = noise

    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.noise.apply(x, generator)


def kl_sparsity(code: torch.Tensor, rho: float) -> torch.Tensor:
    """Σ_j KL(ρ ‖ ρ̂_j) where ρ̂_j is the mean activation of code unit j over the batch."""
    rho_hat = code.mean(dim=0).clamp(1e-6, 1 - 1e-6)
    return (rho * torch.log(rho / rho_hat)
            + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


class SparseAE(PlainAE):
    """Sigmoid code with the penalty β Σ_j KL(ρ ‖ ρ̂_j) on the mean code activations."""

    code_activation = "sigmoid"

    def regularizers(self, x: torch.Tensor, output: dict[str, torch.Tensor],
                     y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        parts = super().regularizers(x, output, y)
        parts["sparsity"] = self.config.beta * kl_sparsity(output["code"], self.config.rho)
        return parts


class ContractiveAE(PlainAE):
    """Penalty λ ‖J_f(x)‖²_F on the encoder Jacobian, averaged over the batch: exact with
    ``torch.func`` (no shallow-network shortcut), or Hutchinson's unbiased estimate
    E_v ‖Jᵀv‖², v ~ N(0, I), one vector-Jacobian product per sample (``jacobian`` setting;
    'auto': exact for the fully connected backbone, estimated for the convolutional one)."""

    def __init__(self, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None):
        super().__init__(input_shape, config, n_classes)
        mode = getattr(config, "jacobian", "exact")
        if mode == "auto":
            conv = resolve_backbone(config.backbone, self.input_shape) == "conv"
            mode = "estimate" if conv else "exact"
        self.jacobian_mode = mode

    def jacobian_penalty(self, x: torch.Tensor) -> torch.Tensor:
        if self.jacobian_mode == "estimate":
            return self.estimated_jacobian_penalty(x)
        return self.exact_jacobian_penalty(x)

    def exact_jacobian_penalty(self, x: torch.Tensor) -> torch.Tensor:
        def encode_one(sample: torch.Tensor) -> torch.Tensor:
            return self.encoder(sample.unsqueeze(0)).squeeze(0)

        jac = vmap(jacrev(encode_one))(x)  # (batch, code, *input_shape)
        return jac.pow(2).flatten(1).sum(dim=1).mean()

    def estimated_jacobian_penalty(self, x: torch.Tensor) -> torch.Tensor:
        """E‖Jᵀv‖² = ‖J‖²_F for v with identity covariance: one product per sample, and
        differentiable (create_graph) so the penalty trains the encoder."""
        training = torch.is_grad_enabled()  # validation runs under no_grad: no graph kept
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            code = self.encoder(x)
            v = torch.randn_like(code)
            (vjp,) = torch.autograd.grad(code, x, grad_outputs=v, create_graph=training)
        penalty = vjp.pow(2).flatten(1).sum(dim=1).mean()
        return penalty if training else penalty.detach()

    def regularizers(self, x: torch.Tensor, output: dict[str, torch.Tensor],
                     y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        parts = super().regularizers(x, output, y)
        parts["contractive"] = self.config.lam * self.jacobian_penalty(x)
        return parts
