"""Encoder outputs as features for scikit-learn: EncoderTransformer, and TableEncoder for the
raw-feature baselines (the same preprocessing, fitted inside each fold)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from aetool.data.preprocess import DataWarning, TablePreprocessor, source_name
from aetool.errors import AetoolError
from aetool.estimators.autoencoder import Autoencoder
from aetool.variants.base import CONDITIONAL


class EncoderTransformer(TransformerMixin, Autoencoder):
    """Trains an autoencoder in ``fit`` (labels are never used) and returns its codes in
    ``transform``; clone-able, so in ``Pipeline``/``GridSearchCV`` it is refitted in each fold.

    ``code_size`` is the code's width (32; for a linear probe wider codes tend to do better, see
    docs/features.md), 0 the variant's automatic bottleneck; ``include_logvar`` adds a VAE's
    log-variances after its means.
    """

    def __init__(
        self,
        variant: Any = "ae",
        code_size: int = 32,
        include_logvar: bool = False,
        variant_params: dict[str, Any] | None = None,
        epochs: int | None = None,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        max_steps: int = 0,
        patience: int = 5,
        random_state: int | None = 0,
        device: str = "auto",
        verbose: bool = False,
        min_steps: int | None = None,
    ) -> None:
        super().__init__(variant, variant_params, epochs, batch_size, learning_rate, max_steps,
                         patience, random_state, device, verbose, min_steps)
        self.code_size = code_size
        self.include_logvar = include_logvar

    DEFAULT_EPOCHS = 30

    def fit(self, X: Any, y: Any = None) -> EncoderTransformer:
        """Train the autoencoder on ``X`` alone (``y`` is ignored: features are unsupervised)."""
        variant = self._variant_class()
        if CONDITIONAL in variant.capabilities:
            raise AetoolError(f"variant '{variant.name}' needs labels to encode; use an "
                              "unconditional variant for features")
        matrix, _ = self._prepare(X, reset=True)
        self._fit_model(matrix, variant)
        return self

    def _task_defaults(self, images: bool) -> dict[str, dict[str, Any]]:
        """On images, the image feature settings (IMAGE_FEATURE_DEFAULTS: the convolutional
        backbone, ReLU where the features benchmark chose it); a feature extractor keeps the
        variants' other settings at ``code_size``."""
        from aetool.defaults import IMAGE_FEATURE_DEFAULTS

        return IMAGE_FEATURE_DEFAULTS if images else {}

    def transform(self, X: Any, labels: Any = None) -> np.ndarray:
        codes = super().transform(X, labels)
        if not self.include_logvar:
            return codes
        return np.concatenate([codes, self.log_variances(X)], axis=1)

    def log_variances(self, X: Any) -> np.ndarray:
        """A VAE's posterior log-variances for ``X`` (an error for other variants)."""
        check_is_fitted(self)
        if not hasattr(self.model_, "encode_distribution"):
            raise AetoolError(f"variant '{self.variant_name_}' has no log-variance (not a VAE)")
        matrix, _ = self._prepare(X, reset=False)
        with torch.inference_mode():
            self.model_.to("cpu").eval()
            _, logvar = self.model_.encode_distribution(torch.from_numpy(matrix))
        return logvar.numpy()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self)
        names = [f"code_{i}" for i in range(self.model_.code_size)]
        if self.include_logvar:
            names += [f"logvar_{i}" for i in range(self.model_.code_size)]
        return np.asarray(names, dtype=object)


class TableEncoder(TransformerMixin, BaseEstimator):
    """aetool's table preprocessing as a transformer (impute, one-hot, standardise)."""

    def fit(self, X: Any, y: Any = None) -> TableEncoder:
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X)).rename(
            columns=str)
        with warnings.catch_warnings():  # dropped constant columns are expected in CV folds
            warnings.simplefilter("ignore", DataWarning)
            self.preprocessor_ = TablePreprocessor.fit(frame, source=source_name("training data"))
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X)).rename(
            columns=str)
        return self.preprocessor_.transform(frame)[0]
