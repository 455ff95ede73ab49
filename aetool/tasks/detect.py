"""Anomaly detection on files: fit, score, detect (fit + score) and evaluate."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aetool.bundle import check_bundle_output
from aetool.data import acquisition
from aetool.data.images import is_image_source
from aetool.data.output import check_figure_folder, check_output_file, table_output_kind
from aetool.data.preprocess import data_source
from aetool.data.source import (
    Loaded,
    TableSpec,
    conventional_name,
    read_scaled_down,
    split_frame,
)
from aetool.data.tables import ARRAY_SUFFIXES, sample_table
from aetool.defaults import PATCH_MAX_SHORT_SIDE, image_detector_for
from aetool.errors import AetoolError, DataError
from aetool.estimators import AutoencoderDetector, PatchDetector
from aetool.estimators import load_detector as load_any_detector
from aetool.tasks.evaluation import (
    NEEDS_LABELS,
    ImageEvaluation,
    TableEvaluation,
    evaluate_image_folder,
    evaluate_table_file,
    explain_most_anomalous,
    score_figures,
)
from aetool.tasks.heatmaps import most_anomalous_grid
from aetool.tasks.scores_table import (
    details_for,
    load_table,
    scored_with_details,
    write_scores,
)
from aetool.tasks.settings import parse_settings
from aetool.thresholds import best_f1_threshold, labelled_rows


def load_threshold_table(path: str, spec: TableSpec) -> Loaded:
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


def _labelled_threshold(detector: Any, table: Loaded) -> float:
    scores = details_for(detector, table, explain=False)["anomaly_score"]
    known = labelled_rows(table.labels, table.source)
    return best_f1_threshold(scores[known], table.labels[known])


def fit_detector(table: Loaded, spec: TableSpec, params: dict[str, Any],
                 threshold_from: str | None = None, estimator: type = AutoencoderDetector
                 ) -> Any:
    """Train a detector (``estimator``: AutoencoderDetector or PatchDetector) on loaded data
    (labels are never used for training)."""
    validation = load_threshold_table(threshold_from, spec) if threshold_from else None
    detector = estimator(**params)
    with data_source(table.source):
        detector.fit(table.features)
    if table.is_images:  # score later images at the trained size and colour mode
        spec.image_size = list(detector.preprocessor_.shape[1:])
        spec.channels = int(detector.preprocessor_.shape[0])
        if table.folder and table.sizes:  # and say when later folders were taken otherwise
            spec.source_images = acquisition.summary(table.sizes, list(table.ids))
    detector.table_spec_ = spec
    if validation is not None:
        detector.threshold_ = _labelled_threshold(detector, validation)
        detector.offset_ = -detector.threshold_
    return detector


def evaluation_problem(table: Loaded) -> str | None:
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
    detector = load_any_detector(bundle)
    return detector, getattr(detector, "table_spec_", TableSpec())


def evaluate_table(detector: Any, table: Loaded, plots: str | Path | None = None,
                   details: dict[str, np.ndarray] | None = None,
                   masks: str | Path | None = None,
                   maps: str | Path | None = None) -> dict[str, float]:
    """Metrics on the labelled rows of ``table`` (one chunk of :class:`ImageEvaluation` or
    :class:`TableEvaluation`); with ``plots`` also ROC and precision-recall curves, the score
    histogram by label, the most anomalous rows or images and ``metrics.json`` there; with ``masks`` (a folder of
    defect masks, images only) the pixel ROC-AUC of the heat maps; with ``maps`` (images
    only) each image's heat map in that folder, as ``score --maps`` writes them. ``details``:
    the table already scored (with errors, when there are plots)."""
    if table.labels is None:
        raise DataError(f"{table.source}: evaluation needs --label-column (tables) or "
                        "--normal-class (images)")
    if not table.is_images:
        refuse_image_options(table.source, masks, maps)
    evaluation = (ImageEvaluation(detector, plots, masks, maps) if table.is_images
                  else TableEvaluation(detector, None, table.source, plots))
    evaluation.add(table, details if details is not None else
                   details_for(detector, table, explain=evaluation.explain))
    return evaluation.result()


def refuse_image_options(source: str, masks: str | Path | None,
                         maps: str | Path | None) -> None:
    """One line for ``--masks`` or ``--maps`` given with data that holds no images."""
    for option, given in (("--masks", masks), ("--maps", maps)):
        if given is not None:
            raise DataError(f"{source}: {option} needs images (a folder of test images)")


def write_figures(detector: Any, table: Loaded, details: dict[str, np.ndarray],
                  plots: str | Path) -> None:
    """For data without labels: the score histogram and the most anomalous rows or images,
    in ``plots`` (labelled data gets its figures from :func:`evaluate_table`)."""
    plots = Path(plots)
    score_figures(detector.threshold_, details["anomaly_score"], plots)
    if table.is_images:
        most_anomalous_grid(detector, table, details, plots / "most_anomalous.png")
    else:
        explain_most_anomalous(detector, table, details, plots / "most_anomalous.png")


@dataclass
class DetectorSettings:
    """The detector options a command was given, before the variant is chosen by data kind."""

    variant: str | None = None
    contamination: float | str = 0.1
    threshold: float | None = None
    threshold_from: str | None = None
    settings: tuple[str, ...] = ()
    device: str = "auto"
    quiet: bool = False
    image_detector: str = "auto"


def detector_kind(table: Loaded, choice: str = "auto") -> str:
    """'patches' (PatchDetector) or 'whole' (AutoencoderDetector) for loaded data: tables are
    always 'whole'; images follow ``choice``, for 'auto' their size
    (:func:`aetool.defaults.image_detector_for`)."""
    if not table.is_images:
        if choice != "auto":
            raise AetoolError(f"{table.source}: --image-detector is for images; a table is "
                              "scored whole")
        return "whole"
    height, width = np.asarray(table.features).shape[-2:]
    return image_detector_for(int(height), int(width), choice)


def _detector_settings(options: DetectorSettings, estimator: type, variant: str
                       ) -> tuple[type, dict[str, Any]]:
    """The variant class and estimator parameters the command's ``--set`` pairs give."""
    # "auto" picks conv or ae, whose settings are the same (ConvConfig is an AEConfig)
    return parse_settings(options.settings, "ae" if variant == "auto" else variant, estimator,
                          options={"contamination", "threshold"})


