"""Synthetic photographs of parts and surfaces with small defects, in MVTec AD's layout
(issue #18): sets a user's own photographs resemble, generated here, seeded, nothing shipped.

- surface: a striped wooden colour surface (grain along the stripes, uneven light, sensor
  noise); defects: thin dark scratches, small green stains;
- bottle: a round grey part seen from above (a bright rim around a shaded bottom, centred
  within a few pixels); defects: dark contamination on the bottom, chips out of the rim;
- leather: a fine brown grain at two scales, uneven light; defects: thin dark cuts, pale
  glue stains.

Each set: 100 normal training images, 40 normal test images and 20 of each defect kind, 256 px
square, with a mask per defective image. The defects cover 0.1-1% of an image, as small as
the issue's smallest. :func:`photo_set` gives arrays (train, test, labels); :func:`write_set`
writes train/good, test/good|KIND and ground_truth/KIND/NAME_mask.png for the CLI.

Run as a script: each set through the CLI as a user would (`aetool fit train/`, `aetool
evaluate MODEL test/ --normal-class good --masks ground_truth --plots`), image ROC-AUC,
AUPR, F1-max and the heat maps' pixel ROC-AUC, beside the pixel peers of
bench/defect_peers.py on the same 256 px images; results in bench/results/synthetic_photos.json
and each set's 12 most anomalous images with their maps as synthetic_photos_SET.png.

    python bench/synthetic_photos.py                  # about 20 minutes on 2 cores
    python bench/synthetic_photos.py --sets surface
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

SIDE = 256
TRAIN, NORMAL_TEST, DEFECTS_PER_KIND = 100, 40, 20
NAME = "synthetic_photos.json"


def _smooth_noise(rng: np.random.Generator, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(rng.normal(size=(SIDE, SIDE)), sigma)


def _disc_mask(x: float, y: float, rx: float, ry: float) -> np.ndarray:
    yy, xx = np.mgrid[:SIDE, :SIDE]
    return ((xx - x) / rx) ** 2 + ((yy - y) / ry) ** 2 <= 1


def _line_mask(points: list[tuple[float, float]], width: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (SIDE, SIDE), 0)
    ImageDraw.Draw(canvas).line(points, fill=255, width=width)
    return np.asarray(canvas) > 0


def _surface(rng: np.random.Generator) -> np.ndarray:
    phase = _smooth_noise(rng, 2) * 8
    grain = np.sin(np.arange(SIDE)[None, :] * 0.25 + phase) * 20
    light = np.linspace(-15, 15, SIDE)[:, None] * rng.uniform(0.5, 1.5)
    grey = 140 + grain + light + rng.normal(0, 4, (SIDE, SIDE))
    return np.stack([grey, grey * 0.8, grey * 0.55], -1)


def _surface_defect(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    x, y = rng.integers(32, SIDE - 32, 2)
    if kind == "scratch":
        dx, dy = rng.integers(-45, 45, 2)
        mask = _line_mask([(x, y), (x + dx, y + dy)], width=2)
        image[mask] *= 0.45
    else:
        radius = rng.uniform(4, 8)
        mask = _disc_mask(x, y, radius, radius)
        image[mask] = image[mask] * 0.5 + np.array([20, 90, 40])
    return mask


def _bottle(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[:SIDE, :SIDE]
    cx, cy = SIDE / 2 + rng.normal(0, 2, 2)
    r = np.hypot(xx - cx, yy - cy) * 400 / SIDE  # drawn on a 400 px plan, as photographed
    image = np.full((SIDE, SIDE), 40.0)
    rim = (r > 120) & (r < 150)
    image[rim] = (170 + 30 * np.cos((r - 135) / 15 * np.pi / 2))[rim]
    bottom = r <= 120
    image[bottom] = (90 + 50 * np.exp(-(r / 60) ** 2) + _smooth_noise(rng, 1.5) * 20)[bottom]
    image += rng.normal(0, 3, (SIDE, SIDE))
    return image[..., None]


def _bottle_defect(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    centre = SIDE / 2
    angle = rng.uniform(0, 2 * np.pi)
    scale = SIDE / 400
    if kind == "contamination":
        distance, radius, level = rng.uniform(10, 100) * scale, rng.uniform(4, 8) * scale, 25
    else:
        distance, radius, level = 140 * scale, rng.uniform(7, 11) * scale, 45
    x, y = centre + distance * np.cos(angle), centre + distance * np.sin(angle)
    mask = _disc_mask(x, y, radius, radius * (0.7 if kind == "contamination" else 1))
    image[mask] = level + rng.normal(0, 4, (int(mask.sum()), 1))
    return mask


def _leather(rng: np.random.Generator) -> np.ndarray:
    grain = _smooth_noise(rng, 1.0) * 60 + _smooth_noise(rng, 4) * 60
    grey = 110 + grain + np.linspace(-10, 10, SIDE)[None, :] * rng.uniform(-1, 1)
    return np.stack([grey * 1.1, grey * 0.75, grey * 0.5], -1)


def _leather_defect(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    x, y = rng.integers(32, SIDE - 32, 2)
    if kind == "cut":
        points = [(float(x), float(y))]
        for _ in range(3):
            points.append((points[-1][0] + rng.integers(-16, 16),
                           points[-1][1] + rng.integers(-16, 16)))
        mask = _line_mask(points, width=2)
        image[mask] *= 0.35
    else:
        radius = rng.uniform(6, 11)
        mask = gaussian_filter(_disc_mask(x, y, radius, radius).astype(float), 2) > 0.25
        image[mask] = image[mask] * 0.6 + 60
    return mask


SETS: dict[str, tuple[Callable, Callable, tuple[str, str]]] = {
    "surface": (_surface, _surface_defect, ("scratch", "stain")),
    "bottle": (_bottle, _bottle_defect, ("contamination", "broken")),
    "leather": (_leather, _leather_defect, ("cut", "glue")),
}


def _pixels(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 255).astype(np.uint8)


def generated(name: str) -> dict[str, list[tuple[np.ndarray, np.ndarray | None]]]:
    """Each folder of set ``name`` (train/good, test/good, test/KIND) as a list of (H, W, C)
    uint8 images with their masks (None for normal images); seeded by the set."""
    make, defect, kinds = SETS[name]
    rng = np.random.default_rng(list(SETS).index(name))
    folders: dict[str, list] = {
        "train/good": [(_pixels(make(rng)), None) for _ in range(TRAIN)],
        "test/good": [(_pixels(make(rng)), None) for _ in range(NORMAL_TEST)]}
    for kind in kinds:
        folders[f"test/{kind}"] = []
        for _ in range(DEFECTS_PER_KIND):
            image = make(rng)
            mask = defect(image, kind, rng)
            folders[f"test/{kind}"].append((_pixels(image), mask))
    return folders


def photo_set(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training images, test images (N, C, H, W uint8) and test labels (1: defect)."""
    folders = generated(name)
    train = np.stack([image for image, _ in folders.pop("train/good")])
    test = [(image, mask is not None) for items in folders.values() for image, mask in items]
    stacked = np.stack([image for image, _ in test])
    return (train.transpose(0, 3, 1, 2), stacked.transpose(0, 3, 1, 2),
            np.array([flag for _, flag in test], dtype=int))


