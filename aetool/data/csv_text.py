"""CSV text of a score table, byte for byte what pandas' ``to_csv(index=False)`` writes, built
column-wise in Arrow's C++ kernels: they release the GIL, so a writer thread overlaps the
reading and scoring of the next chunk, and a million rows take a fraction of a second.

pandas' rules, kept: floats as Python's ``repr`` (shortest round-trip), blanks for missing
values, ``True``/``False``, and a field quoted (quotes doubled) only when it holds the
separator, a quote or a line break. Arrow formats floats with the same shortest digits, but lays
out very small, very large and whole numbers differently; those values (rare in scores) are
formatted by ``repr``. Columns of other types (dates, mixed objects) make :func:`csv_text`
return None, and the caller writes the chunk with pandas.
"""

from __future__ import annotations

import csv
import io
import os
import re
from typing import Any

import numpy as np
import pandas as pd

# where Arrow's float text equals repr's: [1e-4, 1e10), not a whole number (measured on
# 3 million values per decade in tests/test_csv_text.py)
ARROW_FLOAT_RANGE = (1e-4, 1e10)


def _float_texts(values: np.ndarray) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    values = values.astype(np.float64, copy=False)
    size = np.abs(values)
    with np.errstate(invalid="ignore"):
        own = ~((size >= ARROW_FLOAT_RANGE[0]) & (size < ARROW_FLOAT_RANGE[1])
                & (values != np.rint(values)))
    texts = pc.cast(pa.array(values), pa.string())
    if own.any():
        fixes = ["" if v != v else repr(v) for v in values[own].tolist()]
        texts = pc.replace_with_mask(texts, pa.array(own), pa.array(fixes, pa.string()))
    return texts


def _quoted(texts: Any, sep: str) -> Any:
    """``texts`` with the fields that need it quoted as the csv module quotes (QUOTE_MINIMAL)."""
    import pyarrow.compute as pc

    special = "[" + re.escape(sep) + '"\r\n]'
    needs = pc.match_substring_regex(texts, special)
    if not pc.any(needs).as_py():
        return texts
    doubled = pc.replace_substring(texts, '"', '""')
    wrapped = pc.binary_join_element_wise('"', doubled, '"', "")
    return pc.if_else(needs, wrapped, texts)


def _column_texts(series: pd.Series, sep: str) -> Any | None:
    """One column as an Arrow string array of CSV fields, or None for a type left to pandas."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dtype = series.dtype
    values = series.to_numpy()
    if dtype == np.float64:
        return _float_texts(values)
    if dtype.kind in "iu":
        return pc.cast(pa.array(values), pa.string())
    if dtype == np.bool_:
        return pa.array(np.where(values, "True", "False"), pa.string())
    if dtype.kind in "OU" or isinstance(dtype, pd.StringDtype):
        try:
            texts = pa.array(series, pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text: pandas formats it
            return None
        return _quoted(pc.fill_null(texts, ""), sep)
    return None


def _header(columns: list[str], sep: str) -> str:
    line = io.StringIO()
    csv.writer(line, delimiter=sep, lineterminator=os.linesep).writerow(columns)
    return line.getvalue()


def csv_text(frame: pd.DataFrame, sep: str = ",", header: bool = True) -> bytes | None:
    """``frame.to_csv(index=False, sep=sep, header=header)`` as UTF-8 bytes, or None when a
    column's type is one this writer does not format (write the chunk with pandas then)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = [_column_texts(frame[name], sep) for name in frame.columns]
    if any(c is None for c in columns) or not columns:
        return None
    head = _header([str(c) for c in frame.columns], sep).encode() if header else b""
    if len(frame) == 0:
        return head
    lines = pc.binary_join_element_wise(*columns, sep) if len(columns) > 1 else columns[0]
    lines = pc.binary_join_element_wise(lines, pa.scalar(""), os.linesep)  # row + line end
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    _, offsets, data = lines.buffers()
    width = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    bounds = np.frombuffer(offsets, dtype=width)[[lines.offset, lines.offset + len(lines)]]
    return head + memoryview(data)[int(bounds[0]):int(bounds[1])].tobytes()
