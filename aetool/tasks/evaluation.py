"""Scores measured against labels: the metrics ``evaluate`` prints, the figures of ``--plots``,
and the evaluation of images a chunk at a time, so a test folder of any size is evaluated with
one chunk of pixels in memory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aetool import plots as figures
from aetool.data.source import (
    IMAGE_CHUNK,
    Loaded,
    TableSpec,
    image_folder_chunks,
    scan_labels_checked,
)
from aetool.errors import AetoolError, DataError
from aetool.tasks.heatmaps import map_scale, most_anomalous_grid, pixel_maps, write_heat_maps
from aetool.tasks.masks import PixelTruth, check_mask_folder


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
class MostAnomalous:
    """The ``count`` highest-scoring images seen so far, with their scores and error maps: all
    the figure of the most anomalous images needs, whatever the number of images scored."""

    count: int = 12
    table: Loaded | None = None
    details: dict[str, np.ndarray] | None = None

    def add(self, chunk: Loaded, details: dict[str, np.ndarray]) -> None:
        """Take ``chunk``'s images into the running top (the earlier image first on ties)."""
        kept = {key: details[key] for key in ("anomaly_score", "errors")}
        table = chunk
        if self.table is not None and self.details is not None:
            table = _joined(self.table, chunk)
            kept = {key: np.concatenate([self.details[key], kept[key]]) for key in kept}
        order = np.argsort(-kept["anomaly_score"], kind="stable")[:self.count]
        self.table = _rows(table, order)
        self.details = {key: value[order] for key, value in kept.items()}


def _rows(table: Loaded, order: np.ndarray) -> Loaded:
    """Images ``order`` of ``table``, with their ids, labels and original sizes."""
    return Loaded(table.features[order],
                  None if table.ids is None else table.ids.iloc[order].reset_index(drop=True),
                  None if table.labels is None else table.labels[order], table.source,
                  None if table.sizes is None else [table.sizes[i] for i in order],
                  folder=table.folder)


def _joined(first: Loaded, second: Loaded) -> Loaded:
    """Two sets of images of one source as one."""
    import pandas as pd

    return Loaded(np.concatenate([first.features, second.features]),
                  None if first.ids is None else pd.concat([first.ids, second.ids],
                                                           ignore_index=True),
                  None if first.labels is None else np.concatenate([first.labels,
                                                                    second.labels]),
                  first.source,
                  None if first.sizes is None else [*first.sizes, *second.sizes],
                  folder=first.folder)


class ImageEvaluation:
    """An evaluation of labelled images fed a chunk at a time (:meth:`add`), measured at the
    end (:meth:`result`). Kept between chunks: each image's score, flag and label; with
    ``masks`` each pixel's map value and mask bit; with ``plots`` the most anomalous images.
    Heat maps (``maps``) are written as the chunks come, on the first chunk's colour scale,
    as ``score --maps`` writes them."""

    def __init__(self, detector: Any, plots: str | Path | None = None,
                 masks: str | Path | None = None, maps: str | Path | None = None) -> None:
        self.detector = detector
        self.plots = None if plots is None else Path(plots)
        self.maps = maps
        self.pixels = None if masks is None else PixelTruth(check_mask_folder(masks))
        self.top = MostAnomalous() if plots else None
        self.scale: float | None = None
        self._scores: list[np.ndarray] = []
        self._flags: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    @property
    def explain(self) -> bool:
        """Whether the chunks must be scored with their error maps (maps, masks or figures)."""
        return self.plots is not None or self.pixels is not None or self.maps is not None

    def add(self, chunk: Loaded, details: dict[str, np.ndarray]) -> None:
        """Take one scored chunk of labelled images (``details``: with errors when
        :attr:`explain`)."""
        if chunk.labels is None:
            raise DataError(f"{chunk.source}: evaluation needs --normal-class for images")
        self._scores.append(np.asarray(details["anomaly_score"]))
        self._flags.append(np.asarray(details["is_anomaly"]).astype(int))
        self._labels.append(np.asarray(chunk.labels).astype(int))
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
            self.top.add(chunk, details)

    def result(self) -> dict[str, float]:
        """The metrics of every image added; with masks the pixel ROC-AUC; with plots the
        figures and ``metrics.json`` written."""
        labels, scores = np.concatenate(self._labels), np.concatenate(self._scores)
        result = metrics(labels, scores, np.concatenate(self._flags))
        if self.pixels is not None:
            result.update(self.pixels.metrics())
        if self.plots is not None and self.top is not None:
            score_figures(self.detector.threshold_, scores, self.plots, labels)
            most_anomalous_grid(self.detector, self.top.table, self.top.details,
                                self.plots / "most_anomalous.png", scale=self.scale)
            (self.plots / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        return result


def evaluate_image_folder(detector: Any, data: str, spec: TableSpec,
                          plots: str | None = None, masks: str | None = None,
                          maps: str | None = None, chunk_rows: int | None = None,
                          progress: bool = True) -> dict[str, float]:
    """``aetool evaluate`` on a folder of class folders, ``chunk_rows`` images at a time; the
    normal class and the labels' two classes are checked from the file names before any image
    is decoded."""
    from tqdm.auto import tqdm

    from aetool.tasks.scores_table import details_for

    evaluation = ImageEvaluation(detector, plots, masks, maps)  # a missing mask folder fails now
    scan, normal = scan_labels_checked(data, spec)
    if normal is None:
        raise AetoolError("evaluate needs --label-column (a 0/1 column) or, for images, "
                          "--normal-class")
    with tqdm(total=len(scan.paths), desc="evaluating", unit="image", disable=not progress,
              leave=False) as bar:
        for chunk in image_folder_chunks(scan, chunk_rows or IMAGE_CHUNK, normal):
            evaluation.add(chunk, details_for(detector, chunk, explain=evaluation.explain))
            bar.update(len(chunk.features))
    return evaluation.result()
