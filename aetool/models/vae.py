"""Variational autoencoders: the VAE and the conditional VAE with one-hot labels."""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from aetool.models.base import AutoencoderModule
from aetool.models.blocks import make_decoder, make_encoder


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) = 0.5 Σ(σ² + μ² − 1 − log σ²), per sample."""
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(dim=1)


class VAE(AutoencoderModule):
    """Gaussian encoder q(z|x) with the reparameterisation trick; the loss is the negative ELBO
    of a Gaussian decoder with standard deviation σ plus β times the closed-form KL.
    ``encode`` and ``reconstruct`` use the mean μ, so scoring is deterministic."""

    def __init__(self, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None):
        super().__init__(input_shape, config, n_classes)
        c = config
        extra = self.n_label_inputs
        self.encoder = make_encoder(self.input_shape, c.backbone, c.hidden, c.channels,
                                    2 * self.code_size, c.activation, extra_inputs=extra)
        self.decoder = make_decoder(self.input_shape, c.backbone, c.hidden, c.channels,
                                    self.code_size + extra, c.activation)

    n_label_inputs = 0

    def labels(self, y: torch.Tensor | None) -> torch.Tensor | None:
        return None

    def encode_distribution(self, x: torch.Tensor, y: torch.Tensor | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        stats = self.encoder(x, self.labels(y))
        mu, logvar = stats.chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode_distribution(x, y)[0]

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        onehot = self.labels(y)
        return self.decoder(z if onehot is None else torch.cat([z, onehot], dim=1))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode_distribution(x, y)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return {"recon": self.decode(z, y), "code": mu, "mu": mu, "logvar": logvar}

    def reconstruction_loss(self, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        """Gaussian negative log-likelihood Σ(x − x̂)² / (2σ²) per sample (constants dropped)."""
        sq = F.mse_loss(recon, x, reduction="none").flatten(1).sum(dim=1)
        return (sq / (2.0 * self.config.sigma**2)).mean()

    def regularizers(self, x: torch.Tensor, output: dict[str, torch.Tensor],
                     y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"kl": self.config.beta * gaussian_kl(output["mu"], output["logvar"]).mean()}

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        device = next(self.parameters()).device
        z = torch.randn((n, self.code_size), generator=generator, device=device)
        return self.decode(z, y)


class CVAE(VAE):
    """Conditional VAE: a one-hot label joins the encoder input and the decoder's code."""

    def __init__(self, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None):
        if not n_classes or n_classes < 2:
            raise ValueError("the conditional VAE needs labels with at least 2 classes")
        self.n_label_inputs = int(n_classes)
        super().__init__(input_shape, config, n_classes)

    def labels(self, y: torch.Tensor | None) -> torch.Tensor:
        if y is None:
            raise ValueError("the conditional VAE needs a label for every sample")
        return F.one_hot(y.long(), self.n_label_inputs).float()

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        device = next(self.parameters()).device
        if y is None:
            y = torch.arange(n, device=device) % self.n_label_inputs
        return super().sample(n, y, generator)
