"""Atomic output: write to a temporary file beside the target, rename only when complete."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import sys
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from aetool.errors import DataError, OutputError

if TYPE_CHECKING:
    import pandas as pd


def _usual_mode(base: int) -> int:
    """``base`` (0o666 files, 0o777 folders) less the umask: what open() and mkdir() would give.
    tempfile's 0o600 / 0o700 would otherwise leave outputs readable by their owner only."""
    umask = os.umask(0)
    os.umask(umask)
    return base & ~umask


PARTIAL_SUFFIX = ".partial"


def _partial_prefix(path: Path) -> str:
    """Temporary names carry the writer's PID, so a later run can tell its own stale leftovers
    (from a SIGKILL or a power cut) from a run still going on."""
    return f".{path.name}.aetool-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: the process exists but is not ours
        return True
    return True


def remove_stale_partials(path: Path) -> list[Path]:
    """Remove temporary files and folders that an earlier, killed aetool run left beside
    ``path`` (only those named for this very output, and only when their writer is gone), and
    warn about each; returns what was removed."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.aetool-(\d+)-.*{re.escape(PARTIAL_SUFFIX)}$")
    removed = []
    with contextlib.suppress(OSError):
        for item in path.parent.iterdir():
            match = pattern.match(item.name)
            if not match or _pid_alive(int(match.group(1))):
                continue
            _discard(item)
            removed.append(item)
    for item in removed:
        warnings.warn(f"{item}: removed a partial output left by an interrupted aetool run",
                      UserWarning, stacklevel=3)
    return removed


def check_replaceable_file(path: Path) -> None:
    """An existing output file may be replaced unless it is a folder or read-only (``cp``
    refuses a read-only target too, and replacing it would also lose its permissions)."""
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; name an output file")
    if path.exists() and not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise OutputError(f"{path}: is read-only; make it writable (chmod u+w) or choose "
                          "another output name")


STDOUT = "-"  # `-o -`: a CSV written to standard output, for a pipe


def to_stdout(path: str | os.PathLike[str]) -> bool:
    """The output is standard output (``-o -``)."""
    return str(path) == STDOUT


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO]:
    """Open a temporary file next to ``path``; it replaces ``path`` only if the block succeeds,
    so an interrupted run never leaves a file that looks complete. ``-``: standard output
    (a pipe reads as it comes), left open."""
    if to_stdout(path):
        stream = sys.stdout.buffer if "b" in mode else sys.stdout
        yield stream
        stream.flush()
        return
    path = Path(path)
    check_replaceable_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path)
    fd, tmp = tempfile.mkstemp(prefix=_partial_prefix(path), suffix=PARTIAL_SUFFIX,
                               dir=path.parent)
    try:
        os.fchmod(fd, _usual_mode(0o666))
        with os.fdopen(fd, mode, newline="" if "b" not in mode else None) as handle:
            yield handle
        check_replaceable_file(path)  # again: it may have changed while we worked
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _move_aside(target: Path) -> Path | None:
    """Rename ``target`` to a unique hidden name beside it; None when it vanished meanwhile
    (another run moved it first)."""
    aside = target.with_name(f".{target.name}.aetool-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                             f".old{PARTIAL_SUFFIX}")
    try:
        os.rename(target, aside)
    except FileNotFoundError:
        return None
    return aside


def atomic_directory(target: str | os.PathLike[str], write: Callable[[Path], object],
                     replaceable: Callable[[Path], bool] = lambda p: False,
                     force: bool = False) -> None:
    """Call ``write(tmpdir)`` and move the result to ``target`` only if it succeeds, so a failed
    run leaves no half-written folder. An existing ``target`` is replaced only when it is an
    empty folder or ``replaceable(target)`` says so (an aetool bundle), or, with ``force``, a
    file; anything else is an error, checked again at the moment of the swap. Concurrent runs writing the same target
    each end with a complete folder in place (the last one wins), never with an error."""
    target = Path(os.path.abspath(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target)
    tmp = Path(tempfile.mkdtemp(prefix=_partial_prefix(target), suffix=PARTIAL_SUFFIX,
                                dir=target.parent))
    try:
        tmp.chmod(_usual_mode(0o777))
        write(tmp)
        for written in tmp.rglob("*"):  # some writers (safetensors) also create files 0o600
            if written.is_file():
                written.chmod(_usual_mode(0o666))
        for _ in range(100):
            aside = None
            if target.exists() or target.is_symlink():
                aside = _move_aside(target)  # atomic: from here on only this run sees it
                if aside is None:
                    continue
                if not _may_replace(aside, replaceable, force):
                    _put_back(aside, target)
                    check_replaceable_folder(target, replaceable, force)
            try:
                os.rename(tmp, target)
            except OSError as exc:  # another run put a folder there first: go round again
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                    raise
                continue
            finally:
                if aside is not None:
                    _discard(aside)
            return
        raise OutputError(f"{target}: kept changing while aetool wrote it; try again")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _may_replace(path: Path, replaceable: Callable[[Path], bool], force: bool) -> bool:
    """Whether a folder output may take the place of ``path``: an empty folder or one that
    ``replaceable`` accepts; with ``force`` also a file or link, never another folder."""
    if path.is_dir() and not path.is_symlink():
        return _is_empty_dir(path) or replaceable(path)
    return force


def _put_back(aside: Path, target: Path) -> None:
    """Return something moved aside that may not be replaced; if another run took its place
    meanwhile, say where it now is rather than lose it."""
    try:
        os.rename(aside, target)
    except OSError:
        raise OutputError(f"{target}: is not an aetool output and another run wrote there "
                          f"meanwhile; the original is kept as {aside}") from None


def _discard(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def check_replaceable_folder(target: Path, replaceable: Callable[[Path], bool],
                             force: bool = False) -> None:
    """A one-line error unless ``target`` is absent or :func:`_may_replace` allows it."""
    if not (target.exists() or target.is_symlink()) or _may_replace(target, replaceable, force):
        return
    if target.is_dir() and not target.is_symlink():
        raise OutputError(f"{target}: is a folder that is not an aetool bundle; aetool replaces "
                          "only its own outputs (even with --force), so choose a new name")
    raise OutputError(f"{target}: exists and is not an aetool bundle; choose a new name, or "
                      "pass --force to replace this file")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def is_inside(path: Path, folder: Path) -> bool:
    """True when ``path`` lies within ``folder`` (links resolved)."""
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(folder))
    except ValueError:
        return False
    return True


def check_writable_location(path: Path) -> None:
    """The nearest existing folder above ``path`` must be a folder this process can write to,
    checked before any work so a long fit does not end in a permission error."""
    parent = Path(os.path.abspath(path)).parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{path}: cannot be created, {parent} is a file and not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot write in {parent} (permission denied); choose "
                          "another output location")


def check_output_file(path: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]] = ()
                      ) -> None:
    """Before any work: ``path`` must not be one of the ``inputs`` (symlinks and hard links
    resolved), not a folder, not read-only, and its folder must be writable."""
    if to_stdout(path):
        return
    path = Path(path)
    for given in inputs:
        source = Path(given)
        if _same_file(path, source):
            raise OutputError(f"{path}: is the input file {source}; aetool never overwrites "
                              "its input, so name a new output file")
    check_replaceable_file(path)
    check_writable_location(path)


def check_output_folder(path: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]],
                        replaceable: Callable[[Path], bool], force: bool = False) -> None:
    """Before any work, for outputs that are folders (bundles, image folders): ``path`` may not
    hold or be any input, and may replace only an empty folder or one ``replaceable`` accepts."""
    if to_stdout(path):
        raise OutputError("-: this output is a folder (a bundle or images), not a table for "
                          "standard output; name a folder")
    path = Path(os.path.abspath(path))
    for given in inputs:
        if is_inside(given, path) or _same_file(path, Path(given)):
            raise OutputError(f"{path}: holds the input {given}; writing there would remove "
                              "it, so choose a new output name")
    check_replaceable_folder(path, replaceable, force)
    check_writable_location(path)


# Suffixes that make a figure folder's name read as one file (`--plots roc.png`)
FILE_LIKE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg", ".csv", ".json", ".txt")


def check_figure_folder(path: str | os.PathLike[str] | None,
                        inputs: Sequence[str | os.PathLike[str]] = ()) -> None:
    """Before any work, for folders of figures and heat maps (``--plots``, ``--maps``): not
    an input folder or inside one, where a map or figure could replace a file of the same
    name (and would be read as an image next time), and writable."""
    if path is None:
        return
    if to_stdout(path) or (Path(path).suffix.lower() in FILE_LIKE_SUFFIXES
                           and not Path(path).is_dir()):
        raise OutputError(f"{path}: names a file, but figures and heat maps go into a folder "
                          "under fixed names (roc.png, ...); name a folder")
    for given in inputs:
        if Path(given).is_dir() and is_inside(Path(path), Path(given)):
            raise OutputError(f"{path}: is inside the input folder {given}; figures and maps "
                              "written there could replace its files, so choose a folder "
                              "outside it")
    check_writable_location(Path(path))


TABLE_OUTPUT_KINDS = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".parquet": "parquet",
                      ".pq": "parquet"}
CSV_SEPARATORS = {"csv": ",", "tsv": "\t"}


def table_output_kind(path: str | os.PathLike[str], also: tuple[str, ...] = ()) -> str:
    """'csv', 'tsv' or 'parquet' by ``path``'s suffix (or one of ``also``, e.g. '.npy'); any
    other suffix is a one-line error, raised before the work rather than a CSV in an .xlsx."""
    if to_stdout(path):
        return "csv"
    suffix = Path(path).suffix.lower()
    if suffix in also:
        return suffix.lstrip(".")
    if suffix not in TABLE_OUTPUT_KINDS:
        allowed = [".csv", ".tsv", ".parquet", *also]
        raise DataError(f"{path}: cannot write '{suffix or 'no suffix'}' files; name the "
                        f"output {', '.join(allowed[:-1])} or {allowed[-1]}")
    return TABLE_OUTPUT_KINDS[suffix]


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str],
                like: dict[str, str] | None = None) -> Path:
    """Write ``frame`` as CSV, TSV or Parquet (by ``path``'s suffix), atomically; a table read
    from a CSV without a header (``frame.attrs['headerless']``) is written without one.
    ``like``: the delimiter and decimal mark of the CSV the table was read from
    (``attrs['csv_format']``), kept for a CSV output, so a table written back (denoised)
    opens as its input did: semicolons and decimal commas stay."""
    path = Path(path)
    kind = table_output_kind(path)
    if kind == "parquet":
        with atomic_output(path, "wb") as handle:
            frame.to_parquet(handle, index=False)
    else:
        form = (like or {}) if kind == "csv" else {}
        with atomic_output(path) as handle:
            frame.to_csv(handle, index=False, sep=form.get("sep", CSV_SEPARATORS[kind]),
                         decimal=form.get("decimal", "."),
                         header=not frame.attrs.get("headerless", False))
    return path
