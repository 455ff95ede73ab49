"""Image folders: flat, class sub-folders (ImageFolder style) or arrays; reading with resizing and
mode unification, skipping (or refusing with --strict) unreadable files; writing images back."""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aetool.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Photograph formats PIL cannot read here: named when a folder holds them
UNREAD_IMAGE_SUFFIXES = (".heic", ".heif", ".avif", ".dng", ".cr2", ".nef", ".arw", ".raw")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".csv.gz", ".csv.bz2", ".csv.xz",
                  ".csv.zip")


@dataclass
class ImageSet:
    """Images as (N, C, H, W) uint8, their paths relative to the root, and class folder names."""

    images: np.ndarray
    paths: list[str]
    classes: list[str | None]
    root: Path
    sizes: list[tuple[int, int]]  # original (height, width) of each file


def is_image_file(path: str | Path) -> bool:
    """True for one image file (read as a folder holding only it)."""
    path = Path(path)
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def working_shape(height: int, width: int, max_short_side: int | None) -> tuple[int, int]:
    """(height, width) scaled down, aspect kept, so the shorter side is at most
    ``max_short_side`` (None, or images already small enough: unchanged)."""
    side = min(height, width)
    if max_short_side is None or side <= max_short_side:
        return height, width
    scale = max_short_side / side
    return max(1, round(height * scale)), max(1, round(width * scale))


def is_image_source(path: str | Path) -> bool:
    """True for an image folder or one image file; array files and tables are handled
    elsewhere."""
    return Path(path).is_dir() or is_image_file(path)


def relative_name(path: Path, root: Path) -> str:
    """``path`` below the folder ``root`` as written in outputs; for a single image file given
    as the root, its file name."""
    return path.name if path == root else str(path.relative_to(root))


def _hidden(path: Path, root: Path) -> bool:
    """A file or folder below ``root`` whose name starts with '.': macOS's ._NAME resource
    forks (not images, though named .png), .ipynb_checkpoints, aetool's own partial files."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def files_below(root: Path) -> list[Path]:
    """Every file below ``root``, sorted, through symlinked folders too (a test folder whose
    class folders link to the data elsewhere), each real folder once (a link cycle ends)."""
    seen: set[str] = set()
    found = []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        found += [Path(folder) / name for name in names]
    return sorted(p for p in found if p.is_file())


def list_images(root: Path, say_hidden: bool = False) -> list[Path]:
    """Every image file below ``root`` (sorted), hidden ones left out (said in a warning with
    ``say_hidden``, as photographs in formats not read are), or ``root`` itself when it is one
    image file."""
    if is_image_file(root):
        return [root]
    everything = files_below(root)  # one walk of the tree for every question below
    found = [p for p in everything if p.suffix.lower() in IMAGE_SUFFIXES]
    files = [p for p in found if not _hidden(p, root)]
    if say_hidden and len(files) < len(found):
        example = next(p for p in found if _hidden(p, root)).relative_to(root)
        warnings.warn(f"{root}: left out {len(found) - len(files)} hidden image file(s) (a name "
                      f"or folder starting with '.', e.g. {example}); rename them to read them",
                      UserWarning, stacklevel=2)
    unread = _formats_not_read(root, everything)
    if unread and files and say_hidden:
        warnings.warn(f"{unread} to use them", UserWarning, stacklevel=2)
    if not files:
        raise DataError(unread or _no_images(root, everything))
    return files


def _formats_not_read(root: Path, files: list[Path]) -> str:
    """What to say of the photographs below ``root`` in formats PIL cannot decode here (HEIC
    from phones, camera raw); '' when there are none."""
    unread = [p for p in files if p.suffix.lower() in UNREAD_IMAGE_SUFFIXES
              and not _hidden(p, root)]
    if not unread:
        return ""
    kinds = sorted({p.suffix.lower() for p in unread})
    return (f"{root}: {len(unread)} photograph(s) in a format aetool does not read "
            f"({', '.join(kinds)}, e.g. {unread[0].relative_to(root)}); convert them to JPEG "
            "or PNG")


def _no_images(root: Path, files: list[Path]) -> str:
    """Why a folder gave no images: it holds tables (a folder of parts), or nothing readable."""
    tables = [p for p in files if any(p.name.lower().endswith(s) for s in TABLE_SUFFIXES)]
    if tables:
        return (f"{root}: holds {len(tables)} table file(s) (e.g. {tables[0].name}), not "
                "images; score a folder of table parts with --engine dask, or give one file at "
                "a time")
    return f"{root}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})"


SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
CONV_ACTIVATION_BYTES_PER_PIXEL = 256  # ~64 float32 feature maps per pixel in a conv model
MEMORY_SHARE = 0.8  # of the memory available now, what one image set may claim


# EXIF orientations that show the stored pixels turned a quarter (width and height swap)
QUARTER_TURNS = (5, 6, 7, 8)
ORIENTATION_TAG = 0x0112


def _open(path: Path, size: tuple[int, int] | None = None) -> object:
    """The image as a viewer shows it: a camera's EXIF orientation applied (a phone
    photograph held upright is stored on its side), so images, maps and outputs agree with
    what the user sees. ``size`` (width, height as shown): the size it will be brought to,
    so a JPEG much larger is decoded at a half, quarter or eighth of its size, never smaller
    than that (12-megapixel photographs read for 256 px: 6x faster)."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        if size is not None:
            turned = image.getexif().get(ORIENTATION_TAG) in QUARTER_TURNS
            image.draft(None, size[::-1] if turned else size)  # only JPEG decoders take it
        image.load()
        return ImageOps.exif_transpose(image)


