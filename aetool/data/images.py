"""Image folders: flat, class sub-folders (ImageFolder style) or arrays; reading with resizing and
mode unification, skipping (or refusing with --strict) unreadable files; writing images back."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aetool.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass
class ImageSet:
    """Images as (N, C, H, W) uint8, their paths relative to the root, and class folder names."""

    images: np.ndarray
    paths: list[str]
    classes: list[str | None]
    root: Path
    sizes: list[tuple[int, int]]  # original (height, width) of each file


def is_image_source(path: str | Path) -> bool:
    """True for a folder (image folder); array files and tables are handled elsewhere."""
    return Path(path).is_dir()


def list_images(root: Path) -> list[Path]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{root}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


def _open(path: Path) -> object:
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.copy()


def read_image_folder(root: str | Path, image_size: tuple[int, int] | None = None,
                      strict: bool = False, channels: int | None = None) -> ImageSet:
    """Read every image below ``root``. Class = first sub-folder (None for files at the top).
    Different sizes are resized to ``image_size`` (or the most common size, with a warning);
    modes are unified to ``channels`` (1 grey, 3 RGB) or, when not given, to grey if all
    images are grey, else RGB."""
    from PIL import Image

    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: folder not found; check the path")
    loaded, paths, bad = [], [], []
    for path in list_images(root):
        try:
            loaded.append(_open(path))
            paths.append(path)
        except Exception as exc:  # PIL raises many types for damaged files
            bad.append(f"{path.relative_to(root)} ({type(exc).__name__})")
    if bad:
        message = f"{root}: {len(bad)} unreadable image(s): {', '.join(bad[:5])}"
        if strict:
            raise DataError(message + "; remove them or drop --strict to skip them")
        warnings.warn(message + "; skipped", UserWarning, stacklevel=2)
    if not loaded:
        raise DataError(f"{root}: none of the images could be read")
    original_sizes = [(img.size[1], img.size[0]) for img in loaded]
    grey = all(img.mode in ("L", "1", "I;16", "I", "F") for img in loaded)
    mode = {1: "L", 3: "RGB"}.get(channels or 0, "L" if grey else "RGB")
    sizes = Counter(img.size for img in loaded)
    if image_size is None:
        target = sizes.most_common(1)[0][0]
        if len(sizes) > 1:
            warnings.warn(f"{root}: images have {len(sizes)} different sizes; resizing all to "
                          f"{target[0]}x{target[1]} (set --image-size to choose)", UserWarning,
                          stacklevel=2)
    else:
        target = (image_size[1], image_size[0])  # PIL sizes are (width, height)
    arrays = []
    for img in loaded:
        img = img.convert(mode)
        if img.size != target:
            img = img.resize(target, Image.BILINEAR)
        arrays.append(np.asarray(img, dtype=np.uint8))
    images = np.stack(arrays)
    images = images[:, None] if images.ndim == 3 else np.transpose(images, (0, 3, 1, 2))
    relative = [str(p.relative_to(root)) for p in paths]
    classes = [Path(r).parts[0] if len(Path(r).parts) > 1 else None for r in relative]
    return ImageSet(images, relative, classes, root, original_sizes)


def write_images(images: np.ndarray, names: list[str], folder: str | Path) -> list[Path]:
    """Write (N, C, H, W) uint8 images under ``folder`` with the given relative names; the
    format follows each name's suffix. Files are written to temporary names, then renamed."""
    import os

    from PIL import Image

    folder = Path(folder)
    written = []
    for array, name in zip(images, names):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        pixels = array[0] if array.shape[0] == 1 else np.transpose(array, (1, 2, 0))
        tmp = target.with_name(f".{target.name}.partial{target.suffix}")
        Image.fromarray(pixels).save(tmp)
        os.replace(tmp, target)
        written.append(target)
    return written
