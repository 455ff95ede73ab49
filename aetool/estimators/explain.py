"""Explanations: each input column's share of a row's reconstruction error, and the columns
that explain a row best."""

from __future__ import annotations

from typing import Any

import numpy as np

from aetool.errors import DataError


def column_shares(contributions: np.ndarray, preprocessor: Any) -> tuple[list[str], np.ndarray]:
    """Each original column's share of each row's error: encoded-feature shares (one-hot
    categories, log views) summed by the column they came from."""
    groups = getattr(preprocessor, "feature_groups", None)
    if groups is None:
        raise DataError("explanations by feature need tabular data")
    names = list(dict.fromkeys(groups))
    index = np.asarray([names.index(g) for g in groups])
    per_column = np.zeros((contributions.shape[0], len(names)))
    np.add.at(per_column, (slice(None), index), contributions)
    return names, per_column


def top_features(contributions: np.ndarray, preprocessor: Any,
                 top_k: int) -> list[list[tuple[str, float]]]:
    """Group encoded-feature shares by original column and keep the ``top_k`` largest per row."""
    names, per_column = column_shares(contributions, preprocessor)
    order = np.argsort(-per_column, axis=1)[:, :top_k]
    return [[(names[j], float(per_column[i, j])) for j in row] for i, row in enumerate(order)]
