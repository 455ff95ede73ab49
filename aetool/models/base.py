"""The module contract every variant's ``build`` returns, and the deterministic autoencoder."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from aetool.models.blocks import make_decoder, make_encoder
from aetool.models.sizes import auto_code_size


class AutoencoderModule(nn.Module):
    """encode / decode / forward / loss / reconstruct, used by the trainer, scorer and tasks.

    ``forward`` returns a dict with at least ``recon`` and ``code``. ``loss`` returns the total
    and its named, already weighted parts (they add up to the total). ``reconstruct`` is
    deterministic and is what scoring uses. ``corrupt`` is applied to training inputs only.
    """

    def __init__(self, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.config = config
        self.n_classes = n_classes
        self.code_size = int(getattr(config, "code_size", 0) or auto_code_size(self.input_shape))

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        code = self.encode(x, y)
        return {"recon": self.decode(code, y), "code": code}

    def reconstruction_loss(self, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(recon, x)

    def regularizers(
        self, x: torch.Tensor, output: dict[str, torch.Tensor], y: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Weighted penalty terms added to the reconstruction loss (none by default)."""
        return {}

    def loss(
        self, x: torch.Tensor, output: dict[str, torch.Tensor], y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        parts = {"reconstruction": self.reconstruction_loss(x, output["recon"])}
        parts.update(self.regularizers(x, output, y))
        total = torch.stack(list(parts.values())).sum()
        return total, parts

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x, y), y)

    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return x

    def metrics(self, output: dict[str, torch.Tensor]) -> dict[str, float]:
        """Extra figures to log per training batch (not part of the loss), e.g. codebook use."""
        return {}

    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} is not generative")


class DeterministicAE(AutoencoderModule):
    """Encoder and decoder from the config's backbone; the base of ae, dae, sparse, contractive
    and conv. ``code_activation`` (e.g. 'sigmoid' for the sparse AE) bounds the code."""

    code_activation: str | None = None

    def __init__(self, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None):
        super().__init__(input_shape, config, n_classes)
        c = config
        self.encoder = make_encoder(self.input_shape, c.backbone, c.hidden, c.channels,
                                    self.code_size, c.activation)
        if self.code_activation == "sigmoid":
            self.encoder = nn.Sequential(self.encoder, nn.Sigmoid())
        self.decoder = make_decoder(self.input_shape, c.backbone, c.hidden, c.channels,
                                    self.code_size, c.activation)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z)


def weight_l2(module: nn.Module) -> torch.Tensor:
    """Sum of squared weights of every matrix/kernel (biases excluded): ||W||^2."""
    terms = [p.pow(2).sum() for name, p in module.named_parameters() if name.endswith("weight")]
    return torch.stack(terms).sum()
