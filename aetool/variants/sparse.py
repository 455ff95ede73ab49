"""Sparse autoencoder: sigmoid code with the KL penalty β Σ_j KL(ρ ‖ ρ̂_j)."""

from __future__ import annotations

import dataclasses
from typing import Any

from aetool.hookspecs import hookimpl
from aetool.variants.ae import AEConfig
from aetool.variants.base import EXPORTABLE, IMAGE, TABULAR, Variant


@dataclasses.dataclass
class SparseConfig(AEConfig):
    """``rho``: target mean activation of each code unit; ``beta``: weight of the KL penalty."""

    rho: float = 0.05
    beta: float = 0.1


class SparseAutoencoder(Variant):
    name = "sparse"
    summary = "sparse autoencoder; KL penalty pulls mean code activations towards rho"
    capabilities = frozenset({TABULAR, IMAGE, EXPORTABLE})
    Config = SparseConfig

    @classmethod
    def build(cls, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None) -> Any:
        from aetool.models.regularized import SparseAE

        if not 0.0 < config.rho < 1.0:
            raise ValueError(f"sparse: rho must be in (0, 1), got {config.rho}")
        return SparseAE(input_shape, config, n_classes)


@hookimpl
def register_variants(register: Any) -> None:
    register(SparseAutoencoder)
