"""Image denoising with the defaults, on two image sets: is a candidate default better than
today's on both? (The rule for changing a default: it must hold on at least two sets.)

The dae as `aetool denoise fit CLEAN --variant dae --noise gaussian:SIGMA` trains it (convolutional
on images), with today's settings and with each candidate, against a 3x3 median filter. MNIST:
4,000 shared training digits, 500 scored; ELPV: the 1,000 normal training cells at 64x64, 500
test cells scored. PSNR in dB on [0, 1] pixels, Gaussian noise clipped to [0, 1], seed 0.

BM3D (the `bm3d` package, told the true σ) is the strong classical anchor beside the median
filter; `--peers-only` recomputes the peers and merges them into the saved results.

`--selection` runs what a user runs, on PNG folders through the CLI: `aetool denoise fit
TRAIN/ --noise gaussian:SIGMA` (which on images chooses among the candidates by PSNR on 10% of
the clean images held out, `selection=auto`), then `aetool denoise apply BUNDLE NOISY/ -o OUT/`
on the noisy test images saved as 8-bit PNGs; PSNR of the written PNGs against the clean ones,
beside the median filter on the same PNGs and BM3D from the saved run (float inputs; computed
here for a set the saved run lacks). Results in denoise_image_selection.json.

    python bench/denoise_defaults.py     # about 40 minutes on 2 CPU cores
    python bench/denoise_defaults.py --peers-only     # about 13 minutes
    python bench/denoise_defaults.py --selection      # about 30 minutes
    python bench/denoise_defaults.py --sets mnist,fashion   # a row measured again replaces its own
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from common import (
    RESULTS,
    SHARED,
    load_fashion_mnist,
    machine,
    print_table,
    require,
    write_json,
)

from aetool.estimators.denoiser import psnr  # the PSNR denoise fit chooses settings by

CANDIDATES = {"default": None, "relu": {"activation": "relu"},
              "relu + code 512": {"activation": "relu", "code_size": 512}}


SETS = ("mnist", "elpv64")


def _digit_split(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random 4,000 of 10,000 28x28 images to train on and 500 others to score, every
    class on both sides, as [0, 1] floats (N, 1, 28, 28)."""
    order = np.random.default_rng(0).permutation(len(images))
    floats = images.astype(np.float32)[:, None] / 255
    return floats[np.sort(order[:4000])], floats[np.sort(order[4000:4500])]


