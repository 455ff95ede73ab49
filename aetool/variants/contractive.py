"""Contractive autoencoder: penalty λ‖J_f(x)‖²_F on the encoder Jacobian, exact or estimated."""

from __future__ import annotations

import dataclasses
from typing import Any

from aetool.hookspecs import hookimpl
from aetool.variants.ae import AEConfig
from aetool.variants.base import DENOISING, EXPORTABLE, IMAGE, TABULAR, Variant


@dataclasses.dataclass
class ContractiveConfig(AEConfig):
    """``lam``: weight λ of the Jacobian penalty (the default tanh activation suits it).
    ``jacobian``: 'exact' (one vector-Jacobian product per code unit and sample), 'estimate'
    (Hutchinson: E‖Jᵀv‖² over one random v per sample, unbiased, one product), or 'auto':
    exact with the fully connected backbone, where it is cheap, estimated with the
    convolutional one, where the exact term costs a backward pass per code unit."""

    lam: float = 0.01
    jacobian: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.jacobian not in ("auto", "exact", "estimate"):
            raise ValueError(f"setting 'jacobian' must be auto, exact or estimate, got "
                             f"'{self.jacobian}'")


class ContractiveAutoencoder(Variant):
    name = "contractive"
    summary = "contractive autoencoder; penalises the encoder Jacobian's Frobenius norm"
    capabilities = frozenset({TABULAR, IMAGE, DENOISING, EXPORTABLE})
    Config = ContractiveConfig

    @classmethod
    def build(cls, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None) -> Any:
        from aetool.models.regularized import ContractiveAE

        return ContractiveAE(input_shape, config, n_classes)


@hookimpl
def register_variants(register: Any) -> None:
    register(ContractiveAutoencoder)