def read_at_patch_size(data: str, spec: TableSpec, options: DetectorSettings) -> None:
    """An image folder given no ``--image-size`` that the patch detector will learn is read at
    the size it works at (shorter side ``max_short_side``, aspect kept) instead of in full: it
    scales every image down to that anyway. Heat maps still come back at each file's own
    size."""
    if options.image_detector == "whole":
        return

    def patch_side(height: int, width: int) -> int | None:
        if image_detector_for(height, width, options.image_detector) != "patches":
            return None
        _, params = _detector_settings(options, PatchDetector, options.variant or "auto")
        PatchDetector(**params).check_settings()  # max_short_side=0 would read them at 0x0
        return params.get("max_short_side", PATCH_MAX_SHORT_SIDE)

    read_scaled_down(data, spec, patch_side,
                     "the size the patch detector works at (shorter side {side}); "
                     "--set max_short_side=N (or none) keeps more detail")


def fit_loaded(table: Loaded, spec: TableSpec, options: DetectorSettings) -> Any:
    """Train a detector on loaded data with the command's options: a PatchDetector (variant
    auto: conv or ae by the number of training patches, see PatchDetector) or whole-image
    AutoencoderDetector (conv) for images as :func:`detector_kind` says, an
    AutoencoderDetector (ae) for tables; the variant is looked up once."""
    patches = detector_kind(table, options.image_detector) == "patches"
    estimator = PatchDetector if patches else AutoencoderDetector
    variant = options.variant or ("auto" if patches else "conv" if table.is_images else "ae")
    variant_cls, params = _detector_settings(options, estimator, variant)
    params.update(variant="auto" if variant == "auto" else variant_cls,
                  contamination=options.contamination,
                  threshold=options.threshold, verbose=not options.quiet)
    params.setdefault("device", options.device)
    return fit_detector(table, spec, params, options.threshold_from, estimator)


@dataclass
class DetectResult:
    """What ``aetool detect`` did: rows scored and flagged, and metrics when labels allowed."""

    rows: int
    flagged: int
    metrics: dict[str, Any] | None


def run_fit(data: str, output: str, spec: TableSpec, options: DetectorSettings,
            sample_rows: int | None = None, force: bool = False) -> Any:
    """``aetool fit``: check the output, train a detector on ``data`` (or a random sample of
    ``sample_rows`` rows of a large table) and save the bundle."""
    check_bundle_output(output, _inputs(data, options.threshold_from), force)
    if sample_rows is None:
        read_at_patch_size(data, spec, options)
        table = load_table(data, spec)
        if table.folder:
            warn_defects_learnt(data, list(table.ids), spec.normal_class)
    else:
        if is_image_source(data) or Path(data).suffix.lower() in ARRAY_SUFFIXES:
            raise AetoolError(f"{data}: --sample-rows is for CSV and Parquet tables")
        table = split_frame(sample_table(data, sample_rows), spec, data)
    detector = fit_loaded(table, spec, options)
    detector.save(output, force=force)
    return detector


