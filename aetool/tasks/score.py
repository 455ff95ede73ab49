"""``aetool score``: a saved detector over new data, on this machine (tables streamed chunk by
chunk, images in one pass) or over a folder of parts on a Dask cluster."""

from __future__ import annotations

from pathlib import Path

from aetool.data.images import is_image_source
from aetool.data.output import check_output_file, table_output_kind
from aetool.data.source import TableSpec
from aetool.data.tables import ARRAY_SUFFIXES
from aetool.device import Inference
from aetool.errors import AetoolError
from aetool.estimators.saved import SavedDetector
from aetool.tasks.scores_table import load_table, score_table, write_scores
from aetool.tasks.stream import stream_score


def run_score(bundle: str, data: str, output: str, inference: Inference, top_k: int = 3,
              maps: str | None = None, chunk_rows: int | None = None,
              threshold: float | None = None, contamination: float | str | None = None,
              progress: bool = True) -> tuple[int, int]:
    """``aetool score`` on one machine: image folders and .npy/.npz arrays in one pass, CSV and
    Parquet tables streamed chunk by chunk; returns the rows scored and flagged."""
    table_output_kind(output)
    check_output_file(output, (data,))
    detector = SavedDetector.load(bundle)  # scores as AutoencoderDetector, without sklearn
    spec = getattr(detector, "table_spec_", TableSpec())
    detector.set_inference(inference=inference)
    detector.set_threshold(threshold, contamination)
    in_memory = is_image_source(data) or Path(data).suffix.lower() in ARRAY_SUFFIXES
    table = load_table(data, spec) if in_memory else None
    if maps and (table is None or not table.is_images):
        raise AetoolError(f"{data}: --maps needs images (a folder or an image array)")
    if table is not None:  # image folders and array files (images or rows) in one pass
        frame = score_table(detector, table, top_k, maps)
        write_scores(frame, output)
        return len(frame), int(frame["is_anomaly"].sum())
    return stream_score(detector, data, output, spec, top_k, chunk_rows, progress=progress)


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

