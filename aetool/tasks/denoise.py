"""Denoising on files: tables (numeric columns cleaned, others passed through), image folders
(same names and formats) and arrays; optional quality report against a clean reference."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aetool.bundle import check_bundle_output
from aetool.data.images import (
    IMAGE_SUFFIXES,
    as_picture,
    at_own_sizes,
    is_image_file,
    is_image_source,
    list_images,
    relative_name,
    write_images,
)
from aetool.data.output import (
    atomic_directory,
    atomic_output,
    check_output_file,
    check_output_folder,
    is_inside,
    to_stdout,
    write_table,
)
from aetool.data.preprocess import data_source
from aetool.data.source import Loaded, TableSpec, load, prepare_for_model
from aetool.data.tables import require_columns
from aetool.device import Inference
from aetool.errors import AetoolError, DataError
from aetool.estimators import Denoiser
from aetool.noise import parse_noise
from aetool.tasks.settings import parse_settings


def numeric_columns(frame: pd.DataFrame, exclude: list[str]) -> list[str]:
    return [c for c in frame.columns if c not in exclude
            and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


def load_input(path: str | Path, columns: list[str] | None = None, exclude: Sequence[str] = (),
               image_size: tuple[int, int] | None = None, strict: bool = False) -> Loaded:
    """Data to denoise: an image folder, an array, or a table whose ``columns`` (default: the
    numeric ones not in ``exclude``) are the features; ``frame`` keeps the whole table, so the
    other columns pass through untouched."""
    spec = TableSpec(columns=columns, exclude=list(exclude),  # a denoiser's size: images only
                     image_size=list(image_size) if image_size and is_image_source(path)
                     else None, strict=strict)
    loaded = load(path, spec, labels="classes")
    if loaded.kind == "table" and not columns:
        chosen = numeric_columns(loaded.features, list(exclude))
        if not chosen:
            raise DataError(f"{path}: no numeric columns to denoise")
        loaded.features = loaded.features[chosen]
    return loaded


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


def _whole(loaded: Loaded) -> Any:
    """What a denoiser's output replaces: the whole table, or the image stack or array."""
    return loaded.frame if loaded.kind == "table" else loaded.features


def fit_denoiser(clean: str | Path, params: dict[str, Any], columns: list[str] | None,
                 exclude: list[str], image_size: tuple[int, int] | None, strict: bool
                 ) -> Denoiser:
    """Train a Denoiser on the file or folder ``clean`` (see :func:`load_input`)."""
    loaded = load_input(clean, columns, exclude, image_size, strict)
    if loaded.kind == "table":
        warn_identifier_columns(loaded.frame, list(loaded.features.columns), loaded.source)
    denoiser = Denoiser(**params)
    with data_source(loaded.source):
        denoiser.fit(loaded.features)
    denoiser.columns_ = list(loaded.features.columns) if loaded.kind == "table" else None
    denoiser.input_kind_ = loaded.kind
    return denoiser


