"""The shared base of aetool's scikit-learn estimators: input checks, preprocessing, training
any registered variant, bundle manifests and how a trained model is run."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import validation as sk_validation

from aetool.data.arrays import ImagePreprocessor
from aetool.data.preprocess import TablePreprocessor, UnseenCategoryWarning, source_name
from aetool.errors import AetoolError
from aetool.estimators.inference import InferenceSettings
from aetool.estimators.saved import restore_fitted_state
from aetool.plugins import get_variant
from aetool.training import TrainConfig, fit_variant
from aetool.variants.base import config_to_dict


class AutoencoderEstimator(InferenceSettings, BaseEstimator):
    """Shared by the aetool estimators: input checks, preprocessing and training a variant.

    Parameters are stored as given (scikit-learn convention); learned state ends in ``_``.
    ``variant`` is a registered name or a Variant class; ``variant_params`` sets its Config;
    ``min_steps``, where an estimator offers it, the optimiser steps training makes at least.
    ``epochs`` None: the estimator's DEFAULT_EPOCHS, which the step rules of small image sets
    may stretch (and say so); a number, even the default's, trains that many epochs.
    """

    DEFAULT_EPOCHS: int = 60  # what ``epochs=None`` trains before any step rule

    def __init__(
        self,
        variant: Any = "ae",
        variant_params: dict[str, Any] | None = None,
        epochs: int | None = None,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        max_steps: int | None = None,
        patience: int = 8,
        random_state: int | None = 0,
        device: str = "auto",
        verbose: bool = False,
        min_steps: int | None = None,
    ) -> None:
        self.variant = variant
        self.variant_params = variant_params
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_steps = max_steps
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.min_steps = min_steps

    # -- inputs --------------------------------------------------------------------------------
    def _prepare(self, X: Any, reset: bool) -> tuple[np.ndarray, Any]:
        """Validate ``X`` and turn it into the model's float32 input with the fitted preprocessor."""
        if hasattr(X, "toarray") and hasattr(X, "nnz"):  # scipy sparse: autoencoders need dense
            X = X.toarray()
        if isinstance(X, pd.DataFrame):
            sk_validation._check_feature_names(self, X, reset=reset)
            sk_validation._check_n_features(self, X, reset=reset)
            frame = X
        else:
            arr = np.asarray(X) if not hasattr(X, "toarray") else X
            if getattr(arr, "ndim", 2) >= 3:
                return self._prepare_images(arr, reset)
            arr = sk_validation.validate_data(
                self, X, reset=reset, ensure_all_finite="allow-nan", dtype=np.float64,
                ensure_min_samples=2 if reset else 1,
            )
            frame = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
        if reset:
            self.preprocessor_ = TablePreprocessor.fit(frame, source=source_name("training data"),
                                                       **self._table_options())
        matrix, unseen = self.preprocessor_.transform(frame, source="data")
        if unseen:
            warnings.warn(UnseenCategoryWarning(source_name("data"), unseen), stacklevel=3)
        return matrix, self.preprocessor_

    def _table_options(self) -> dict[str, Any]:
        """Extra :meth:`TablePreprocessor.fit` settings of this estimator."""
        return {}

    def _prepare_images(self, arr: np.ndarray, reset: bool) -> tuple[np.ndarray, Any]:
        if reset:
            self.preprocessor_ = ImagePreprocessor.fit(arr, source="training images")
            self.n_features_in_ = int(np.prod(self.preprocessor_.shape))
        return self.preprocessor_.transform(arr, source="images")[0], self.preprocessor_

    # -- training --------------------------------------------------------------------------------
    def _variant_class(self) -> type:
        """The Variant class: given directly, or looked up once per call by its name."""
        return self.variant if isinstance(self.variant, type) else get_variant(str(self.variant))

    def _train_config(self, matrix: np.ndarray | None = None) -> TrainConfig:
        """Training settings; ``matrix``, the training data, lets :meth:`_default_epochs`
        stretch the default epochs of a small image set."""
        seed = 0 if self.random_state is None else int(
            self.random_state if not isinstance(self.random_state, np.random.RandomState)
            else self.random_state.randint(2**31 - 1)
        )
        return TrainConfig(epochs=self._default_epochs(matrix), batch_size=self.batch_size,
                           lr=self.learning_rate, max_steps=self._step_cap(),
                           min_steps=self._min_steps(matrix), patience=self.patience, seed=seed,
                           device=self.device)

    def _min_steps(self, matrix: np.ndarray | None) -> int:
        """The optimiser steps training makes at least: ``min_steps`` (None: none)."""
        return int(self.min_steps or 0)

    def _default_epochs(self, matrix: np.ndarray | None) -> int:
        """``epochs``, or, for images (N, C, H, W) while the step budget is in force, as many
        epochs as the images need to make the budget's steps: 60 epochs of 90 images are 60
        optimiser steps, too few to learn them (one-class 8x8 digits: 0.987 -> 0.997 with the
        full 300; MNIST's 1,000 images per digit already make 300 steps in under 60 epochs)."""
        epochs = self._epoch_count()
        if matrix is None or matrix.ndim != 4 or not len(matrix) or not self._budget_applies():
            return epochs
        steps_per_epoch = -(-len(matrix) // max(1, int(self.batch_size)))
        return max(epochs, -(-self.STEP_BUDGET // steps_per_epoch))

    def _epoch_count(self) -> int:
        """``epochs`` as given, or DEFAULT_EPOCHS for None."""
        return self.DEFAULT_EPOCHS if self.epochs is None else int(self.epochs)

    # With ``max_steps=None`` an estimator trains the epochs it is given; the detector keeps a
    # step budget for its default epochs only (see AutoencoderDetector.STEP_BUDGET).
    STEP_BUDGET: int = 0

    def _budget_applies(self) -> bool:
        """Whether STEP_BUDGET is in force: this estimator has one and the user left both
        ``max_steps`` and ``epochs`` at the constructor's defaults."""
        return bool(self.STEP_BUDGET) and self.max_steps is None and self._default_epochs_kept()

    def _default_epochs_kept(self) -> bool:
        """Whether the user left ``epochs`` at None (chose none): only then may a step rule
        stretch or cap the training."""
        return self.epochs is None

    def _step_cap(self) -> int:
        """``max_steps`` as given, or for None: STEP_BUDGET while it is in force, no cap once
        the user chose the epochs (``epochs=20`` trains 20 epochs)."""
        if self.max_steps is not None:
            return int(self.max_steps)
        return self.STEP_BUDGET if self._budget_applies() else 0

    def _task_defaults(self, images: bool) -> dict[str, dict[str, Any]]:
        """Settings by variant name that this estimator's task uses on images or on tables
        (the tables of :mod:`aetool.defaults`); none by default."""
        return {}

    def _config_values(self, input_shape: tuple[int, ...], variant: type) -> dict[str, Any]:
        """The variant settings this estimator trains with: its task's defaults for the data
        kind, under ``code_size`` (for estimators that have it), under ``variant_params``."""
        defaults = self._task_defaults(len(input_shape) == 3).get(variant.name, {})
        code_size = getattr(self, "code_size", None)
        width = {} if code_size is None else {"code_size": int(code_size)}
        return {**defaults, **width, **(self.variant_params or {})}

    def _adapt_model(self, model: Any) -> None:
        """Adjust the built model before it trains (nothing by default)."""

    def _fit_model(self, matrix: np.ndarray, variant: type, labels: np.ndarray | None = None,
                   n_classes: int | None = None) -> Any:
        try:
            config = variant.make_config(self._config_values(matrix.shape[1:], variant))
        except ValueError as exc:
            raise AetoolError(str(exc)) from None
        y = torch.from_numpy(labels) if labels is not None else None
        model, result = fit_variant(variant, config, torch.from_numpy(matrix), y, n_classes,
                                    self._train_config(matrix), quiet=not self.verbose,
                                    adapt=self._adapt_model)
        self.variant_name_ = variant.name
        self.config_ = config
        self.history_ = result.history
        self.stop_reason_ = result.stop_reason
        self.model_ = model
        self._validation_rows = result.val_index
        return model

    def _manifest(self, task: str) -> dict[str, Any]:
        return {
            "task": task,
            "variant": self.variant_name_,
            "config": config_to_dict(self.config_),
            "input_shape": list(self.model_.input_shape),
            "n_classes": self.model_.n_classes,
            "preprocessing": self.preprocessor_.to_dict(),
            "feature_names_in": [str(c) for c in getattr(self, "feature_names_in_", [])],
            "n_features_in": int(self.n_features_in_),
            "params": {k: v for k, v in self.get_params().items()
                       if k != "variant" and isinstance(v, (int, float, str, bool, dict, type(None)))},
            "history": self.history_,
            "training": {"stop_reason": getattr(self, "stop_reason_", None)},
        }

    @classmethod
    def _rebuild(cls, manifest: dict[str, Any], model: Any, device: str) -> Any:
        """An estimator of this class with the saved parameters and the learned state of a
        loaded bundle (the shared part of every ``load``)."""
        params = {k: v for k, v in manifest.get("params", {}).items()
                  if k in cls._get_param_names()}
        estimator = cls(variant=manifest["variant"], **{**params, "device": device})
        estimator._restore(manifest, model)
        return estimator

    def _restore(self, manifest: dict[str, Any], model: Any) -> None:
        restore_fitted_state(self, manifest, model)

    # the bundle task whose ONNX graph :meth:`to_onnx` writes ('detect', 'autoencoder'); None:
    # this estimator does not export
    EXPORT_TASK: str | None = None

    def to_onnx(self, path: str | Path) -> Path:
        """Write the fitted estimator as one ONNX graph: preprocessing, model and (detectors)
        score, probability and threshold, for onnxruntime without aetool or torch; needs
        ``pip install 'aetool[onnx]'`` (see docs/deploy.md)."""
        from aetool.export.onnx import export_model, write_onnx

        sk_validation.check_is_fitted(self)
        if self.EXPORT_TASK is None:
            raise AetoolError(f"{type(self).__name__} does not export to ONNX; export an "
                              "AutoencoderDetector or an Autoencoder")
        return write_onnx(export_model(self, self.EXPORT_TASK), path)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True  # made dense in _prepare: autoencoders need dense rows
        return tags