def warn_defects_learnt(data: str, paths: list[Any], normal: str | None) -> None:
    """``fit`` learns every image of a folder as normal: when the folder is laid out for
    evaluation (a class folder named as normal, e.g. normal, good or OK, or ``--normal-class``,
    beside others), say how many images of the other classes it learnt, and which folder to fit
    instead."""
    classes = Counter(Path(str(p)).parts[0] for p in paths if len(Path(str(p)).parts) > 1)
    normal = normal if normal in classes else conventional_name(classes)
    others = {c: n for c, n in classes.items() if c != normal}
    if normal is None or not others:
        return
    listed = ", ".join(f"{c} ({n})" for c, n in sorted(others.items()))
    warnings.warn(f"{data}: fit learns every image here as normal, {sum(others.values())} of "
                  f"them from class folders other than '{normal}': {listed}; to learn normal "
                  f"images only, fit {Path(data) / normal}", UserWarning, stacklevel=3)


def run_detect(data: str, output: str, spec: TableSpec, options: DetectorSettings,
               top_k: int = 3, maps: str | None = None, plots: str | None = None,
               save_model: str | None = None, force: bool = False
               ) -> tuple[Any, DetectResult]:
    """``aetool detect``: every output checked first, then fit, score, write the scores, and
    evaluate when the data has labels of both classes (one class only is said in a warning
    before training, and the scores are still written)."""
    table_output_kind(output)  # a bad output name fails now, not after training
    inputs = _inputs(data, options.threshold_from)
    check_output_file(output, inputs)
    for folder in (maps, plots):
        check_figure_folder(folder, inputs)
    if save_model:
        check_bundle_output(save_model, inputs, force)
    read_at_patch_size(data, spec, options)
    table = load_table(data, spec, need_labels=True)  # detect evaluates when it can
    problem = evaluation_problem(table)
    if problem:
        warnings.warn(problem, UserWarning, stacklevel=2)
    detector = fit_loaded(table, spec, options)
    frame, details = scored_with_details(detector, table, top_k, maps, explain=bool(plots),
                                         training=True)
    write_scores(frame, output)
    if save_model:
        detector.save(save_model, force=force)
    metrics = None
    if table.labels is not None and not problem:
        metrics = evaluate_table(detector, table, plots, details)
    elif plots:
        write_figures(detector, table, details, plots)
    return detector, DetectResult(len(table.features), int(frame["is_anomaly"].sum()), metrics)


def run_evaluate(bundle: str, data: str, label_column: str | None = None,
                 normal_class: str | None = None, plots: str | None = None,
                 threshold: float | None = None,
                 contamination: float | str | None = None,
                 masks: str | None = None, maps: str | None = None,
                 chunk_rows: int | None = None, progress: bool = True) -> dict[str, Any]:
    """``aetool evaluate``: the metrics of a saved detector on labelled ``data`` (with
    ``masks``, also pixel ROC-AUC; with ``maps``, each image's heat map); image folders are
    evaluated ``chunk_rows`` images at a time."""
    for folder in (plots, maps):  # the masks are an input too
        check_figure_folder(folder, _inputs(data, masks))
    detector, spec = load_detector(bundle)
    detector.set_threshold(threshold, contamination)
    spec.label_column = label_column or spec.label_column
    spec.normal_class = normal_class or spec.normal_class
    if is_image_source(data):  # a folder of any size, a chunk of images at a time
        return evaluate_image_folder(detector, data, spec, plots, masks, maps, chunk_rows,
                                     progress)
    if Path(data).suffix.lower() not in ARRAY_SUFFIXES:  # CSV or Parquet, a chunk at a time
        refuse_image_options(data, masks, maps)
        return evaluate_table_file(detector, data, spec, plots, chunk_rows, progress)
    table = load_table(data, spec, need_labels=True, for_scoring=True)
    if table.labels is None:
        raise AetoolError(NEEDS_LABELS)
    return evaluate_table(detector, table, plots, masks=masks, maps=maps)


def _inputs(*paths: str | None) -> tuple[str, ...]:
    """The input files of a command, which its outputs must never overwrite."""
    return tuple(p for p in paths if p)
