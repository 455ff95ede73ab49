"""Reading tables (CSV, plain or compressed, with a sniffed delimiter and decimal mark; Parquet)
with one-line errors for bad files."""

from __future__ import annotations

import bz2
import codecs
import contextlib
import csv
import difflib
import gzip
import lzma
import os
import re
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pandas as pd

from aetool.data.preprocess import DataWarning
from aetool.errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")
ARRAY_SUFFIXES = (".npy", ".npz")
COMPRESSED_CSV_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}  # and .zip
COMPRESSED_SUFFIXES = (*COMPRESSED_CSV_OPENERS, ".zip")
SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
# Files a user may point at that are not tables aetool reads, and what to do instead
_SAVE = "save the table as CSV or Parquet (pandas: frame.to_csv(path, index=False))"
UNREAD_SUFFIXES = {".json": f"JSON is not read; {_SAVE}", ".jsonl": f"JSON is not read; {_SAVE}",
                   ".pkl": f"pickles are never read (loading one can run code); {_SAVE}",
                   ".pickle": f"pickles are never read (loading one can run code); {_SAVE}",
                   ".h5": f"HDF5 is not read; {_SAVE}", ".hdf5": f"HDF5 is not read; {_SAVE}",
                   ".feather": f"Feather is not read; {_SAVE}"}
DAMAGED_FILE_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)  # cut or corrupt archives


def _damaged(path: Path, exc: BaseException) -> DataError:
    return DataError(f"{path}: cannot be read ({type(exc).__name__}); a compressed file may be "
                     f"damaged or cut short")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a CSV, Parquet, .npy or .npz file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty; it needs a header row and data rows")
    if path.suffix.lower() in SPREADSHEET_SUFFIXES:
        raise DataError(f"{path}: spreadsheets are not read; save the sheet as CSV or Parquet")
    if path.suffix.lower() in UNREAD_SUFFIXES:
        raise DataError(f"{path}: {UNREAD_SUFFIXES[path.suffix.lower()]}")