def _header(path: Path) -> tuple[tuple[int, int], str]:
    """(width, height) as :func:`_open` shows the image (EXIF orientation applied) and its
    mode, from the file header, without decoding the pixels."""
    from PIL import Image

    with Image.open(path) as image:
        (width, height), orientation = image.size, image.getexif().get(ORIENTATION_TAG)
        turned = orientation in QUARTER_TURNS
        return ((height, width) if turned else (width, height)), image.mode


def _eight_bit(image: object) -> object:
    """16-bit and 32-bit grey images scaled by their bit depth to 8 bits (PIL's own convert
    would clip them, so nearly every pixel would become 255); float images in [0, 1] or
    [0, 255] likewise."""
    from PIL import Image

    mode = image.mode
    if mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 if np.nanmax(values, initial=0.0) <= 1.0 else 1.0
        return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), "L")
    return image


def available_memory() -> int | None:
    """Bytes of memory available now (MemAvailable on Linux), or None when unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_image_memory(root: Path, count: int, channels: int, height: int, width: int) -> None:
    """Refuse, before decoding, an image set whose pixels (as float32, with a model's feature
    maps for one image) would not fit in the memory available, and say what would."""
    need = count * channels * height * width * 4 * 3 + height * width * (
        CONV_ACTIVATION_BYTES_PER_PIXEL)
    have = available_memory()
    if have is None or need <= MEMORY_SHARE * have:
        return
    budget = MEMORY_SHARE * have / (count * channels * 12 + CONV_ACTIVATION_BYTES_PER_PIXEL)
    side = max(8, int(budget ** 0.5) // 8 * 8)
    raise DataError(
        f"{root}: {count} image(s) of {height}x{width} need about {need / 2**30:.1f} GiB of "
        f"memory, more than the {MEMORY_SHARE * have / 2**30:.1f} GiB one image set may take "
        f"here ({MEMORY_SHARE:.0%} of the {have / 2**30:.1f} GiB available); shrink them with "
        f"--image-size (at most about {side},{side} here)")


@dataclass
class FolderScan:
    """An image folder read from its file headers only: the readable files, their original
    sizes (H, W), the colour mode and size every image is brought to, and the files whose
    headers could not be read."""

    root: Path
    paths: list[Path]
    sizes: list[tuple[int, int]]
    mode: str
    target: tuple[int, int]  # PIL order: (width, height)
    bad: list[str]
    strict: bool = False


def _warn_if_turned(root: Path, image_size: tuple[int, int], common: tuple[int, int]) -> None:
    """Warn when ``--image-size H,W`` turns the folder's landscape images into portrait ones
    (or back): written as width,height it would silently squash every image."""
    (height, width), (common_h, common_w) = image_size, common
    if (height - width) * (common_h - common_w) < 0:
        warnings.warn(f"{root}: images are resized to {height} high and {width} wide "
                      f"(--image-size is height,width), but the images are typically "
                      f"{common_h} high and {common_w} wide, so each is squashed; fit with "
                      f"--image-size {width},{height} to keep their shape", UserWarning, stacklevel=4)


def typical_size(sizes: Counter) -> tuple[tuple[int, int], str]:
    """The (width, height) a folder of differently sized images is brought to, and how it was
    chosen: the most common size when at least half the images share it; otherwise the median
    width and height, since then the most common size is one of many near-ties, and which one
    wins would be down to a few files (magnetic tiles: 158 sizes in 650 images, the most
    common held by 15)."""
    (size, count), total = sizes.most_common(1)[0], sum(sizes.values())
    if 2 * count >= total:
        return size, "the most common"
    widths = np.repeat([w for w, _ in sizes], list(sizes.values()))
    heights = np.repeat([h for _, h in sizes], list(sizes.values()))
    return (round(float(np.median(widths))), round(float(np.median(heights)))), "their median"


def scan_image_folder(root: str | Path, image_size: tuple[int, int] | None = None,
                      strict: bool = False, channels: int | None = None) -> FolderScan:
    """The headers of every image below ``root``: sizes and modes, without decoding pixels.
    Different sizes are resized to ``image_size`` (or :func:`typical_size`, with a warning);
    modes are unified to ``channels`` (1 grey, 3 RGB) or, when not given, to grey if all
    images are grey, else RGB."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: folder not found; check the path")
    headers, paths, bad = [], [], []
    for path in list_images(root, say_hidden=True):
        try:
            headers.append(_header(path))
            paths.append(path)
        except Exception as exc:  # PIL raises many types for damaged files
            bad.append(f"{relative_name(path, root)} ({type(exc).__name__})")
    if not headers:
        _report_unreadable(root, bad, strict)
        raise DataError(f"{root}: none of the images could be read")
    grey = all(m in ("L", "1", "F", *SIXTEEN_BIT_MODES) for _, m in headers)
    mode = {1: "L", 3: "RGB"}.get(channels or 0, "L" if grey else "RGB")
    sizes = Counter(size for size, _ in headers)
    (common_w, common_h), which = typical_size(sizes)  # PIL sizes are (width, height)
    if image_size is None:
        target = (common_w, common_h)
        if len(sizes) > 1:
            warnings.warn(f"{root}: images have {len(sizes)} different sizes; resizing all to "
                          f"{which}, {common_h} high and {common_w} wide (set "
                          "--image-size H,W to choose)", UserWarning, stacklevel=3)
    else:
        target = (image_size[1], image_size[0])
        _warn_if_turned(root, image_size, (common_h, common_w))
    return FolderScan(root, paths, [(size[1], size[0]) for size, _ in headers], mode, target,
                      bad, strict)


