"""Arrays (.npy, .npz) and image tensors: reading, layout and [0, 1] scaling saved as JSON."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aetool.data.preprocess import TablePreprocessor
from aetool.errors import DataError


def read_array_file(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """X (and y when an .npz has one) from a .npy or .npz file; pickled arrays are refused."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False), None
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            if not keys:
                raise DataError(f"{path}: the archive holds no arrays")
            x_key = "X" if "X" in keys else ("x" if "x" in keys else keys[0])
            y_key = "y" if "y" in keys else ("Y" if "Y" in keys else None)
            return archive[x_key], (archive[y_key] if y_key else None)
    except ValueError as exc:
        raise DataError(f"{path}: unreadable array file ({exc}); object arrays are not loaded") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: damaged or not a NumPy file ({exc})") from None


def to_image_layout(x: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (N, 1, H, W); channels-last (N, H, W, C) -> (N, C, H, W)."""
    if x.ndim == 3:
        return x[:, None, :, :]
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        return np.transpose(x, (0, 3, 1, 2))
    return x


@dataclass
class ImagePreprocessor:
    """Scales image arrays to [0, 1] by a fixed divisor (255 for 8-bit images, else the training
    maximum), saved so scoring applies the same one."""

    scale: float = 255.0
    shape: tuple[int, ...] = ()

    @classmethod
    def fit(cls, x: np.ndarray, source: str = "data") -> ImagePreprocessor:
        x = to_image_layout(x)
        if x.ndim != 4:
            raise DataError(f"{source}: expected images of shape (N, C, H, W), got {x.shape}")
        if x.shape[0] < 2:
            raise DataError(f"{source}: has 1 sample (image); training needs at least 2")
        if np.issubdtype(x.dtype, np.integer):
            # 8-bit photos use the full 0-255 range; small-range integer data (e.g. 0-16) its max
            scale = 255.0 if 127 < x.max() <= 255 else float(max(x.max(), 1))
        else:
            if not np.isfinite(x).all():
                raise DataError(f"{source}: images contain NaN or infinite values")
            scale = float(max(x.max(), 1e-12)) if x.max() > 1.0 else 1.0
        return cls(scale=scale, shape=tuple(int(s) for s in x.shape[1:]))

    def transform(self, x: np.ndarray, source: str = "data") -> tuple[np.ndarray, int]:
        x = to_image_layout(x)
        if tuple(x.shape[1:]) != tuple(self.shape):
            raise DataError(
                f"{source}: images have shape {tuple(x.shape[1:])}, the model expects "
                f"{tuple(self.shape)}; bring them to that shape (an image folder is read "
                "at it) or retrain on images of this shape"
            )
        return self.scaled(x), 0

    def scaled(self, x: np.ndarray) -> np.ndarray:
        """(N, C, H, W) images in [0, 1] by the fitted divisor, whatever their size."""
        return x.astype(np.float32) / np.float32(self.scale)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, 0.0, 1.0) * self.scale

    feature_names = None
    feature_groups = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "image", "scale": self.scale, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ImagePreprocessor:
        return cls(scale=float(state["scale"]), shape=tuple(state["shape"]))


def preprocessor_from_dict(state: dict[str, Any]) -> Any:
    """Rebuild the saved preprocessor of either kind."""
    kind = state.get("kind")
    if kind == "table":
        return TablePreprocessor.from_dict(state)
    if kind == "image":
        return ImagePreprocessor.from_dict(state)
    raise DataError(f"unknown preprocessing kind '{kind}' in the bundle")
