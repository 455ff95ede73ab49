"""``aetool export``: a saved detector or autoencoder bundle as one ONNX graph, and the check
that the graph scores the user's own data as ``aetool score`` does."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aetool.bundle import read_manifest
from aetool.data.output import check_output_file, is_inside, to_stdout
from aetool.data.source import TableSpec, load, prepare_for_model
from aetool.errors import AetoolError, OutputError
from aetool.estimators.saved import is_patch_bundle
from aetool.export import onnx as onnx_export

COMPARED = {"detect": ("anomaly_score", "anomaly_probability", "contributions"),
            "autoencoder": ("code", "reconstruction")}


@dataclass
class Difference:
    """Largest absolute and relative difference of one output (relative to max(|aetool|, 1),
    so values near zero do not inflate it)."""

    output: str
    absolute: float
    relative: float


@dataclass
class ExportResult:
    path: Path
    size: int
    task: str
    inputs: list[str]
    differences: list[Difference] = field(default_factory=list)
    flag_mismatches: int | None = None
    rows_checked: int = 0


def load_estimator(bundle: str | Path) -> tuple[Any, str, TableSpec]:
    """The estimator a bundle holds and its task; only detectors and autoencoders export."""
    manifest = read_manifest(bundle)
    task = manifest.get("task")
    if is_patch_bundle(manifest):
        raise AetoolError(f"{bundle}: holds a patch detector, which does not export to ONNX "
                          "(its nearest-code search over the training patches is not in the "
                          "graph); export a whole-image detector (fit --image-detector whole)")
    if task == "detect":
        from aetool.estimators import AutoencoderDetector

        detector = AutoencoderDetector.load(bundle)
        return detector, task, getattr(detector, "table_spec_", TableSpec())
    if task == "autoencoder":
        from aetool.estimators import Autoencoder

        return Autoencoder.load(bundle), task, TableSpec()
    raise AetoolError(f"{bundle}: holds a '{task}' model; export takes detector bundles "
                      "(aetool fit/detect) and autoencoder bundles (aetool train)")


def check_export_output(output: str | Path, bundle: str | Path, data: str | None) -> None:
    """The ONNX file may not land inside the bundle, nor on the checked data file (nor on
    standard output, which only tables go to)."""
    if to_stdout(output):
        raise OutputError("-: the ONNX model is written to a file; name an .onnx file")
    if is_inside(Path(output), Path(bundle)):
        raise OutputError(f"{output}: is inside the bundle {bundle}; write the ONNX file "
                          "elsewhere (aetool never changes a bundle it reads)")
    check_output_file(output, (bundle, *((data,) if data else ())))


def run_export(bundle: str, output: str, check: str | None = None, label_column: str | None = None
               ) -> ExportResult:
    """Export ``bundle`` to ``output``; with ``check``, score that data both ways and compare."""
    onnx_export.require_onnx()
    check_export_output(output, bundle, check)
    estimator, task, spec = load_estimator(bundle)
    data = onnx_export.export_model(estimator, task, bundle=bundle)
    result = ExportResult(Path(output), len(data), task,
                          onnx_export.input_names(estimator.preprocessor_,
                                                  hasattr(estimator, "classes_")))
    if check:
        compare(estimator, task, data, check, spec, label_column, result)
    onnx_export.write_onnx(data, output)
    return result


def compare(estimator: Any, task: str, data: bytes, path: str, spec: TableSpec,
            label_column: str | None, result: ExportResult) -> None:
    """Score ``path`` with aetool and with onnxruntime fed by the exported contract (as a
    deployment without aetool would); record the largest differences in ``result``."""
    conditional = hasattr(estimator, "classes_")
    if label_column:
        spec = TableSpec(**{**spec.to_dict(), "label_column": label_column})
    loaded = load(path, spec, for_scoring=True, labels="classes" if conditional else "binary")
    features = prepare_for_model(estimator, loaded)
    labels = None
    if conditional:
        if loaded.labels is None:
            raise AetoolError(f"{path}: checking a conditional model needs the class labels "
                              "(--label-column, or class folders)")
        labels = loaded.labels
    got = onnx_export.run_on(data, features, estimator._label_codes(labels) if conditional
                             else None)
    if task == "detect":
        expected = estimator.anomaly_details(features)
        result.flag_mismatches = int((got["is_anomaly"] != expected["is_anomaly"]).sum())
    else:
        expected = {"code": estimator.transform(features, labels),
                    "reconstruction": estimator.reconstruct(features, labels)}
    for name in COMPARED[task]:
        ours = np.asarray(expected[name], dtype=np.float64)
        gap = np.abs(np.asarray(got[name], dtype=np.float64).reshape(ours.shape) - ours)
        result.differences.append(Difference(name, float(gap.max(initial=0.0)),
                                             onnx_export.relative_gap(got[name], ours)))
    result.rows_checked = len(expected[COMPARED[task][0]])
