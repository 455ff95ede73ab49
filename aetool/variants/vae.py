"""Variational autoencoder: reparameterisation trick and the closed-form Gaussian KL."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from aetool.hookspecs import hookimpl
from aetool.variants.base import EXPORTABLE, GENERATIVE, IMAGE, TABULAR, NetConfig, Variant


@dataclasses.dataclass
class VAEConfig(NetConfig):
    """``beta`` weighs the KL term (1 is the ELBO). ``likelihood``: 'auto' (Bernoulli for
    images in [0, 1], Gaussian for tables), 'bernoulli', 'gaussian' with standard deviation
    ``sigma`` (data units), or 'gaussian_learned' (σ learnt, starting at ``sigma``).
    ``kl_warmup``: optimiser steps over which β rises from 0; ``free_bits``: nats per code unit
    below which the KL is not pushed. Backbone 'auto' is convolutional on images."""

    backbone: str = "auto"
    beta: float = 1.0
    sigma: float = 0.1
    likelihood: str = "auto"
    kl_warmup: int = 0
    free_bits: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.likelihood not in ("auto", "bernoulli", "gaussian", "gaussian_learned"):
            raise ValueError("setting 'likelihood' must be auto, bernoulli, gaussian or "
                             f"gaussian_learned, got '{self.likelihood}'")
        if not self.sigma > 0:
            raise ValueError(f"setting 'sigma' must be > 0, got {self.sigma}")


class VariationalAutoencoder(Variant):
    name = "vae"
    summary = "variational autoencoder; deterministic scoring with the posterior mean"
    capabilities = frozenset({TABULAR, IMAGE, GENERATIVE, EXPORTABLE})
    Config = VAEConfig
    bundle_defaults: ClassVar[dict[str, Any]] = {"likelihood": "gaussian"}  # saved before it

    @classmethod
    def build(cls, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None) -> Any:
        from aetool.models.vae import VAE

        return VAE(input_shape, config, n_classes)


@hookimpl
def register_variants(register: Any) -> None:
    register(VariationalAutoencoder)
