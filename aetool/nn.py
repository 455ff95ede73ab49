"""Torch building blocks for plugin authors: the module contract and reusable parts.

Import this inside a variant's ``build`` so that listing plugins never imports torch.
"""

from aetool.models.base import AutoencoderModule, DeterministicAE, weight_l2
from aetool.models.blocks import make_decoder, make_encoder, mlp, resolve_backbone
from aetool.models.regularized import PlainAE
from aetool.models.vae import VAE, gaussian_kl

__all__ = [
    "VAE",
    "AutoencoderModule",
    "DeterministicAE",
    "PlainAE",
    "gaussian_kl",
    "make_decoder",
    "make_encoder",
    "mlp",
    "resolve_backbone",
    "weight_l2",
]
