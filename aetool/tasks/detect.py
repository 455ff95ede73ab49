"""Anomaly detection on files: fit, score, detect (fit + score) and evaluate."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aetool.data.arrays import read_array_file
from aetool.data.images import is_image_source, read_image_folder
from aetool.data.output import write_table
from aetool.data.preprocess import DataWarning, align_to_model, check_input_kind, data_source
from aetool.data.tables import ARRAY_SUFFIXES, read_table, require_columns
from aetool.errors import DataError
from aetool.thresholds import best_f1_threshold, binary_labels, labelled_rows


@dataclass
class TableSpec:
    """How to read the input (saved in the bundle): for tables, which columns are features, ids
    or labels; for images, the size, which class folder is normal, strictness."""

    columns: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    id_column: str | None = None
    label_column: str | None = None
    image_size: list[int] | None = None
    channels: int | None = None
    normal_class: str | None = None
    strict: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class LoadedTable:
    """Features (a DataFrame, or an (N, C, H, W) image array), row ids, 0/1 labels, source."""

    features: Any
    ids: pd.Series | None
    labels: np.ndarray | None
    source: str
    sizes: list[tuple[int, int]] | None = None  # original image sizes, for heat maps

    @property
    def is_images(self) -> bool:
        return not isinstance(self.features, pd.DataFrame)


def is_image_input(path: str | Path) -> bool:
    """A folder, or an array file holding a stack of images (3 or 4 dimensions)."""
    path = Path(path)
    if is_image_source(path):
        return True
    if path.suffix.lower() in ARRAY_SUFFIXES and path.is_file():
        return read_array_file(path)[0].ndim >= 3
    return False


def _normal_labels(classes: Any, normal: str, source: str, need: bool) -> np.ndarray | None:
    """0 for the normal class, 1 for the others; None for a flat folder unless labels are
    needed (then, as for an unknown class name, an error)."""
    names = [None if c is None else str(c) for c in classes]
    if all(n is None for n in names) and not need:
        return None
    if normal not in names:
        found = sorted({n for n in names if n is not None})
        raise DataError(f"{source}: no class '{normal}' (given as --normal-class); classes: "
                        f"{', '.join(found) or 'none (a flat folder has no classes)'}")
    return np.asarray([0 if n == normal else 1 for n in names])


CONVENTIONAL_NORMAL_CLASSES = ("normal", "good")  # "good" as in MVTec AD's test folders


def conventional_normal_class(classes: Any, source: str) -> str | None:
    """The class folder named ``normal`` or ``good`` (any case) when there is exactly one, so
    that a folder laid out for evaluation is evaluated without ``--normal-class``; said in a
    warning, since training never uses the classes."""
    names = sorted({str(c) for c in classes if c is not None})
    matches = [n for n in names if n.lower() in CONVENTIONAL_NORMAL_CLASSES]
    if len(matches) != 1 or len(names) < 2:
        return None
    warnings.warn(f"{source}: class folders {', '.join(names)}; '{matches[0]}' is taken as the "
                  f"normal class for evaluation (--normal-class NAME chooses another; training "
                  f"never uses the classes)", DataWarning, stacklevel=3)
    return matches[0]


def load_images(path: str | Path, spec: TableSpec, need_labels: bool = False) -> LoadedTable:
    """An image folder (flat or class sub-folders) or an image array file."""
    path = Path(path)
    size = tuple(spec.image_size) if spec.image_size else None
    if is_image_source(path):
        found = read_image_folder(path, size, spec.strict, spec.channels)
        normal = spec.normal_class or (conventional_normal_class(found.classes, str(path))
                                       if need_labels else None)
        labels = _normal_labels(found.classes, normal, str(path), need_labels) \
            if normal else None
        return LoadedTable(found.images, pd.Series(found.paths, name="path"), labels, str(path),
                           found.sizes)
    x, y = read_array_file(path)
    labels = None
    if spec.normal_class is not None and y is not None:
        labels = _normal_labels(y, spec.normal_class, str(path), need_labels)
    return LoadedTable(x, pd.Series(np.arange(len(x)), name="index"), labels, str(path))


def load_table(path: str | Path, spec: TableSpec, need_labels: bool = False,
               for_scoring: bool = False) -> LoadedTable:
    """Read ``path`` and split it into features, ids and labels as ``spec`` says."""
    source = str(path)
    if is_image_input(path):
        return load_images(path, spec, need_labels)
    if Path(path).suffix.lower() in ARRAY_SUFFIXES:
        x, _ = read_array_file(path)
        return LoadedTable(pd.DataFrame(x).rename(columns=lambda c: f"x{c}"), None, None, source)
    return split_frame(read_table(path), spec, source, need_labels, for_scoring)


def split_frame(frame: pd.DataFrame, spec: TableSpec, source: str,
                need_labels: bool = False, for_scoring: bool = False) -> LoadedTable:
    """Split a table (or one chunk of it) into features, ids and labels as ``spec`` says.

    ``for_scoring``: the data goes to an already fitted model, so it may lack the columns the
    spec names that are not features: no id column gives a warning and output without ids, no
    label column means no evaluation, and an excluded column needs no excluding (a missing
    feature column is still an error, later). At fit time each named column must be there: a
    mistyped label column would otherwise make the labels a feature."""
    frame.columns = [str(c) for c in frame.columns]
    names = list(frame.columns)
    id_column = spec.id_column
    if for_scoring and id_column is not None and id_column not in names:
        warnings.warn(f"{source}: no column '{id_column}' (the id column at fit time); the "
                      f"output has no id column, its rows are in input order", DataWarning,
                      stacklevel=2)
        id_column = None
    require_columns([id_column], names, source, "--id-column")
    if need_labels or not for_scoring:  # at fit time a typo would make the labels a feature
        require_columns([spec.label_column], names, source, "--label-column")
    require_columns(spec.columns or [], names, source, "--columns")
    if not for_scoring:
        require_columns(spec.exclude, names, source, "--exclude")
    ids = frame[id_column] if id_column else None
    labels = None
    if spec.label_column and spec.label_column in names:
        labels = binary_labels(frame[spec.label_column], spec.label_column, source)
    skip = {spec.id_column, spec.label_column, *spec.exclude}
    chosen = spec.columns or [c for c in frame.columns if c not in skip]
    features = frame[[c for c in chosen if c not in skip]]
    return LoadedTable(features, ids, labels, source)


def load_threshold_table(path: str, spec: TableSpec) -> LoadedTable:
    """The labelled file for --threshold-from, checked before training: it needs labels of
    both classes, since the best-F1 threshold separates them."""
    table = load_table(path, spec, need_labels=True, for_scoring=True)
    if table.labels is None:
        raise DataError(f"{path}: --threshold-from needs --label-column (or --normal-class)")
    known = table.labels[~np.isnan(np.asarray(table.labels, dtype=float))]
    if known.size == 0 or known.min() == known.max():
        only = f"only label {int(known[0])}" if known.size else "no labels"
        raise DataError(f"{path}: --threshold-from needs normal (0) and anomalous (1) rows to "
                        f"pick the best-F1 threshold; this file has {only}")
    return table


def _labelled_threshold(detector: Any, table: LoadedTable) -> float:
    scores = details_for(detector, table, explain=False)["anomaly_score"]
    known = labelled_rows(table.labels, table.source)
    return best_f1_threshold(scores[known], table.labels[known])


def fit_detector(table: LoadedTable, spec: TableSpec, params: dict[str, Any],
                 threshold_from: str | None = None) -> Any:
    """Train an AutoencoderDetector on loaded data (labels are never used for training)."""
    from aetool.estimators import AutoencoderDetector

    validation = load_threshold_table(threshold_from, spec) if threshold_from else None
    detector = AutoencoderDetector(**params)
    with data_source(table.source):
        detector.fit(table.features)
    if table.is_images:  # score later images at the trained size and colour mode
        spec.image_size = list(detector.preprocessor_.shape[1:])
        spec.channels = int(detector.preprocessor_.shape[0])
    detector.table_spec_ = spec
    if validation is not None:
        detector.threshold_ = _labelled_threshold(detector, validation)
        detector.offset_ = -detector.threshold_
    return detector


def evaluation_problem(table: LoadedTable) -> str | None:
    """Why labelled ``table`` cannot be evaluated (labels of one class only), or None."""
    if table.labels is None:
        return None
    known = table.labels[~np.isnan(np.asarray(table.labels, dtype=float))]
    if known.size and known.min() != known.max():
        return None
    return (f"{table.source}: not evaluated, the labels hold only "
            f"{'label ' + str(int(known[0])) if known.size else 'missing values'}; ROC-AUC "
            "and F1 need normal (0) and anomalous (1) rows")


def load_detector(bundle: str | Path) -> tuple[Any, TableSpec]:
    """A saved detector and the table spec (id, label, feature columns) it was fitted with."""
    from aetool.estimators import AutoencoderDetector

    detector = AutoencoderDetector.load(bundle)
    return detector, getattr(detector, "table_spec_", TableSpec())


def details_for(detector: Any, table: LoadedTable, explain: bool = True
                ) -> dict[str, np.ndarray]:
    """Score a loaded table with ``detector``, matching its columns to the training ones
    (``explain``: also per-element errors and per-feature shares)."""
    features = table.features
    check_input_kind(detector, table.is_images, table.source)
    if not table.is_images:
        features = align_to_model(features, detector, table.source)
    with data_source(table.source):
        return detector.anomaly_details(features, explain=explain)


def format_top_features(items: list[tuple[str, float]]) -> str:
    return "; ".join(f"{name} ({share:.0%})" for name, share in items)


def score_table(detector: Any, table: LoadedTable, top_k: int = 3,
                maps: str | Path | None = None) -> pd.DataFrame:
    """The output table: id (or image path), anomaly_score, anomaly_probability, is_anomaly and,
    for tables, top_features; ``maps`` writes per-pixel heat maps for images."""
    return scored_with_details(detector, table, top_k, maps)[0]


def scored_with_details(detector: Any, table: LoadedTable, top_k: int = 3,
                        maps: str | Path | None = None, explain: bool = False
                        ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """:func:`score_table` and the details it came from, so evaluation and figures need no
    second pass over the data; ``explain`` keeps the per-element errors even when the table
    does not need them (figures do)."""
    from aetool.estimators import top_features

    details = details_for(detector, table, explain=explain or maps is not None
                          or (top_k > 0 and not table.is_images))
    if maps is not None:
        if not table.is_images:
            raise DataError(f"{table.source}: --maps needs images (a folder or an image array)")
        from aetool.tasks.heatmaps import write_heat_maps

        write_heat_maps(table, details, maps)
    out = pd.DataFrame()
    if table.ids is not None:
        out[table.ids.name] = table.ids.to_numpy()
    out["anomaly_score"] = details["anomaly_score"]
    out["anomaly_probability"] = details["anomaly_probability"]
    out["is_anomaly"] = details["is_anomaly"].astype(int)
    if top_k > 0 and not table.is_images:
        tops = top_features(details["contributions"], detector.preprocessor_, top_k)
        out["top_features"] = [format_top_features(t) for t in tops]
    return out, details


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


def evaluate_table(detector: Any, table: LoadedTable, plots: str | Path | None = None,
                   details: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Metrics on the labelled rows of ``table``; with ``plots`` also the figures of
    :func:`write_figures` and ``metrics.json`` in that folder. ``details``: the table already
    scored (with errors, when there are plots)."""
    if table.labels is None:
        raise DataError(f"{table.source}: evaluation needs --label-column (tables) or "
                        "--normal-class (images)")
    if details is None:
        details = details_for(detector, table, explain=bool(plots))
    known = labelled_rows(table.labels, table.source)
    result = metrics(table.labels[known].astype(int), details["anomaly_score"][known],
                     details["is_anomaly"][known].astype(int))
    if plots:
        write_figures(detector, table, details, plots, known)
        (Path(plots) / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def write_figures(detector: Any, table: LoadedTable, details: dict[str, np.ndarray],
                  plots: str | Path, known: np.ndarray | None = None) -> None:
    """The score histogram and the most anomalous rows or images, in ``plots``; with ``known``
    (the labelled rows) also ROC and precision-recall curves, and the histogram by label."""
    from aetool import plots as figures

    plots = Path(plots)
    scores = details["anomaly_score"]
    if known is not None:
        labels = table.labels[known].astype(int)
        figures.roc_figure(labels, scores[known], plots / "roc.png")
        figures.pr_figure(labels, scores[known], plots / "pr.png")
        figures.histogram_figure(scores[known], detector.threshold_, plots / "scores.png",
                                 labels)
    else:
        figures.histogram_figure(scores, detector.threshold_, plots / "scores.png")
    if table.is_images:
        from aetool.tasks.heatmaps import most_anomalous_grid

        most_anomalous_grid(detector, table, details, plots / "most_anomalous.png")
    else:
        explain_most_anomalous(detector, table, details, plots / "most_anomalous.png")


def most_anomalous_shares(detector: Any, table: LoadedTable, details: dict[str, np.ndarray],
                          rows: int = 20, columns: int = 12) -> pd.DataFrame:
    """The ``rows`` highest-scoring rows (named by id, or 'row N') against the ``columns``
    columns that carry most of their error; each cell is the column's share of the row's error."""
    from aetool.estimators import column_shares

    names, shares = column_shares(details["contributions"], detector.preprocessor_)
    top_rows = np.argsort(-details["anomaly_score"], kind="stable")[:rows]
    top_columns = np.argsort(-shares[top_rows].sum(0), kind="stable")[:columns]
    ids = table.ids.astype(str).to_numpy() if table.ids is not None else \
        np.asarray([f"row {i + 1}" for i in range(len(shares))])
    frame = pd.DataFrame(shares[np.ix_(top_rows, top_columns)], index=ids[top_rows],
                         columns=[names[j] for j in top_columns])
    frame.attrs["positions"] = top_rows  # where the rows are in the table
    return frame


def explain_most_anomalous(detector: Any, table: LoadedTable, details: dict[str, np.ndarray],
                           path: Path) -> Path:
    """:func:`most_anomalous_shares` as a heat map, labelled anomalies' names in red, so the
    pattern behind the alarms shows at a glance."""
    from aetool.plots import explanation_heatmap

    shares = most_anomalous_shares(detector, table, details)
    marked = table.labels[shares.attrs["positions"]] == 1 if table.labels is not None else None
    return explanation_heatmap(shares.to_numpy(), list(shares.index), list(shares.columns),
                               path, marked)


def write_scores(frame: pd.DataFrame, out: str | Path) -> Path:
    return write_table(frame, out)
