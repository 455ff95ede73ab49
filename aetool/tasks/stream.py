"""Streaming scores: a CSV or Parquet file of any size is read, scored and written chunk by chunk.

The next chunk is read and parsed in a background thread while the current one is scored, and
the output goes to a temporary file renamed only at the end, so an interrupted run leaves nothing
that looks complete. Chunks are a whole number of scoring batches, so fp32 streaming scores equal
in-memory ones exactly.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from aetool.data.output import CSV_SEPARATORS, atomic_output, table_output_kind
from aetool.data.preprocess import UnseenCategoryWarning, check_input_kind, rows_from
from aetool.data.source import TableSpec, split_frame
from aetool.data.tables import iter_table_chunks
from aetool.tasks.detect import score_table

DEFAULT_CHUNK_BATCHES = 16


def prefetched(iterator: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Yield items of ``iterator`` while the next one is produced in a background thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aetool-reader") as pool:
        pending = pool.submit(next, iterator, None)
        while True:
            item = pending.result()
            if item is None:
                return
            pending = pool.submit(next, iterator, None)
            yield item


@contextlib.contextmanager
def chunk_warnings_merged() -> Iterator[None]:
    """Warnings of a chunked run said once: unseen categories summed over all chunks into one
    warning at the end, any other warning repeated by several chunks shown only the first time."""
    unseen: dict[str, Counter[str]] = {}
    source = ""
    others: dict[str, warnings.WarningMessage] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for record in caught:
        if isinstance(record.message, UnseenCategoryWarning):
            source = record.message.source
            for column, counts in record.message.unseen.items():
                unseen.setdefault(column, Counter()).update(counts)
        else:
            others.setdefault(str(record.message), record)
    for record in others.values():
        warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)
    if unseen:
        warnings.warn(UnseenCategoryWarning(source, unseen), stacklevel=3)


class _ParquetSink:
    """Append DataFrames to one Parquet file (pyarrow writer opened on the first chunk)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.writer: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.handle, table.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def stream_score(detector: Any, data: str | Path, out: str | Path, spec: TableSpec | None = None,
                 top_k: int = 3, chunk_rows: int | None = None,
                 progress: bool = True) -> tuple[int, int]:
    """Score the table ``data`` into ``out`` (CSV, TSV or Parquet by suffix); returns the number
    of rows scored and of rows flagged as anomalies."""
    from tqdm.auto import tqdm

    check_input_kind(detector, False, str(data))  # before the progress bar and the output open

    spec = spec or getattr(detector, "table_spec_", TableSpec())
    batch = int(detector.inference_settings().resolved().batch_size)
    chunk_rows = chunk_rows or batch * DEFAULT_CHUNK_BATCHES
    chunk_rows = max(batch, (chunk_rows // batch) * batch)  # whole batches: exact fp32 scores
    out = Path(out)
    kind = table_output_kind(out)
    parquet = kind == "parquet"
    rows = flagged = 0
    with chunk_warnings_merged(), atomic_output(out, "wb" if parquet else "w") as handle:
        bar = tqdm(desc="scoring", unit="rows", unit_scale=True, disable=not progress)
        sink = _ParquetSink(handle) if parquet else None
        try:
            for chunk in prefetched(iter_table_chunks(data, chunk_rows)):
                with rows_from(rows):
                    table = split_frame(chunk, spec, str(data), for_scoring=True)
                    frame = score_table(detector, table, top_k)
                if sink is not None:
                    sink.write(frame)
                else:
                    frame.to_csv(handle, index=False, header=rows == 0,
                                 sep=CSV_SEPARATORS[kind])
                rows += len(frame)
                flagged += int(frame["is_anomaly"].sum())
                bar.update(len(frame))
        finally:
            if sink is not None:
                sink.close()
            bar.close()
    return rows, flagged
