"""Maps that localise (issue #18, item 2): pixel ROC-AUC of the heat maps against defect masks.

Neither shared photograph set ships defect masks, so the masks are made, and the result says
so: every real normal *test* image (508 cells, 302 tiles) is used twice, once as it is
(``test/normal``) and once with one synthetic defect of bench/synthetic_defects.py (a spot, a
scratch, a CutPaste patch or a noise patch over 1-5% of the image; seeded) in
``test/synthetic``, its mask in ``ground_truth/synthetic/NAME_mask.png`` (MVTec AD's layout),
at the images' native size, in a temporary folder. The real defects have no masks; what is
measured here is how well a map points at a small defect it has never seen the like of.

aetool goes through the CLI, as a user with masks would: ``aetool fit train/ --image-size
H,W`` (the default, and ``--image-detector whole`` for the whole-image conv detector), then
``aetool evaluate MODEL test/ --normal-class normal --masks ground_truth``, which prints the
pixel ROC-AUC beside the image metrics. Pixel peers, same resized pixels, same masks:

- per-pixel z-score: each pixel's distance from the training images' mean at that pixel, in
  units of their spread there (images standardised as the patch detector does);
- patch kNN on standardised pixels, same patches and grid as the patch detector, each patch
  against the training patches at its own position; a pixel gets the window-weighted mean
  distance of the patches that cover it (as the patch detector paints its maps, which also
  take off each place's normal level first).

Metric: pixel ROC-AUC over every pixel of every test image (normal images count as all-normal
pixels), and the image ROC-AUC of synthetic against clean. Figure
``pixel_maps_<set>.png``: synthetic defects, their masks and each method's map.

    python bench/pixel_maps.py                       # ELPV 64 and tiles 128, ~15 minutes
    python bench/pixel_maps.py --sets elpv64 --methods "aetool default (CLI)"
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import RESULTS, SHARED, machine, print_table, require, write_json
from real_defects import SETS, fit_and_evaluate
from synthetic_defects import _paste_defect

NAME = "pixel_maps.json"
CLI_METHODS = {"aetool default (CLI)": [],
               "aetool whole-image conv detector (CLI, --image-detector whole)":
                   ["--image-detector", "whole"]}
FIGURE_EXAMPLES = 6
SHORT = {"aetool default (CLI)": "aetool default", "per-pixel z-score (peer)": "pixel z-score",
         "aetool whole-image conv detector (CLI, --image-detector whole)": "aetool whole-image",
         "patch kNN on standardised pixels, own position (peer)": "patch kNN, pixels"}


def make_test_set(folder: Path, out: Path, seed: int = 0) -> None:
    """``out``/test/{normal,synthetic} and ``out``/ground_truth/synthetic from the real normal
    test images of ``folder``, at their own size (grey PNG)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for sub in ("test/normal", "test/synthetic", "ground_truth/synthetic"):
        (out / sub).mkdir(parents=True)
    for path in sorted((folder / "test" / "normal").iterdir()):
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"))
        Image.fromarray(grey).save(out / "test" / "normal" / f"{path.stem}.png")
        defect = grey[None].astype(np.float32)
        _, mask = _paste_defect(defect, rng)
        Image.fromarray(np.clip(defect[0], 0, 255).astype(np.uint8)).save(
            out / "test" / "synthetic" / f"{path.stem}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(
            out / "ground_truth" / "synthetic" / f"{path.stem}_mask.png")


def cli_run(train: Path, made: Path, size: tuple[int, int], options: list[str],
            out: Path) -> dict[str, float]:
    """fit on the real training folder, evaluate with --masks on the made test set."""
    saved, fit_s = fit_and_evaluate(train, made / "test", size, options,
                                    ["--masks", str(made / "ground_truth")], out)
    return {"pixel_roc_auc": saved["pixel_roc_auc"], "image_roc_auc": saved["roc_auc"],
            "seconds": fit_s}


def standardised(images: np.ndarray) -> np.ndarray:
    """Each image at zero mean and unit variance over its pixels (the patch detector's
    :func:`aetool.patches.standardise`)."""
    import torch

    from aetool.patches import standardise

    return standardise(torch.from_numpy(images.astype(np.float32)))[0].numpy()


