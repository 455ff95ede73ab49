"""Generic training on a numeric table or array file, and sampling from generative bundles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aetool.bundle import check_bundle_output
from aetool.data.output import check_output_file
from aetool.data.source import TableSpec, load
from aetool.errors import AetoolError
from aetool.estimators import Autoencoder
from aetool.plots import image_grid
from aetool.tasks.settings import parse_settings


def load_training_data(path: str | Path, label_column: str | None = None,
                       columns: list[str] | None = None, exclude: Sequence[str] = (),
                       id_column: str | None = None) -> tuple[Any, np.ndarray | None]:
    """(X, y) for training from a table (features: ``columns``, or all but the label, id and
    ``exclude``), an image folder (class folders are the labels) or .npy/.npz (X, y)."""
    spec = TableSpec(columns=columns, exclude=list(exclude), id_column=id_column,
                     label_column=label_column)
    loaded = load(path, spec, labels="classes")
    return loaded.features, loaded.labels


def sample_grid(bundle: str | Path, n: int, out: str | Path, label: Any = None,
                seed: int = 0) -> Path:
    """Draw ``n`` samples from a generative bundle and write them as an image grid PNG."""
    model = Autoencoder.load(bundle)
    samples = model.sample(n, label=label, seed=seed)
    shape = samples.shape[1:]
    if len(shape) == 1:
        side = math.isqrt(int(shape[0]))
        if side * side != shape[0]:
            raise AetoolError(f"{bundle}: samples have {shape[0]} values, not a square image; "
                              "sample grids need image-shaped data")
        values = model.preprocessor_.inverse(samples).to_numpy(dtype=float)
        lo, hi = values.min(), values.max()
        samples = ((values - lo) / max(hi - lo, 1e-12)).reshape(n, side, side)
    return image_grid(samples, out, ncols=math.ceil(math.sqrt(n)))


def run_train(data: str, output: str, variant: str, settings: tuple[str, ...],
              spec: TableSpec, force: bool = False, quiet: bool = False) -> Autoencoder:
    """``aetool train``: check the output, train ``variant`` on ``data`` and save the bundle."""
    check_bundle_output(output, (data,), force)
    variant_cls, params = parse_settings(settings, variant, Autoencoder)
    x, y = load_training_data(data, spec.label_column, spec.columns, spec.exclude,
                              spec.id_column)
    model = Autoencoder(variant=variant_cls, verbose=not quiet, **params).fit(x, y)
    model.save(output, force=force)
    return model


def run_sample(bundle: str, count: int, output: str, label: Any = None, seed: int = 0) -> Path:
    """``aetool sample``: ``count`` samples of a generative bundle as a PNG grid."""
    check_output_file(output, (bundle,))
    if count < 1:
        raise AetoolError(f"-n must be at least 1, got {count}")
    return sample_grid(bundle, count, output, label=label, seed=seed)
