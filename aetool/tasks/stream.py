"""Streaming scores: a CSV or Parquet file of any size is read, scored and written chunk by chunk.

Parsing, encoding, scoring and writing run in four threads, a chunk apart (see
:func:`stream_score`), and the output goes to a temporary file renamed only at the end, so an
interrupted run leaves nothing that looks complete. Chunks are a whole number of scoring
batches, so fp32 streaming scores equal in-memory ones exactly.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aetool.data.csv_text import csv_text
from aetool.data.output import CSV_SEPARATORS, atomic_output, table_output_kind
from aetool.data.preprocess import (
    UnseenCategoryWarning,
    check_input_kind,
    data_source,
    rows_from,
)
from aetool.data.source import Loaded, TableSpec, prepare_for_model, split_frame
from aetool.data.tables import ChunkReader, no_data_rows
from aetool.tasks.scores_table import details_for, scores_frame

# 8 batches of 4,096 rows: a 100-column chunk's arrays stay under glibc's 32 MiB mmap threshold,
# so they reuse heap memory instead of being mapped and zeroed anew (16 batches: 3x the sys time)
DEFAULT_CHUNK_BATCHES = 8


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


class _CsvSink:
    """Append DataFrames to one CSV or TSV file as pandas would write them (header first)."""

    def __init__(self, handle: Any, sep: str) -> None:
        self.handle = handle
        self.sep = sep
        self.header = True

    def write(self, frame: pd.DataFrame) -> None:
        data = csv_text(frame, self.sep, self.header)
        if data is None:  # a column type the fast writer leaves to pandas (dates, ...)
            data = frame.to_csv(index=False, header=self.header, sep=self.sep).encode()
        self.handle.write(data)
        self.header = False

    def close(self) -> None:
        pass


class _Progress:
    """A bar over the input file's bytes (MB/s; compressed bytes for compressed input) with
    the rows scored and rows/s beside it."""

    def __init__(self, reader: ChunkReader, enabled: bool, what: str = "scoring") -> None:
        from tqdm.auto import tqdm

        self.reader = reader
        self.bar = tqdm(desc=what, total=reader.total_bytes, unit="B", unit_scale=True,
                        disable=not enabled)
        self.start = time.perf_counter()
        self.shown = 0

    def update(self, rows: int) -> None:
        read = self.reader.bytes_read
        self.bar.update(read - self.shown)
        self.shown = read
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix_str(f"{rows:,} rows, {rows / elapsed:,.0f} rows/s", refresh=False)

    def close(self) -> None:
        self.bar.close()


def _numbered(chunks: Iterator[pd.DataFrame]) -> Iterator[tuple[int, pd.DataFrame]]:
    """Each chunk with the number of data rows before it (for errors that name a row)."""
    rows = 0
    for chunk in chunks:
        yield rows, chunk
        rows += len(chunk)


def whole_batch_rows(detector: Any, chunk_rows: int | None = None) -> int:
    """Rows per chunk: ``chunk_rows`` (default DEFAULT_CHUNK_BATCHES batches) rounded down to
    whole scoring batches, so fp32 scores of a streamed file equal in-memory ones exactly."""
    batch = int(detector.inference_settings().resolved().batch_size)
    chunk_rows = chunk_rows or batch * DEFAULT_CHUNK_BATCHES
    return max(batch, (chunk_rows // batch) * batch)


def labelled_chunks(detector: Any, data: str | Path, spec: TableSpec,
                    chunk_rows: int | None = None, explain: bool = False,
                    progress: bool = True) -> Iterator[tuple[int, Loaded, dict[str, np.ndarray]]]:
    """The table ``data`` read, split and scored a chunk at a time for evaluation: each
    chunk's first data row (0-based), the chunk with its labels as read (their encoding is
    the whole column's to decide) and its details. A progress bar over the file's bytes;
    callers merge the chunks' warnings (:func:`chunk_warnings_merged`)."""
    check_input_kind(detector, False, str(data))  # before the progress bar
    reader = ChunkReader(data, whole_batch_rows(detector, chunk_rows))
    source, rows = str(data), 0
    bar = None  # shown once the first chunk is read: a missing column is then one line alone
    try:
        for offset, chunk in _numbered(prefetched(iter(reader))):
            with rows_from(offset), data_source(source):
                table = split_frame(chunk, spec, source, need_labels=True, for_scoring=True,
                                    labels="classes")
                details = details_for(detector, table, explain=explain)
            rows += len(chunk)
            bar = bar or _Progress(reader, progress, "evaluating")
            bar.update(rows)
            yield offset, table, details
    finally:
        if bar is not None:
            bar.close()
    if rows == 0:
        raise no_data_rows(data)


def stream_score(detector: Any, data: str | Path, out: str | Path, spec: TableSpec | None = None,
                 top_k: int = 3, chunk_rows: int | None = None,
                 progress: bool = True) -> tuple[int, int]:
    """Score the table ``data`` into ``out`` (CSV, TSV or Parquet by suffix); returns the number
    of rows scored and of rows flagged as anomalies. Four stages overlap, one chunk each: a
    thread parses chunk n + 2, another encodes chunk n + 1 for the model, this thread scores
    chunk n, and a writer thread writes chunk n - 1."""
    check_input_kind(detector, False, str(data))  # before the progress bar and the output open

    spec = spec or getattr(detector, "table_spec_", TableSpec())
    out = Path(out)
    kind = table_output_kind(out)
    reader = ChunkReader(data, whole_batch_rows(detector, chunk_rows))
    source = str(data)

    def encoded(numbered: tuple[int, pd.DataFrame]) -> tuple[Loaded, np.ndarray]:
        offset, chunk = numbered
        with rows_from(offset), data_source(source):
            table = split_frame(chunk, spec, source, for_scoring=True)
            return table, detector.encode(prepare_for_model(detector, table))

    rows = flagged = 0
    with chunk_warnings_merged(), atomic_output(out, "wb") as handle, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="aetool-writer") as writer:
        bar = _Progress(reader, progress)
        sink = _ParquetSink(handle) if kind == "parquet" else _CsvSink(handle,
                                                                         CSV_SEPARATORS[kind])
        written: Future[None] | None = None
        try:
            for table, matrix in prefetched(map(encoded, prefetched(_numbered(iter(reader))))):
                details = detector.details_of_encoded(matrix, explain=top_k > 0)
                frame = scores_frame(detector, table, details, top_k)
                if written is not None:
                    written.result()  # one chunk in the writer at a time: memory stays flat
                written = writer.submit(sink.write, frame)
                rows += len(frame)
                flagged += int(frame["is_anomaly"].sum())
                bar.update(rows)
            if written is not None:
                written.result()
            if rows == 0:  # as a whole read says it; the partial output is discarded
                raise no_data_rows(data)
        finally:
            if written is not None:
                written.cancel()
                with contextlib.suppress(Exception):
                    written.result()
            sink.close()
            bar.close()
    return rows, flagged