def decode_images(scan: FolderScan, start: int = 0, stop: int | None = None) -> ImageSet:
    """Decode files ``start:stop`` of a scanned folder, each converted and resized on its own;
    unreadable ones are said in one warning and skipped (an error with ``strict``)."""
    from PIL import Image

    root, bad = scan.root, list(scan.bad) if start == 0 else []
    arrays, kept, original_sizes = [], [], []
    for path, size in zip(scan.paths[start:stop], scan.sizes[start:stop]):
        try:
            img = _eight_bit(_open(path, scan.target)).convert(scan.mode)
        except Exception as exc:  # damaged pixel data only shows when decoded
            bad.append(f"{relative_name(path, root)} ({type(exc).__name__})")
            continue
        if img.size != scan.target:
            img = img.resize(scan.target, Image.BILINEAR)
        arrays.append(np.asarray(img, dtype=np.uint8))
        kept.append(path)
        original_sizes.append(size)
    _report_unreadable(root, bad, scan.strict)
    if not arrays:
        shape = (0, 3 if scan.mode == "RGB" else 1, scan.target[1], scan.target[0])
        return ImageSet(np.zeros(shape, np.uint8), [], [], root, [])
    images = np.stack(arrays)
    images = images[:, None] if images.ndim == 3 else np.transpose(images, (0, 3, 1, 2))
    relative = [relative_name(p, root) for p in kept]
    classes = [Path(r).parts[0] if len(Path(r).parts) > 1 else None for r in relative]
    return ImageSet(images, relative, classes, root, original_sizes)


