"""A saved detector that scores without scikit-learn: the state every fitted estimator restores
from a bundle, the detector's scoring methods, and :class:`SavedDetector`, which ``aetool score``
loads so that a short job does not pay scikit-learn's import (a second, see docs/scale.md)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aetool.bundle import load_bundle, manifest_errors
from aetool.data.arrays import preprocessor_from_dict
from aetool.data.preprocess import UnseenCategoryWarning, source_name
from aetool.data.source import TableSpec
from aetool.errors import BundleError, DataError, SettingError
from aetool.estimators.inference import InferenceSettings
from aetool.plugins import get_variant
from aetool.scoring import Scorer, score_rows
from aetool.thresholds import anomaly_probability, threshold_from_training


def restore_fitted_state(target: Any, manifest: dict[str, Any], model: Any) -> None:
    """Set what every fitted estimator learnt (model, variant and its settings, preprocessing,
    training history, input width and names) from a loaded bundle's manifest."""
    target.model_ = model
    target.variant_name_ = manifest["variant"]
    target.config_ = get_variant(manifest["variant"]).config_from_bundle(manifest["config"])
    target.preprocessor_ = preprocessor_from_dict(manifest["preprocessing"])
    target.history_ = manifest.get("history", [])
    target.stop_reason_ = (manifest.get("training") or {}).get("stop_reason")
    target.n_features_in_ = manifest["n_features_in"]
    if manifest.get("feature_names_in"):
        target.feature_names_in_ = np.asarray(manifest["feature_names_in"], dtype=object)


def detector_kind(manifest: dict[str, Any]) -> str:
    """'patches' for a :class:`~aetool.estimators.patch_detector.PatchDetector` bundle,
    'whole' for an AutoencoderDetector's (whole images or table rows)."""
    return (manifest.get("detector") or {}).get("kind", "whole")


def is_patch_bundle(manifest: dict[str, Any]) -> bool:
    """True for a :class:`~aetool.estimators.patch_detector.PatchDetector` bundle."""
    return detector_kind(manifest) == "patches"


def check_detector_bundle(manifest: dict[str, Any], where: str, kind: str = "whole") -> None:
    """Refuse a bundle that is not a detector, or not of the ``kind`` the loader builds,
    naming the loader that takes it."""
    if manifest.get("task") != "detect":
        raise BundleError(f"{where}: holds a '{manifest.get('task')}' model, not a detector")
    found = detector_kind(manifest)
    if found == kind:
        return
    if found == "patches":
        raise BundleError(f"{where}: holds a patch detector; load it with "
                          "aetool.load_detector or aetool.PatchDetector.load")
    raise BundleError(f"{where}: not a patch detector bundle; load it with "
                      "aetool.load_detector or aetool.AutoencoderDetector.load")


def restore_detector_state(target: Any, manifest: dict[str, Any], scorer: type = Scorer
                           ) -> None:
    """Set the detector's own learnt state (``scorer``'s state, threshold, table spec) from a
    manifest."""
    target.scorer_ = scorer.from_dict(manifest["detector"]["scorer"])
    target.threshold_ = float(manifest["detector"]["threshold"])
    target.offset_ = -target.threshold_
    if manifest.get("table"):
        target.table_spec_ = TableSpec(**manifest["table"])


