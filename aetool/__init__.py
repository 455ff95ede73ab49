"""aetool: autoencoders for anomaly scores, denoising and features; every variant a plugin.

The estimators are imported lazily so that ``import aetool`` (and the CLI) stay fast.
"""

from __future__ import annotations

from typing import Any

from aetool._version import __version__

_LAZY = {
    "AutoencoderDetector": "aetool.estimators",
    "PatchDetector": "aetool.estimators",
    "load_detector": "aetool.estimators",
    "Autoencoder": "aetool.estimators",
    "Denoiser": "aetool.estimators",
    "EncoderTransformer": "aetool.estimators",
    "read_images": "aetool.data.images",
    "load_bundle": "aetool.bundle",
    "save_bundle": "aetool.bundle",
    "get_variant": "aetool.plugins",
    "list_variants": "aetool.plugins",
    "Variant": "aetool.variants.base",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aetool' has no attribute {name!r}")