def apply_denoiser(denoiser: Denoiser, noisy: str | Path, out: str | Path, strict: bool = False,
                   keep: Sequence[str] = (), untouched: Sequence[str] = (),
                   before_writing: Callable[[Loaded], None] | None = None
                   ) -> tuple[Loaded, Any]:
    """Denoise ``noisy`` into ``out``; returns the loaded input and the denoised data (for a
    quality report). ``keep``: columns (ids, --exclude) the user wants untouched; naming one
    the model cleans is an error rather than a silent change. ``before_writing`` checks the
    loaded input (against a reference) before any work, so a refusal leaves no output."""
    shape = getattr(denoiser.preprocessor_, "shape", None)
    size = tuple(shape[1:]) if shape else None
    loaded = load_input(noisy, denoiser.columns_, (), size, strict)
    if before_writing is not None:
        before_writing(loaded)
    if loaded.kind == "table":
        require_columns(keep, list(loaded.frame.columns), loaded.source, "--id-column/--exclude")
        cleaned_too = [c for c in keep if c in (denoiser.columns_ or []) and c not in untouched]
        if cleaned_too:
            raise DataError(f"{loaded.source}: column '{cleaned_too[0]}' is one the denoiser was "
                            "trained to clean; retrain with it as --id-column or --exclude")
    part = prepare_for_model(denoiser, loaded, warn_extra=False)
    with data_source(loaded.source):
        if loaded.kind == "table":
            cleaned = loaded.frame.copy()
            written = [c for c in denoiser.columns_ if c not in untouched]
            cleaned[written] = _same_dtypes(denoiser.transform(part)[written],
                                            loaded.frame[written])
            write_table(cleaned, out, like=loaded.frame.attrs.get("csv_format"))
        elif loaded.kind == "images":
            cleaned = denoiser.transform(part)
            _write_images(_back_to_own_sizes(cleaned, loaded), list(loaded.ids), Path(out),
                          one_file=_one_image_to_file(noisy, out))
        else:
            cleaned = denoiser.transform(part)
            with atomic_output(out, "wb") as handle:
                np.save(handle, cleaned)
    return loaded, cleaned


def check_denoise_output(noisy: str | Path, out: str | Path, inputs: tuple[str, ...]) -> None:
    """Before any work: images go to a new (or empty) folder that holds no input; tables and
    arrays to a file that is not an input and not read-only."""
    if is_image_source(noisy) and not _one_image_to_file(noisy, out):
        if to_stdout(out):
            raise DataError("-: denoised images are written to files; name a new folder (or "
                            "an image file for one image)")
        if Path(out).suffix.lower() in IMAGE_SUFFIXES:
            raise DataError(f"{out}: names an image file, but {noisy} is a folder of images; "
                            "name a new folder for the denoised images")
        if Path(noisy).is_dir() and is_inside(Path(out), Path(noisy)):
            raise DataError(f"{out}: is inside the input folder {noisy}; the denoised images "
                            "would be read as input the next time, so choose a folder "
                            "outside it")
        _refuse_filled_folder(Path(out))
        check_output_folder(out, inputs, replaceable=lambda folder: False)
    else:  # a table, an array, or one image written to an image file
        check_output_file(out, inputs)


def _refuse_filled_folder(out: Path) -> None:
    """Denoised images go to a new or empty folder, never into one that holds anything."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: is a file; denoised images go to a new folder")
    if out.is_dir() and any(out.iterdir()):
        raise DataError(f"{out}: output folder exists and is not empty; choose a new folder")


def _back_to_own_sizes(cleaned: np.ndarray, loaded: Loaded) -> np.ndarray | list[np.ndarray]:
    """Denoised images written at each file's own size: a folder is read at the denoiser's
    size, and a user's photograph should come back as large as it went in (said once, since
    detail finer than the denoiser's size is lost on the way)."""
    if not loaded.sizes:  # an array file keeps the shape it came in
        return cleaned
    other = sum(tuple(size) != cleaned.shape[2:] for size in loaded.sizes)
    if other:
        height, width = cleaned.shape[2:]
        warnings.warn(f"{loaded.source}: {other} image(s) are not {height}x{width}, the size "
                      "the denoiser was fitted at; each was denoised at that size and written "
                      "back at its own, so finer detail is lost (fit the denoiser on clean "
                      "images of their size to keep it)", UserWarning, stacklevel=3)
    return at_own_sizes(cleaned, loaded.sizes)


def _one_image_to_file(noisy: str | Path, out: str | Path) -> bool:
    """One image file denoised into an output named as an image file (not a folder)."""
    return is_image_file(noisy) and Path(out).suffix.lower() in IMAGE_SUFFIXES