def read_image_folder(root: str | Path, image_size: tuple[int, int] | None = None,
                      strict: bool = False, channels: int | None = None) -> ImageSet:
    """Read every image below ``root``. Class = first sub-folder (None for files at the top).
    Sizes and modes are unified as :func:`scan_image_folder` says. Sizes come from the file
    headers first, so a set too large for memory is refused before any pixel is decoded."""
    scan = scan_image_folder(root, image_size, strict, channels)
    check_image_memory(scan.root, len(scan.paths), 3 if scan.mode == "RGB" else 1,
                       scan.target[1], scan.target[0])
    found = decode_images(scan)
    if not found.paths:
        raise DataError(f"{scan.root}: none of the images could be read")
    return found


def read_images(folder: str | Path, image_size: tuple[int, int] | None = None,
                strict: bool = False) -> ImageSet:
    """An image folder (class sub-folders or flat) or one image file, read as the CLI reads
    it, for the Python API: ``.images`` (N, C, H, W) uint8 for ``fit`` and ``score_samples``,
    ``.paths`` relative to the folder, ``.classes`` (first sub-folder, None at the top) and
    ``.sizes`` (each file's own height and width). Sizes differ: brought to ``image_size``
    (H, W) or the typical size, with a warning; hidden and unreadable files are left out,
    said in a warning (``strict``: unreadable ones are an error)."""
    return read_image_folder(folder, image_size, strict)


def _report_unreadable(root: Path, bad: list[str], strict: bool) -> None:
    if not bad:
        return
    message = f"{root}: {len(bad)} unreadable image(s): {', '.join(bad[:5])}"
    if strict:
        raise DataError(message + "; remove them or drop --strict to skip them")
    warnings.warn(message + "; skipped", UserWarning, stacklevel=3)


def at_own_sizes(images: np.ndarray, sizes: list[tuple[int, int]]) -> list[np.ndarray]:
    """(N, C, H, W) uint8 images, each brought back (bilinear) to its file's own (height,
    width) in ``sizes`` where it was read at another."""
    from PIL import Image

    out = []
    for array, (height, width) in zip(images, sizes, strict=True):
        if array.shape[1:] != (height, width):
            planes = [np.asarray(Image.fromarray(plane).resize((width, height), Image.BILINEAR))
                      for plane in array]
            array = np.stack(planes)
        out.append(array)
    return out


def write_images(images: np.ndarray | list[np.ndarray], names: list[str], folder: str | Path
                 ) -> list[Path]:
    """Write (N, C, H, W) uint8 images under ``folder`` with the given relative names; the
    format follows each name's suffix. Files are written to temporary names, then renamed."""
    folder = Path(folder)
    written = []
    for array, name in zip(images, names):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial{target.suffix}")
        as_picture(array).save(tmp)
        os.replace(tmp, target)
        written.append(target)
    return written


def as_picture(array: np.ndarray) -> Any:
    """A (C, H, W) uint8 image as a PIL image (grey for one channel)."""
    from PIL import Image

    return Image.fromarray(array[0] if array.shape[0] == 1 else np.transpose(array, (1, 2, 0)))
