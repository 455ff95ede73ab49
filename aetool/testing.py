"""Conformance checks any variant plugin runs in its own tests.

    def test_my_variant_conforms():
        check_variant(MyVariant)

or, one pytest case per check:

    @pytest.mark.parametrize("check", conformance_checks(MyVariant), ids=check_id)
    def test_conformance(check):
        check()
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aetool.bundle import load_bundle
from aetool.estimators import Autoencoder, AutoencoderDetector
from aetool.plugins import get_registry
from aetool.training import TrainConfig, train_model
from aetool.variants.base import (
    CONDITIONAL,
    EXPORTABLE,
    GENERATIVE,
    IMAGE,
    TABULAR,
    config_to_dict,
)

TABLE_SHAPE = (8,)
IMAGE_SHAPES = ((1, 12, 12), (3, 10, 14))


class ConformanceError(AssertionError):
    """A variant breaks the contract; the message says which part."""


def _table(n: int = 160, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 2))
    return (latent @ rng.normal(size=(2, TABLE_SHAPE[0])) + 0.05 * rng.normal(
        size=(n, TABLE_SHAPE[0]))).astype(np.float32)


def _images(shape: tuple[int, ...], n: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros((n, *shape), dtype=np.float32)
    for i in range(n):
        r, c = rng.integers(0, shape[1] - 4), rng.integers(0, shape[2] - 4)
        out[i, :, r:r + 4, c:c + 4] = 1.0
    return out


def _shapes(variant: type) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    if TABULAR in variant.capabilities:
        shapes.append(TABLE_SHAPE)
    if IMAGE in variant.capabilities:
        shapes.extend(IMAGE_SHAPES)
    if not shapes:
        raise ConformanceError(f"{variant.__name__} declares neither 'tabular' nor 'image'")
    return shapes


def _data(shape: tuple[int, ...]) -> np.ndarray:
    return _table() if len(shape) == 1 else _images(shape)


def _n_classes(variant: type) -> int | None:
    return 2 if CONDITIONAL in variant.capabilities else None


def _labels(variant: type, n: int) -> Any:
    return (torch.arange(n) % 2) if CONDITIONAL in variant.capabilities else None


def check_declaration(variant: type) -> None:
    """name, summary, capabilities and a dataclass Config with defaults."""
    name = getattr(variant, "name", "")
    if not isinstance(name, str) or not name or name != name.lower() or " " in name:
        raise ConformanceError(f"{variant.__name__}.name must be a non-empty lower-case word")
    if not getattr(variant, "summary", ""):
        raise ConformanceError(f"variant '{name}' needs a one-line summary")
    if not dataclasses.is_dataclass(variant.Config):
        raise ConformanceError(f"variant '{name}': Config must be a dataclass")
    variant.Config()  # every field needs a default


def check_config_round_trip(variant: type) -> None:
    """The Config survives JSON (it is stored in bundles and shown by the CLI)."""
    config = variant.Config()
    text = json.dumps(config_to_dict(config))
    again = variant.make_config(json.loads(text))
    if again != config:
        raise ConformanceError(f"variant '{variant.name}': Config changes through JSON: "
                               f"{config!r} -> {again!r}")


def check_builds(variant: type) -> None:
    """Builds for each declared input kind; encode/decode/forward/loss have the right shapes."""
    for shape in _shapes(variant):
        model = variant.build(shape, variant.Config(), _n_classes(variant)).eval()
        x = torch.from_numpy(_data(shape)[:6])
        y = _labels(variant, 6)
        code = model.encode(x, y)
        if code.ndim != 2 or code.shape[0] != 6:
            raise ConformanceError(f"variant '{variant.name}': encode must return (batch, code), "
                                   f"got {tuple(code.shape)} for input {shape}")
        recon = model.decode(code, y)
        if tuple(recon.shape) != tuple(x.shape):
            raise ConformanceError(f"variant '{variant.name}': decode returned "
                                   f"{tuple(recon.shape)} for input {tuple(x.shape)}")
        out = model(x, y)
        total, parts = model.loss(x, out, y)
        if total.ndim != 0 or not parts:
            raise ConformanceError(f"variant '{variant.name}': loss must return a scalar and "
                                   "named parts")


def check_training_lowers_loss(variant: type) -> None:
    """A few epochs on structured data lower the loss."""
    for shape in _shapes(variant)[:2]:
        x = torch.from_numpy(_data(shape))
        y = _labels(variant, x.shape[0])
        torch.manual_seed(0)
        model = variant.build(shape, variant.Config(), _n_classes(variant)).eval()
        with torch.no_grad():
            before = model.loss(x, model(x, y), y)[0].item()
        train_model(model, x, y, TrainConfig(epochs=15, batch_size=32, lr=3e-3, patience=0,
                                             val_fraction=0.0, device="cpu"), quiet=True)
        with torch.no_grad():
            after = model.loss(x, model(x, y), y)[0].item()
        if not after < before:
            raise ConformanceError(f"variant '{variant.name}': training did not lower the loss "
                                   f"on input {shape} ({before:.4g} -> {after:.4g})")


def check_deterministic_reconstruct(variant: type) -> None:
    """``reconstruct`` gives identical results twice in eval mode (scores must not be random)."""
    shape = _shapes(variant)[0]
    model = variant.build(shape, variant.Config(), _n_classes(variant)).eval()
    x = torch.from_numpy(_data(shape)[:8])
    y = _labels(variant, 8)
    if not torch.equal(model.reconstruct(x, y), model.reconstruct(x, y)):
        raise ConformanceError(f"variant '{variant.name}': reconstruct is not deterministic in "
                               "eval mode")


def _ensure_registered(variant: type) -> None:
    registry = get_registry()
    if registry.variants.get(variant.name) is not variant:
        if variant.name in registry.variants:
            raise ConformanceError(f"another variant is registered as '{variant.name}'")
        registry.add_variant(variant, plugin="aetool.testing")


def check_bundle_round_trip(variant: type) -> None:
    """Save and load through a bundle; reconstructions are bit-for-bit identical."""
    _ensure_registered(variant)
    shape = _shapes(variant)[0]
    data = _data(shape)
    y = (np.arange(len(data)) % 2) if CONDITIONAL in variant.capabilities else None
    model = Autoencoder(variant=variant.name, epochs=2, max_steps=10, device="cpu").fit(data, y)
    with tempfile.TemporaryDirectory() as tmp:
        path = model.save(Path(tmp) / "bundle")
        _, loaded = load_bundle(path)
    x = torch.from_numpy(model._prepare(data, reset=False)[0][:10])
    labels = _labels(variant, 10)
    if not torch.equal(model.model_.reconstruct(x, labels), loaded.reconstruct(x, labels)):
        raise ConformanceError(f"variant '{variant.name}': bundle round trip changes "
                               "reconstructions")


def check_detector(variant: type) -> None:
    """Works through AutoencoderDetector: finds an obvious outlier, predicts +1/-1."""
    if CONDITIONAL in variant.capabilities:
        return  # detection is unconditional; conditional variants are for sampling/features
    _ensure_registered(variant)
    shape = _shapes(variant)[0]
    data = _data(shape)
    odd = data[:1].copy()
    odd += 6.0 if len(shape) == 1 else 1.0 - 2.0 * odd
    detector = AutoencoderDetector(variant=variant.name, epochs=10, max_steps=100,
                                   device="cpu").fit(data)
    predictions = detector.predict(np.concatenate([odd, data[:20]]))
    if set(np.unique(predictions)) - {-1, 1}:
        raise ConformanceError(f"variant '{variant.name}': predict must return +1/-1")
    scores = detector.score_samples(np.concatenate([odd, data]))
    if not scores[0] < np.median(scores[1:]):
        raise ConformanceError(f"variant '{variant.name}': an obvious outlier did not score "
                               "below the median through AutoencoderDetector")


def check_sampling(variant: type) -> None:
    """Generative variants sample tensors of the input shape."""
    if GENERATIVE not in variant.capabilities:
        return

    shape = _shapes(variant)[0]
    model = variant.build(shape, variant.Config(), _n_classes(variant)).eval()
    y = _labels(variant, 5)
    samples = model.sample(5, y, torch.Generator().manual_seed(0))
    if tuple(samples.shape) != (5, *shape):
        raise ConformanceError(f"variant '{variant.name}': sample returned {tuple(samples.shape)}")


# relative, against max(|score|, 1). onnxruntime's fp32 kernels sum in another order than
# torch's (ulps per layer), and the code distance amplifies that by 1/smallest code spread: on
# the kit's small models of random rows it reached 1.6e-5; trained detectors stay near 1e-5
# (tests/test_export.py, bench/onnx_export.py on ODDS).
EXPORT_TOLERANCE = 1e-4


def check_export(variant: type) -> None:
    """Variants that declare the 'onnx' capability export a detector (an autoencoder for
    conditional ones) whose onnxruntime outputs on held-out rows match aetool's: scores within
    EXPORT_TOLERANCE, the same flags wherever the score is not within that tolerance of the
    threshold. Skipped when the variant does not declare it or onnx is not installed."""
    from aetool.export import onnx as onnx_export

    if EXPORTABLE not in variant.capabilities or onnx_export.missing_packages():
        return
    _ensure_registered(variant)
    for shape in _shapes(variant):
        data = _data(shape)
        train, held_out = data[: len(data) * 5 // 8], data[len(data) * 5 // 8:]
        if CONDITIONAL in variant.capabilities:
            y = np.arange(len(data)) % 2
            model = Autoencoder(variant=variant.name, epochs=20, max_steps=60,
                                device="cpu").fit(train, y[: len(train)])
            labels = y[len(train):]
            got = onnx_export.run_on(onnx_export.export_model(model, "autoencoder"), held_out,
                                     labels)["code"]
            expected, outputs = model.transform(held_out, labels), "codes"
        else:
            model = AutoencoderDetector(variant=variant.name, epochs=20, max_steps=60,
                                        device="cpu").fit(train)
            out = onnx_export.run_on(onnx_export.export_model(model, "detect"), held_out)
            details = model.anomaly_details(held_out, explain=False)
            expected, outputs = details["anomaly_score"], "scores"
            clear = np.abs(expected - model.threshold_) > EXPORT_TOLERANCE * max(
                1.0, abs(model.threshold_))
            if not np.array_equal(out["is_anomaly"][clear], details["is_anomaly"][clear]):
                raise ConformanceError(f"variant '{variant.name}': exported is_anomaly differs "
                                       f"from aetool's on inputs of shape {shape}")
            got = out["anomaly_score"]
        gap = onnx_export.relative_gap(got, expected)
        if not gap <= EXPORT_TOLERANCE:
            raise ConformanceError(f"variant '{variant.name}': exported {outputs} differ from "
                                   f"aetool's by {gap:.2g} (relative) on inputs of "
                                   f"shape {shape}")


CHECKS: tuple[Callable[[type], None], ...] = (
    check_declaration,
    check_config_round_trip,
    check_builds,
    check_training_lowers_loss,
    check_deterministic_reconstruct,
    check_bundle_round_trip,
    check_detector,
    check_sampling,
    check_export,
)


def conformance_checks(variant: type) -> list[Callable[[], None]]:
    """One zero-argument callable per check, for ``pytest.mark.parametrize``."""
    checks = []
    for check in CHECKS:
        def run(check: Callable[[type], None] = check) -> None:
            check(variant)

        run.__name__ = check.__name__
        checks.append(run)
    return checks


def check_id(check: Callable[[], None]) -> str:
    return check.__name__


def check_variant(variant: type) -> None:
    """Run every conformance check on ``variant``; raises ConformanceError on the first failure."""
    for check in CHECKS:
        check(variant)