def _write_images(images: np.ndarray | list[np.ndarray], names: list[str], out: Path,
                  one_file: bool) -> None:
    """Denoised images into a new folder or, ``one_file``, the one image into the file ``out``."""
    if one_file:  # as any output file: to a temporary file, renamed when complete
        from PIL import Image

        with atomic_output(out, "wb") as handle:
            as_picture(images[0]).save(handle, format=Image.registered_extensions()[
                out.suffix.lower()])
        return
    _refuse_filled_folder(out)
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


class Reference:
    """Clean data that ``denoise apply --reference`` measures against, read and paired with
    the noisy input before anything is written: table rows by the id column when both tables
    have it, else row for row; images by file name (:func:`reference_order`)."""

    def __init__(self, path: str | Path, columns: list[str] | None, id_column: str | None):
        self.path, self.columns, self.id_column = path, columns, id_column
        self.loaded: Loaded | None = None
        self.order: np.ndarray | None = None  # reference row of each noisy row

    def pair(self, noisy: Loaded) -> None:
        """Read the reference and find each noisy row's clean one; refused, naming the
        difference, when they cannot be paired."""
        if noisy.kind == "images":  # read at the noisy images' size; paired by name below
            self.loaded = load_input(self.path, None, (), tuple(noisy.features.shape[2:]))
            return
        self.loaded = load_input(self.path, self.columns)
        frames = (self.loaded.frame, noisy.frame)
        if noisy.kind == "table" and self.id_column and all(
                f is not None and self.id_column in f.columns for f in frames):
            self.order = rows_by_id(*(f[self.id_column] for f in frames), self.path,
                                    self.id_column)
            return
        have, want = len(_whole(self.loaded)), len(_whole(noisy))
        if have != want:
            pairing = (" or pair them by an --id-column both tables have"
                       if noisy.kind == "table" else "")
            raise DataError(f"{self.path}: reference has {have} rows, the noisy data {want}; "
                            f"they must match row for row{pairing}")


def rows_by_id(clean: pd.Series, noisy: pd.Series, reference: str | Path, column: str
               ) -> np.ndarray:
    """For each noisy row, the reference row with its id; refused when a reference id repeats
    or a noisy id has none."""
    repeated = clean[clean.duplicated()]
    if len(repeated):
        raise DataError(f"{reference}: id '{repeated.iloc[0]}' appears more than once in column "
                        f"'{column}'; each clean row needs its own id")
    where = pd.Index(clean).get_indexer(noisy)
    if (where < 0).any():
        missing = noisy[where < 0]
        raise DataError(f"{reference}: no clean row for {len(missing)} of the {len(noisy)} noisy "
                        f"rows (e.g. id '{missing.iloc[0]}' in column '{column}')")
    return where


def reference_report(reference: Reference, noisy: Loaded, cleaned: Any,
                     columns: list[str] | None) -> dict[str, dict[str, float]]:
    """Quality of the noisy input and of the denoised output against the clean reference."""
    ref = reference.loaded
    assert ref is not None, "Reference.pair runs before the report"
    if noisy.kind == "table":
        a = ref.frame[columns].to_numpy(dtype=float)
        b = noisy.frame[columns].to_numpy(dtype=float)
        c = cleaned[columns].to_numpy(dtype=float)
    else:
        a, b, c = np.asarray(_whole(ref)), np.asarray(_whole(noisy)), np.asarray(cleaned)
    if noisy.kind == "images" and ref.kind == "images":  # each noisy image's own clean one
        a = a[reference_order(reference.path, [str(p) for p in ref.ids],
                              [str(p) for p in noisy.ids])]
    elif reference.order is not None:
        a = a[reference.order]
    if a.shape != b.shape:
        raise DataError(f"{reference.path}: reference has shape {a.shape}, noisy data "
                        f"{b.shape}; they must match row for row")
    images = noisy.kind == "images" or (a.ndim >= 3)
    if images and a.ndim == 3:
        a, b, c = a[:, None], b[:, None], c[:, None]
    return {"noisy": quality(a, b, images), "denoised": quality(a, c, images)}


