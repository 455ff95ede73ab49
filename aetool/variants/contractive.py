"""Contractive autoencoder: penalty λ‖J_f(x)‖²_F, the exact Frobenius norm of the encoder Jacobian."""

from __future__ import annotations

import dataclasses
from typing import Any

from aetool.hookspecs import hookimpl
from aetool.variants.ae import AEConfig
from aetool.variants.base import DENOISING, IMAGE, TABULAR, Variant


@dataclasses.dataclass
class ContractiveConfig(AEConfig):
    """``lam``: weight λ of the Jacobian penalty (the default tanh activation suits it)."""

    lam: float = 0.01


class ContractiveAutoencoder(Variant):
    name = "contractive"
    summary = "contractive autoencoder; penalises the encoder Jacobian's Frobenius norm"
    capabilities = frozenset({TABULAR, IMAGE, DENOISING})
    Config = ContractiveConfig

    @classmethod
    def build(cls, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None) -> Any:
        from aetool.models.regularized import ContractiveAE

        return ContractiveAE(input_shape, config, n_classes)


@hookimpl
def register_variants(register: Any) -> None:
    register(ContractiveAutoencoder)
