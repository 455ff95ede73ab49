"""The public API for plugin authors that needs no torch: hook marker, Variant base class,
capability flags and config helpers. Torch building blocks are in :mod:`aetool.nn`."""

from aetool.hookspecs import hookimpl
from aetool.models.sizes import auto_code_size
from aetool.variants.base import (
    CAPABILITIES,
    CONDITIONAL,
    DENOISING,
    EXPORTABLE,
    GENERATIVE,
    IMAGE,
    TABULAR,
    NetConfig,
    Variant,
    config_from_dict,
    config_to_dict,
)

__all__ = [
    "CAPABILITIES",
    "CONDITIONAL",
    "DENOISING",
    "EXPORTABLE",
    "GENERATIVE",
    "IMAGE",
    "TABULAR",
    "NetConfig",
    "Variant",
    "auto_code_size",
    "config_from_dict",
    "config_to_dict",
    "hookimpl",
]
