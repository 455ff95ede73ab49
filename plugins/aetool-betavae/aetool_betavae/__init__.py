"""β-VAE for aetool: the KL term weighted by β, or pushed towards a growing capacity C.

Loss (Higgins et al. 2017): recon + β KL. With ``capacity_max`` > 0 (Burgess et al. 2018):
recon + γ |KL − C| where C rises linearly from 0 to ``capacity_max`` nats over
``capacity_steps`` training steps.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aetool.api import EXPORTABLE, GENERATIVE, IMAGE, TABULAR, NetConfig, Variant, hookimpl

__version__ = "0.1.0"


@dataclasses.dataclass
class BetaVAEConfig(NetConfig):
    """``beta``: KL weight (> 1 favours disentangled codes); ``sigma``: decoder std;
    ``capacity_max`` (nats, 0 = off), ``capacity_steps``, ``gamma``: capacity annealing."""

    backbone: str = "auto"
    beta: float = 4.0
    sigma: float = 0.1
    capacity_max: float = 0.0
    capacity_steps: int = 10000
    gamma: float = 100.0


class BetaVAE(Variant):
    name = "betavae"
    summary = "beta-VAE; KL weight beta, optional capacity annealing (Burgess et al.)"
    capabilities = frozenset({TABULAR, IMAGE, GENERATIVE, EXPORTABLE})
    Config = BetaVAEConfig

    @classmethod
    def build(cls, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None) -> Any:
        from aetool_betavae.model import BetaVAEModule

        if config.beta < 0 or config.capacity_max < 0 or config.capacity_steps < 1:
            raise ValueError("betavae: beta and capacity_max must be >= 0, capacity_steps >= 1")
        return BetaVAEModule(input_shape, config, n_classes)


@hookimpl
def register_variants(register: Any) -> None:
    register(BetaVAE)
