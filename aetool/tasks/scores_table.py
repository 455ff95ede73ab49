"""The table ``aetool score`` and ``detect`` write: a detector's scores over loaded data, with
ids, flags and explanations. Light to import (no scikit-learn), since short scoring jobs start
here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aetool.data.output import write_table
from aetool.data.preprocess import data_source
from aetool.data.source import Loaded, TableSpec, load, named_columns, prepare_for_model
from aetool.errors import DataError
from aetool.estimators.explain import top_feature_texts


def load_table(path: str | Path, spec: TableSpec, need_labels: bool = False,
               for_scoring: bool = False) -> Loaded:
    """Read ``path`` for a detector: :func:`aetool.data.source.load` with detection labels, a
    2-D array's columns named x0, x1, ..."""
    return named_columns(load(path, spec, need_labels=need_labels, for_scoring=for_scoring))


def details_for(detector: Any, table: Loaded, explain: bool = True
                ) -> dict[str, np.ndarray]:
    """Score a loaded table with ``detector``, matching its columns to the training ones
    (``explain``: also per-element errors and per-feature shares)."""
    features = prepare_for_model(detector, table)
    with data_source(table.source):
        return detector.anomaly_details(features, explain=explain)


def score_table(detector: Any, table: Loaded, top_k: int = 3,
                maps: str | Path | None = None) -> pd.DataFrame:
    """The output table: id (or image path), anomaly_score, anomaly_probability, is_anomaly and,
    for tables, top_features; ``maps`` writes per-pixel heat maps for images."""
    return scored_with_details(detector, table, top_k, maps)[0]


def scored_with_details(detector: Any, table: Loaded, top_k: int = 3,
                        maps: str | Path | None = None, explain: bool = False,
                        training: bool = False) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """:func:`score_table` and the details it came from, so evaluation and figures need no
    second pass over the data; ``explain`` keeps the per-element errors even when the table
    does not need them (figures do). ``training``: ``table`` is what ``detector`` was just
    fitted on (``detect``), so a detector that keeps its training images (the patch
    detector) scores each of them without itself."""
    explain = explain or maps is not None or (top_k > 0 and not table.is_images)
    if training and hasattr(detector, "training_details"):
        details = detector.training_details(explain=explain)
    else:
        details = details_for(detector, table, explain=explain)
    if maps is not None:
        if not table.is_images:
            raise DataError(f"{table.source}: --maps needs images (a folder or an image array)")
        from aetool.tasks.heatmaps import write_heat_maps

        write_heat_maps(table, details, maps)
    return scores_frame(detector, table, details, top_k), details


def scores_frame(detector: Any, table: Loaded, details: dict[str, np.ndarray],
                 top_k: int = 3) -> pd.DataFrame:
    """The output table of scored ``details`` (see :func:`score_table`)."""
    columns: dict[str, Any] = {}
    if table.ids is not None:
        columns[table.ids.name] = table.ids.to_numpy()
    columns["anomaly_score"] = details["anomaly_score"]
    columns["anomaly_probability"] = details["anomaly_probability"]
    columns["is_anomaly"] = details["is_anomaly"].astype(int)
    if top_k > 0 and not table.is_images:
        columns["top_features"] = top_feature_texts(details["contributions"],
                                                    detector.preprocessor_, top_k)
    return pd.DataFrame(columns)


def write_scores(frame: pd.DataFrame, out: str | Path) -> Path:
    return write_table(frame, out)
