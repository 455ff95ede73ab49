"""Pixel-level evaluation of image heat maps against defect masks (MVTec AD's layout): which
pixels the maps rank highest, measured as pixel ROC-AUC over every pixel of the test images."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aetool.data.acquisition import LOSSY_SUFFIXES
from aetool.data.images import IMAGE_SUFFIXES
from aetool.errors import DataError

MASK_MARKS = ("_mask", "_label", "_gt", "")  # NAME_mask (MVTec AD), NAME_label (DAGM), ...


def mask_path(masks: Path, relative: str) -> Path | None:
    """The mask of test image ``relative`` (e.g. ``crack/007.png``) under ``masks``: the file
    of the same stem with one of MASK_MARKS (any case) and any image suffix, so MVTec AD's
    ``crack/007_mask.png``, DAGM's ``crack/007_label.PNG``, KolektorSDD2's ``007_GT.png`` and a
    plain ``crack/007.png`` are all found; None when there is none."""
    stem = Path(relative).with_suffix("")
    folder = masks / stem.parent
    names = [f"{stem.name}{mark}{suffix}" for mark in MASK_MARKS for suffix in IMAGE_SUFFIXES]
    for name in names:
        if (folder / name).is_file():
            return folder / name
    if not folder.is_dir():
        return None
    wanted = {name.lower() for name in names}
    for candidate in sorted(folder.iterdir()):  # other cases: 007_GT.png, 007.PNG
        if candidate.name.lower() in wanted and candidate.is_file():
            return candidate
    return None


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A mask file as a boolean (H, W) array at the model's image size (nearest neighbour, so
    a thin defect stays a defect): any non-zero pixel is defective (0/1, 0/255 and class-index
    masks alike), but in a JPEG, whose compression leaves faint values round every edge, only
    pixels above half the brightest one."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:  # turned as its image is (EXIF orientation)
            grey = ImageOps.exif_transpose(image).convert("L").resize(
                (shape[1], shape[0]), Image.NEAREST)
    except Exception as exc:  # PIL raises many types for damaged files
        raise DataError(f"{path}: unreadable mask ({type(exc).__name__}); fix or remove it") \
            from None
    values = np.asarray(grey)
    lossy = path.suffix.lower() in LOSSY_SUFFIXES
    return values > (int(values.max()) // 2 if lossy else 0)


def check_mask_folder(masks: str | Path) -> Path:
    """The mask folder, refused before any scoring when it is not there."""
    masks = Path(masks)
    if not masks.is_dir():
        raise DataError(f"{masks}: mask folder not found; check the path")
    return masks


@dataclass
class PixelTruth:
    """Heat maps and their masks, gathered a chunk of images at a time (only each pixel's map
    value and its mask bit are kept, not the images), then measured as pixel ROC-AUC."""

    masks: Path
    maps: list[np.ndarray] = field(default_factory=list)
    truth: list[np.ndarray] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def add(self, table: Any, maps: np.ndarray) -> None:
        """Keep ``maps`` (N, H, W) of ``table``'s images with their masks. Normal images
        (label 0) without a mask count as all-normal pixels; an anomalous image without one
        is left out (counted for a warning)."""
        shape = maps.shape[1:]
        for index, name in enumerate(table.ids.astype(str)):
            found = mask_path(self.masks, name)
            if found is not None:
                self.truth.append(read_mask(found, shape))
            elif table.labels is not None and table.labels[index] == 0:
                self.truth.append(np.zeros(shape, bool))
            else:
                self.missing.append(name)
                continue
            self.maps.append(np.asarray(maps[index], np.float32))

    def metrics(self) -> dict[str, float]:
        """Pixel ROC-AUC over every kept pixel and how many images it counts."""
        from sklearn.metrics import roc_auc_score

        if self.missing:
            warnings.warn(f"{self.masks}: no mask for {len(self.missing)} anomalous image(s) "
                          f"(e.g. {self.missing[0]}); left out of the pixel metrics",
                          UserWarning, stacklevel=2)
        labels = np.stack(self.truth) if self.truth else np.zeros((0, 1, 1), bool)
        if not labels.any() or labels.all():
            raise DataError(f"{self.masks}: the masks mark no defective pixels (or only "
                            "defective ones); pixel ROC-AUC needs both")
        return {"pixel_roc_auc": float(roc_auc_score(labels.ravel(),
                                                     np.stack(self.maps).ravel())),
                "pixel_images": len(self.truth)}

