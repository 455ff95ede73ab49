"""Per-pixel anomaly heat maps: the reconstruction error of each pixel, coloured and laid over
the image at the image's own size; and a grid of the most anomalous images."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from aetool.plots import _pyplot, save_figure


def pixel_maps(errors: np.ndarray) -> np.ndarray:
    """(N, C, H, W) squared errors -> (N, H, W) per-pixel error (summed over channels)."""
    return errors.sum(axis=1)


def map_scale(maps: np.ndarray) -> float:
    """One colour scale for a whole run: the 99.5th percentile of all pixel errors."""
    return float(np.quantile(maps, 0.995)) or 1.0


def overlay(image: np.ndarray, heat: np.ndarray, scale: float,
            size: tuple[int, int] | None = None) -> np.ndarray:
    """An RGB uint8 picture: the image in grey with the heat map (inferno) blended on top,
    resized to ``size`` (height, width) when given."""
    import matplotlib
    from PIL import Image

    grey = image.mean(axis=0) if image.ndim == 3 else image
    grey = grey.astype(np.float32)
    grey = grey / max(float(grey.max()), 1e-12) if grey.max() > 1 else grey
    level = np.clip(heat / scale, 0.0, 1.0)
    colours = matplotlib.colormaps["inferno"](level)[..., :3]
    alpha = (0.25 + 0.65 * level)[..., None]
    blended = (1 - alpha) * grey[..., None] + alpha * colours
    picture = Image.fromarray((np.clip(blended, 0, 1) * 255).astype(np.uint8))
    if size is not None and (size[0], size[1]) != blended.shape[:2]:
        picture = picture.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(picture)


def write_heat_maps(table: Any, details: dict[str, np.ndarray], folder: str | Path,
                    scale: float | None = None) -> float:
    """One PNG per image under ``folder`` (same relative path, ``_map.png``), same size as the
    input file; written to temporary names and renamed. ``scale``: the colour scale (None:
    this batch's); returns the scale used, so later batches of a run can share it."""
    from PIL import Image

    folder = Path(folder)
    maps = pixel_maps(details["errors"])
    scale = map_scale(maps) if scale is None else scale
    images = table.features
    for i, name in enumerate(table.ids.astype(str)):
        size = table.sizes[i] if table.sizes else None
        picture = overlay(images[i], maps[i], scale, size)
        target = folder / Path(name).with_name(Path(name).stem + "_map.png")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial.png")
        Image.fromarray(picture).save(tmp)
        os.replace(tmp, target)
    return scale


def grid_titles(table: Any, scores: np.ndarray, order: np.ndarray,
                width: int = 16) -> list[tuple[str, bool]]:
    """For each image shown: its file name (shortened to ``width``) and score as the title, and
    whether it is a labelled anomaly (drawn in red). A file name that more than one image of
    the table has (test/crack/000.png and test/good/000.png, as in MVTec AD's layout) is shown
    with its folder, even when only one of them is among the images shown."""
    def shortened(text: str) -> str:
        return text if len(text) <= width else text[:width - 1] + "…"

    paths = [Path(str(table.ids.iloc[index])) if table.ids is not None else Path(f"#{index}")
             for index in order]
    every = table.ids if table.ids is not None else []
    uses = Counter(Path(str(name)).name for name in every)
    titles = []
    for index, path in zip(order, paths, strict=True):
        name = shortened(path.name)
        if uses[path.name] > 1 and path.parent.name:
            name = f"{shortened(path.parent.name)}/\n{name}"
        marked = table.labels is not None and table.labels[index] == 1
        titles.append((f"{name}\n{scores[index]:.2f}", bool(marked)))
    return titles


def most_anomalous_grid(detector: Any, table: Any, details: dict[str, np.ndarray],
                        path: str | Path, count: int = 12, scale: float | None = None
                        ) -> Path:
    """Rows: the ``count`` most anomalous images, their reconstructions and heat maps
    (``scale``: the maps' colour scale; None: these images')."""
    order = np.argsort(-details["anomaly_score"], kind="stable")[:count]
    matrix, _ = detector._prepare(table.features[order], reset=False)
    recon = detector.image_reconstructions(matrix)
    maps = pixel_maps(details["errors"])
    scale = map_scale(maps) if scale is None else scale
    titles = grid_titles(table, details["anomaly_score"], order)
    plt = _pyplot()
    fig, axes = plt.subplots(3, len(order), figsize=(1.4 * len(order), 4.6), squeeze=False)
    for col, index in enumerate(order):
        shown = [np.clip(matrix[col], 0, 1), np.clip(recon[col], 0, 1)]
        for row, image in enumerate(shown):
            pixels = image[0] if image.shape[0] == 1 else np.transpose(image, (1, 2, 0))
            axes[row, col].imshow(pixels, cmap="gray", vmin=0, vmax=1)
        axes[2, col].imshow(overlay(matrix[col], maps[index], scale))
        title, marked = titles[col]
        axes[0, col].set_title(title, fontsize=6, color="tab:red" if marked else "black")
        for row in range(3):
            axes[row, col].axis("off")
    for row, label in enumerate(("image", "reconstruction", "error map")):
        axes[row, 0].text(-0.1, 0.5, label, transform=axes[row, 0].transAxes, rotation=90,
                          va="center", ha="right", fontsize=7)
    fig.suptitle("Most anomalous images (title: file and anomaly score; red: labelled "
                 "anomaly)", fontsize=9)
    return save_figure(fig, path)
