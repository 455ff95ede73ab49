"""Variational autoencoders: the VAE and the conditional VAE with one-hot labels, with a
Bernoulli or Gaussian likelihood, KL warm-up, free bits and an importance-weighted
log-likelihood."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from aetool.models.base import AutoencoderModule
from aetool.models.blocks import (
    _padded,
    activation,
    make_decoder,
    make_encoder,
    resolve_backbone,
)

LIKELIHOODS = ("auto", "bernoulli", "gaussian", "gaussian_learned")


def resolve_likelihood(name: str, input_shape: tuple[int, ...]) -> str:
    """'auto' is Bernoulli for images (pixels in [0, 1]) and a fixed-σ Gaussian for tables
    (standardised columns, not in [0, 1])."""
    if name not in LIKELIHOODS:
        raise ValueError(f"setting 'likelihood' must be one of {', '.join(LIKELIHOODS)}, "
                         f"got '{name}'")
    if name == "auto":
        return "bernoulli" if len(input_shape) == 3 else "gaussian"
    if name == "bernoulli" and len(input_shape) != 3:
        raise ValueError("likelihood 'bernoulli' needs values in [0, 1] (images); tables are "
                         "standardised, use 'gaussian'")
    return name


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) = 0.5 Σ(σ² + μ² − 1 − log σ²), per sample."""
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(dim=1)


