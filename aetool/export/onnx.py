"""ONNX export of fitted estimators: one self-contained graph from raw input to outputs, with the
threshold and the column contract in its metadata, checked against aetool's own scores.

The numeric graph is traced from :mod:`aetool.export.graph` with torch's exporter; for tables,
each categorical column then gets a string input and an ONNX-ML ``LabelEncoder`` that maps the
training categories to their index (anything else, an unseen category, to the all-zero code; the
empty string to the missing-value category, as a blank CSV cell is). Needs the ``onnx`` extra.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from aetool._version import __version__
from aetool.data.preprocess import MISSING_CATEGORY
from aetool.errors import AetoolError
from aetool.variants.base import EXPORTABLE

OPSET = 18
ML_OPSET = 3
DETECTOR_OUTPUTS = ("anomaly_score", "anomaly_probability", "is_anomaly", "contributions")
AUTOENCODER_OUTPUTS = ("code", "reconstruction")
NUMERIC_INPUT = "numeric"
IMAGE_INPUT = "images"
LABEL_INPUT = "label"
CODES = "category_codes"  # the traced graph's int64 input the LabelEncoders feed


ONNX_PACKAGES = ("onnx", "onnxruntime", "onnxscript")  # the 'onnx' extra


def missing_packages() -> list[str]:
    """The packages of the 'onnx' extra that cannot be imported."""
    missing = []
    for name in ONNX_PACKAGES:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    return missing


def require_onnx() -> None:
    """A one-line error when the optional packages are missing (``pip install aetool[onnx]``)."""
    missing = missing_packages()
    if missing:
        raise AetoolError(f"ONNX export needs {', '.join(missing)}; install them with "
                          f"pip install 'aetool[onnx]'")


def check_exportable(variant: type) -> None:
    """Only variants that declare the 'onnx' capability export (the conformance kit checks
    that their exported scores match); others get a one-line refusal."""
    if EXPORTABLE not in variant.capabilities:
        raise AetoolError(f"variant '{variant.name}' does not declare ONNX export (capability "
                          f"'{EXPORTABLE}'); its package can add it once aetool.testing's "
                          "export check passes")


def input_names(prep: Any, conditional: bool = False) -> list[str]:
    """The exported graph's inputs, in order: 'images', or 'numeric' and one string input per
    categorical column (named after the column); then 'label' for conditional variants."""
    if hasattr(prep, "shape"):
        names = [IMAGE_INPUT]
    else:
        names = [NUMERIC_INPUT] if prep.numeric_columns else []
        names += prep.categorical_columns
    return names + ([LABEL_INPUT] if conditional else [])


def _contract(estimator: Any, kind: str, outputs: tuple[str, ...]) -> dict[str, Any]:
    """What a caller needs to feed and read the graph: input names, dtypes and shapes, the
    numeric column order, categories, the image size and the outputs."""
    prep = estimator.preprocessor_
    contract: dict[str, Any] = {"kind": kind, "outputs": list(outputs)}
    if hasattr(prep, "shape"):
        contract["inputs"] = {IMAGE_INPUT: {"dtype": "float32",
                                            "shape": ["N", *[int(s) for s in prep.shape]],
                                            "values": f"raw pixels (divided by {prep.scale:g} "
                                                      "inside the graph)"}}
    else:
        numeric = prep.numeric_columns
        contract["inputs"] = {}
        if numeric:
            contract["inputs"][NUMERIC_INPUT] = {"dtype": "float64", "shape": ["N", len(numeric)],
                                                 "columns": numeric,
                                                 "missing": "NaN (imputed with the training "
                                                            "median)"}
        for column in prep.categorical_columns:
            contract["inputs"][column] = {"dtype": "string", "shape": ["N"],
                                          "categories": prep.categorical[column],
                                          "missing": "empty string"}
        contract["dropped_columns"] = list(prep.dropped)
    if hasattr(estimator, "classes_"):
        contract["inputs"][LABEL_INPUT] = {"dtype": "int64", "shape": ["N"],
                                           "classes": [str(c) for c in estimator.classes_]}
    return contract


def bundle_sha256(bundle: str | Path) -> str:
    """SHA-256 of the bundle's manifest.json, which records the weights' own SHA-256, so it
    identifies the whole bundle (``sha256sum BUNDLE/manifest.json`` gives the same)."""
    return hashlib.sha256((Path(bundle) / "manifest.json").read_bytes()).hexdigest()


def _exact_translations() -> dict[Any, Any]:
    """onnxruntime's float32 Tanh, Sigmoid, Exp and Log are fast approximations (Tanh off by up
    to 4 ulp where torch is within 1); these translations compute them in float64 and round
    back, which makes the exported scores agree with aetool's to about 1 ulp per layer."""
    import onnx
    import torch
    from onnxscript import opset18 as op

    double = onnx.TensorProto.DOUBLE

    def tanh(x: Any) -> Any:
        return op.CastLike(op.Tanh(op.Cast(x, to=double)), x)

    def sigmoid(x: Any) -> Any:
        return op.CastLike(op.Sigmoid(op.Cast(x, to=double)), x)

    def exp(x: Any) -> Any:
        return op.CastLike(op.Exp(op.Cast(x, to=double)), x)

    def log(x: Any) -> Any:
        return op.CastLike(op.Log(op.Cast(x, to=double)), x)

    aten = torch.ops.aten
    return {aten.tanh.default: tanh, aten.sigmoid.default: sigmoid, aten.exp.default: exp,
            aten.log.default: log}


