"""Plain autoencoder with an optional L2 weight penalty: J + λ‖W‖²."""

from __future__ import annotations

import dataclasses
from typing import Any

from aetool.hookspecs import hookimpl
from aetool.variants.base import DENOISING, EXPORTABLE, IMAGE, TABULAR, NetConfig, Variant


@dataclasses.dataclass
class AEConfig(NetConfig):
    """``weight_penalty`` is λ in J + λ‖W‖² (sum of squared weights, biases excluded)."""

    weight_penalty: float = 1e-5


class PlainAutoencoder(Variant):
    name = "ae"
    summary = "plain autoencoder; reconstruction error plus an L2 weight penalty"
    capabilities = frozenset({TABULAR, IMAGE, DENOISING, EXPORTABLE})
    Config = AEConfig

    @classmethod
    def build(cls, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None) -> Any:
        from aetool.models.regularized import PlainAE

        return PlainAE(input_shape, config, n_classes)


@hookimpl
def register_variants(register: Any) -> None:
    register(PlainAutoencoder)
