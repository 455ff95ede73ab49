"""Denoising on files: tables (numeric columns cleaned, others passed through), image folders
(same names and formats) and arrays; optional quality report against a clean reference."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aetool.data.arrays import read_array_file
from aetool.data.images import is_image_source, read_image_folder, write_images
from aetool.data.output import (
    atomic_directory,
    atomic_output,
    check_output_file,
    check_output_folder,
    write_table,
)
from aetool.data.preprocess import align_columns, check_input_kind, data_source
from aetool.data.tables import ARRAY_SUFFIXES, read_table, require_columns
from aetool.errors import DataError


@dataclass
class DenoiseInput:
    kind: str  # "table", "images" or "array"
    data: Any  # DataFrame (full table), uint8 image stack, or array
    model_input: Any  # what the model sees
    names: list[str] | None
    source: str


def numeric_columns(frame: pd.DataFrame, exclude: list[str]) -> list[str]:
    return [c for c in frame.columns if c not in exclude
            and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


def load_input(path: str | Path, columns: list[str] | None = None, exclude: list[str] = (),
               image_size: tuple[int, int] | None = None, strict: bool = False) -> DenoiseInput:
    path = Path(path)
    if is_image_source(path):
        images = read_image_folder(path, image_size, strict)
        return DenoiseInput("images", images.images, images.images, images.paths, str(path))
    if path.suffix.lower() in ARRAY_SUFFIXES:
        x, _ = read_array_file(path)
        return DenoiseInput("array", x, x, None, str(path))
    frame = read_table(path)
    frame.columns = [str(c) for c in frame.columns]
    require_columns(columns or [], list(frame.columns), str(path), "--columns")
    require_columns(exclude, list(frame.columns), str(path), "--exclude")
    chosen = columns or numeric_columns(frame, list(exclude))
    if not chosen:
        raise DataError(f"{path}: no numeric columns to denoise")
    return DenoiseInput("table", frame, frame[chosen], None, str(path))


def warn_identifier_columns(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    """An integer column with a distinct value in every row, in increasing or decreasing
    order, is almost surely an id: denoising it would rewrite the ids."""
    for column in columns:
        values = frame[column]
        if (pd.api.types.is_integer_dtype(values) and len(values) > 2 and values.is_unique
                and (values.is_monotonic_increasing or values.is_monotonic_decreasing)):
            warnings.warn(f"{source}: column '{column}' looks like an identifier (a distinct, "
                          f"ordered integer in every row) and would be denoised; pass it as "
                          f"--id-column '{column}' to keep it as it is", UserWarning,
                          stacklevel=2)


def _same_dtypes(cleaned: pd.DataFrame, original: pd.DataFrame) -> pd.DataFrame:
    """Denoised columns back in their input dtypes: integers rounded (where no value is
    missing), so an integer column stays an integer column."""
    for column in cleaned.columns:
        dtype = original[column].dtype
        if pd.api.types.is_integer_dtype(dtype) and not cleaned[column].isna().any():
            cleaned[column] = np.rint(cleaned[column]).astype(dtype)
        elif pd.api.types.is_float_dtype(dtype):
            cleaned[column] = cleaned[column].astype(dtype)
    return cleaned


def fit_denoiser(clean: str | Path, params: dict[str, Any], columns: list[str] | None,
                 exclude: list[str], image_size: tuple[int, int] | None, strict: bool) -> Any:
    from aetool.denoise import Denoiser

    loaded = load_input(clean, columns, exclude, image_size, strict)
    if loaded.kind == "table":
        warn_identifier_columns(loaded.data, list(loaded.model_input.columns), loaded.source)
    denoiser = Denoiser(**params)
    with data_source(loaded.source):
        denoiser.fit(loaded.model_input)
    denoiser.columns_ = list(loaded.model_input.columns) if loaded.kind == "table" else None
    denoiser.input_kind_ = loaded.kind
    return denoiser


def apply_denoiser(denoiser: Any, noisy: str | Path, out: str | Path, strict: bool = False,
                   keep: list[str] = ()) -> DenoiseInput:
    """Denoise ``noisy`` into ``out``; returns the loaded input (for a quality report).
    ``keep``: columns (ids, --exclude) the user wants untouched; naming one the model cleans
    is an error rather than a silent change."""
    shape = getattr(denoiser.preprocessor_, "shape", None)
    size = tuple(shape[1:]) if shape else None
    loaded = load_input(noisy, denoiser.columns_, (), size, strict)
    if loaded.kind == "table":
        require_columns(keep, list(loaded.data.columns), loaded.source, "--id-column/--exclude")
        cleaned_too = [c for c in keep if c in (denoiser.columns_ or [])]
        if cleaned_too:
            raise DataError(f"{loaded.source}: column '{cleaned_too[0]}' is one the denoiser was "
                            "trained to clean; retrain with it as --id-column or --exclude")
    check_input_kind(denoiser, np.ndim(loaded.model_input) >= 3, loaded.source)
    with data_source(loaded.source):
        if loaded.kind == "table":
            part = align_columns(loaded.data, denoiser.columns_, loaded.source, warn_extra=False)
            cleaned = loaded.data.copy()
            cleaned[denoiser.columns_] = _same_dtypes(
                denoiser.transform(part)[denoiser.columns_], loaded.data[denoiser.columns_])
            write_table(cleaned, out)
            loaded.model_input = cleaned
        elif loaded.kind == "images":
            cleaned = denoiser.transform(loaded.data)
            _write_image_folder(cleaned, loaded.names, Path(out))
            loaded.model_input = cleaned
        else:
            cleaned = denoiser.transform(loaded.data)
            with atomic_output(out, "wb") as handle:
                np.save(handle, cleaned)
            loaded.model_input = cleaned
    return loaded


def check_denoise_output(noisy: str | Path, out: str | Path, inputs: tuple[str, ...]) -> None:
    """Before any work: images go to a new (or empty) folder that holds no input; tables and
    arrays to a file that is not an input and not read-only."""
    if is_image_source(noisy):
        if Path(out).exists() and not Path(out).is_dir():
            raise DataError(f"{out}: is a file; denoised images go to a new folder")
        if Path(out).is_dir() and any(Path(out).iterdir()):
            raise DataError(f"{out}: output folder exists and is not empty; choose a new folder")
        check_output_folder(out, inputs, replaceable=lambda folder: False)
    else:
        check_output_file(out, inputs)


def _write_image_folder(images: np.ndarray, names: list[str], out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out}: output folder exists and is not empty; choose a new folder")
    atomic_directory(out, lambda tmp: write_images(images, names, tmp))


def quality(reference: np.ndarray, estimate: np.ndarray, images: bool) -> dict[str, float]:
    """MSE, PSNR (dB) and, for images, mean SSIM (scikit-image) of ``estimate`` vs ``reference``."""
    from skimage.metrics import structural_similarity

    reference = reference.astype(np.float64)
    estimate = estimate.astype(np.float64)
    data_range = float(reference.max() - reference.min()) or 1.0
    mse = float(np.mean((reference - estimate) ** 2))
    psnr = float(10 * np.log10(data_range**2 / mse)) if mse > 0 else float("inf")
    result = {"mse": mse, "psnr": psnr}
    if images:
        scores = []
        for ref, est in zip(reference, estimate):
            axis = 0 if ref.shape[0] > 1 else None
            scores.append(structural_similarity(
                ref if axis is not None else ref[0], est if axis is not None else est[0],
                data_range=data_range, channel_axis=axis))
        result["ssim"] = float(np.mean(scores))
    return result


def reference_report(reference: str | Path, noisy: DenoiseInput, cleaned: Any,
                     columns: list[str] | None) -> dict[str, dict[str, float]]:
    """Quality of the noisy input and of the denoised output against the clean reference."""
    ref = load_input(reference, columns, (), None if noisy.kind != "images" else
                     tuple(noisy.data.shape[2:]))
    if noisy.kind == "table":
        a = ref.data[columns].to_numpy(dtype=float)
        b = noisy.data[columns].to_numpy(dtype=float)
        c = cleaned[columns].to_numpy(dtype=float)
    else:
        a, b, c = np.asarray(ref.data), np.asarray(noisy.data), np.asarray(cleaned)
    if a.shape != b.shape:
        raise DataError(f"{reference}: reference has shape {a.shape}, noisy data {b.shape}; "
                        "they must match row for row")
    images = noisy.kind == "images" or (a.ndim >= 3)
    if images and a.ndim == 3:
        a, b, c = a[:, None], b[:, None], c[:, None]
    return {"noisy": quality(a, b, images), "denoised": quality(a, c, images)}
