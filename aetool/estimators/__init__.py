"""The scikit-learn estimators, in one wing: AutoencoderDetector (outliers), PatchDetector
(local defects in images), Autoencoder (any variant), Denoiser, EncoderTransformer (features),
and the explanations they share. Names are imported on first use, so the scikit-learn-free
parts (:mod:`aetool.estimators.saved`) load without scikit-learn."""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "Autoencoder": "autoencoder",
    "AutoencoderEstimator": "base",
    "Denoiser": "denoiser",
    "AutoencoderDetector": "detector",
    "PatchDetector": "patch_detector",
    "load_detector": "detector",
    "TABLE_DETECTION_DEFAULTS": "detector",
    "EncoderTransformer": "encoder",
    "TableEncoder": "encoder",
    "column_shares": "explain",
    "top_features": "explain",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'aetool.estimators' has no attribute '{name}'")
    return getattr(importlib.import_module(f"aetool.estimators.{_HOMES[name]}"), name)
