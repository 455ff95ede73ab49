"""Dask-backed scoring for data beyond one machine: one output part per input part.

The bundle is read once on the client, shipped to every worker once (``Client.scatter`` with
broadcast), rebuilt there without touching the file system, cached per worker process, and each
part is scored with the same streaming engine as ``aetool score``.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from aetool.bundle import model_from_bundle_bytes, read_bundle_bytes
from aetool.data.output import check_output_file, to_stdout
from aetool.data.tables import COMPRESSED_SUFFIXES, PARQUET_SUFFIXES
from aetool.device import Inference
from aetool.errors import DataError
from aetool.estimators import AutoencoderDetector
from aetool.tasks.stream import stream_score
from aetool.thresholds import threshold_from_training

_WORKER_CACHE: dict[str, Any] = {}
PART_SUFFIXES = (".csv", ".parquet", ".pq", ".tsv", ".txt")


def expand_parts(pattern: str) -> list[Path]:
    """Input parts from a directory (its CSV/Parquet files) or a glob pattern."""
    path = Path(pattern)
    if path.is_dir():
        parts = sorted(p for p in path.iterdir() if _uncompressed(p).suffix.lower() in PART_SUFFIXES)
    else:
        parts = sorted(Path(p) for p in glob.glob(pattern))
    if not parts:
        raise DataError(f"{pattern}: no CSV or Parquet parts found")
    return parts


def _uncompressed(part: Path) -> Path:
    """``part`` without a compression suffix: ``x.csv.gz`` -> ``x.csv``."""
    return part.with_suffix("") if part.suffix.lower() in COMPRESSED_SUFFIXES else part


def output_part(part: Path, out_dir: Path) -> Path:
    """``NAME.scores.csv`` (or ``.parquet`` for a Parquet part) in ``out_dir``; a compressed
    part ``NAME.csv.gz`` gives an uncompressed ``NAME.scores.csv``."""
    part = _uncompressed(part)
    suffix = ".parquet" if part.suffix.lower() in PARQUET_SUFFIXES else ".csv"
    return out_dir / f"{part.stem}.scores{suffix}"


def _detector_on_worker(bundle: tuple[dict[str, Any], bytes], inference: Inference) -> Any:
    manifest, weights = bundle
    key = f"{manifest['weights_sha256']}:{manifest['detector']['threshold']!r}"
    if key not in _WORKER_CACHE:
        model = model_from_bundle_bytes(manifest, weights, device="cpu")
        _WORKER_CACHE[key] = AutoencoderDetector.from_bundle(manifest, model)
    detector = _WORKER_CACHE[key]
    return detector.set_inference(inference=inference)


def score_part(part: str, out: str, bundle: tuple[dict[str, Any], bytes],
               inference: Inference, top_k: int) -> tuple[str, int, int, list[str]]:
    """Score one part on a worker; returns (output path, rows, rows flagged, warnings). The
    warnings travel back as text, so the client shows them rather than the worker's stderr."""
    import warnings

    detector = _detector_on_worker(bundle, inference)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows, flagged = stream_score(detector, part, out, top_k=top_k, progress=False)
    return out, rows, flagged, [str(w.message) for w in caught]


def score_with_dask(bundle_path: str | Path, pattern: str, out_dir: str | Path,
                    scheduler: str | None = None, inference: Inference | None = None,
                    top_k: int = 3, n_workers: int = 2, threshold: float | None = None,
                    contamination: float | str | None = None
                    ) -> list[tuple[str, int, int, list[str]]]:
    """Score every part matching ``pattern`` on a Dask cluster (a local one of ``n_workers``
    processes when ``scheduler`` is None), writing one output part per input part."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise DataError("--engine dask needs Dask: pip install 'aetool[dask]'") from None

    parts = expand_parts(pattern)
    out_dir = Path(out_dir)
    if to_stdout(out_dir) or (not out_dir.is_dir()
                               and _uncompressed(out_dir).suffix.lower() in PART_SUFFIXES):
        raise DataError(f"{out_dir}: names a table file, but --engine dask writes one scores "
                        "file per part into a folder; name a folder (e.g. -o scores/)")
    for part in parts:  # before the cluster starts: no part's output may be an input
        check_output_file(output_part(part, out_dir), parts)
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = read_bundle_bytes(bundle_path)
    if threshold is not None or contamination is not None:  # moved before shipping to workers

        manifest = bundle[0]
        manifest["detector"]["threshold"] = float(threshold) if threshold is not None else \
            threshold_from_training(manifest["detector"]["scorer"]["train_quantiles"],
                                    contamination)
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        shipped = client.scatter(bundle, broadcast=True)
        futures = [client.submit(score_part, str(part), str(output_part(part, out_dir)),
                                 shipped, inference or Inference("cpu"), top_k, pure=False)
                   for part in parts]
        return client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