class DetectorScoring(InferenceSettings):
    """Scores, probabilities, flags and explanations of a fitted detector, and moving its
    threshold: shared by AutoencoderDetector and SavedDetector, so both score alike. The class
    that mixes it in provides ``_prepare`` (input to the model's float32 matrix)."""

    def _check_fitted(self) -> None:
        """Raise if the detector has not learnt its state (a loaded one always has)."""

    def set_threshold(self, threshold: float | None = None,
                      contamination: float | str | None = None) -> Any:
        """Move the threshold of a fitted detector without retraining: to a fixed score, or to
        the ``contamination`` quantile of the saved training scores (the same value fitting
        with that contamination gives). The probabilities follow the new threshold."""
        self._check_fitted()
        if threshold is not None and contamination is not None:
            raise SettingError("give a threshold or a contamination, not both")
        if threshold is not None:
            self.threshold_ = float(threshold)
        elif contamination is not None:
            self.threshold_ = threshold_from_training(self.scorer_.train_quantiles, contamination)
        self.offset_ = -self.threshold_
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """The opposite of the anomaly score: lower means more abnormal."""
        return -self.anomaly_details(X, explain=False)["anomaly_score"]

    def decision_function(self, X: Any) -> np.ndarray:
        """Negative for outliers, positive for inliers (``score_samples - offset_``)."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """+1 for inliers and -1 for outliers."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Columns (inlier, outlier): the outlier column is ``anomaly_probability``, above 0.5
        exactly for the rows :meth:`predict` flags (PyOD's layout, so code written for it
        works)."""
        outlier = self.anomaly_details(X, explain=False)["anomaly_probability"]
        return np.column_stack([1.0 - outlier, outlier])

    def anomaly_details(self, X: Any, explain: bool = True) -> dict[str, np.ndarray]:
        """Scores, probabilities and labels for ``X`` in one pass; with ``explain`` also the
        per-element squared errors and each feature's share of them ('contributions')."""
        self._check_fitted()  # encode() inlined: warnings point at the caller's line
        return self.details_of_encoded(self._prepare(X, reset=False)[0], explain)

    def encode(self, X: Any) -> np.ndarray:
        """``X`` as the model's float32 input (the first half of :meth:`anomaly_details`; a
        stream encodes the next chunk in one thread while the model scores this one)."""
        self._check_fitted()
        return self._prepare(X, reset=False)[0]

    def details_of_encoded(self, matrix: np.ndarray, explain: bool = True
                           ) -> dict[str, np.ndarray]:
        """:meth:`anomaly_details` of rows already :meth:`encode`-d."""
        scores, errors = score_rows(self.model_, self.scorer_, matrix, keep_errors=explain,
                                    **self._inference())
        return self._details(scores, errors if explain else None)

    def _details(self, scores: np.ndarray, errors: np.ndarray | None) -> dict[str, np.ndarray]:
        """The details of :meth:`anomaly_details` from anomaly scores and, when explaining,
        the per-element errors (or maps) behind them."""
        details = {
            "anomaly_score": scores,
            "anomaly_probability": anomaly_probability(scores, self.threshold_,
                                                       self.scorer_.train_quantiles),
            "score_percentile": self.scorer_.percentile(scores),
            "is_anomaly": scores > self.threshold_,
        }
        if errors is not None:
            details["errors"] = errors
            details["contributions"] = self.scorer_.contributions(errors)
        return details

    def image_reconstructions(self, matrix: np.ndarray) -> np.ndarray:
        """What the model makes of encoded images (for the figures), in model space."""
        import torch

        with torch.inference_mode():
            self.model_.to("cpu").eval()
            return self.model_.reconstruct(torch.from_numpy(matrix)).numpy()


class SavedDetector(DetectorScoring):
    """A detector bundle loaded for scoring only: the same scores as
    ``AutoencoderDetector.load`` gives, without importing scikit-learn. Tables are taken with
    the training columns (by name, or by position for a detector fitted on an unnamed array)."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> SavedDetector:
        """The whole-image or table detector saved in bundle ``path`` (by ``aetool fit`` or
        ``save``); a patch detector loads with :func:`aetool.load_detector`."""
        manifest, model = load_bundle(path, device=device)
        return cls.from_bundle(manifest, model, device, where=str(path))

    @classmethod
    def from_bundle(cls, manifest: dict[str, Any], model: Any, device: str = "cpu",
                    where: str = "bundle") -> SavedDetector:
        """A scoring-only detector from a loaded manifest and model."""
        check_detector_bundle(manifest, where)
        detector = cls(device)
        with manifest_errors(where):
            restore_fitted_state(detector, manifest, model)
            restore_detector_state(detector, manifest)
        return detector

    def _prepare(self, X: Any, reset: bool = False) -> tuple[np.ndarray, Any]:
        """``X`` (a table with the training columns, an array of rows or of images) as the
        model's float32 input."""
        if isinstance(X, pd.DataFrame):
            frame = X
        else:
            arr = np.asarray(X)
            if arr.ndim >= 3:
                return self.preprocessor_.transform(arr, source="images")[0], self.preprocessor_
            if arr.ndim != 2 or arr.shape[1] != self.n_features_in_:
                raise DataError(f"{source_name('data')}: expected rows of "
                                f"{self.n_features_in_} values, got shape {arr.shape}")
            frame = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
        matrix, unseen = self.preprocessor_.transform(frame, source="data")
        if unseen:
            warnings.warn(UnseenCategoryWarning(source_name("data"), unseen), stacklevel=3)
        return matrix, self.preprocessor_
