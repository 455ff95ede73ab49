"""Convolutional autoencoder for (C, H, W) images of any size, grey or RGB."""

from __future__ import annotations

import dataclasses
from typing import Any

from aetool.hookspecs import hookimpl
from aetool.variants.ae import AEConfig
from aetool.variants.base import DENOISING, EXPORTABLE, IMAGE, Variant


@dataclasses.dataclass
class ConvConfig(AEConfig):
    """Strided convolutions of widths ``channels``; inputs are padded to a multiple of 2**depth."""

    backbone: str = "conv"
    activation: str = "relu"


class ConvAutoencoder(Variant):
    name = "conv"
    summary = "convolutional autoencoder for grey or RGB images of any size"
    capabilities = frozenset({IMAGE, DENOISING, EXPORTABLE})
    Config = ConvConfig

    @classmethod
    def build(cls, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None) -> Any:
        from aetool.models.regularized import PlainAE

        if len(input_shape) != 3:
            raise ValueError(
                f"conv needs image inputs of shape (C, H, W), got {tuple(input_shape)}; "
                "use 'ae' for tables"
            )
        return PlainAE(input_shape, config, n_classes)


@hookimpl
def register_variants(register: Any) -> None:
    register(ConvAutoencoder)