def pixel_z_maps(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """|x - mean| / spread per pixel, over the standardised training images."""
    train, test = standardised(train), standardised(test)
    mean, spread = train.mean(0), train.std(0) + 1e-3
    return (np.abs(test - mean) / spread).sum(axis=1)


def patch_knn_maps(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Patch kNN on standardised pixels at each patch's own position, painted as the patch
    detector paints (mean distance of the covering patches)."""
    import torch

    from aetool.patches import PatchGrid

    h, w = test.shape[2:]
    grid = PatchGrid.for_image(h, w)
    cut_train = grid.cut(torch.from_numpy(standardised(train)))  # (N, P, D)
    cut_test = grid.cut(torch.from_numpy(standardised(test)))
    distances = torch.stack([torch.cdist(cut_test[:, p], cut_train[:, p]).min(1).values
                             for p in range(cut_test.shape[1])], 1)
    return grid.paste(distances, (1, h, w)).sum(1).numpy()


PEERS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "per-pixel z-score (peer)": pixel_z_maps,
    "patch kNN on standardised pixels, own position (peer)": patch_knn_maps,
}


def pixel_auc(maps: np.ndarray, masks: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(masks.ravel(), maps.ravel()))


def figure(name: str, images: np.ndarray, masks: np.ndarray, maps: dict[str, np.ndarray],
           path: Path) -> None:
    """Synthetic defects (top row), their masks, then one row per method's map, each row on
    one colour scale (a map's weak places stay dark, as in `--maps`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("image", images[:, 0], "gray"), ("mask", masks, "gray"),
            *((method, m, "inferno") for method, m in maps.items())]
    fig, axes = plt.subplots(len(rows), len(images), figsize=(1.8 * len(images),
                                                              1.9 * len(rows)))
    for r, (title, pictures, cmap) in enumerate(rows):
        top = float(np.quantile(np.asarray(pictures, np.float32), 0.995)) or 1.0  # as --maps
        for c, picture in enumerate(pictures):
            axes[r, c].imshow(picture, cmap=cmap, vmin=0, vmax=top)
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(SHORT.get(title, title), fontsize=8)
    fig.suptitle(f"{name}: synthetic defects and the maps that should find them", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def measure(name: str, methods: list[str], rows: dict) -> None:
    """Every method on one set; rows keyed (set, method) are replaced as they come."""
    from aetool import load_detector
    from aetool.data.images import read_image_folder
    from aetool.tasks.heatmaps import pixel_maps
    from aetool.tasks.masks import mask_path, read_mask

    root, size = SETS[name]
    folder = require(SHARED / root)
    with tempfile.TemporaryDirectory() as tmp:
        made = Path(tmp) / "made"
        make_test_set(folder, made)
        test = read_image_folder(made / "test", size)
        truth = np.stack([read_mask(p, size) if (p := mask_path(made / "ground_truth", n))
                          else np.zeros(size, bool) for n in test.paths])
        synthetic = np.array([c == "synthetic" for c in test.classes])
        train = read_image_folder(folder / "train", size).images
        chosen = np.flatnonzero(truth.reshape(len(truth), -1).mean(1) > 0.01)[
            :FIGURE_EXAMPLES]
        maps = {}
        for method in methods:
            if method in CLI_METHODS:
                out = Path(tmp) / f"run{len(maps)}"
                row = cli_run(folder / "train", made, size, CLI_METHODS[method], out)
                details = load_detector(out / "model").anomaly_details(test.images[chosen])
                maps[method] = pixel_maps(details["errors"])
            else:
                start = time.perf_counter()
                found = PEERS[method](train, test.images)
                row = {"pixel_roc_auc": pixel_auc(found, truth),
                       "image_roc_auc": image_auc(found, synthetic), "seconds":
                           time.perf_counter() - start}
                maps[method] = found[chosen]
            rows[(name, method)] = {"set": name, "method": method, **row}
            print(rows[(name, method)], flush=True)
            save(rows)
        figure_path = RESULTS / f"pixel_maps_{name}.png"
        if set(maps) == {*CLI_METHODS, *PEERS}:  # the figure shows every method, side by side
            figure(name, test.images[chosen], truth[chosen], maps, figure_path)
        else:
            print(f"{figure_path.name} kept as it was: a partial run's maps would drop the "
                  f"other methods' columns (run every method to redraw it)", flush=True)


def image_auc(maps: np.ndarray, synthetic: np.ndarray) -> float:
    """Synthetic against clean images, each scored by its map's maximum."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(synthetic, maps.reshape(len(maps), -1).max(1)))


def save(rows: dict) -> None:
    write_json(NAME, {"protocol": __doc__, "machine": machine(), "rows": list(rows.values())})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="elpv64,mtile128")
    parser.add_argument("--methods", default=";".join([*CLI_METHODS, *PEERS]),
                        help="';'-separated")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    path = RESULTS / NAME
    rows = {(r["set"], r["method"]): r for r in json.loads(path.read_text())["rows"]} \
        if path.exists() else {}
    for name in args.sets.split(","):
        measure(name, args.methods.split(";"), rows)
    print_table(list(rows.values()), ["set", "method", "pixel_roc_auc", "image_roc_auc",
                                      "seconds"])


if __name__ == "__main__":
    main()
