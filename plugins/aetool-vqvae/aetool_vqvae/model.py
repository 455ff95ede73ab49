"""The VQ-VAE module: encoder, vector quantiser with straight-through gradients, decoder."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from aetool.api import auto_code_size
from aetool.nn import AutoencoderModule, make_decoder, make_encoder


class VectorQuantizer(nn.Module):
    def __init__(self, n_codes: int, code_dim: int) -> None:
        super().__init__()
        self.codebook = nn.Embedding(n_codes, code_dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / n_codes, 1.0 / n_codes)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest codebook vector for each row of ``z`` (rows, code_dim): squared
        distances from the differences themselves (cdist's switch to a matrix product above 25
        rows depends on the batch size, which an exported graph cannot)."""
        return (z[:, None, :] - self.codebook.weight[None]).square().sum(-1).argmin(dim=1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = self.nearest(z)
        return self.codebook(index), index


class VQVAEModule(AutoencoderModule):
    def __init__(self, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None):
        super().__init__(input_shape, config, n_classes)
        c = config
        wanted = c.code_size or auto_code_size(self.input_shape)
        groups = c.n_groups or max(1, math.ceil(wanted / c.code_dim))
        self.n_groups = groups
        self.code_size = groups * c.code_dim
        self.encoder = make_encoder(self.input_shape, c.backbone, c.hidden, c.channels,
                                    self.code_size, c.activation)
        self.decoder = make_decoder(self.input_shape, c.backbone, c.hidden, c.channels,
                                    self.code_size, c.activation)
        self.quantizer = VectorQuantizer(c.n_codes, c.code_dim)

    def _split(self, z: torch.Tensor) -> torch.Tensor:
        return z.reshape(-1, self.config.code_dim)

    def quantize(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat, index = self.quantizer(self._split(z_e))
        return flat.reshape(z_e.shape), index.reshape(z_e.shape[0], self.n_groups)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.quantize(self.encoder(x))[0]

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        z_e = self.encoder(x)
        z_q, index = self.quantize(z_e)
        straight_through = z_e + (z_q - z_e).detach()
        return {"recon": self.decoder(straight_through), "code": z_q, "z_e": z_e, "z_q": z_q,
                "index": index}

    def regularizers(self, x: torch.Tensor, output: dict[str, torch.Tensor],
                     y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        z_e, z_q = output["z_e"], output["z_q"]
        return {"codebook": F.mse_loss(z_q, z_e.detach()),
                "commitment": self.config.commitment * F.mse_loss(z_e, z_q.detach())}

    def metrics(self, output: dict[str, torch.Tensor]) -> dict[str, float]:
        return usage(output["index"], self.config.n_codes)

    @torch.no_grad()
    def codebook_usage(self, x: torch.Tensor) -> dict[str, float]:
        """Share of codebook entries used on ``x`` and the perplexity of their use."""
        _, index = self.quantize(self.encoder(x))
        return usage(index, self.config.n_codes)


def usage(index: torch.Tensor, n_codes: int) -> dict[str, float]:
    counts = torch.bincount(index.flatten(), minlength=n_codes).float()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"codes_used": float((counts > 0).float().mean()), "perplexity": float(entropy.exp())}
