"""Denoising autoencoder: corrupts training inputs with a noise model, learns the clean input."""

from __future__ import annotations

import dataclasses
from typing import Any

from aetool.hookspecs import hookimpl
from aetool.noise import parse_noise
from aetool.variants.ae import AEConfig
from aetool.variants.base import DENOISING, EXPORTABLE, IMAGE, TABULAR, Variant


@dataclasses.dataclass
class DAEConfig(AEConfig):
    """``noise``: a noise-model spec NAME:LEVEL (gaussian:σ, masking:p, salt_pepper:p)."""

    noise: str = "gaussian:0.3"


class DenoisingAutoencoder(Variant):
    name = "dae"
    summary = "denoising autoencoder; trained to undo Gaussian, masking or salt-and-pepper noise"
    capabilities = frozenset({TABULAR, IMAGE, DENOISING, EXPORTABLE})
    Config = DAEConfig

    @classmethod
    def build(cls, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None) -> Any:
        from aetool.models.regularized import DenoisingAE  # torch only when a model is built

        return DenoisingAE(input_shape, config, n_classes, noise=parse_noise(config.noise))


@hookimpl
def register_variants(register: Any) -> None:
    register(DenoisingAutoencoder)
