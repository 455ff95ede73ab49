"""AutoencoderDetector: an outlier detector with IsolationForest's conventions, scoring rows or
images by their reconstruction error and code, with a threshold, probabilities and
explanations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import OutlierMixin
from sklearn.utils.validation import check_is_fitted

from aetool.bundle import load_bundle, load_bundle_parts, manifest_errors, save_bundle
from aetool.defaults import (
    CATEGORICAL_STEP_BUDGET,
    mostly_categorical,
    table_detection_defaults,
)
from aetool.defaults import TABLE_DETECTION_DEFAULTS as TABLE_DETECTION_DEFAULTS  # re-exported
from aetool.errors import AetoolError, DataError, SettingError
from aetool.estimators.base import AutoencoderEstimator
from aetool.estimators.explain import top_features
from aetool.estimators.saved import (
    DetectorScoring,
    check_detector_bundle,
    is_patch_bundle,
    restore_detector_state,
)
from aetool.scoring import CORE_SHARE, SCORE_METHODS, Scorer, model_outputs
from aetool.thresholds import check_threshold_settings, fitted_threshold
from aetool.training import seed_everything, train_model
from aetool.variants.base import CONDITIONAL


class AutoencoderDetector(OutlierMixin, AutoencoderEstimator, DetectorScoring):
    """Outlier detector from an autoencoder's reconstruction (and code) with the conventions of
    scikit-learn's IsolationForest: ``score_samples`` (lower = more abnormal),
    ``decision_function`` (negative = outlier), ``predict`` (+1 inlier / -1 outlier).

    ``contamination`` sets the threshold as a training-score quantile unless ``threshold`` (a
    fixed anomaly score) is given; 'auto', for an unknown share, puts it at Tukey's upper fence
    of the training scores (Q3 + 1.5 IQR). ``score_method`` is 'combined' (reconstruction, code
    distance and code mixture density), 'reconstruction' or 'latent'; 'auto' is
    'reconstruction' on tables whose encoded columns are mostly one-hot codes (with the
    variant's own light weight penalty, CATEGORICAL_TABLE_DETECTION_DEFAULTS) and 'combined'
    elsewhere. ``trim`` refits on the rows below
    the (1 - trim) training-score quantile, so anomalies in the training data teach the model
    less. ``log_views`` feeds the model a log-compressed copy of each numeric table column as
    well (see docs/detect.md). On tables the plain ``ae`` trains with ``weight_penalty`` 1e-3
    (TABLE_DETECTION_DEFAULTS), times 64 / columns on tables wider than 64 columns
    (TABLE_PENALTY_COLUMNS), unless ``variant_params`` says otherwise. ``code_core`` is the
    share of training codes the code distribution is estimated from (see
    :func:`aetool.scoring.core_codes`): 'auto' is 0.6 on tables, whose training data usually hold
    anomalies, and 1 (all codes) on images, whose training sets are usually curated normal ones.
    ``max_steps`` None caps training at 300 optimiser steps while ``epochs`` is left at None
    (60 epochs; the budget measured for table detection); once ``epochs`` is set, even to 60,
    it trains those epochs.
    ``code_size`` is the code's width (None: the variant's own default), settable like any other
    parameter (``GridSearchCV``), without a ``variant_params`` dict. Sparse input (a
    ``ColumnTransformer`` with a sparse one-hot encoder) is made dense.
    """

    def __init__(
        self,
        variant: Any = "ae",
        contamination: float | str = 0.1,
        threshold: float | None = None,
        score_method: str = "auto",
        trim: float = 0.0,
        log_views: bool = True,
        code_core: float | str = "auto",
        code_size: int | None = None,
        variant_params: dict[str, Any] | None = None,
        epochs: int | None = None,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        max_steps: int | None = None,
        patience: int = 8,
        random_state: int | None = 0,
        device: str = "auto",
        verbose: bool = False,
    ) -> None:
        super().__init__(variant, variant_params, epochs, batch_size, learning_rate, max_steps,
                         patience, random_state, device, verbose)
        self.contamination = contamination
        self.threshold = threshold
        self.score_method = score_method
        self.trim = trim
        self.log_views = log_views
        self.code_core = code_core
        self.code_size = code_size

    EXPORT_TASK = "detect"
    DEFAULT_EPOCHS = 60
    STEP_BUDGET = 300  # measured for fast table detection (ODDS): 300 steps of the 60 epochs

    def _table_options(self) -> dict[str, Any]:
        return {"log_views": bool(self.log_views)}

    def _task_defaults(self, images: bool) -> dict[str, dict[str, Any]]:
        """Table detection's settings for this table's width (table_detection_defaults);
        images keep the variant's."""
        if images:
            return {}
        return table_detection_defaults(getattr(self, "n_features_in_", None),
                                        self._categorical_share())

    def _step_cap(self) -> int:
        """The base class's cap, with CATEGORICAL_STEP_BUDGET in place of STEP_BUDGET on a
        mostly categorical table."""
        if self._budget_applies() and mostly_categorical(self._categorical_share()):
            return CATEGORICAL_STEP_BUDGET
        return super()._step_cap()

    def _categorical_share(self) -> float:
        """The fitted table's share of one-hot columns (0 for images or before fitting: read
        from the preprocessor, which ``fit`` makes before it trains)."""
        return float(getattr(getattr(self, "preprocessor_", None), "categorical_share", 0.0))

    def _score_method(self, table: bool) -> str:
        """``score_method`` as the scorer takes it: 'auto' is 'reconstruction' on mostly
        categorical tables (CATEGORICAL_TABLE_SHARE), where the code parts scored the
        structure-breaking rows at chance, and 'combined' everywhere else."""
        if self.score_method != "auto":
            return str(self.score_method)
        return "reconstruction" if table and mostly_categorical(self._categorical_share()) \
            else "combined"

    def _core_share(self, table: bool) -> float:
        """``code_core`` as a number: 'auto' is CORE_SHARE on tables and 1 (all codes) on images,
        where a curated training set trimmed by 40% scored worse (one-class MNIST 0.950 ->
        0.936)."""
        if isinstance(self.code_core, str) and self.code_core == "auto":
            return CORE_SHARE if table else 1.0
        try:
            share = float(self.code_core)
        except (TypeError, ValueError):
            share = float("nan")
        if not 0.5 <= share <= 1.0:
            raise SettingError(f"code_core must be 'auto' or a share of training codes in "
                               f"[0.5, 1], got {self.code_core!r}")
        return share

    def fit(self, X: Any, y: Any = None) -> AutoencoderDetector:
        """Train the autoencoder on ``X`` (``y`` is ignored: detection is unsupervised)."""
        variant = self._variant_class()
        if CONDITIONAL in variant.capabilities:
            raise AetoolError(f"variant '{variant.name}' is conditional (needs class labels); "
                              "use an unconditional variant for anomaly detection")
        if not 0.0 <= float(self.trim) < 0.5:
            raise DataError(f"trim must be in [0, 0.5) (the share of training rows to leave out "
                            f"of the refit), got {self.trim}")
        check_threshold_settings(self.threshold, self.contamination)  # before training
        self._core_share(table=True)  # a bad value fails before training
        if self.score_method not in ("auto", *SCORE_METHODS):
            raise SettingError(f"score_method must be one of auto, {', '.join(SCORE_METHODS)}, "
                               f"got '{self.score_method}'")
        matrix, _ = self._prepare(X, reset=True)
        self._fit_model(matrix, variant)
        if self.trim and matrix.shape[0] >= 20:
            scores = self._fit_scorer(matrix)
            keep = scores <= np.quantile(scores, 1.0 - self.trim)
            self._refit(matrix[keep])
        self._fit_scorer(matrix)
        return self

    def _refit(self, matrix: np.ndarray) -> Any:
        cfg = self._train_config(matrix)
        result = train_model(self.model_, torch.from_numpy(matrix), None, cfg,
                             seed_everything(cfg.seed + 1), quiet=not self.verbose)
        self.history_ = self.history_ + result.history
        return self.model_

    def _fit_scorer(self, matrix: np.ndarray) -> np.ndarray:
        errors, codes = model_outputs(self.model_, matrix, device=self.device)
        try:
            table = matrix.ndim == 2
            self.scorer_, scores = Scorer.fit(
                errors, codes, self._score_method(table), self._core_share(table=table),
                groups=getattr(self.preprocessor_, "feature_groups", None) if table else None)
        except ValueError as exc:
            raise AetoolError(str(exc)) from None
        self.threshold_ = fitted_threshold(scores, self.threshold, self.contamination)
        self.offset_ = -self.threshold_
        return scores

    def _check_fitted(self) -> None:
        check_is_fitted(self)

    # -- scoring (anomaly_details, score_samples, predict, ...: DetectorScoring) -----------------
    def explain(self, X: Any, top_k: int = 3) -> list[list[tuple[str, float]]]:
        """For each row, the ``top_k`` input columns by their share of the reconstruction error."""
        details = self.anomaly_details(X)
        return top_features(details["contributions"], self.preprocessor_, top_k)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path: str | Path, force: bool = False) -> Path:
        """Write a bundle (manifest.json + weights.safetensors); no pickle is involved."""
        check_is_fitted(self)
        manifest = self._manifest("detect")
        manifest["detector"] = {"scorer": self.scorer_.to_dict(), "threshold": self.threshold_,
                                "contamination": self.contamination}
        if hasattr(self, "table_spec_"):
            manifest["table"] = self.table_spec_.to_dict()
        return save_bundle(path, self.model_, manifest, force=force)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> AutoencoderDetector:
        """Load a detector bundle saved by :meth:`save` (or ``aetool fit``); for a bundle of
        either detector use :func:`load_detector`."""
        manifest, model = load_bundle(path, device=device)
        return cls.from_bundle(manifest, model, device, where=str(path))

    @classmethod
    def from_bundle(cls, manifest: dict[str, Any], model: Any, device: str = "cpu",
                    where: str = "bundle") -> AutoencoderDetector:
        """A detector from a loaded manifest and model (used by :meth:`load` and by workers)."""
        check_detector_bundle(manifest, where)
        with manifest_errors(where):
            detector = cls._rebuild(manifest, model, device)
            restore_detector_state(detector, manifest)
        return detector


def load_detector(path: str | Path, device: str = "cpu") -> Any:
    """The detector saved in bundle ``path``, whichever kind ``aetool fit`` trained: an
    :class:`AutoencoderDetector` or a :class:`~aetool.estimators.patch_detector.PatchDetector`."""
    manifest, model, extras = load_bundle_parts(path, device=device)
    if is_patch_bundle(manifest):
        from aetool.estimators.patch_detector import PatchDetector

        return PatchDetector.from_bundle(manifest, model, extras, device, where=str(path))
    return AutoencoderDetector.from_bundle(manifest, model, device, where=str(path))
