"""Thresholds that turn anomaly scores into labels: contamination quantile, fixed, best F1."""

from __future__ import annotations

import warnings

import numpy as np

from aetool.data.preprocess import DataWarning
from aetool.errors import DataError, SettingError


def check_contamination(value: float | str) -> float | str:
    """``value`` as a share in (0, 0.5) or the string 'auto'; a ValueError that says so if not."""
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return "auto"
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"contamination must be a share in (0, 0.5) or 'auto', "
                             f"got {value!r}") from None
    if not 0.0 < float(value) < 0.5:
        raise ValueError(f"contamination must be a share in (0, 0.5) or 'auto', got {value}")
    return float(value)


def contamination_threshold(train_scores: np.ndarray, contamination: float | str) -> float:
    """The score above which a ``contamination`` share of the training rows lies; 'auto' (share
    unknown): Tukey's upper fence, Q3 + 1.5 IQR of the training scores."""
    share = check_contamination(contamination)
    if share == "auto":
        q1, q3 = np.quantile(train_scores, [0.25, 0.75])
        return float(q3 + 1.5 * (q3 - q1))
    return float(np.quantile(train_scores, 1.0 - float(share)))


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold that maximises F1 of 'score >= threshold' against binary ``labels``."""
    from sklearn.metrics import precision_recall_curve

    labels = np.asarray(labels).astype(int)
    if labels.min() == labels.max():
        raise DataError("best-F1 threshold needs labelled data with both normal and anomalous rows")
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def labelled_rows(labels: np.ndarray, source: str) -> np.ndarray:
    """Mask of the rows that have a label; warns how many are left out of an evaluation."""
    known = ~np.isnan(np.asarray(labels, dtype=float))
    if not known.all():
        warnings.warn(f"{source}: {int((~known).sum())} of {len(known)} rows have no label; "
                      "they are scored but left out of the evaluation", DataWarning, stacklevel=2)
    return known


PROBABILITY_AT_MEDIAN = 0.01  # a typical training row: 1% chance of being an anomaly


def threshold_from_training(train_quantiles: list[float] | np.ndarray,
                            contamination: float | str) -> float:
    """The contamination threshold computed from the saved quantile grid of training scores
    (1001 points, so shares in steps of 0.001 are exact): a threshold can change after
    training, without the training data."""
    grid = np.asarray(train_quantiles, dtype=np.float64)
    levels = np.linspace(0.0, 1.0, grid.size)
    share = check_contamination(contamination)
    if share == "auto":
        q1, q3 = np.interp([0.25, 0.75], levels, grid)
        return float(q3 + 1.5 * (q3 - q1))
    return float(np.interp(1.0 - float(share), levels, grid))


def probability_scale(threshold: float, train_quantiles: list[float] | np.ndarray) -> float:
    """The logistic scale of :func:`anomaly_probability`: the score distance from the threshold
    to the median training score maps to PROBABILITY_AT_MEDIAN (the spread when the threshold
    sits at or below the median). Shared with the ONNX export, which computes the same link."""
    grid = np.asarray(train_quantiles, dtype=np.float64)
    levels = np.linspace(0.0, 1.0, grid.size)
    q1, median, q3 = np.interp([0.25, 0.5, 0.75], levels, grid)
    width = threshold - median
    if not width > 0:  # a threshold at or below the typical score: use the spread instead
        width = (q3 - q1) or 1.0
    return float(width / np.log((1 - PROBABILITY_AT_MEDIAN) / PROBABILITY_AT_MEDIAN))


def anomaly_probability(scores: np.ndarray, threshold: float,
                        train_quantiles: list[float] | np.ndarray) -> np.ndarray:
    """P(anomaly) by a logistic link in the score, fixed by two anchors: exactly 0.5 at the
    threshold (so ``probability > 0.5`` is ``is_anomaly``) and PROBABILITY_AT_MEDIAN at the
    median training score. Monotone in the score; it moves with the threshold."""
    scale = probability_scale(threshold, train_quantiles)
    z = np.clip((np.asarray(scores, dtype=np.float64) - threshold) / scale, -700, 700)
    return 1.0 / (1.0 + np.exp(-z))


def training_quantiles(train_scores: np.ndarray) -> list[float]:
    """The 1,001 quantiles of the training scores a detector keeps (JSON), from which
    thresholds, percentiles and probabilities are read later."""
    return np.quantile(train_scores, np.linspace(0, 1, 1001)).tolist()


def training_percentile(scores: np.ndarray, train_quantiles: list[float] | np.ndarray
                        ) -> np.ndarray:
    """The share of training rows that score lower (0-1), from the saved training-score
    quantiles: a rank, not a probability."""
    grid = np.asarray(train_quantiles)
    return np.interp(scores, grid, np.linspace(0, 1, grid.size))


def check_threshold(threshold: float) -> float:
    """A fixed threshold as a float, which must be a finite anomaly score: NaN would flag
    nothing (every comparison with it is false) and infinity nothing ever."""
    if not np.isfinite(float(threshold)):
        raise SettingError(f"a threshold must be a finite anomaly score, got {threshold}")
    return float(threshold)


def check_threshold_settings(threshold: float | None, contamination: float | str) -> None:
    """Before training: a fixed ``threshold`` must be a finite score, else ``contamination``
    must be a share in (0, 0.5) or 'auto' (an error that says which value is wrong)."""
    if threshold is None:
        check_contamination(contamination)
    else:
        check_threshold(threshold)


def fitted_threshold(train_scores: np.ndarray, threshold: float | None,
                     contamination: float | str) -> float:
    """The threshold a detector keeps: the fixed ``threshold``, else the ``contamination``
    threshold of its training scores."""
    if threshold is not None:
        return float(threshold)
    return contamination_threshold(train_scores, contamination)
