"""Scores measured against labels: the metrics ``evaluate`` prints, the figures of ``--plots``,
and the evaluation of images a chunk at a time, so a test folder of any size is evaluated with
one chunk of pixels in memory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aetool import plots as figures
from aetool.data.preprocess import check_input_kind
from aetool.data.source import (
    IMAGE_CHUNK,
    Loaded,
    TableSpec,
    binary_labels,
    image_folder_chunks,
    scan_labels_checked,
)
from aetool.errors import AetoolError, DataError
from aetool.estimators.explain import column_shares
from aetool.plots import explanation_heatmap
from aetool.tasks.heatmaps import map_scale, most_anomalous_grid, pixel_maps, write_heat_maps
from aetool.tasks.masks import PixelTruth, check_mask_folder
from aetool.thresholds import labelled_rows


def metrics(labels: np.ndarray, scores: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision), F1-max (the best F1 over all thresholds, as
    anomalib reports it), F1/precision/recall at the threshold and precision@n (n = anomalies)."""
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
        "f1_max": f1_max(labels, scores),
        "f1_at_threshold": float(f1_score(labels, predicted, zero_division=0)),
        "precision_at_threshold": float(precision_score(labels, predicted, zero_division=0)),
        "recall_at_threshold": float(recall_score(labels, predicted, zero_division=0)),
        "precision_at_n": float(labels[top].mean()),
    }


def f1_max(labels: np.ndarray, scores: np.ndarray) -> float:
    """The best F1 over every threshold of the precision-recall curve (threshold-free, so
    detectors compare without choosing a contamination)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(f1.max())


def score_figures(threshold: float, scores: np.ndarray, plots: str | Path,
                  labels: np.ndarray | None = None) -> None:
    """The score histogram with the threshold in ``plots``; with ``labels`` also the ROC and
    precision-recall curves, and the histogram by label."""
    plots = Path(plots)
    if labels is not None:
        figures.roc_figure(labels, scores, plots / "roc.png")
        figures.pr_figure(labels, scores, plots / "pr.png")
    figures.histogram_figure(scores, threshold, plots / "scores.png", labels)


@dataclass
class RunningTop:
    """The ``count`` highest-scoring rows or images seen so far, with the arrays that go with
    them (images and error maps, or feature shares, ids, labels): all a figure of the most
    anomalous needs, whatever the number scored. Ties keep the earlier one first."""

    count: int
    kept: dict[str, np.ndarray] | None = None

    def add(self, scores: np.ndarray, **arrays: Any) -> None:
        """Take one chunk's ``scores`` and its ``arrays`` (one entry per row each)."""
        batch = {"score": np.asarray(scores), **{key: _column(value)
                                                  for key, value in arrays.items()}}
        if self.kept is not None:
            batch = {key: np.concatenate([self.kept[key], batch[key]]) for key in batch}
        order = np.argsort(-batch["score"], kind="stable")[:self.count]
        self.kept = {key: value[order] for key, value in batch.items()}


def _column(values: Any) -> np.ndarray:
    """``values`` as an array with one entry per row (ids and sizes as objects)."""
    if isinstance(values, np.ndarray):
        return values
    column = np.empty(len(values), dtype=object)
    column[:] = list(values)
    return column


NEEDS_LABELS = ("evaluate needs --label-column (a 0/1 column) or, for images, "
                "--normal-class")


