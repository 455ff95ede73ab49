"""``aetool score``: a saved detector over new data, on this machine (tables and image folders
streamed chunk by chunk, array files in one pass) or over a folder of parts on a Dask
cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from aetool.bundle import load_bundle_parts
from aetool.data.images import is_image_source
from aetool.data.output import check_figure_folder, check_output_file, table_output_kind
from aetool.data.source import IMAGE_CHUNK, TableSpec, image_folder_chunks, scan_images
from aetool.data.tables import ARRAY_SUFFIXES
from aetool.device import Inference
from aetool.errors import AetoolError
from aetool.estimators.saved import SavedDetector, is_patch_bundle
from aetool.tasks.heatmaps import write_heat_maps
from aetool.tasks.scores_table import (
    details_for,
    load_table,
    score_table,
    scores_frame,
    write_scores,
)
from aetool.tasks.stream import stream_score


def run_score(bundle: str, data: str, output: str, inference: Inference, top_k: int = 3,
              maps: str | None = None, chunk_rows: int | None = None,
              threshold: float | None = None, contamination: float | str | None = None,
              progress: bool = True) -> tuple[int, int]:
    """``aetool score`` on one machine: .npy/.npz arrays in one pass, image folders, CSV and
    Parquet tables streamed chunk by chunk; returns the rows scored and flagged."""
    table_output_kind(output)
    check_output_file(output, (data,))
    check_figure_folder(maps, (data,))
    detector = load_for_scoring(bundle)
    spec = getattr(detector, "table_spec_", TableSpec())
    detector.set_inference(inference=inference)
    detector.set_threshold(threshold, contamination)
    if is_image_source(data):
        return score_image_folder(detector, data, output, spec, maps, chunk_rows, progress)
    in_memory = Path(data).suffix.lower() in ARRAY_SUFFIXES
    table = load_table(data, spec) if in_memory else None
    if maps and (table is None or not table.is_images):
        raise AetoolError(f"{data}: --maps needs images (a folder or an image array)")
    if table is not None:  # array files (images or rows) in one pass
        frame = score_table(detector, table, top_k, maps)
        write_scores(frame, output)
        return len(frame), int(frame["is_anomaly"].sum())
    return stream_score(detector, data, output, spec, top_k, chunk_rows, progress=progress)


def load_for_scoring(bundle: str) -> Any:
    """The detector in ``bundle``, loaded for scoring: a whole-image or table detector as a
    :class:`SavedDetector` (scores as AutoencoderDetector, without scikit-learn's import), a
    patch detector as a PatchDetector."""
    manifest, model, extras = load_bundle_parts(bundle)  # read and checked once
    if is_patch_bundle(manifest):
        from aetool.estimators.patch_detector import PatchDetector

        return PatchDetector.from_bundle(manifest, model, extras, where=bundle)
    return SavedDetector.from_bundle(manifest, model, where=bundle)


def score_image_folder(detector: Any, data: str, output: str, spec: TableSpec,
                       maps: str | None = None, chunk_rows: int | None = None,
                       progress: bool = True) -> tuple[int, int]:
    """Score an image folder of any size ``chunk_rows`` images at a time (one chunk of pixels
    in memory); heat maps share the colour scale of the first chunk. The scores are written
    once, at the end (a temporary file renamed)."""
    from tqdm.auto import tqdm

    scan = scan_images(data, spec)
    frames, scale = [], None
    with tqdm(total=len(scan.paths), desc="scoring", unit="image", disable=not progress,
              leave=False) as bar:
        for chunk in image_folder_chunks(scan, chunk_rows or IMAGE_CHUNK):
            details = details_for(detector, chunk, explain=maps is not None)
            if maps is not None:
                scale = write_heat_maps(chunk, details, maps, scale)
            frames.append(scores_frame(detector, chunk, details))
            bar.update(len(chunk.features))
    frame = pd.concat(frames, ignore_index=True)
    write_scores(frame, output)
    return len(frame), int(frame["is_anomaly"].sum())


def run_score_dask(bundle: str, data: str, output: str, inference: Inference,
                   scheduler: str | None, top_k: int, workers: int,
                   threshold: float | None = None, contamination: float | str | None = None
                   ) -> tuple[int, int, int, list[str]]:
    """``aetool score --engine dask``: rows, parts and flagged rows, and the workers' warnings
    (each said once)."""
    from aetool.tasks.distributed import score_with_dask

    done = score_with_dask(bundle, data, output, scheduler, inference, top_k, workers,
                           threshold=threshold, contamination=contamination)
    said = list(dict.fromkeys(m for *_, messages in done for m in messages))
    return (sum(part[1] for part in done), len(done), sum(part[2] for part in done), said)

