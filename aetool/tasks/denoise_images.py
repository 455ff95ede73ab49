"""Image folders cleaned by a tile denoiser, each image at its own size: a tile denoiser is
not bound to the size it was fitted at, so a user's photographs of many sizes keep all of
their detail instead of going through the fitted size and back."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from aetool.data.images import (
    FolderScan,
    ImageSet,
    at_own_sizes,
    decode_images,
    is_image_source,
    own_size_groups,
    relative_name,
    scan_image_folder,
)
from aetool.data.preprocess import data_source
from aetool.errors import DataError
from aetool.estimators import Denoiser


def cleans_at_own_sizes(denoiser: Denoiser, noisy: str | Path) -> bool:
    """Whether ``denoise apply`` cleans ``noisy`` image by image at its own size: a tile
    denoiser given an image folder or file (an array keeps the shape it came in)."""
    return bool(getattr(denoiser, "tile_", None)) and is_image_source(noisy)


def own_size_scan(denoiser: Denoiser, noisy: str | Path, strict: bool
                  ) -> tuple[FolderScan, list[FolderScan]]:
    """The headers of ``noisy`` and its size groups (:func:`own_size_groups`); images smaller
    than a tile go through the fitted size and back, said once."""
    scan = scan_image_folder(noisy, strict=strict, own_sizes=True)
    fitted = tuple(denoiser.preprocessor_.shape[1:])
    small = sum(min(size) < denoiser.tile_ for size in scan.sizes)
    if small:
        warnings.warn(f"{scan.root}: {small} image(s) have a side under the denoiser's "
                      f"{denoiser.tile_}-pixel tiles; each was denoised at the size it was "
                      f"fitted at, {fitted[0]}x{fitted[1]}, and written back at its own",
                      UserWarning, stacklevel=3)
    return scan, own_size_groups(scan, denoiser.tile_, fitted)


def cleaned_groups(denoiser: Denoiser, scan: FolderScan, groups: list[FolderScan]
                   ) -> Iterator[tuple[list[str], list[np.ndarray], list[np.ndarray]]]:
    """For each size group: the images' names, the noisy images and the cleaned ones, both at
    each file's own size; one group's pixels in memory at a time."""
    produced = 0
    for group in groups:
        found = decode_images(group)
        if not found.paths:
            continue
        produced += len(found.paths)
        with data_source(str(scan.root)):
            cleaned = denoiser.transform(found.images)
        yield found.paths, as_read(group, found), at_own_sizes(cleaned, found.sizes)
    if not produced:
        raise DataError(f"{scan.root}: none of the images could be read")


def as_read(group: FolderScan, found: ImageSet) -> list[np.ndarray]:
    """The images of ``found`` as their files hold them: a group brought to another size
    (images smaller than a tile) is read again, each at its own size."""
    if all(tuple(size) == tuple(image.shape[1:]) for size, image in zip(found.sizes,
                                                                        found.images)):
        return list(found.images)
    files = {relative_name(path, group.root): path for path in group.paths}
    return [one_image(group, files[name], size) for name, size in zip(found.paths, found.sizes)]


def one_image(scan: FolderScan, path: Path, size: tuple[int, int]) -> np.ndarray:
    """The file ``path`` of ``scan`` decoded at ``size`` (height, width); unreadable: an
    error."""
    one = replace(scan, paths=[path], sizes=[size], target=(size[1], size[0]), bad=[],
                  strict=True)
    return decode_images(one).images[0]


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


def references_at_own_sizes(reference: str | Path, noisy: FolderScan) -> dict[str, np.ndarray]:
    """The clean reference of each image of ``noisy`` (by :func:`reference_order`), read at
    that image's own size and colours, before any work; an unreadable one is an error."""
    names = [relative_name(p, noisy.root) for p in noisy.paths]
    scan = scan_image_folder(reference, strict=True, own_sizes=True,
                             channels=1 if noisy.mode == "L" else 3)
    order = reference_order(reference, [relative_name(p, scan.root) for p in scan.paths], names)
    return {name: one_image(scan, scan.paths[where], size)
            for name, where, size in zip(names, order, noisy.sizes)}
