"""Pixel-level evaluation of image heat maps against defect masks (MVTec AD's layout): which
pixels the maps rank highest, measured as pixel ROC-AUC over every pixel of the test images."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from aetool.data.images import IMAGE_SUFFIXES
from aetool.errors import DataError


def mask_path(masks: Path, relative: str) -> Path | None:
    """The mask of test image ``relative`` (e.g. ``crack/007.png``) under ``masks``:
    ``crack/007_mask.png`` (MVTec AD) or ``crack/007.<any image suffix>``; None when there is
    none."""
    stem = Path(relative).with_suffix("")
    for candidate in [masks / f"{stem}_mask.png",
                      *(masks / f"{stem}{suffix}" for suffix in IMAGE_SUFFIXES)]:
        if candidate.is_file():
            return candidate
    return None


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A mask file as a boolean (H, W) array at the model's image size (nearest neighbour, so
    a thin defect stays a defect); any non-zero pixel is defective."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            grey = image.convert("L").resize((shape[1], shape[0]), Image.NEAREST)
    except Exception as exc:  # PIL raises many types for damaged files
        raise DataError(f"{path}: unreadable mask ({type(exc).__name__}); fix or remove it") \
            from None
    return np.asarray(grey) > 0


def pixel_metrics(table: Any, maps: np.ndarray, masks: str | Path) -> dict[str, float]:
    """Pixel ROC-AUC of ``maps`` (N, H, W) against the masks of ``table``'s images. Normal
    images (label 0) without a mask count as all-normal pixels; an anomalous image without one
    is left out, with a warning naming how many."""
    from sklearn.metrics import roc_auc_score

    masks = Path(masks)
    if not masks.is_dir():
        raise DataError(f"{masks}: mask folder not found; check the path")
    shape = maps.shape[1:]
    truth, kept, missing = [], [], []
    for index, name in enumerate(table.ids.astype(str)):
        found = mask_path(masks, name)
        if found is not None:
            truth.append(read_mask(found, shape))
        elif table.labels is not None and table.labels[index] == 0:
            truth.append(np.zeros(shape, bool))
        else:
            missing.append(name)
            continue
        kept.append(index)
    if missing:
        warnings.warn(f"{masks}: no mask for {len(missing)} anomalous image(s) (e.g. "
                      f"{missing[0]}); left out of the pixel metrics", UserWarning, stacklevel=2)
    labels = np.stack(truth) if truth else np.zeros((0, *shape), bool)
    if not labels.any() or labels.all():
        raise DataError(f"{masks}: the masks mark no defective pixels (or only defective "
                        "ones); pixel ROC-AUC needs both")
    return {"pixel_roc_auc": float(roc_auc_score(labels.ravel(), maps[kept].ravel())),
            "pixel_images": len(kept)}
