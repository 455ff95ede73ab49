"""Atomic output: write to a temporary file beside the target, rename only when complete."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def _usual_mode(base: int) -> int:
    """``base`` (0o666 files, 0o777 folders) less the umask: what open() and mkdir() would give.
    tempfile's 0o600 / 0o700 would otherwise leave outputs readable by their owner only."""
    umask = os.umask(0)
    os.umask(umask)
    return base & ~umask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO]:
    """Open a temporary file next to ``path``; it replaces ``path`` only if the block succeeds,
    so an interrupted run never leaves a file that looks complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        os.fchmod(fd, _usual_mode(0o666))
        with os.fdopen(fd, mode, newline="" if "b" not in mode else None) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_directory(target: str | os.PathLike[str], write: Callable[[Path], object]) -> None:
    """Call ``write(tmpdir)`` and move the result to ``target`` only if it succeeds (an existing
    ``target`` is replaced), so a failed run leaves no half-written folder."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tmp.chmod(_usual_mode(0o777))
        write(tmp)
        for written in tmp.rglob("*"):  # some writers (safetensors) also create files 0o600
            if written.is_file():
                written.chmod(_usual_mode(0o666))
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


TABLE_OUTPUT_KINDS = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".parquet": "parquet",
                      ".pq": "parquet"}
CSV_SEPARATORS = {"csv": ",", "tsv": "\t"}


def table_output_kind(path: str | os.PathLike[str], also: tuple[str, ...] = ()) -> str:
    """'csv', 'tsv' or 'parquet' by ``path``'s suffix (or one of ``also``, e.g. '.npy'); any
    other suffix is a one-line error, raised before the work rather than a CSV in an .xlsx."""
    from aetool.errors import DataError

    suffix = Path(path).suffix.lower()
    if suffix in also:
        return suffix.lstrip(".")
    if suffix not in TABLE_OUTPUT_KINDS:
        allowed = [".csv", ".tsv", ".parquet", *also]
        raise DataError(f"{path}: cannot write '{suffix or 'no suffix'}' files; name the "
                        f"output {', '.join(allowed[:-1])} or {allowed[-1]}")
    return TABLE_OUTPUT_KINDS[suffix]


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as CSV, TSV or Parquet (by ``path``'s suffix), atomically."""
    path = Path(path)
    kind = table_output_kind(path)
    if kind == "parquet":
        with atomic_output(path, "wb") as handle:
            frame.to_parquet(handle, index=False)
    else:
        with atomic_output(path) as handle:
            frame.to_csv(handle, index=False, sep=CSV_SEPARATORS[kind])
    return path
