"""Explanations: each input column's share of a row's reconstruction error, and the columns
that explain a row best (as tuples, or as the texts ``aetool score`` writes, built column-wise
so a million rows take a fraction of a second)."""

from __future__ import annotations

from typing import Any

import numpy as np

from aetool.errors import DataError


def column_shares(contributions: np.ndarray, preprocessor: Any) -> tuple[list[str], np.ndarray]:
    """Each original column's share of each row's error: encoded-feature shares (one-hot
    categories, log views) summed by the column they came from, in feature order, in float64."""
    groups = getattr(preprocessor, "feature_groups", None)
    if groups is None:
        raise DataError("explanations by feature need tabular data")
    names = list(dict.fromkeys(groups))
    where = {name: j for j, name in enumerate(names)}
    target = np.asarray([where[g] for g in groups])
    counts = dict.fromkeys(names, 0)
    rank = np.empty(len(groups), dtype=int)  # a feature's place within its column's features
    for feature, group in enumerate(groups):
        rank[feature] = counts[group]
        counts[group] += 1
    first = np.flatnonzero(rank == 0)  # each column's first feature, in column order
    simple = np.array_equal(first, np.arange(len(names)))
    per_column = (contributions[:, :len(names)] if simple
                  else contributions[:, first]).astype(np.float64)
    for r in range(1, int(rank.max()) + 1):  # then one-hot codes and log views, in order
        features = np.flatnonzero(rank == r)  # of distinct columns: one vectorised add
        columns = target[features]
        if _is_run(features) and _is_run(columns):  # log views of every column: slices
            per_column[:, columns[0]:columns[-1] + 1] += \
                contributions[:, features[0]:features[-1] + 1]
        else:
            per_column[:, columns] += contributions[:, features]
    return names, per_column


def _is_run(index: np.ndarray) -> bool:
    """Whether ``index`` is consecutive (a slice, far faster than fancy indexing)."""
    return bool(index.size) and int(index[-1]) - int(index[0]) == index.size - 1 \
        and bool(np.all(np.diff(index) == 1))


def largest_shares(per_column: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``top_k`` largest shares and their columns, largest first, ties to the
    first column, NaN last; ``per_column`` (non-negative shares) is used up in the search."""
    top_k = min(top_k, per_column.shape[1])
    with_nan = np.isnan(per_column.sum(axis=1))  # rare: a pass over a few rows only
    if with_nan.any():
        per_column[with_nan] = np.nan_to_num(per_column[with_nan], nan=-1.0)
    rows = np.arange(len(per_column))
    order = np.empty((len(per_column), top_k), dtype=np.intp)
    shares = np.empty((len(per_column), top_k))
    for j in range(top_k):  # k passes of argmax beat sorting every row for small k
        order[:, j] = np.argmax(per_column, axis=1)
        shares[:, j] = per_column[rows, order[:, j]]
        per_column[rows, order[:, j]] = -2.0  # taken: below every share left
    shares[shares == -1.0] = np.nan
    return order, shares


def top_features(contributions: np.ndarray, preprocessor: Any,
                 top_k: int) -> list[list[tuple[str, float]]]:
    """Group encoded-feature shares by original column and keep the ``top_k`` largest per row."""
    names, per_column = column_shares(contributions, preprocessor)
    order, shares = largest_shares(per_column, top_k)
    return [[(names[j], float(s)) for j, s in zip(row, values, strict=True)]
            for row, values in zip(order, shares, strict=True)]


def share_text(share: float) -> str:
    """A share of a row's error as a percentage: whole percents from 1% (rounded), one decimal
    below (a table of 2,000 columns spreads its error thinly: '0.4%', not '0%'), '<0.1%' for
    less and nothing lost for NaN."""
    if share != share or round(share * 100) >= 1:  # rounds as '.0%' does
        return f"{share:.0%}"
    if round(share * 1000) >= 1:
        return f"{share:.1%}"
    return "0%" if share <= 0 else "<0.1%"


def format_top_features(items: list[tuple[str, float]]) -> str:
    """One row's explanation as written: ``name (share%); ...``."""
    return "; ".join(f"{name} ({share_text(share)})" for name, share in items)


PERCENT_TEXTS = [f" ({p}%)" for p in range(101)]


def top_feature_texts(contributions: np.ndarray, preprocessor: Any, top_k: int) -> list[str]:
    """:func:`format_top_features` of :func:`top_features` for every row, built column by
    column: names and rounded percentages picked by index, joined once per row."""
    names, per_column = column_shares(contributions, preprocessor)
    order, shares = largest_shares(per_column, top_k)
    with np.errstate(invalid="ignore"):
        percent = np.rint(shares * 100.0)  # what format(share, '.0%') rounds to
    usual = np.isfinite(percent) & (percent >= 1) & (percent <= 100)
    named = np.asarray(names, dtype=object)[order]
    suffix = np.asarray(PERCENT_TEXTS, dtype=object)[np.where(usual, percent, 0).astype(int)]
    pieces = named + suffix
    for i, j in zip(*np.nonzero(~usual), strict=True):  # under 1%, NaN or out of range
        pieces[i, j] = f"{named[i, j]} ({share_text(shares[i, j])})"
    return list(map("; ".join, zip(*(pieces[:, j].tolist() for j in range(order.shape[1])),
                                   strict=True)))
