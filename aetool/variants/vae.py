"""Variational autoencoder: reparameterisation trick and the closed-form Gaussian KL."""

from __future__ import annotations

import dataclasses
from typing import Any

from aetool.hookspecs import hookimpl
from aetool.variants.base import GENERATIVE, IMAGE, TABULAR, NetConfig, Variant


@dataclasses.dataclass
class VAEConfig(NetConfig):
    """``beta`` weighs the KL term (1 is the ELBO); ``sigma`` is the decoder's standard deviation
    (data units: [0, 1] for images, standardised for tables); backbone 'auto' is convolutional
    on images."""

    backbone: str = "auto"
    beta: float = 1.0
    sigma: float = 0.1


class VariationalAutoencoder(Variant):
    name = "vae"
    summary = "variational autoencoder; deterministic scoring with the posterior mean"
    capabilities = frozenset({TABULAR, IMAGE, GENERATIVE})
    Config = VAEConfig

    @classmethod
    def build(cls, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None) -> Any:
        from aetool.models.vae import VAE

        return VAE(input_shape, config, n_classes)


@hookimpl
def register_variants(register: Any) -> None:
    register(VariationalAutoencoder)
