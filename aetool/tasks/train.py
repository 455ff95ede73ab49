"""Generic training on a numeric table or array file, and sampling from generative bundles."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from aetool import defaults
from aetool.bundle import check_bundle_output
from aetool.data.output import atomic_output, check_output_file
from aetool.data.preprocess import data_source
from aetool.data.source import Loaded, TableSpec, load, read_scaled_down
from aetool.errors import AetoolError
from aetool.estimators import Autoencoder
from aetool.plots import image_grid
from aetool.tasks.settings import parse_settings


def load_for_training(path: str | Path, spec: TableSpec) -> Loaded:
    """What an autoencoder learns from, with class labels as they are: a table (features:
    ``spec.columns``, or all but the label, id and excluded ones), an image folder (class
    folders are the labels; large images read at :func:`read_for_whole_images`'s size) or
    .npy/.npz (X, y)."""
    read_for_whole_images(path, spec)
    return load(path, spec, labels="classes")


def read_for_whole_images(path: str | Path, spec: TableSpec) -> None:
    """An image folder given no size, to learn whole: read with its shorter side at most
    WHOLE_IMAGE_MAX_SHORT_SIDE (aspect kept), saying so."""
    read_scaled_down(path, spec, lambda height, width: defaults.WHOLE_IMAGE_MAX_SHORT_SIDE,
                     "the size whole images are learnt at by default (shorter side {side}: "
                     "training time grows with the pixels, the codes gain little); "
                     "--image-size H,W reads them at another size")


SAMPLE_SUFFIXES = (".png", ".npy", ".npz")


def draw_samples(model: Autoencoder, n: int, label: Any = None, seed: int = 0,
                 temperature: float = 1.0, prior: str = "fitted"
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` samples in data units (images in [0, 1] as (N, C, H, W), table rows in each
    column's own unit) and their class labels for a conditional model asked for one class, or
    for all classes in turn."""
    samples = model.sample(n, label=label, seed=seed, temperature=temperature, prior=prior)
    if samples.ndim == 2:
        samples = model.preprocessor_.inverse(samples).to_numpy(dtype=np.float32)
    classes = getattr(model, "classes_", None)
    if classes is None:
        return samples, None
    if label is not None:
        return samples, np.asarray([classes[model.class_index(label)]] * n)
    return samples, np.asarray([classes[i % len(classes)] for i in range(n)])


def sample_grid(bundle: str | Path, n: int, out: str | Path, label: Any = None,
                seed: int = 0, temperature: float = 1.0, prior: str = "fitted") -> Path:
    """Draw ``n`` samples from a generative bundle and write them as an image grid PNG, or as
    arrays (.npy: the samples; .npz: ``X`` the samples and ``y`` their labels)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in SAMPLE_SUFFIXES:
        raise AetoolError(f"{out}: samples are written as .png (a grid), .npy or .npz")
    model = Autoencoder.load(bundle)
    samples, labels = draw_samples(model, n, label, seed, temperature, prior)
    if suffix == ".npy":
        with atomic_output(out, "wb") as handle:
            np.save(handle, samples)
        return out
    if suffix == ".npz":
        arrays = {"X": samples, **({"y": labels} if labels is not None else {})}
        with atomic_output(out, "wb") as handle:
            np.savez(handle, **arrays)
        return out
    shape = samples.shape[1:]
    if len(shape) == 1:
        side = math.isqrt(int(shape[0]))
        if side * side != shape[0]:
            raise AetoolError(f"{bundle}: samples have {shape[0]} values, not a square image; "
                              "sample grids need image-shaped data (or write .npy/.npz)")
        lo, hi = samples.min(), samples.max()
        samples = ((samples - lo) / max(hi - lo, 1e-12)).reshape(n, side, side)
    return image_grid(samples, out, ncols=math.ceil(math.sqrt(n)))


def run_train(data: str, output: str, variant: str, settings: tuple[str, ...],
              spec: TableSpec, force: bool = False, quiet: bool = False) -> Autoencoder:
    """``aetool train``: check the output, train ``variant`` on ``data`` and save the bundle."""
    check_bundle_output(output, (data,), force)
    variant_cls, params = parse_settings(settings, variant, Autoencoder)
    loaded = load_for_training(data, spec)
    with data_source(data):
        model = Autoencoder(variant=variant_cls, verbose=not quiet, **params).fit(
            loaded.features, loaded.labels)
    model.save(output, force=force)
    return model


def run_sample(bundle: str, count: int, output: str, label: Any = None, seed: int = 0,
               temperature: float = 1.0, prior: str = "fitted") -> Path:
    """``aetool sample``: ``count`` samples of a generative bundle as a PNG grid or arrays."""
    check_output_file(output, (bundle,))
    if count < 1:
        raise AetoolError(f"-n must be at least 1, got {count}")
    return sample_grid(bundle, count, output, label=label, seed=seed, temperature=temperature,
                       prior=prior)
