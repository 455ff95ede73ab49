"""How a folder's image files were taken, as far as their headers tell (typical resolution, lossy
or lossless files), kept with a detector so that scoring images taken another way says so: a
patch detector compares fine texture, which resampling from another resolution or JPEG
compression changes for every image, defective or not."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

LOSSY_SUFFIXES = (".jpg", ".jpeg", ".webp")  # WebP: lossy as photographs are saved
SIZE_TOLERANCE = 1.15  # typical sides further apart than this ratio count as another resolution
# Measured on the synthetic round parts (bench/residual_floor.py "camera"), detector fitted on
# 256-px PNGs: normal test images scored 0.9x the threshold as PNG, 1.0x as JPEG of quality 75
# (a quarter flagged) and 1.7x when resampled from 300 px and read at 256 (most flagged), with
# each patch's error floored at the training patches' median (the default); 3.4x and 3.7x
# unfloored, 3.8x and 4.8x before each code's error left the edge channel out; fitted with
# residual=false, 1.0x and 0.9x (the reconstruction error each patch code carries is what fine
# texture moves).
EFFECT = "normal images scored about 1 (JPEG) to 2 (resampled) times the threshold in a check"
REMEDY = ("score images taken as the training images were, fit on images like these, or fit "
          "the patch detector with --set residual=false (in the same check about 1 times the "
          "threshold, but it finds fewer fine scratches on textures)")


def summary(sizes: Sequence[tuple[int, int]], paths: Sequence[Any]) -> dict[str, Any] | None:
    """The typical (median) original height and width of a folder's files and the share that
    are JPEG; None without files."""
    if not len(sizes):
        return None
    heights, widths = zip(*sizes, strict=True)
    lossy = np.mean([Path(str(p)).suffix.lower() in LOSSY_SUFFIXES for p in paths])
    return {"size": [int(np.median(heights)), int(np.median(widths))],
            "jpeg_share": round(float(lossy), 3)}


def file_kind(taken: dict[str, Any]) -> str:
    """What most files of a :func:`summary` are: JPEG or lossless."""
    return "JPEG/WebP" if taken["jpeg_share"] >= 0.5 else "lossless (PNG, BMP, TIFF)"


def differences(trained: dict[str, Any], scored: dict[str, Any]) -> list[str]:
    """What differs between how the training images and the scored ones were taken."""
    found = []
    (th, tw), (sh, sw) = trained["size"], scored["size"]
    apart = max(abs(math.log(max(sh, 1) / max(th, 1))), abs(math.log(max(sw, 1) / max(tw, 1))))
    if apart > math.log(SIZE_TOLERANCE):
        found.append(f"they are typically {sh}x{sw} pixels, the training images {th}x{tw} "
                     "(resampling to the model's size changes their fine texture)")
    trained_kind, scored_kind = (file_kind(taken) for taken in (trained, scored))
    if trained_kind != scored_kind:
        found.append(f"they are mostly {scored_kind} files, the training images mostly "
                     f"{trained_kind} (compression artefacts change fine texture)")
    return found


def warn_if_taken_otherwise(root: Path, trained: dict[str, Any] | None,
                            sizes: Sequence[tuple[int, int]], paths: Sequence[Any]) -> None:
    """Warn when the images under ``root`` were taken otherwise than the detector's training
    images (``trained``: their :func:`summary`, None for bundles saved before it was kept)."""
    scored = summary(sizes, paths)
    if trained is None or scored is None:
        return
    found = differences(trained, scored)
    if found:
        warnings.warn(f"{root}: these images were not taken like the training images: "
                      f"{'; '.join(found)}; scores may rise for normal images too ({EFFECT}); "
                      f"{REMEDY}", UserWarning, stacklevel=3)