def reference_order(reference: str | Path, clean: list[str], noisy: list[str]) -> np.ndarray:
    """For each noisy image (its path in its folder), the position of its clean reference: the
    file of the same path in the reference folder, else of the same name when one file has it
    (the reference may hold more images). Refused, naming one, when an image has none."""
    where = {path: i for i, path in enumerate(clean)}
    names: dict[str, list[int]] = {}
    for i, path in enumerate(clean):
        names.setdefault(Path(path).name, []).append(i)
    order, missing = [], []
    for path in noisy:
        same_name = names.get(Path(path).name, [])
        found = where.get(path, same_name[0] if len(same_name) == 1 else None)
        if found is None:
            missing.append(path)
        order.append(found)
    if missing:
        raise DataError(f"{reference}: no clean reference for {len(missing)} of the {len(noisy)} "
                        f"noisy images (e.g. {missing[0]}); give each an image of the same name "
                        "in the reference folder")
    return np.asarray(order, dtype=int)


def check_reference_folder(reference: str | Path, noisy: str | Path) -> None:
    """Before anything is written: every image of a noisy folder has its reference (file
    names only)."""
    if not (is_image_source(noisy) and is_image_source(reference)):
        return
    reference_order(reference, *([relative_name(p, root) for p in list_images(root)]
                                 for root in (Path(reference), Path(noisy))))


def run_denoise_fit(clean: str, output: str, variant: str, noise: str, noise_units: str,
                    settings: tuple[str, ...], spec: TableSpec, force: bool = False,
                    quiet: bool = False, selection: str = "auto") -> Denoiser:
    """``aetool denoise fit``: check the output and the noise model, train, save."""
    check_bundle_output(output, (clean,), force)
    try:
        parse_noise(noise)
    except ValueError as exc:
        raise AetoolError(str(exc)) from None
    variant_cls, params = parse_settings(settings, variant, Denoiser,
                                         options={"noise", "noise_units", "selection"})
    params.update(variant=variant_cls, noise=noise, noise_units=noise_units,
                  verbose=not quiet, selection=selection)
    left_out = [*spec.exclude, *([spec.id_column] if spec.id_column else [])]
    size = tuple(spec.image_size) if spec.image_size else None
    denoiser = fit_denoiser(clean, params, spec.columns, left_out, size, spec.strict)
    denoiser.save(output, force=force)
    return denoiser


def run_denoise_apply(bundle: str, noisy: str, output: str, inference: Inference,
                      reference: str | None = None, strict: bool = False,
                      keep: Sequence[str] = (), columns: list[str] | None = None,
                      id_column: str | None = None) -> dict[str, dict[str, float]] | None:
    """``aetool denoise apply``: check the output, denoise ``noisy`` into it and, with a clean
    ``reference``, report MSE, PSNR and SSIM before and after. ``columns``: the trained
    columns to clean (default: all); ``keep``: columns that must stay untouched;
    ``id_column``: pairs a table's rows with the reference's by id."""
    check_denoise_output(noisy, output, tuple(p for p in (noisy, reference) if p))
    denoiser = Denoiser.load(bundle).set_inference(inference=inference)
    if columns:
        trained = denoiser.columns_ or []
        untrained = [c for c in columns if c not in trained]
        if untrained:
            raise DataError(f"{bundle}: the denoiser was not trained on column "
                            f"'{untrained[0]}' (given as --columns); it cleans "
                            f"{', '.join(trained) or 'images, not columns'}")
    untouched = [c for c in (denoiser.columns_ or []) if columns and c not in columns]
    clean = Reference(reference, denoiser.columns_, id_column) if reference else None
    if reference:
        check_reference_folder(reference, noisy)
    loaded, cleaned = apply_denoiser(denoiser, noisy, output, strict, keep, untouched,
                                     before_writing=clean.pair if clean else None)
    if clean is None:
        return None
    return reference_report(clean, loaded, cleaned, denoiser.columns_)
