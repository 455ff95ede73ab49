"""Anomaly detection on files: fit, score, detect (fit + score) and evaluate."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aetool.data.output import write_table
from aetool.data.preprocess import align_columns, data_source
from aetool.data.tables import read_table
from aetool.errors import DataError
from aetool.thresholds import best_f1_threshold, binary_labels


@dataclass
class TableSpec:
    """Which columns are features, which carry ids or labels (saved in the bundle)."""

    columns: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    id_column: str | None = None
    label_column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class LoadedTable:
    features: pd.DataFrame
    ids: pd.Series | None
    labels: np.ndarray | None
    source: str


def load_table(path: str | Path, spec: TableSpec, need_labels: bool = False) -> LoadedTable:
    """Read ``path`` and split it into features, ids and labels as ``spec`` says."""
    source = str(path)
    frame = read_table(path)
    frame.columns = [str(c) for c in frame.columns]
    present = set(frame.columns)
    for role, column in (("--id-column", spec.id_column), ("--label-column", spec.label_column)):
        if column is not None and column not in present and (role == "--id-column" or need_labels):
            raise DataError(f"{source}: no column '{column}' (given as {role}); "
                            f"columns are: {', '.join(list(frame.columns)[:10])}")
    for column in [*(spec.columns or []), *spec.exclude]:
        if column not in present:
            raise DataError(f"{source}: no column '{column}' (given in --columns/--exclude)")
    ids = frame[spec.id_column] if spec.id_column else None
    labels = None
    if spec.label_column and spec.label_column in present:
        labels = binary_labels(frame[spec.label_column], spec.label_column, source)
    skip = {spec.id_column, spec.label_column, *spec.exclude}
    chosen = spec.columns or [c for c in frame.columns if c not in skip]
    features = frame[[c for c in chosen if c not in skip]]
    return LoadedTable(features, ids, labels, source)


def _labelled_threshold(detector: Any, path: str, spec: TableSpec) -> float:
    table = load_table(path, spec, need_labels=True)
    if table.labels is None:
        raise DataError(f"{path}: --threshold-from needs --label-column")
    scores = details_for(detector, table)["anomaly_score"]
    return best_f1_threshold(scores, table.labels)


def fit_detector(data: str | Path, spec: TableSpec, params: dict[str, Any],
                 threshold_from: str | None = None) -> Any:
    """Train an AutoencoderDetector on a table (labels, if any, are never used for training)."""
    from aetool.estimators import AutoencoderDetector

    table = load_table(data, spec)
    detector = AutoencoderDetector(**params)
    with data_source(table.source):
        detector.fit(table.features)
    detector.table_spec_ = spec
    if threshold_from:
        detector.threshold_ = _labelled_threshold(detector, threshold_from, spec)
        detector.offset_ = -detector.threshold_
    return detector


def load_detector(bundle: str | Path) -> tuple[Any, TableSpec]:
    """A saved detector and the table spec (id, label, feature columns) it was fitted with."""
    from aetool.estimators import AutoencoderDetector

    detector = AutoencoderDetector.load(bundle)
    return detector, getattr(detector, "table_spec_", TableSpec())


def details_for(detector: Any, table: LoadedTable) -> dict[str, np.ndarray]:
    """Score a loaded table with ``detector``, matching its columns to the training ones."""
    features = align_columns(table.features, [str(c) for c in detector.feature_names_in_],
                             table.source)
    with data_source(table.source):
        return detector.anomaly_details(features)


def format_top_features(items: list[tuple[str, float]]) -> str:
    return "; ".join(f"{name} ({share:.0%})" for name, share in items)


def score_table(detector: Any, table: LoadedTable, top_k: int = 3) -> pd.DataFrame:
    """The output table: id, anomaly_score, anomaly_probability, is_anomaly, top_features."""
    from aetool.estimators import top_features

    details = details_for(detector, table)
    out = pd.DataFrame()
    if table.ids is not None:
        out[table.ids.name] = table.ids.to_numpy()
    out["anomaly_score"] = np.round(details["anomaly_score"], 6)
    out["anomaly_probability"] = np.round(details["anomaly_probability"], 6)
    out["is_anomaly"] = details["is_anomaly"].astype(int)
    if top_k > 0:
        tops = top_features(details["contributions"], detector.preprocessor_, top_k)
        out["top_features"] = [format_top_features(t) for t in tops]
    return out


def metrics(labels: np.ndarray, scores: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC, F1/precision/recall at the threshold and precision@n (n = anomalies)."""
    from sklearn.metrics import (
        average_precision_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    if labels.min() == labels.max():
        raise DataError("evaluation needs both normal (0) and anomalous (1) rows in the labels")
    n_pos = int(labels.sum())
    top = np.argsort(-scores)[:n_pos]
    return {
        "rows": len(labels),
        "anomalies": n_pos,
        "roc_auc": float(roc_auc_score(labels, scores)),
        "pr_auc": float(average_precision_score(labels, scores)),
        "f1_at_threshold": float(f1_score(labels, predicted, zero_division=0)),
        "precision_at_threshold": float(precision_score(labels, predicted, zero_division=0)),
        "recall_at_threshold": float(recall_score(labels, predicted, zero_division=0)),
        "precision_at_n": float(labels[top].mean()),
    }


def evaluate_table(detector: Any, table: LoadedTable, plots: str | Path | None = None
                   ) -> dict[str, float]:
    from aetool import plots as figures

    if table.labels is None:
        raise DataError(f"{table.source}: evaluation needs --label-column")
    details = details_for(detector, table)
    scores = details["anomaly_score"]
    result = metrics(table.labels, scores, details["is_anomaly"].astype(int))
    if plots:
        plots = Path(plots)
        figures.roc_figure(table.labels, scores, plots / "roc.png")
        figures.pr_figure(table.labels, scores, plots / "pr.png")
        figures.histogram_figure(scores, detector.threshold_, plots / "scores.png", table.labels)
        (plots / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def write_scores(frame: pd.DataFrame, out: str | Path) -> Path:
    return write_table(frame, out)