def _open_bytes(path: Path, raw: IO[bytes] | None = None) -> IO[bytes]:
    """The file's bytes, decompressed for .gz, .bz2, .xz and single-file .zip (as pandas reads
    them), so the delimiter can be sniffed from compressed files too; read through ``raw``, the
    file already open, when given (a stream counts the compressed bytes it has read)."""
    source = raw if raw is not None else path
    suffix = path.suffix.lower()
    if suffix in COMPRESSED_CSV_OPENERS:
        return COMPRESSED_CSV_OPENERS[suffix](source, "rb")
    if suffix == ".zip":
        try:
            archive = zipfile.ZipFile(source)
        except zipfile.BadZipFile:
            raise DataError(f"{path}: not a valid zip file") from None
        with archive:  # the open member keeps the file open after the archive closes
            members = [m for m in archive.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise DataError(f"{path}: a zipped table must hold exactly one file, this "
                                f"holds {len(members)}")
            return archive.open(members[0])
    return raw if raw is not None else open(path, "rb")


DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+(?:[eE][-+]?\d+)?")  # 3,14 as continental Europe writes it
DECIMAL_POINT = re.compile(r"[-+]?\d*\.\d+(?:[eE][-+]?\d+)?")


HEAD_BYTES = 65536  # read after the header line to sniff the delimiter and decimal mark
MAX_HEADER_BYTES = 8 << 20  # a header line longer than this is not a table aetool can model
MAX_COLUMNS = 100_000


def _head_text(path: Path) -> str:
    """The whole header line and the 64 KiB after it, as text (a multi-byte character cut at
    the end is dropped). A header line longer than MAX_HEADER_BYTES is refused here, before
    pandas would try to build millions of columns."""
    try:
        with _open_bytes(path) as handle:
            head = handle.readline(MAX_HEADER_BYTES + 1)
            if len(head) > MAX_HEADER_BYTES and not head.endswith(b"\n"):
                raise DataError(
                    f"{path}: the header line is longer than {MAX_HEADER_BYTES >> 20} MiB "
                    f"({head.count(b',') + 1:,}+ columns); aetool reads at most "
                    f"{MAX_COLUMNS:,} columns, so select the columns you need first")
            head += handle.read(HEAD_BYTES)
    except DAMAGED_FILE_ERRORS as exc:
        raise _damaged(path, exc) from None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a multi-byte character cut at the block end
            raise _not_utf8(path, exc.start) from None
        return head[: exc.start].decode("utf-8")


def _not_utf8(path: Path, offset: int) -> DataError:
    return DataError(f"{path}: not UTF-8 text (bad byte at offset {offset:,}); re-save it as "
                     "UTF-8")


def _first_bad_utf8_offset(path: Path) -> int | None:
    """The byte offset of the first byte that is not UTF-8 (of the decompressed text), found
    by decoding the file block by block: pandas reports offsets within its own buffer."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    done = 0
    with _open_bytes(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                return done + exc.start - len(decoder.getstate()[0])
            done += len(block)
    return None


def csv_options(path: Path) -> dict[str, Any]:
    """``sep`` and ``decimal`` for pandas, guessed from the first 50 lines: the delimiter among
    , ; tab | (',' if unsure; runs of spaces when every line splits so into as many fields),
    and a decimal comma when the delimiter is not a comma and the numbers are written 3,14
    rather than 3.14. A first line of numbers that fall among the values below them is data,
    not a header (columns named x0, x1, ... as for arrays; said in a warning). A header naming
    one column twice is warned about here, since pandas renames the copies."""
    lines = [line for line in _head_text(path).splitlines()[:50] if line.strip()]
    if lines and len(lines[0]) > HEAD_BYTES:  # too wide for the sniffer: the commonest mark
        delimiter = max(",;\t|", key=lines[0].count)
    else:
        try:
            delimiter = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    if _spaced(lines, delimiter):
        rows = [line.split() for line in lines]
        options: dict[str, Any] = {"sep": r"\s+"}
    else:
        rows = list(csv.reader(lines, delimiter=delimiter))
        options = {"sep": delimiter}
    if _headerless(rows):
        warnings.warn(f"{path}: the first line holds numbers like the lines below it, so it is "
                      f"read as data, not as a header; the columns are named x0 to "
                      f"x{len(rows[0]) - 1}", DataWarning, stacklevel=4)
        options.update(header=None, names=[f"x{i}" for i in range(len(rows[0]))])
        rows = [options["names"], *rows]
    if rows and len(rows[0]) > MAX_COLUMNS:
        raise DataError(f"{path}: the header names {len(rows[0]):,} columns; aetool reads at "
                        f"most {MAX_COLUMNS:,}, so select the columns you need first")
    _warn_duplicate_headers(path, rows[0] if rows else [])
    options["decimal"] = "."
    if options["sep"] not in (",", r"\s+"):
        fields = [f.strip() for row in rows[1:] for f in row]
        if (any(DECIMAL_COMMA.fullmatch(f) for f in fields)
                and not any(DECIMAL_POINT.fullmatch(f) for f in fields)):
            options["decimal"] = ","
    return options


def _spaced(lines: list[str], delimiter: str) -> bool:
    """Columns separated by runs of spaces (UCI's and numpy.savetxt's files): no line holds
    the sniffed delimiter, and every line splits at spaces into the same number (2 or more)."""
    if any(delimiter in line for line in lines) or len(lines) < 2:
        return False
    counts = {len(line.split()) for line in lines}
    return len(counts) == 1 and counts.pop() >= 2


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _headerless(rows: list[list[str]]) -> bool:
    """The first row is data: every field a number, and at least 80% of them within the range
    their column takes in the rows below (at least 5 of them). A header of numbers stays a
    header when it lies outside the values under it (years, wavelengths), when it counts the
    columns 0, 1, 2, ... or 1, 2, 3, ... (pandas' names for an array's columns), or when it
    holds whole numbers over columns of fractions."""
    if len(rows) < 6 or not rows[0]:
        return False
    first = [_number(f) for f in rows[0]]
    if any(v is None for v in first):
        return False
    whole = all(float(v).is_integer() for v in first)
    if whole and [int(v) - int(first[0]) for v in first] == list(range(len(first))) \
            and int(first[0]) in (0, 1):
        return False
    fractions = sum(any("." in row[j] for row in rows[1:] if j < len(row))
                    for j in range(len(first)))
    if whole and fractions >= len(first) / 2:
        return False
    inside = 0
    for j, value in enumerate(first):
        below = [v for row in rows[1:] if j < len(row) and (v := _number(row[j])) is not None]
        inside += bool(below) and min(below) <= value <= max(below)
    return inside >= 0.8 * len(first)


def _warn_duplicate_headers(path: Path, header: list[str]) -> None:
    """pandas reads a repeated header name as 'a', 'a.1', ...; say so, since explanations and
    --columns then use names the file does not show."""
    repeated = [(name, count) for name, count in Counter(header).items() if count > 1]
    if repeated:
        name, count = repeated[0]
        copies = ", ".join([f"'{name}'"] + [f"'{name}.{i}'" for i in range(1, count)])
        warnings.warn(f"{path}: column '{name}' appears {count} times in the header and is read "
                      f"as {copies}; rename the copies to tell them apart", DataWarning,
                      stacklevel=4)


def require_columns(named: Iterable[str | None], present: Sequence[str], source: str,
                    given_as: str) -> None:
    """A DataError for the first of the ``named`` columns (None skipped) that the table lacks,
    suggesting the closest existing name, since a typo is the usual cause."""
    for column in named:
        if column is None or column in present:
            continue
        close = difflib.get_close_matches(column, list(present), n=1, cutoff=0.6)
        if close:
            hint = f"did you mean '{close[0]}'?"
        else:
            shown = ", ".join(present[:10])
            more = f" and {len(present) - 10} more" if len(present) > 10 else ""
            hint = f"columns are: {shown}{more}"
        raise DataError(f"{source}: no column '{column}' (given as {given_as}); {hint}")


@contextlib.contextmanager
def _csv_errors(path: Path) -> Iterator[None]:
    """pandas' CSV errors as one-line DataErrors naming the file, for whole and chunked reads;
    a bad byte is reported at its offset in the file, not in pandas' buffer."""
    try:
        yield
    except UnicodeDecodeError as exc:
        offset = _first_bad_utf8_offset(path)
        raise _not_utf8(path, exc.start if offset is None else offset) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: no columns found; it needs a header row and data rows") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed CSV ({str(exc).splitlines()[0]})") from None
    except DAMAGED_FILE_ERRORS as exc:
        raise _damaged(path, exc) from None


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a whole CSV or Parquet table; raises DataError with the file name on any problem."""
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise DataError(f"{path}: unreadable Parquet file ({type(exc).__name__})") from None
    else:
        options = csv_options(path)
        with _csv_errors(path):
            frame = pd.read_csv(path, encoding="utf-8", **options)
        frame.attrs["headerless"] = options.get("header", 0) is None  # written back without
        frame.attrs["csv_format"] = {"sep": " " if options["sep"] == r"\s+" else options["sep"],
                                     "decimal": options["decimal"]}  # and in the same format
    if frame.shape[0] == 0:
        raise no_data_rows(path)
    return frame


def no_data_rows(path: str | os.PathLike[str]) -> DataError:
    """The error for a table that has a header and no rows, said alike by every reader."""
    return DataError(f"{path}: has a header but no data rows")


class ChunkReader:
    """A CSV or Parquet file read in chunks of about ``chunk_rows`` rows, and how far through
    the file the reading is, in bytes of the file itself (compressed bytes for a compressed
    CSV), so a progress bar shows true MB/s and a true share of the file."""

    def __init__(self, path: str | os.PathLike[str], chunk_rows: int) -> None:
        self.path = Path(path)
        _check_file(self.path)
        self.chunk_rows = chunk_rows
        self.total_bytes = self.path.stat().st_size
        self._consumed = 0

    @property
    def bytes_read(self) -> int:
        """Bytes of the file consumed so far (the CSV parser reads a little ahead). Recorded by
        the thread that iterates, so another thread (a progress bar) never touches the file
        itself: asking the file while the reader closed it failed with 'Bad file descriptor'."""
        return self._consumed

    def __iter__(self) -> Iterator[pd.DataFrame]:
        if self.path.suffix.lower() in PARQUET_SUFFIXES:
            yield from self._parquet_chunks()
            return
        options = csv_options(self.path)
        with open(self.path, "rb") as raw, _csv_errors(self.path), \
                _open_bytes(self.path, raw) as text:
            for chunk in pd.read_csv(text, encoding="utf-8", chunksize=self.chunk_rows,
                                     **options):
                self._consumed = min(raw.tell(), self.total_bytes)
                yield chunk
        self._consumed = self.total_bytes

    def _parquet_chunks(self) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(self.path)
        total, done = max(parquet.metadata.num_rows, 1), 0
        for batch in parquet.iter_batches(batch_size=self.chunk_rows):
            done += batch.num_rows
            self._consumed = int(done / total * self.total_bytes)
            yield batch.to_pandas(split_blocks=True)  # zero-copy columns: 4x faster here


def iter_table_chunks(path: str | os.PathLike[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Yield a CSV or Parquet file in chunks of about ``chunk_rows`` rows (for streaming)."""
    yield from ChunkReader(path, chunk_rows)


