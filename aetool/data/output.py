"""Atomic output: write to a temporary file beside the target, rename only when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pandas as pd


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO]:
    """Open a temporary file next to ``path``; it replaces ``path`` only if the block succeeds,
    so an interrupted run never leaves a file that looks complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, mode, newline="" if "b" not in mode else None) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as CSV, or Parquet when ``path`` ends in .parquet, atomically."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        with atomic_output(path, "wb") as handle:
            frame.to_parquet(handle, index=False)
    else:
        with atomic_output(path) as handle:
            frame.to_csv(handle, index=False)
    return path
