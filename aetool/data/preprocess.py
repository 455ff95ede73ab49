"""Table preprocessing fitted on training data and saved as JSON in the bundle.

Numeric columns are imputed with the training median and standardised; categorical columns are
one-hot encoded (unseen categories at scoring become all-zero and are reported; beyond the 50
most frequent categories of a column, the rarer ones share that all-zero code); constant
columns are dropped. Optionally (the detector's default) each numeric column with more than ten
values also gets a log-compressed view, sign(z)·log(1 + |z|) of its robust z-score, standardised:
on heavy-tailed columns the extremes then neither dominate training nor vanish. The same JSON
state is applied identically at scoring time.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections import Counter
from collections.abc import Collection, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from aetool.defaults import one_hot_share
from aetool.errors import DataError

MISSING_CATEGORY = "(missing)"
MAX_CATEGORIES = 50
MIN_ROWS_FOR_DISTINCT = 3  # a text column distinct in every one of this many rows is not a category
ROWS_PER_BLOCK = 4096  # rows encoded at a time: the temporaries stay in the CPU's cache (8x faster)
MAX_STANDARD_SCORE = 1e6  # beyond: clipped, so float32 errors stay finite (still most abnormal)
LOG_VIEW_MIN_VALUES = 11  # fewer distinct values (flags, codes, 1-10 scales): no tails to compress
MIN_ROWS_FOR_COUNTER = 20  # a numeric column rising in every one of this many rows is a counter


class DataWarning(UserWarning):
    """Something in the data was adjusted (columns dropped or ignored, unseen categories)."""


class ColumnLeftOut(DataError):
    """A column the model cannot use but the rest of the table can do without (an identifier or
    free text, dates, an empty column): :meth:`TablePreprocessor.fit` leaves it out with a
    warning naming ``what`` it holds and ``remedy``, the way to use it, instead of refusing the
    whole table."""

    def __init__(self, column: str, what: str, remedy: str) -> None:
        self.column, self.what, self.remedy = column, what, remedy
        super().__init__(f"column '{column}' {what}; {remedy}")


class UnseenCategoryWarning(DataWarning):
    """Categorical values that training never saw (encoded as all-zero); keeps the counts per
    column so a streamed file can report one total instead of one warning per chunk."""

    def __init__(self, source: str, unseen: dict[str, Counter[str]]) -> None:
        self.source = source
        self.unseen = unseen
        super().__init__(describe_unseen(source, unseen))


def describe_unseen(source: str, unseen: dict[str, Counter[str]], examples: int = 3) -> str:
    """One line naming each column with unseen values, how many there were and the commonest."""
    parts = []
    for column, counts in unseen.items():
        shown = ", ".join(f"'{value}'" for value, _ in counts.most_common(examples))
        more = f" and {len(counts) - examples} more" if len(counts) > examples else ""
        parts.append(f"column '{column}' has {sum(counts.values())} value(s) not seen in "
                     f"training ({shown}{more})")
    return f"{source}: {'; '.join(parts)}; they are encoded as all-zero"


_SOURCE: ContextVar[str | None] = ContextVar("aetool_data_source", default=None)


@contextlib.contextmanager
def _scoped(var: ContextVar[Any], value: Any) -> Iterator[None]:
    """``var`` set to ``value`` inside the block, restored after it."""
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def data_source(name: str) -> contextlib.AbstractContextManager[None]:
    """Name the file being processed, so errors raised deeper down can say which file it is."""
    return _scoped(_SOURCE, name)


def source_name(default: str) -> str:
    return _SOURCE.get() or default


_FIRST_ROW: ContextVar[int] = ContextVar("aetool_first_row", default=0)


def rows_from(offset: int) -> contextlib.AbstractContextManager[None]:
    """The data rows being processed start after ``offset`` rows of the file (a streamed
    chunk), so a row named in an error is the row of the file, not of the chunk."""
    return _scoped(_FIRST_ROW, offset)


def _file_row(position: int) -> int:
    """The 1-based data row of the file for 0-based ``position`` in the current frame."""
    return _FIRST_ROW.get() + position + 1


def align_columns(frame: pd.DataFrame, expected: list[str], source: str,
                  warn_extra: bool = True, unused: Collection[str] = ()) -> pd.DataFrame:
    """The training columns of ``frame`` in training order: a clear error for a missing one, a
    warning for extra ones (ignored) unless ``warn_extra`` is off (they are passed through).
    Missing ``unused`` columns (dropped at fit time as constant) are filled with blanks."""
    present = [str(c) for c in frame.columns]
    absent_unused = [c for c in expected if c not in present and c in unused]
    if absent_unused:
        frame = frame.assign(**dict.fromkeys(absent_unused, np.nan))
        present += absent_unused
    missing = [c for c in expected if c not in present]
    if missing:
        raise DataError(
            f"{source}: missing column '{missing[0]}' that the model was trained on "
            f"({len(missing)} missing in all); score data with the training columns"
        )
    extra = [c for c in present if c not in expected]
    if extra and warn_extra:
        warnings.warn(f"{source}: ignoring column(s) not seen in training: {', '.join(extra)}",
                      DataWarning, stacklevel=2)
    return frame[expected]


def check_input_kind(model: Any, is_images: bool, source: str) -> None:
    """A model trained on images cannot take a table, nor the other way round: say so."""
    trained_on_images = hasattr(getattr(model, "preprocessor_", None), "shape")
    if trained_on_images != is_images:
        kinds = ("images", "a table") if trained_on_images else ("a table", "images")
        raise DataError(f"{source}: the model was trained on {kinds[0]} and this is "
                        f"{kinds[1]}; use a model trained on {kinds[1]}")


def align_to_model(frame: pd.DataFrame, model: Any, source: str) -> pd.DataFrame:
    """``frame``'s columns matched to the ones ``model`` was fitted on (see align_columns); the
    columns its preprocessing dropped as constant may be absent."""
    dropped = getattr(getattr(model, "preprocessor_", None), "dropped", ())
    if not hasattr(model, "feature_names_in_"):  # fitted on an unnamed array: by position
        width = int(getattr(model, "n_features_in_", frame.shape[1]))
        if frame.shape[1] != width:
            raise DataError(f"{source}: has {frame.shape[1]} feature columns; the model was "
                            f"fitted on an array of {width} unnamed columns, taken in order")
        return frame.to_numpy()  # unnamed, as the model was fitted
    return align_columns(frame, [str(c) for c in model.feature_names_in_], source,
                         unused=dropped)


SHOWN_NAMES = 5


def _warn_constant_columns(source: str, dropped: list[str], width: int) -> None:
    """Say which constant columns were dropped: the first few names and a count, a short line
    that stays the same from fold to fold of a cross-validation (Python then shows it once),
    rather than a list of hundreds of pixel columns in every fold."""
    names = ", ".join(dropped[:SHOWN_NAMES])
    more = f" and {len(dropped) - SHOWN_NAMES} more ({len(dropped)} of {width})" \
        if len(dropped) > SHOWN_NAMES else ""
    warnings.warn(f"{source}: dropped constant column(s): {names}{more}", DataWarning,
                  stacklevel=3)


def _warn_left_out(source: str, left_out: list[ColumnLeftOut]) -> None:
    """One warning naming every column left out, what it holds and how to use it."""
    parts = "; ".join(f"'{exc.column}' {exc.what}: {exc.remedy}" for exc in left_out)
    names = ",".join(exc.column for exc in left_out)
    warnings.warn(f"{source}: left out {len(left_out)} column(s) the model cannot use: {parts} "
                  f"(--exclude '{names}' leaves them out without this warning)",
                  DataWarning, stacklevel=3)


def _warn_counter(numeric: pd.Series, column: str, source: str) -> None:
    """Warn about a numeric column that rises (or falls) from every row to the next, or holds
    each whole number of its range once: a row number, an id or a time stamp. As a feature it
    makes every new row numbered beyond the training range look anomalous, so the user should
    pass it as the id column instead."""
    if len(numeric) < MIN_ROWS_FOR_COUNTER or numeric.isna().any():
        return
    values = numeric.to_numpy(dtype=float)
    steps = np.diff(values)
    if np.all(steps > 0) or np.all(steps < 0):
        what = f"changes in the same direction in every row ({values[0]:g} to {values[-1]:g})"
    elif (np.all(values == np.round(values)) and values.max() - values.min() == len(values) - 1
          and len(np.unique(values)) == len(values)):
        what = (f"holds each whole number from {values.min():g} to {values.max():g} once, "
                f"in some order")
    else:
        return
    warnings.warn(
        f"{source}: column '{column}' {what}, like a row number, id or time stamp; "
        f"as a feature it makes new rows beyond that range look anomalous: pass it as "
        f"--id-column '{column}' or leave it out with --exclude '{column}'",
        DataWarning, stacklevel=3)


LABEL_NAMES = frozenset({"label", "labels", "class", "target", "y", "outlier", "outliers",
                         "anomaly", "isanomaly", "isoutlier", "fraud", "isfraud", "groundtruth"})


def _warn_label_like(series: pd.Series, column: str, source: str) -> None:
    """Warn about a two-valued column named like a label ('Class', 'is_fraud', 'y'): as a
    feature it tells the model which rows are the anomalies, and the user most likely meant
    to score against it."""
    if re.sub(r"[^a-z]", "", column.lower()) in LABEL_NAMES and series.nunique() == 2:
        warnings.warn(
            f"{source}: column '{column}' looks like a label (two values, named like one) and is "
            f"used as a feature; pass it as --label-column '{column}' to be scored against it, "
            f"or leave it out with --exclude '{column}'", DataWarning, stacklevel=3)


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


CURRENCY_SIGN = r"^([+-]?)\s*[$€£¥]\s*"
GROUPED_DIGITS = r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?"


def _numbers(series: pd.Series) -> pd.Series:
    """The values as numbers, NaN where missing or not a number. Text written as a spreadsheet
    shows numbers reads as the number: thousands separators ('5,188.60'), a currency sign
    ('$24.22') and a percent sign ('14.4%', read as 14.4)."""
    direct = pd.to_numeric(series, errors="coerce")
    left = direct.isna() & series.notna()
    if _is_numeric(series) or not left.any():
        return direct
    text = series[left].astype(str).str.strip()
    plain = text.str.replace(CURRENCY_SIGN, r"\1", regex=True).str.replace(r"\s*%$", "",
                                                                          regex=True)
    plain = plain.where(~plain.str.fullmatch(GROUPED_DIGITS), plain.str.replace(",", ""))
    direct = direct.astype("float64")
    direct[left] = pd.to_numeric(plain, errors="coerce")
    return direct


# Text that marks a missing value where pandas' own markers (NA, N/A, null, ...) are not used:
# UCI's '?' above all, and a lone dash or dot.
MISSING_MARKS = ("?", "-", "--", ".")


def _missing_marks(series: pd.Series) -> pd.Series:
    """Mask of the values that are one of MISSING_MARKS (text columns only)."""
    if _is_numeric(series):
        return pd.Series(False, index=series.index)
    return series.astype("string").str.strip().isin(MISSING_MARKS).fillna(False).astype(bool)


def _text_values(series: pd.Series) -> pd.Series:
    """Mask of the values that are present but do not read as numbers (:func:`_numbers`); a
    missing-value mark is not text but missing."""
    return _numbers(series).isna() & series.notna() & ~_missing_marks(series)


def _as_numeric(series: pd.Series, source: str) -> pd.Series | None:
    """The column as floats (:func:`_numbers`; missing-value marks are missing), or None when
    it holds text that is not numbers."""
    if _is_numeric(series):
        return series.astype("float64")
    numbers = _numbers(series)  # parsed once: this runs on every scored chunk
    if (numbers.isna() & series.notna() & ~_missing_marks(series)).any():
        return None
    return numbers.astype("float64")


def _warn_formatted_numbers(series: pd.Series, numbers: pd.Series, column: str,
                            source: str) -> None:
    """Say once, when learning, that a text column was read as numbers, with an example, and
    how many of its values were missing-value marks."""
    if _is_numeric(series):
        return
    marks = _missing_marks(series)
    if marks.any():
        shown = sorted(set(series[marks].astype(str).str.strip()))
        warnings.warn(f"{source}: column '{column}' holds numbers with {int(marks.sum())} "
                      f"value(s) {', '.join(repr(m) for m in shown)}, read as missing (filled "
                      f"with the column's median)", DataWarning, stacklevel=4)
    formatted = pd.to_numeric(series, errors="coerce").isna() & series.notna() & ~marks
    if formatted.any():
        first = formatted.to_numpy().argmax()
        warnings.warn(f"{source}: column '{column}' holds numbers written as text (e.g. "
                      f"'{str(series.iloc[first]).strip()}', read as {numbers.iloc[first]:g}); "
                      "thousands separators, currency and percent signs are left out",
                      DataWarning, stacklevel=4)


DATE_REMEDY = "to use it, add numeric features derived from it (hour, weekday)"
ID_REMEDY = "pass it as --id-column to carry it into the output"


def _leave_out_dates(series: pd.Series, column: str) -> None:
    """A date or time column (Parquet, DataFrame) would otherwise enter as nanoseconds: every row
    from a later period would then look anomalous, so it is left out, saying how to use it."""
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        raise ColumnLeftOut(column, f"holds dates or times ({series.dtype})", DATE_REMEDY)


def combined_refusal(source: str, refused: list[tuple[str, DataError]]) -> DataError:
    """One error for every column refused while learning a table, so a user fixes them in one
    go instead of one rerun each: a single refusal as it was, several numbered on one line with
    the --exclude that leaves them all out."""
    if len(refused) == 1:
        return refused[0][1]
    prefix = f"{source}: "
    parts = [str(exc).removeprefix(prefix) for _, exc in refused]
    names = ",".join(name for name, _ in refused)
    listed = " ".join(f"({i}) {part};" for i, part in enumerate(parts, 1))
    return DataError(f"{source}: {len(refused)} columns cannot be used as they are: {listed} "
                     f"to leave them all out: --exclude '{names}'")


DATE_TEXT = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
    r"([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?)?\s*$")
DATE_SHARE = 0.9  # of the present values: more than this look like dates, so the column does


def _leave_out_date_text(series: pd.Series, column: str) -> None:
    """Text that reads as dates (2024-03-01, 01/03/2024, with or without a time) would be
    one-hot encoded as categories, or left out as free text under the wrong name: left out as
    a date column, with the same advice as for Parquet datetimes."""
    present = series.dropna().astype(str)
    if present.empty:
        return
    sample = present.iloc[:1000]
    if sample.str.match(DATE_TEXT).mean() > DATE_SHARE:
        raise ColumnLeftOut(column, f"holds dates or times as text (e.g. '{sample.iloc[0]}')",
                            DATE_REMEDY)


def _refuse_stray_text(series: pd.Series, column: str, source: str) -> None:
    """A column of numbers with a few text values ('?', a typo) is not free text: name the first
    stray value and its row, so the user can fix it rather than drop the column."""
    stray = _text_values(series)
    if 0 < stray.sum() <= 0.1 * series.notna().sum():
        row = int(np.flatnonzero(stray.to_numpy())[0])
        raise DataError(
            f"{source}: column '{column}' holds numbers but {int(stray.sum())} value(s) are text, "
            f"first '{series.iloc[row]}' at data row {_file_row(row)}; blank them out (they are then "
            f"imputed) or fix them"
        )


def _check_finite(values: pd.Series, column: str, source: str) -> None:
    inf = np.isinf(values.to_numpy(dtype="float64", na_value=np.nan))
    if inf.any():
        row = int(np.flatnonzero(inf)[0])
        raise DataError(
            f"{source}: column '{column}' has infinite values (first at data row {_file_row(row)}); "
            "replace them or leave the column out with --exclude"
        )


def _mean_and_spread(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation computed on values divided by their largest magnitude, so
    columns near the float64 limit (1e300) do not overflow when summed or squared, and columns
    of tiny values (1e-15) keep their scale; a spread under 1e-9 of the magnitude counts as 0."""
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    if peak == 0.0:
        return 0.0, 0.0
    scaled = values / peak
    spread = float(scaled.std())
    # below 1e-9 of the magnitude the differences are rounding noise, not signal
    return peak * float(scaled.mean()), peak * spread if spread > 1e-9 else 0.0


