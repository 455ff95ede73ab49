"""VQ-VAE for aetool (van den Oord et al., 2017).

The encoder output is split into ``n_groups`` vectors of ``code_dim`` values; each is replaced by
its nearest entry of a learned codebook of ``n_codes`` vectors. Gradients pass the quantiser with
the straight-through estimator; the loss adds the codebook term ‖sg[z_e] − e‖² and the
commitment term β‖z_e − sg[e]‖². Codebook usage (share of codes used, perplexity) is logged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aetool.api import DENOISING, EXPORTABLE, IMAGE, TABULAR, NetConfig, Variant, hookimpl

__version__ = "0.1.0"


@dataclasses.dataclass
class VQVAEConfig(NetConfig):
    """``n_codes``: codebook size; ``code_dim``: size of each quantised vector; ``n_groups``:
    quantised vectors per sample (0 = enough to cover ``code_size``, or the automatic size);
    ``commitment``: β of the commitment loss."""

    backbone: str = "auto"
    n_codes: int = 64
    code_dim: int = 4
    n_groups: int = 0
    commitment: float = 0.25


class VQVAE(Variant):
    name = "vqvae"
    summary = "VQ-VAE; learned codebook, commitment loss, straight-through gradients"
    capabilities = frozenset({TABULAR, IMAGE, DENOISING, EXPORTABLE})
    Config = VQVAEConfig

    @classmethod
    def build(cls, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None) -> Any:
        from aetool_vqvae.model import VQVAEModule

        if config.n_codes < 2 or config.code_dim < 1 or config.n_groups < 0:
            raise ValueError("vqvae: n_codes >= 2, code_dim >= 1 and n_groups >= 0 are required")
        return VQVAEModule(input_shape, config, n_classes)


@hookimpl
def register_variants(register: Any) -> None:
    register(VQVAE)
