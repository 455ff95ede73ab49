"""The β-VAE module: aetool's VAE with a different KL term."""

from __future__ import annotations

from typing import Any

import torch

from aetool.nn import VAE, gaussian_kl


class BetaVAEModule(VAE):
    def __init__(self, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None):
        super().__init__(input_shape, config, n_classes)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def capacity(self) -> float:
        """The KL target C at the current training step (0 when annealing is off)."""
        c = self.config
        if c.capacity_max <= 0:
            return 0.0
        return c.capacity_max * min(1.0, float(self.steps) / c.capacity_steps)

    def regularizers(self, x: torch.Tensor, output: dict[str, torch.Tensor],
                     y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        kl = gaussian_kl(output["mu"], output["logvar"]).mean()
        if self.training:
            self.steps += 1
        if self.config.capacity_max > 0:
            return {"kl": self.config.gamma * (kl - self.capacity()).abs()}
        return {"kl": self.config.beta * kl}

    def metrics(self, output: dict[str, torch.Tensor]) -> dict[str, float]:
        return {"kl_nats": float(gaussian_kl(output["mu"], output["logvar"]).mean().detach()),
                "capacity": self.capacity()}