def _trace(graph: Any, names: list[str], outputs: tuple[str, ...]) -> Any:
    """The graph as an onnx ModelProto with a dynamic batch axis; an operator the exporter
    cannot translate becomes a one-line error naming it."""
    import torch

    from aetool.export.graph import example_inputs

    graph.eval()
    args = example_inputs(graph)
    batch = torch.export.Dim("batch", min=1)
    shapes = (tuple({0: batch} for _ in args),)  # forward(*inputs): one entry, a tuple
    traced_names = [CODES if n not in (NUMERIC_INPUT, IMAGE_INPUT, LABEL_INPUT) else n
                    for n in names]
    traced_names = list(dict.fromkeys(traced_names))
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, args, dynamo=True, input_names=traced_names,
                                        output_names=list(outputs), dynamic_shapes=shapes,
                                        opset_version=OPSET, verbose=False, optimize=True,
                                        external_data=False, report=False,
                                        custom_translation_table=_exact_translations())
    except Exception as exc:  # the exporter raises many types; say what failed in one line
        raise AetoolError(f"ONNX export of variant '{graph.model.__class__.__name__}' failed: "
                          f"{_root_cause(exc)}") from None
    return program.model_proto


def _root_cause(exc: BaseException) -> str:
    """The first line of the innermost exception (the exporter wraps the real one, e.g. an
    operator it has no translation for, in several layers of advice)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def _add_category_inputs(model: Any, prep: Any) -> None:
    """Replace the traced int64 category-code input by one string input per categorical
    column, each mapped to its category index by an ONNX-ML LabelEncoder (-1 when unseen)."""
    from onnx import TensorProto, helper

    graph = model.graph
    columns = prep.categorical_columns
    kept = [i for i in graph.input if i.name != CODES]
    del graph.input[:]
    graph.input.extend(kept)
    nodes = []
    parts = []
    for j, column in enumerate(columns):
        categories = [str(c) for c in prep.categorical[column]]
        keys, values = list(categories), list(range(len(categories)))
        if MISSING_CATEGORY in categories:  # a blank cell is read as missing, so is ""
            keys.append("")
            values.append(categories.index(MISSING_CATEGORY))
        graph.input.append(helper.make_tensor_value_info(column, TensorProto.STRING, ["batch"]))
        index = f"{CODES}/{j}"
        nodes.append(helper.make_node("LabelEncoder", [column], [index], domain="ai.onnx.ml",
                                      keys_strings=keys, values_int64s=values,
                                      default_int64=-1, name=f"categories/{j}"))
        nodes.append(helper.make_node("Unsqueeze", [index, f"{CODES}/axis"],
                                      [f"{index}/column"], name=f"column/{j}"))
        parts.append(f"{index}/column")
    axis = helper.make_tensor(f"{CODES}/axis", TensorProto.INT64, [1], [1])
    graph.initializer.append(axis)
    nodes.append(helper.make_node("Concat", parts, [CODES], axis=1, name="category_codes"))
    for node in reversed(nodes):
        graph.node.insert(0, node)
    if not any(o.domain == "ai.onnx.ml" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))


def _metadata(model: Any, estimator: Any, contract: dict[str, Any],
              extra: dict[str, Any]) -> None:
    from onnx import helper

    props = {
        "producer": "aetool",
        "aetool_version": __version__,
        "variant": estimator.variant_name_,
        "columns": json.dumps([str(c) for c in getattr(estimator, "feature_names_in_", [])]),
        "contract": json.dumps(contract),
        **{k: v if isinstance(v, str) else json.dumps(v) for k, v in extra.items()},
    }
    helper.set_model_props(model, props)
    model.producer_name = "aetool"
    model.producer_version = __version__


def export_model(estimator: Any, kind: str, bundle: str | Path | None = None) -> bytes:
    """The ONNX bytes of a fitted detector ('detect') or autoencoder ('autoencoder')."""
    require_onnx()
    import onnx

    from aetool.export.graph import AutoencoderGraph, DetectorGraph

    check_exportable(estimator._variant_class())
    conditional = hasattr(estimator, "classes_")
    prep = estimator.preprocessor_
    if kind == "detect":
        graph, outputs = DetectorGraph(estimator), DETECTOR_OUTPUTS
        extra = {"threshold": float(estimator.threshold_),
                 "score_method": estimator.scorer_.method}
    else:
        graph, outputs = AutoencoderGraph(estimator), AUTOENCODER_OUTPUTS
        extra = {}
    extra["task"] = kind
    extra["bundle_sha256"] = bundle_sha256(bundle) if bundle is not None else ""
    names = input_names(prep, conditional)
    estimator.model_.to("cpu")
    model = _trace(graph, names, outputs)
    if getattr(prep, "categorical_columns", None):
        _add_category_inputs(model, prep)
    _metadata(model, estimator, _contract(estimator, kind, outputs), extra)
    onnx.checker.check_model(model)
    buffer = io.BytesIO()
    onnx.save_model(model, buffer)
    return buffer.getvalue()


def write_onnx(data: bytes, path: str | Path) -> Path:
    """Write the model to ``path`` through a temporary file (never half-written)."""
    from aetool.data.output import atomic_output

    with atomic_output(path, mode="wb") as handle:
        handle.write(data)
    return Path(path)


def metadata(path_or_bytes: str | Path | bytes) -> dict[str, Any]:
    """The aetool metadata of an exported model, JSON values decoded."""
    import onnx

    model = onnx.load_model_from_string(path_or_bytes) if isinstance(path_or_bytes, bytes) \
        else onnx.load(str(path_or_bytes))
    out: dict[str, Any] = {}
    for prop in model.metadata_props:
        try:
            out[prop.key] = json.loads(prop.value)
        except ValueError:
            out[prop.key] = prop.value
    return out


def feeds(contract: dict[str, Any], features: Any, labels: np.ndarray | None = None
          ) -> dict[str, np.ndarray]:
    """The onnxruntime inputs for raw ``features`` (a DataFrame of the training columns or an
    image array) by the exported contract: what a deployment without aetool does (see
    docs/deploy.md)."""
    import pandas as pd

    inputs = contract["inputs"]
    out: dict[str, np.ndarray] = {}
    if IMAGE_INPUT in inputs:
        images = np.asarray(features, dtype=np.float32)
        out[IMAGE_INPUT] = images[:, None] if images.ndim == 3 else images
    else:
        frame = features if isinstance(features, pd.DataFrame) else pd.DataFrame(
            np.asarray(features)).rename(columns=lambda c: f"x{c}")  # as fit names an array's
        if NUMERIC_INPUT in inputs:
            columns = inputs[NUMERIC_INPUT]["columns"]
            out[NUMERIC_INPUT] = frame[columns].apply(pd.to_numeric, errors="coerce") \
                .to_numpy(dtype=np.float64, na_value=np.nan)
        for name, spec in inputs.items():
            if spec["dtype"] == "string":
                out[name] = frame[name].astype("string").fillna("").to_numpy(dtype=object) \
                    .astype(str)
    if LABEL_INPUT in inputs:
        out[LABEL_INPUT] = np.asarray(labels, dtype=np.int64)
    return out


def run_on(path_or_bytes: str | Path | bytes, features: Any,
           labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Run an exported model on raw ``features`` fed by its own contract (see :func:`feeds`)."""
    return run(path_or_bytes, feeds(metadata(path_or_bytes)["contract"], features, labels))


def relative_gap(got: Any, expected: Any) -> float:
    """Largest difference relative to max(|expected|, 1), so values near zero do not inflate
    it: the measure the export's exactness is stated in."""
    expected = np.asarray(expected, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64).reshape(expected.shape)
    return float((np.abs(got - expected) / np.maximum(np.abs(expected), 1.0)).max(initial=0.0))


def run(path_or_bytes: str | Path | bytes, inputs: dict[str, np.ndarray]
        ) -> dict[str, np.ndarray]:
    """Run an exported model with onnxruntime on CPU; outputs by name."""
    import onnxruntime

    source = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    session = onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs), strict=True))