def sample_table(path: str | os.PathLike[str], n_rows: int, seed: int = 0,
                 chunk_rows: int = 100_000) -> pd.DataFrame:
    """A uniform random sample of ``n_rows`` rows (all rows if the file has fewer) of a table of
    any size, read chunk by chunk so memory holds only the sample and one chunk; rows keep their
    file order. Each row gets a random key and the ``n_rows`` smallest keys are kept."""
    import numpy as np

    if n_rows < 2:
        raise DataError(f"a sample needs at least 2 rows, got {n_rows}")
    rng = np.random.default_rng(seed)
    kept: pd.DataFrame | None = None
    seen = 0
    for chunk in iter_table_chunks(path, chunk_rows):
        chunk = chunk.assign(_sample_key=rng.random(len(chunk)),
                             _sample_row=np.arange(seen, seen + len(chunk)))
        seen += len(chunk)
        kept = chunk if kept is None else pd.concat([kept, chunk], ignore_index=True)
        if len(kept) > n_rows:
            kept = kept.nsmallest(n_rows, "_sample_key")
    if kept is None or len(kept) == 0:
        raise no_data_rows(path)
    kept = kept.sort_values("_sample_row").drop(columns=["_sample_key", "_sample_row"])
    return kept.reset_index(drop=True)