def write_set(name: str, root: Path) -> Path:
    """Write set ``name`` under ``root``/``name`` as PNG folders with MVTec AD's mask names."""
    from PIL import Image

    folder = root / name
    for place, items in generated(name).items():
        (folder / place).mkdir(parents=True, exist_ok=True)
        for i, (image, mask) in enumerate(items):
            Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(
                folder / place / f"{i:03d}.png")
            if mask is not None:
                masks = folder / "ground_truth" / place.split("/")[1]
                masks.mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask.astype(np.uint8) * 255).save(masks / f"{i:03d}_mask.png")
    return folder


def cli_row(folder: Path, out: Path) -> dict:
    """The user's path on one written set: fit on train/ with no option, evaluate test/ with
    masks and plots (real_defects.fit_and_evaluate)."""
    from real_defects import fit_and_evaluate

    saved, fit_s = fit_and_evaluate(folder / "train", folder / "test", None, [],
                                    ["--masks", str(folder / "ground_truth"), "-q"], out,
                                    normal="good")
    return {"roc_auc": saved["roc_auc"], "aupr": saved["pr_auc"], "f1_max": saved["f1_max"],
            "pixel_roc_auc": saved["pixel_roc_auc"], "seconds": fit_s}


def main() -> None:
    from common import RESULTS, machine, print_table, rows_by_case_method, write_json
    from defect_peers import PEERS
    from real_defects import image_metrics

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--peers", default="yes", choices=("yes", "no"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = rows_by_case_method(NAME)

    def keep(row: dict) -> None:
        rows[(row["case"], row["method"])] = row
        print(row, flush=True)
        write_json(NAME, {"protocol": __doc__, "machine": machine(),
                          "rows": list(rows.values())})

    for name in args.sets.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            folder = write_set(name, Path(tmp))
            keep({"case": name, "method": "aetool default (CLI: fit, evaluate --masks)",
                  **cli_row(folder, Path(tmp))})
            shutil.copy(Path(tmp) / "plots" / "most_anomalous.png",
                        RESULTS / f"synthetic_photos_{name}.png")
        if args.peers == "yes":
            train, test, labels = photo_set(name)
            for method, func in PEERS.items():
                start = time.perf_counter()
                scores = func(train, test)
                keep({"case": name, "method": method, **image_metrics(labels, scores),
                      "seconds": time.perf_counter() - start})
    print_table(list(rows.values()), ["case", "method", "roc_auc", "aupr", "f1_max",
                                      "pixel_roc_auc", "seconds"])


if __name__ == "__main__":
    main()