def image_sets(names: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(clean training images, clean test images) of each named set, [0, 1] floats."""
    from aetool.data.images import read_image_folder

    sets = {}
    for name in names:
        if name == "mnist":
            sets[name] = _digit_split(np.load(require(SHARED / "mnist" /
                                                      "mnist_train10k_uint8.npz"))["X"])
        elif name == "fashion":
            sets[name] = _digit_split(load_fashion_mnist()[0])
        else:
            cells = require(SHARED / "elpv")
            train = read_image_folder(cells / "train", (64, 64)).images
            test = read_image_folder(cells / "test", (64, 64)).images
            sets[name] = (train.astype(np.float32) / 255, test[:500].astype(np.float32) / 255)
    return sets


def noisy_copy(images: np.ndarray, sigma: float) -> np.ndarray:
    """``images`` with seeded Gaussian noise of ``sigma`` (seed 0), clipped to [0, 1]."""
    noise = np.random.default_rng(0).normal(scale=sigma, size=images.shape)
    return np.clip(images + noise, 0, 1).astype(np.float32)


def _saved_row(saved: list[dict], name: str, sigma: float) -> dict | None:
    """The saved row of set ``name`` at ``sigma``, if the results file has one."""
    return next((r for r in saved if (r["set"], r["sigma"]) == (name, sigma)), None)


def _merged(saved: list[dict], rows: list[dict]) -> list[dict]:
    """Saved rows, each replaced by a row of the same set and sigma measured now."""
    new = {(r["set"], r["sigma"]) for r in rows}
    return [r for r in saved if (r["set"], r["sigma"]) not in new] + rows


def peers(test: np.ndarray, noisy: np.ndarray, sigma: float) -> dict[str, float]:
    """PSNR of the noisy input, a 3x3 median filter and BM3D (given the true sigma)."""
    import bm3d
    from scipy.ndimage import median_filter

    cleaned = np.stack([bm3d.bm3d(image[0], sigma_psd=sigma)[None] for image in noisy])
    return {"noisy": psnr(test, noisy),
            "median 3x3": psnr(test, median_filter(noisy, size=(1, 1, 3, 3))),
            "BM3D": psnr(test, np.clip(cleaned, 0, 1))}


def _png_folder(images: np.ndarray, folder: Path) -> Path:
    from aetool.data.images import write_images

    write_images(np.rint(images * 255).astype(np.uint8),
                 [f"{i:05d}.png" for i in range(len(images))], folder)
    return folder


def _read_pngs(folder: Path) -> np.ndarray:
    from aetool.data.images import read_image_folder

    return read_image_folder(folder).images.astype(np.float32) / 255


def selection_through_cli(names: list[str]) -> None:
    """``--selection``: see the module docs."""
    from scipy.ndimage import median_filter

    saved = json.loads((RESULTS / "denoise_image_defaults.json").read_text())["rows"]
    work = Path(tempfile.mkdtemp(prefix="aetool-denoise-"))
    rows = []
    try:
        for name, (train, test) in image_sets(names).items():
            clean_test = np.rint(test * 255) / 255  # what an 8-bit PNG holds
            train_dir = _png_folder(train, work / name / "train")
            for sigma in (0.3, 0.5):
                noisy_float = noisy_copy(test, sigma)
                noisy_dir = _png_folder(noisy_float, work / name / f"noisy{sigma}")
                noisy = _read_pngs(noisy_dir)
                bundle, out = work / name / f"model{sigma}", work / name / f"out{sigma}"
                start = time.perf_counter()
                fit = subprocess.run(["aetool", "denoise", "fit", str(train_dir), "-o",
                                      str(bundle), "--noise", f"gaussian:{sigma}", "-q"],
                                     check=True, capture_output=True, text=True)
                seconds = time.perf_counter() - start
                subprocess.run(["aetool", "denoise", "apply", str(bundle), str(noisy_dir), "-o",
                                str(out)], check=True, capture_output=True)
                choice = json.loads((bundle / "manifest.json").read_text())["denoise"]["choice"]
                old = _saved_row(saved, name, sigma)
                bm3d = old["BM3D"] if old else peers(test, noisy_float, sigma)["BM3D"]
                row = {"set": name, "sigma": sigma, "noisy PNG": psnr(clean_test, noisy),
                       "median 3x3": psnr(clean_test, median_filter(noisy, size=(1, 1, 3, 3))),
                       "BM3D (saved run)": bm3d,
                       "aetool (selection=auto)": psnr(clean_test, _read_pngs(out)),
                       "chosen": choice["chosen"], "validation PSNR": choice[
                           "validation_psnr_db"], "fit s": round(seconds, 1),
                       "said": fit.stdout.strip().splitlines()[0]}
                best_peer = max(row["median 3x3"], row["BM3D (saved run)"])
                row["gain over best peer dB"] = row["aetool (selection=auto)"] - best_peer
                print(row, flush=True)
                rows.append(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows, ["set", "sigma", "median 3x3", "BM3D (saved run)",
                       "aetool (selection=auto)", "chosen", "gain over best peer dB"])
    path = RESULTS / "denoise_image_selection.json"
    previous = json.loads(path.read_text())["rows"] if path.exists() else []
    write_json(path.name, {"machine": machine(), "rows": _merged(previous, rows)})


def main() -> None:
    from aetool import Denoiser

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peers-only", action="store_true",
                        help="recompute the classical peers into the saved results")
    parser.add_argument("--selection", action="store_true",
                        help="aetool denoise fit/apply on PNG folders, selection=auto")
    parser.add_argument("--sets", default=",".join(SETS),
                        help=f"comma-separated, of {', '.join(SETS)}, fashion")
    args = parser.parse_args()
    names = args.sets.split(",")
    if args.selection:
        selection_through_cli(names)
        return
    warnings.filterwarnings("ignore")
    saved = RESULTS / "denoise_image_defaults.json"
    previous = json.loads(saved.read_text()) if saved.exists() else {"rows": []}
    rows = []
    for name, (train, test) in image_sets(names).items():
        for sigma in (0.3, 0.5):
            noisy = noisy_copy(test, sigma)
            row = {"set": name, "sigma": sigma, **peers(test, noisy, sigma)}
            print(row, flush=True)
            if args.peers_only:
                rows.append({**(_saved_row(previous["rows"], name, sigma) or {}), **row})
                continue
            for label, params in CANDIDATES.items():
                start = time.perf_counter()
                model = Denoiser(variant="dae", noise=f"gaussian:{sigma}", variant_params=params,
                                 device="cpu", selection="off").fit(train)
                row[label] = psnr(test, np.clip(model.transform(noisy), 0, 1))
                row[f"{label} fit s"] = time.perf_counter() - start
                print(row, flush=True)
            rows.append(row)
    print_table(rows, ["set", "sigma", "median 3x3", "BM3D", *CANDIDATES])
    write_json(saved.name, {**previous, "machine": machine(),
                            "rows": _merged(previous["rows"], rows)})


if __name__ == "__main__":
    main()
