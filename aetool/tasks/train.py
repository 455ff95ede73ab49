"""Generic training on a numeric table or array file, and sampling from generative bundles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aetool.data.arrays import read_array_file
from aetool.data.tables import ARRAY_SUFFIXES, read_table, require_columns
from aetool.errors import AetoolError, DataError


def load_training_data(path: str | Path, label_column: str | None = None,
                       columns: list[str] | None = None, exclude: Sequence[str] = ()
                       ) -> tuple[Any, np.ndarray | None]:
    """(X, y) from CSV/Parquet (features: ``columns``, or all but the label and ``exclude``) or
    .npy/.npz (X, y)."""
    path = Path(path)
    if path.suffix.lower() in ARRAY_SUFFIXES:
        x, y = read_array_file(path)
        if x.ndim < 2:
            raise DataError(f"{path}: expected a 2-D table or a stack of images, got shape {x.shape}")
        return x, y
    frame = read_table(path)
    frame.columns = [str(c) for c in frame.columns]
    present = list(frame.columns)
    require_columns(columns or [], present, str(path), "--columns")
    require_columns(exclude, present, str(path), "--exclude")
    require_columns([label_column], present, str(path), "--label-column")
    left_out = {label_column, *exclude}
    features = frame[[c for c in (columns or frame.columns) if c not in left_out]]
    return features, frame[label_column].to_numpy() if label_column else None


def sample_grid(bundle: str | Path, n: int, out: str | Path, label: Any = None,
                seed: int = 0) -> Path:
    """Draw ``n`` samples from a generative bundle and write them as an image grid PNG."""
    from aetool.estimators import Autoencoder
    from aetool.plots import image_grid

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