class Evaluation:
    """What every evaluation fed a chunk at a time keeps: each row's score, flag and label,
    and with ``plots`` the running top of the most anomalous (``shown`` of them); and what it
    writes at the end: the score figures, the most anomalous figure and ``metrics.json``."""

    def __init__(self, detector: Any, plots: str | Path | None, shown: int) -> None:
        self.detector = detector
        self.plots = None if plots is None else Path(plots)
        self.top = RunningTop(shown) if plots else None
        self._scores: list[np.ndarray] = []
        self._flags: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    @property
    def explain(self) -> bool:
        """Whether the chunks must be scored with their per-element errors (for figures)."""
        return self.plots is not None

    def _take(self, details: dict[str, np.ndarray], labels: Any) -> None:
        """Keep one chunk's scores and flags, and its ``labels``."""
        self._scores.append(np.asarray(details["anomaly_score"]))
        self._flags.append(np.asarray(details["is_anomaly"]).astype(int))
        self._labels.append(labels)

    def _gathered(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every chunk's scores, flags and labels as kept."""
        return (np.concatenate(self._scores), np.concatenate(self._flags),
                np.concatenate(self._labels))

    def _write_plots(self, result: dict[str, float], scores: np.ndarray, labels: np.ndarray
                     ) -> tuple[Path, dict[str, np.ndarray]] | None:
        """With plots: the score figures of the labelled ``scores``, ``metrics.json``, and
        the path the most anomalous figure goes to with the running top it shows (None
        without plots)."""
        if self.plots is None or self.top is None or self.top.kept is None:
            return None
        score_figures(self.detector.threshold_, scores, self.plots, labels)
        (self.plots / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        return self.plots / "most_anomalous.png", self.top.kept


class ImageEvaluation(Evaluation):
    """An evaluation of labelled images fed a chunk at a time (:meth:`add`), measured at the
    end (:meth:`result`). Kept between chunks besides the scores: with ``masks`` each
    pixel's map value and mask bit; with ``plots`` the most anomalous images. Heat maps
    (``maps``) are written as the chunks come, on the first chunk's colour scale, as ``score
    --maps`` writes them."""

    def __init__(self, detector: Any, plots: str | Path | None = None,
                 masks: str | Path | None = None, maps: str | Path | None = None) -> None:
        super().__init__(detector, plots, MOST_ANOMALOUS_IMAGES)
        self.maps = maps
        self.pixels = None if masks is None else PixelTruth(check_mask_folder(masks))
        self.scale: float | None = None

    @property
    def explain(self) -> bool:
        """Whether the chunks must be scored with their error maps (maps, masks or figures)."""
        return self.plots is not None or self.pixels is not None or self.maps is not None

    def add(self, chunk: Loaded, details: dict[str, np.ndarray]) -> None:
        """Take one scored chunk of labelled images (``details``: with errors when
        :attr:`explain`)."""
        if chunk.labels is None:
            raise DataError(f"{chunk.source}: evaluation needs --normal-class for images")
        self._take(details, np.asarray(chunk.labels).astype(int))
        if not self.explain:
            return
        maps = pixel_maps(details["errors"])
        if self.scale is None:
            self.scale = map_scale(maps)
        if self.maps is not None:
            write_heat_maps(chunk, details, self.maps, self.scale)
        if self.pixels is not None:
            self.pixels.add(chunk, maps)
        if self.top is not None:
            given = {"ids": chunk.ids, "labels": chunk.labels, "sizes": chunk.sizes}
            self.top.add(details["anomaly_score"], images=chunk.features,
                         errors=details["errors"],
                         **{key: value for key, value in given.items() if value is not None})

    def result(self) -> dict[str, float]:
        """The metrics of every image added; with masks the pixel ROC-AUC; with plots the
        figures and ``metrics.json`` written."""
        scores, flags, labels = self._gathered()
        result = metrics(labels, scores, flags)
        if self.pixels is not None:
            result.update(self.pixels.metrics())
        written = self._write_plots(result, scores, labels)
        if written is not None:
            figure, kept = written
            table, details = self._most_anomalous(kept)
            most_anomalous_grid(self.detector, table, details, figure, scale=self.scale)
        return result

    @staticmethod
    def _most_anomalous(kept: dict[str, np.ndarray]) -> tuple[Loaded, dict[str, np.ndarray]]:
        """The running top ``kept`` as a table of images and their details, for the figure."""
        sizes = kept.get("sizes")
        table = Loaded(kept["images"],
                       pd.Series(kept["ids"], name="path") if "ids" in kept else None,
                       kept.get("labels"), "",
                       None if sizes is None else [tuple(size) for size in sizes])
        return table, {"anomaly_score": kept["score"], "errors": kept["errors"]}


MOST_ANOMALOUS_IMAGES = 12  # shown in most_anomalous.png


def evaluate_image_folder(detector: Any, data: str, spec: TableSpec,
                          plots: str | None = None, masks: str | None = None,
                          maps: str | None = None, chunk_rows: int | None = None,
                          progress: bool = True) -> dict[str, float]:
    """``aetool evaluate`` on a folder of class folders, ``chunk_rows`` images at a time; the
    normal class and the labels' two classes are checked from the file names before any image
    is decoded."""
    from tqdm.auto import tqdm

    from aetool.tasks.scores_table import details_for

    check_input_kind(detector, True, data)  # before the folder is scanned and the bar shown
    evaluation = ImageEvaluation(detector, plots, masks, maps)  # a missing mask folder fails now
    scan, normal = scan_labels_checked(data, spec)
    if normal is None:
        raise AetoolError(NEEDS_LABELS)
    with tqdm(total=len(scan.paths), desc="evaluating", unit="image", disable=not progress,
              leave=False) as bar:
        for chunk in image_folder_chunks(scan, chunk_rows or IMAGE_CHUNK, normal):
            evaluation.add(chunk, details_for(detector, chunk, explain=evaluation.explain))
            bar.update(len(chunk.features))
    return evaluation.result()


def most_anomalous_shares(detector: Any, table: Loaded, details: dict[str, np.ndarray],
                          rows: int = 20, columns: int = 12) -> pd.DataFrame:
    """The ``rows`` highest-scoring rows (named by id, or 'row N') against the ``columns``
    columns that carry most of their error; each cell is the column's share of the row's error."""
    names, shares = column_shares(details["contributions"], detector.preprocessor_)
    top_rows = np.argsort(-details["anomaly_score"], kind="stable")[:rows]
    top_columns = np.argsort(-shares[top_rows].sum(0), kind="stable")[:columns]
    ids = table.ids.astype(str).to_numpy() if table.ids is not None else \
        np.asarray([f"row {i + 1}" for i in range(len(shares))])
    frame = pd.DataFrame(shares[np.ix_(top_rows, top_columns)], index=ids[top_rows],
                         columns=[names[j] for j in top_columns])
    frame.attrs["positions"] = top_rows  # where the rows are in the table
    return frame


def explain_most_anomalous(detector: Any, table: Loaded, details: dict[str, np.ndarray],
                           path: Path) -> Path:
    """:func:`most_anomalous_shares` as a heat map, labelled anomalies' names in red, so the
    pattern behind the alarms shows at a glance."""
    shares = most_anomalous_shares(detector, table, details)
    marked = table.labels[shares.attrs["positions"]] == 1 if table.labels is not None else None
    return explanation_heatmap(shares.to_numpy(), list(shares.index), list(shares.columns),
                               path, marked)


class TableEvaluation(Evaluation):
    """An evaluation of a labelled table fed a chunk at a time (:meth:`add`), measured at the
    end (:meth:`result`). The labels are kept as read, and their encoding (0/1 or -1/1) is
    decided over the whole column at the end (a chunk of only 1s holds anomalies under one
    and normal rows under the other); with ``plots`` the most anomalous rows' shares of error
    by column are kept."""

    def __init__(self, detector: Any, label_column: str | None, source: str,
                 plots: str | Path | None = None, normal: str | None = None) -> None:
        """``label_column``: whose values the labels are, as read; None when they were
        already read as 0/1 (NaN: no label), as a table read whole has them. ``normal``: the
        value that is normal (``--normal-class``), when given."""
        super().__init__(detector, plots, MOST_ANOMALOUS_ROWS)
        self.label_column, self.source, self.normal = label_column, source, normal

    def add(self, chunk: Loaded, details: dict[str, np.ndarray], offset: int = 0) -> None:
        """Take one scored chunk whose first row is row ``offset`` of the table (``details``:
        with contributions when there are plots)."""
        self._take(details, _column(chunk.labels))
        if self.top is not None:
            rows = np.arange(offset, offset + len(details["anomaly_score"]))
            names = chunk.ids.astype(str).to_numpy() if chunk.ids is not None else \
                [f"row {row + 1}" for row in rows]
            self.top.add(details["anomaly_score"], contributions=details["contributions"],
                         ids=names, rows=rows)

    def result(self) -> dict[str, float]:
        """The metrics of every labelled row; with plots the figures and ``metrics.json``."""
        scores, flags, labels = self._gathered()
        if self.label_column is not None:
            labels = binary_labels(labels, self.label_column, self.source, self.normal)
        known = labelled_rows(labels, self.source)
        result = metrics(labels[known].astype(int), scores[known], flags[known])
        written = self._write_plots(result, scores[known], labels[known].astype(int))
        if written is not None:
            figure, kept = written
            top = Loaded(None, pd.Series(kept["ids"]), labels[kept["rows"].astype(int)],
                         self.source)
            explain_most_anomalous(self.detector, top, {"anomaly_score": kept["score"],
                                                        "contributions": kept["contributions"]},
                                   figure)
        return result


MOST_ANOMALOUS_ROWS = 20  # shown in most_anomalous.png of a table


def evaluate_table_file(detector: Any, data: str, spec: TableSpec, plots: str | None = None,
                        chunk_rows: int | None = None, progress: bool = True
                        ) -> dict[str, float]:
    """``aetool evaluate`` on a CSV or Parquet table of any size, a chunk of rows at a time."""
    from aetool.tasks.stream import chunk_warnings_merged, labelled_chunks

    if not spec.label_column:
        raise AetoolError(NEEDS_LABELS)
    evaluation = TableEvaluation(detector, spec.label_column, str(data), plots,
                                 spec.normal_class)
    with chunk_warnings_merged():
        for offset, chunk, details in labelled_chunks(detector, data, spec, chunk_rows,
                                                      explain=evaluation.explain,
                                                      progress=progress):
            evaluation.add(chunk, details, offset)
    return evaluation.result()