class VAE(AutoencoderModule):
    """Gaussian encoder q(z|x) with the reparameterisation trick; the loss is the negative ELBO:
    the decoder's negative log-likelihood plus β times the closed-form KL.

    ``likelihood``: 'bernoulli' (images: the decoder gives logits, the reconstruction is their
    sigmoid), 'gaussian' with the fixed ``sigma``, or 'gaussian_learned' (one learnt σ); 'auto'
    picks Bernoulli for images. ``kl_warmup``: optimiser steps over which β rises from 0, and
    ``free_bits``: nats per code unit below which its KL is not pushed down; both keep the
    decoder from ignoring the code. ``encode`` and ``reconstruct`` use the mean μ, so scoring
    is deterministic."""

    n_label_inputs = 0

    def __init__(self, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None):
        super().__init__(input_shape, config, n_classes)
        c = config
        extra = self.n_label_inputs
        self.likelihood = resolve_likelihood(getattr(c, "likelihood", "gaussian"),
                                             self.input_shape)
        self.encoder = make_encoder(self.input_shape, c.backbone, c.hidden, c.channels,
                                    2 * self.code_size, c.activation, extra_inputs=extra)
        self.decoder = self.make_decoder(c)
        if self.likelihood == "gaussian_learned":
            self.log_sigma = nn.Parameter(torch.tensor(math.log(c.sigma)))
        self.train_steps = 0  # for the KL warm-up; not saved (a loaded model is trained)

    def make_decoder(self, c: Any) -> nn.Module:
        return make_decoder(self.input_shape, c.backbone, c.hidden, c.channels,
                            self.code_size + self.n_label_inputs, c.activation)

    def labels(self, y: torch.Tensor | None) -> torch.Tensor | None:
        return None

    def encode_distribution(self, x: torch.Tensor, y: torch.Tensor | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        stats = self.encoder(x, self.labels(y))
        mu, logvar = stats.chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode_distribution(x, y)[0]

    def decode_raw(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's output: logits for a Bernoulli likelihood, else the mean."""
        onehot = self.labels(y)
        return self.decoder(z if onehot is None else torch.cat([z, onehot], dim=1))

    def mean(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(raw) if self.likelihood == "bernoulli" else raw

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.mean(self.decode_raw(z, y))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode_distribution(x, y)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        raw = self.decode_raw(z, y)
        return {"recon": self.mean(raw), "raw": raw, "code": mu, "mu": mu, "logvar": logvar}

    def log_px(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per sample in nats, from the decoder's raw output."""
        if self.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(raw, x, reduction="none").flatten(1).sum(1)
        log_sigma = self.log_sigma if self.likelihood == "gaussian_learned" else \
            torch.tensor(math.log(self.config.sigma), device=x.device)
        sq = (raw - x).pow(2).flatten(1)
        return (-0.5 * sq / torch.exp(2 * log_sigma) - log_sigma
                - 0.5 * math.log(2 * math.pi)).sum(1)

    def loss(self, x: torch.Tensor, output: dict[str, torch.Tensor],
             y: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.likelihood == "gaussian":
            reconstruction = self.reconstruction_loss(x, output["raw"])
        else:
            reconstruction = -self.log_px(x, output["raw"]).mean()
        parts = {"reconstruction": reconstruction, **self.regularizers(x, output, y)}
        return torch.stack(list(parts.values())).sum(), parts

    def reconstruction_loss(self, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        """Gaussian negative log-likelihood Σ(x − x̂)² / (2σ²) per sample (constants dropped)."""
        sq = F.mse_loss(recon, x, reduction="none").flatten(1).sum(dim=1)
        return (sq / (2.0 * self.config.sigma**2)).mean()

    def warming_up(self) -> bool:
        """True while the KL weight is still rising (the trainer then does not stop early)."""
        return self.train_steps < int(getattr(self.config, "kl_warmup", 0))

    def kl_weight(self) -> float:
        """β, ramped up linearly over the first ``kl_warmup`` training steps (full β when
        evaluating, so early stopping watches the real objective)."""
        warmup = int(getattr(self.config, "kl_warmup", 0))
        if warmup <= 0 or not self.training:  # validation sees the full ELBO
            return float(self.config.beta)
        return float(self.config.beta) * min(1.0, self.train_steps / warmup)

    def regularizers(self, x: torch.Tensor, output: dict[str, torch.Tensor],
                     y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        per_unit = 0.5 * (output["logvar"].exp() + output["mu"].pow(2) - 1.0 - output["logvar"])
        free = float(getattr(self.config, "free_bits", 0.0))
        kl = per_unit.mean(0).clamp(min=free).sum() if free > 0 else per_unit.sum(1).mean()
        weight = self.kl_weight()
        if self.training:
            self.train_steps += 1
        return {"kl": weight * kl}

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, y: torch.Tensor | None = None,
                       k: int = 100) -> torch.Tensor:
        """log p(x) per sample in nats, the importance-weighted bound with ``k`` samples from
        q(z|x) (Burda et al. 2016): tighter than the ELBO, exact as k grows."""
        mu, logvar = self.encode_distribution(x, y)
        std = (0.5 * logvar).exp()
        terms = []
        for _ in range(k):
            eps = torch.randn_like(mu)
            z = mu + eps * std
            log_q = (-0.5 * eps.pow(2) - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(1)
            log_prior = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(1)
            terms.append(self.log_px(x, self.decode_raw(z, y)) + log_prior - log_q)
        return torch.logsumexp(torch.stack(terms), dim=0) - math.log(k)

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None, temperature: float = 1.0
               ) -> torch.Tensor:
        device = next(self.parameters()).device
        z = temperature * torch.randn((n, self.code_size), generator=generator, device=device)
        return self.decode(z, y)


class LabelledMLPDecoder(nn.Module):
    """A fully connected decoder that sees the one-hot label at every layer, so the label
    cannot be washed out by the code on the way to the output."""

    def __init__(self, output_shape: tuple[int, ...], hidden: list[int], code_size: int,
                 n_labels: int, act: str) -> None:
        super().__init__()
        self.output_shape = tuple(output_shape)
        sizes = [code_size, *reversed(hidden), math.prod(output_shape)]
        self.layers = nn.ModuleList(nn.Linear(n_in + n_labels, n_out)
                                    for n_in, n_out in pairwise(sizes))
        self.act = activation(act)

    def forward(self, z: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        h = z
        for i, layer in enumerate(self.layers):
            h = layer(torch.cat([h, onehot], dim=1))
            if i < len(self.layers) - 1:
                h = self.act(h)
        return h.view(z.shape[0], *self.output_shape)


class LabelledConvDecoder(nn.Module):
    """The convolutional decoder with the one-hot label as constant planes at the input of
    every transposed convolution (and with the code at the first layer)."""

    def __init__(self, output_shape: tuple[int, ...], channels: list[int], code_size: int,
                 n_labels: int, act: str) -> None:
        super().__init__()
        c, h, w = output_shape
        depth = len(channels)
        self.output_shape = tuple(output_shape)
        self.grid = (channels[-1], _padded(h, depth) // 2**depth, _padded(w, depth) // 2**depth)
        self.fc = nn.Linear(code_size + n_labels, math.prod(self.grid))
        rev = list(reversed(channels))
        outs = [*rev[1:], c]
        self.layers = nn.ModuleList(nn.ConvTranspose2d(c_in + n_labels, c_out, 4, stride=2,
                                                       padding=1)
                                    for c_in, c_out in zip(rev, outs))
        self.act = activation(act)

    def forward(self, z: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc(torch.cat([z, onehot], dim=1))).view(z.shape[0], *self.grid)
        for i, layer in enumerate(self.layers):
            planes = onehot[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
            h = layer(torch.cat([h, planes], dim=1))
            if i < len(self.layers) - 1:
                h = self.act(h)
        _, height, width = self.output_shape
        return h[:, :, :height, :width]


class CVAE(VAE):
    """Conditional VAE: the one-hot label joins the encoder input and the decoder's first
    layer (``label_layers`` 'input', the default) or every decoder layer ('all')."""

    def __init__(self, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None):
        if not n_classes or n_classes < 2:
            raise ValueError("the conditional VAE needs labels with at least 2 classes")
        self.n_label_inputs = int(n_classes)
        super().__init__(input_shape, config, n_classes)

    def make_decoder(self, c: Any) -> nn.Module:
        if getattr(c, "label_layers", "input") != "all":
            return super().make_decoder(c)
        if resolve_backbone(c.backbone, self.input_shape) == "conv":
            return LabelledConvDecoder(self.input_shape, c.channels, self.code_size,
                                       self.n_label_inputs, c.activation)
        return LabelledMLPDecoder(self.input_shape, c.hidden, self.code_size,
                                  self.n_label_inputs, c.activation)

    def labels(self, y: torch.Tensor | None) -> torch.Tensor:
        if y is None:
            raise ValueError("the conditional VAE needs a label for every sample")
        return F.one_hot(y.long(), self.n_label_inputs).float()

    def decode_raw(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if getattr(self.config, "label_layers", "input") != "all":
            return super().decode_raw(z, y)
        return self.decoder(z, self.labels(y))

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None, temperature: float = 1.0
               ) -> torch.Tensor:
        device = next(self.parameters()).device
        if y is None:
            y = torch.arange(n, device=device) % self.n_label_inputs
        return super().sample(n, y, generator, temperature)
