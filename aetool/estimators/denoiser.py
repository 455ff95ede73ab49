"""Denoiser: a scikit-learn transformer that removes noise with a denoising-capable variant.

``fit(X_clean)`` is the normal case: a DAE learns to undo the configured noise model applied to
clean rows/images; a contractive AE learns the clean data's manifold and projects onto it.
``fit(X_noisy)`` works when no clean data exists: the model then learns the structure the noisy
samples share, and removes what its bottleneck cannot represent; expect less gain than with
clean training data. ``transform(X_noisy)`` returns data in the input's units and columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted

from aetool import defaults
from aetool.bundle import load_bundle, manifest_errors, save_bundle
from aetool.errors import AetoolError, BundleError, SettingError
from aetool.estimators.base import AutoencoderEstimator
from aetool.noise import InDataUnits
from aetool.scoring import reconstructions, run_batches
from aetool.variants.base import DENOISING


class Denoiser(TransformerMixin, AutoencoderEstimator):
    """``variant``: 'dae', 'contractive' or any plugin with the 'denoising' capability.
    ``noise``: the training corruption NAME:LEVEL for variants that corrupt (gaussian:σ,
    masking:p, salt_pepper:p), in model units: [0, 1] for images, standard deviations for tables
    (``noise_units="std"``) or, with ``noise_units="data"``, each column's own unit (σ = 0.3
    volts on every column, when that is what the sensor adds). ``min_steps``: small tables get
    more epochs, so that training makes at least this many optimiser steps.
    """

    def __init__(
        self,
        variant: Any = "dae",
        noise: str = "gaussian:0.3",
        variant_params: dict[str, Any] | None = None,
        epochs: int = 30,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        max_steps: int = 0,
        patience: int = 5,
        random_state: int | None = 0,
        device: str = "auto",
        verbose: bool = False,
        noise_units: str = "std",
        min_steps: int = 500,
    ) -> None:
        super().__init__(variant, variant_params, epochs, batch_size, learning_rate, max_steps,
                         patience, random_state, device, verbose)
        self.noise = noise
        self.noise_units = noise_units
        self.min_steps = min_steps

    def _train_config(self) -> Any:
        config = super()._train_config()
        config.min_steps = int(self.min_steps)
        return config

    def _adapt_model(self, model: Any) -> None:
        """With ``noise_units="data"``, the corruption is applied in each column's own unit."""
        if self.noise_units == "std":
            return

        spread = [self.preprocessor_.numeric[c]["scale"] if c in self.preprocessor_.numeric
                  else 1.0 for c in self.preprocessor_.feature_groups]
        model.noise = InDataUnits(model.noise, torch.tensor(spread))

    def _check_noise_units(self, variant: type) -> None:
        if self.noise_units not in ("std", "data"):
            raise SettingError(f"noise_units must be 'std' or 'data', not '{self.noise_units}'")
        if self.noise_units == "data":
            if hasattr(self.preprocessor_, "shape"):
                raise SettingError("noise_units='data' is for tables; image noise levels are "
                                  "already in pixel units ([0, 1])")
            if "noise" not in variant.Config.__dataclass_fields__:
                raise SettingError(f"noise_units='data' needs a variant trained with a noise "
                                  f"model; '{variant.name}' has none")

    def _config_values(self, input_shape: tuple[int, ...], variant: type) -> dict[str, Any]:
        fields = variant.Config.__dataclass_fields__
        values: dict[str, Any] = {}
        if "noise" in fields:
            values["noise"] = self.noise
        user = self.variant_params or {}
        images = len(getattr(self.preprocessor_, "shape", ())) == 3
        if "backbone" in fields and "backbone" not in user and images:
            values["backbone"] = "auto"  # convolutional on images unless told otherwise
        if images:  # what the denoising benchmark proved on images (aetool.defaults)
            values.update(defaults.IMAGE_DENOISING_DEFAULTS.get(variant.name, {}))
        values.update(user)
        return values

    def fit(self, X: Any, y: Any = None) -> Denoiser:
        """Train on ``X`` (clean data if you have it; see the module docs for noisy data)."""
        variant = self._variant_class()
        if DENOISING not in variant.capabilities:
            raise AetoolError(f"variant '{variant.name}' cannot denoise (no 'denoising' "
                              "capability); use dae, contractive or a denoising plugin")
        matrix, _ = self._prepare(X, reset=True)
        self._check_noise_units(variant)
        self._fit_model(matrix, variant)
        return self

    def _denoised_model_units(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        matrix, _ = self._prepare(X, reset=False)
        out = run_batches(self.model_, matrix, reconstructions, **self._inference())
        return out["recon"] if out else np.empty_like(matrix)

    def transform(self, X: Any) -> Any:
        """Denoised ``X`` in its own units: a DataFrame keeps its columns (non-numeric ones and
        constant ones untouched), an image array keeps its shape and dtype."""
        cleaned = self._denoised_model_units(X)
        prep = self.preprocessor_
        if hasattr(prep, "shape"):  # images
            values = prep.inverse(cleaned)
            original = np.asarray(X)
            if np.issubdtype(original.dtype, np.integer):
                values = np.clip(np.rint(values), 0, np.iinfo(original.dtype).max)
            return values.astype(original.dtype).reshape(original.shape)
        restored = prep.inverse(cleaned)
        if isinstance(X, pd.DataFrame):
            out = X.copy()
            for column in prep.numeric:
                out[column] = restored[column].to_numpy()
            return out
        out = np.array(X, dtype=np.float64, copy=True)
        for column in prep.numeric:
            out[:, int(column[1:])] = restored[column].to_numpy()
        return out

    def save(self, path: Any, force: bool = False) -> Any:
        check_is_fitted(self)
        manifest = self._manifest("denoise")
        manifest["denoise"] = {"noise": self.noise, "noise_units": self.noise_units,
                               "columns": getattr(self, "columns_", None)}
        return save_bundle(path, self.model_, manifest, force=force)

    @classmethod
    def load(cls, path: Any, device: str = "cpu") -> Denoiser:
        manifest, model = load_bundle(path, device=device)
        if manifest.get("task") != "denoise":
            raise BundleError(f"{path}: holds a '{manifest.get('task')}' model, not a denoiser "
                              "(train one with 'aetool denoise fit')")
        with manifest_errors(str(path)):
            denoiser = cls._rebuild(manifest, model, device)
            denoiser.columns_ = manifest["denoise"].get("columns")
        return denoiser

