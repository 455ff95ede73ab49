"""The scikit-learn estimators, in one wing: AutoencoderDetector (outliers), Autoencoder (any
variant), Denoiser, EncoderTransformer (features), and the explanations they share."""

from aetool.estimators.autoencoder import Autoencoder
from aetool.estimators.base import AutoencoderEstimator
from aetool.estimators.denoiser import Denoiser
from aetool.estimators.detector import TABLE_DETECTION_DEFAULTS, AutoencoderDetector
from aetool.estimators.encoder import EncoderTransformer, TableEncoder
from aetool.estimators.explain import column_shares, top_features

__all__ = [
    "TABLE_DETECTION_DEFAULTS",
    "Autoencoder",
    "AutoencoderDetector",
    "AutoencoderEstimator",
    "Denoiser",
    "EncoderTransformer",
    "TableEncoder",
    "column_shares",
    "top_features",
]