def _log_view(values: np.ndarray, center: float, spread: float) -> np.ndarray:
    """sign(z)·log(1 + |z|) of z = (values - center) / spread: linear near the centre,
    logarithmic in the tails."""
    z = (values - center) / spread
    return np.sign(z) * np.log1p(np.abs(z))


@dataclass
class TablePreprocessor:
    """Fitted column handling; ``to_dict``/``from_dict`` round-trip it through JSON."""

    numeric: dict[str, dict[str, float]] = field(default_factory=dict)
    categorical: dict[str, list[str]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    log_views: dict[str, dict[str, float]] = field(default_factory=dict)
    # columns with more than MAX_CATEGORIES categories: how many rarer ones share the zero code
    folded: dict[str, int] = field(default_factory=dict)

    # -- fitting ---------------------------------------------------------------------------------
    @classmethod
    def fit(cls, frame: pd.DataFrame, source: str = "data",
            log_views: bool = False) -> TablePreprocessor:
        """Learn the column handling from training data; ``log_views`` adds the log-compressed
        view of each numeric column with more than ten distinct values."""
        source = source_name(source)
        if frame.shape[1] == 0:
            raise DataError(f"{source}: no feature columns left to train on")
        if frame.shape[0] < 2:
            raise DataError(f"{source}: has 1 sample (data row); training needs at least 2")
        prep = cls()
        refused: list[tuple[str, DataError]] = []
        left_out: list[ColumnLeftOut] = []
        for column in frame.columns:
            try:
                prep._learn_column(str(column), frame[column], source, log_views)
            except ColumnLeftOut as exc:
                left_out.append(exc)
            except DataError as exc:  # every column the user must act on, named at once
                refused.append((str(column), exc))
        if refused:
            raise combined_refusal(source, refused)
        if prep.dropped:
            _warn_constant_columns(source, prep.dropped, frame.shape[1])
        if left_out and prep.order:
            _warn_left_out(source, left_out)
        prep.dropped += [exc.column for exc in left_out]  # like constant ones: may be absent
        if not prep.order:
            unusable = "".join(f"; column '{exc.column}' {exc.what}" for exc in left_out)
            raise DataError(f"{source}: no column the model can learn from (every column is "
                            f"constant{' or unusable' if left_out else ''}){unusable}")
        return prep

    def _learn_column(self, name: str, series: pd.Series, source: str, log_views: bool) -> None:
        """Learn one column's handling (see :meth:`fit`), or leave it out (ColumnLeftOut) or
        refuse it (DataError)."""
        if series.isna().all():
            raise ColumnLeftOut(name, "is empty (all values missing)", "it holds nothing to use")
        _leave_out_dates(series, name)
        _warn_label_like(series, name, source)
        numeric = _as_numeric(series, source)
        if numeric is not None and numeric.isna().all():  # nothing but missing-value marks
            raise ColumnLeftOut(name, "is empty (all values missing)", "it holds nothing to use")
        if numeric is not None:
            _warn_formatted_numbers(series, numeric, name, source)
            _check_finite(numeric, name, source)
            _warn_counter(numeric, name, source)
            finite = numeric.dropna()
            distinct = int(finite.nunique())
            if distinct <= 1 and not numeric.isna().any():
                self.dropped.append(name)
                return
            median = float(finite.median())
            filled = numeric.fillna(median)
            mean, std = _mean_and_spread(filled.to_numpy())
            self.numeric[name] = {"fill": median, "mean": mean,
                                  "scale": std if std > 0.0 else 1.0}
            self.order.append(name)
            if log_views and distinct >= LOG_VIEW_MIN_VALUES:
                view = _log_view(filled.to_numpy(), median, self.numeric[name]["scale"])
                self.log_views[name] = {"mean": float(view.mean()),
                                        "scale": float(view.std()) or 1.0}
            return
        _leave_out_date_text(series, name)
        text = series.astype("string").fillna(MISSING_CATEGORY)
        n_unique = int(text.nunique())
        every_value_distinct = n_unique == len(text) and len(text) >= MIN_ROWS_FOR_DISTINCT
        if (n_unique > MAX_CATEGORIES and n_unique > 0.2 * len(text)) or every_value_distinct:
            _refuse_stray_text(series, name, source)
            raise ColumnLeftOut(name, f"looks like free text or an identifier ({n_unique} distinct "
                                f"values in {len(text)} rows, e.g. '{text.iloc[0]}')", ID_REMEDY)
        if n_unique <= 1:
            self.dropped.append(name)
            return
        counts = text.value_counts()
        self.categorical[name] = sorted(str(v) for v in counts.index[:MAX_CATEGORIES])
        self.order.append(name)
        if n_unique > MAX_CATEGORIES:
            self.folded[name] = n_unique - MAX_CATEGORIES
            rare = counts.iloc[MAX_CATEGORIES:].sum() / len(text)
            warnings.warn(
                f"{source}: column '{name}' has {n_unique} categories; the "
                f"{MAX_CATEGORIES} most frequent are one-hot encoded and the other "
                f"{n_unique - MAX_CATEGORIES} ({rare:.0%} of rows) share one all-zero code; "
                f"if the column is an identifier, pass it as --id-column or --exclude it",
                DataWarning, stacklevel=3)

    # -- applying --------------------------------------------------------------------------------
    @property
    def numeric_columns(self) -> list[str]:
        """The numeric columns, in training order."""
        return [c for c in self.order if c in self.numeric]

    @property
    def categorical_columns(self) -> list[str]:
        """The categorical (one-hot) columns, in training order."""
        return [c for c in self.order if c in self.categorical]

    @property
    def categorical_share(self) -> float:
        """The share of the encoded columns (log views left out) that are one-hot codes of
        categorical columns: 0 for an all-numeric table, 1 for an all-categorical one."""
        return one_hot_share(len(self.numeric), (len(c) for c in self.categorical.values()))

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded features: numeric columns, then ``column=category``."""
        names: list[str] = []
        for column in self.order:
            if column in self.numeric:
                names.append(column)
            else:
                names.extend(f"{column}={c}" for c in self.categorical[column])
        return names + [f"log({column})" for column in self.log_views]

    @property
    def feature_groups(self) -> list[str]:
        """For each encoded feature, the original column it came from."""
        groups: list[str] = []
        for column in self.order:
            width = 1 if column in self.numeric else len(self.categorical[column])
            groups.extend([column] * width)
        return groups + list(self.log_views)

    def transform(self, frame: pd.DataFrame, source: str = "data"
                  ) -> tuple[np.ndarray, dict[str, Counter[str]]]:
        """Encode ``frame`` to float32; returns the matrix and, per categorical column, the
        counts of values training never saw (they are encoded as all-zero). The numeric
        columns are encoded together, a few thousand rows at a time (:meth:`_encode_numeric`)."""
        source = source_name(source)
        frame = frame.rename(columns=str)
        numeric = self.numeric_columns
        positions, width = self._positions()
        matrix = np.empty((len(frame), width), dtype=np.float32)
        unseen: dict[str, Counter[str]] = {}
        if numeric:
            values = self._numeric_values(frame, numeric, source)
            arrays = self._numeric_arrays()
            where = [positions[c] for c in numeric]
            contiguous = where == list(range(len(where)))
            staging = None if contiguous else np.empty((len(frame), len(where)), np.float32)
            target = matrix[:, :len(where)] if contiguous else staging
            views = matrix[:, width - len(self.log_views):]
            for start in range(0, len(frame), ROWS_PER_BLOCK):  # temporaries stay in cache
                rows = slice(start, start + ROWS_PER_BLOCK)
                missing = self._check_finite_block(values[rows], numeric, start, source)
                self._encode_numeric(values[rows], missing, target[rows], views[rows], arrays)
            if staging is not None:  # categorical columns sit between the numeric ones
                matrix[:, where] = staging
        for column in self.categorical_columns:
            categories = self.categorical[column]
            text = frame[column].astype("string").fillna(MISSING_CATEGORY).astype(object)
            codes = pd.Index(categories).get_indexer(text.to_numpy())
            block = matrix[:, positions[column]:positions[column] + len(categories)]
            block[:] = 0.0
            known = codes >= 0
            block[np.flatnonzero(known), codes[known]] = 1.0
            if not known.all() and column not in self.folded:  # folded: rare by design
                unseen[column] = Counter(text.to_numpy()[~known].tolist())
        return matrix, unseen

    def _numeric_arrays(self) -> dict[str, Any]:
        """The fitted statistics of the numeric columns as arrays, for :meth:`_encode_numeric`."""
        numeric = self.numeric_columns
        stats = [self.numeric[c] for c in numeric]
        logged = [numeric.index(c) for c in self.log_views]
        return {
            "fill": np.asarray([s["fill"] for s in stats]),
            "mean": np.asarray([s["mean"] for s in stats]),
            "scale": np.asarray([s["scale"] for s in stats]),
            "logged": None if logged == list(range(len(numeric))) else logged,
            "view_mean": np.asarray([v["mean"] for v in self.log_views.values()]),
            "view_scale": np.asarray([v["scale"] for v in self.log_views.values()]),
        }

    @staticmethod
    def _encode_numeric(values: np.ndarray, missing: bool, numeric: np.ndarray,
                        views: np.ndarray, arrays: dict[str, Any]) -> None:
        """Rows of the numeric columns (float64, NaN where missing if ``missing``; left as they
        are) encoded into ``numeric`` and ``views`` (float32 places in the matrix): filled,
        standardised, log views, clipped. Each step is the arithmetic of the column-by-column
        form, so the float32 results are the same bits."""
        if missing:
            values = np.where(np.isnan(values), arrays["fill"], values)
        if views.shape[1]:
            logged = arrays["logged"]
            pick = (lambda a: a) if logged is None else (lambda a: a[..., logged])
            z = pick(values) - pick(arrays["fill"])
            z /= pick(arrays["scale"])
            view = np.abs(z)
            np.log1p(view, out=view)
            np.copysign(view, z, out=view)  # sign(z) * log1p(|z|), one pass fewer
            view -= arrays["view_mean"]
            with np.errstate(over="ignore"):  # beyond float32: inf, then clipped as before
                np.divide(view, arrays["view_scale"], out=views, casting="same_kind")
            np.clip(views, -MAX_STANDARD_SCORE, MAX_STANDARD_SCORE, out=views)
        centred = values - arrays["mean"]
        with np.errstate(over="ignore"):
            np.divide(centred, arrays["scale"], out=numeric, casting="same_kind")
        np.clip(numeric, -MAX_STANDARD_SCORE, MAX_STANDARD_SCORE, out=numeric)

    def _positions(self) -> tuple[dict[str, int], int]:
        """Where each column's first feature sits in the encoded matrix, and its width."""
        positions: dict[str, int] = {}
        start = 0
        for column in self.order:
            positions[column] = start
            start += 1 if column in self.numeric else len(self.categorical[column])
        return positions, start + len(self.log_views)

    @staticmethod
    def _numeric_values(frame: pd.DataFrame, columns: list[str], source: str) -> np.ndarray:
        """The numeric columns as one float64 array (NaN where missing; a view of the frame's
        own values when it can be: do not change it), with the one-line errors for text in a
        numeric column and for infinite values."""
        typed = [c for c in columns if _is_numeric(frame[c])]
        if len(typed) == len(columns):
            values = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = np.empty((len(frame), len(columns)))
            for i, column in enumerate(columns):
                series = frame[column]
                converted = _as_numeric(series, source)
                if converted is None:
                    sample = series[_text_values(series)]
                    raise DataError(
                        f"{source}: column '{column}' was numeric in training but holds text "
                        f"here (e.g. '{sample.iloc[0]}'); fix the values or retrain"
                    )
                values[:, i] = converted.to_numpy(dtype=np.float64, na_value=np.nan)
        return values

    @staticmethod
    def _check_finite_block(values: np.ndarray, columns: list[str], first_row: int,
                            source: str) -> bool:
        """Whether rows of ``values`` have missing values; raises the one-line error for an
        infinite one. One summing pass: the sum is finite when every value is."""
        with np.errstate(over="ignore", invalid="ignore"):  # huge finite values may sum to inf
            if np.isfinite(values.sum()):
                return False
        infinite = np.isinf(values)
        if infinite.any():
            column = columns[int(np.flatnonzero(infinite.any(axis=0))[0])]
            row = first_row + int(np.flatnonzero(infinite[:, columns.index(column)])[0])
            raise DataError(
                f"{source}: column '{column}' has infinite values (first at data row "
                f"{_file_row(row)}); replace them or leave the column out with --exclude"
            )
        return True

    def inverse(self, matrix: np.ndarray) -> pd.DataFrame:
        """Map encoded rows back to the original units: numeric columns un-scaled, categorical
        columns as their most likely category; dropped constant columns are not restored and
        log views are left out (the column's own feature carries its value)."""
        columns: dict[str, Any] = {}
        start = 0
        for column in self.order:
            if column in self.numeric:
                stats = self.numeric[column]
                columns[column] = matrix[:, start] * stats["scale"] + stats["mean"]
                start += 1
            else:
                categories = self.categorical[column]
                block = matrix[:, start:start + len(categories)]
                columns[column] = np.asarray(categories, dtype=object)[block.argmax(axis=1)]
                start += len(categories)
        return pd.DataFrame(columns)

    # -- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"kind": "table", "numeric": self.numeric, "categorical": self.categorical,
                "dropped": self.dropped, "order": self.order, "log_views": self.log_views,
                "folded": self.folded}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TablePreprocessor:
        return cls(numeric=state["numeric"], categorical=state["categorical"],
                   dropped=list(state["dropped"]), order=list(state["order"]),
                   log_views=dict(state.get("log_views", {})),
                   folded=dict(state.get("folded", {})))
