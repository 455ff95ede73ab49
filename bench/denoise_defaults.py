"""Image denoising with the defaults, on two image sets: is a candidate default better than
today's on both? (The rule for changing a default: it must hold on at least two sets.)

The dae as `aetool denoise fit CLEAN --variant dae --noise gaussian:SIGMA` trains it (convolutional
on images), with today's settings and with each candidate, against a 3x3 median filter. MNIST:
4,000 shared training digits, 500 scored; ELPV: the 1,000 normal training cells at 64x64, 500
test cells scored. PSNR in dB on [0, 1] pixels, Gaussian noise clipped to [0, 1], seed 0.

BM3D (the `bm3d` package, told the true σ) is the strong classical anchor beside the median
filter; `--peers-only` recomputes the peers and merges them into the saved results.

    python bench/denoise_defaults.py     # about 40 minutes on 2 CPU cores
    python bench/denoise_defaults.py --peers-only     # about 13 minutes
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
from common import RESULTS, SHARED, machine, print_table, require, write_json

CANDIDATES = {"default": None, "relu": {"activation": "relu"},
              "relu + code 512": {"activation": "relu", "code_size": 512}}


def psnr(clean: np.ndarray, estimate: np.ndarray) -> float:
    return float(np.mean([10 * np.log10(1.0 / np.mean((c - e) ** 2))
                          for c, e in zip(clean, estimate)]))


def image_sets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from aetool.data.images import read_image_folder

    digits = np.load(require(SHARED / "mnist" / "mnist_train10k_uint8.npz"))["X"]
    digits = digits.astype(np.float32)[:, None] / 255
    cells = require(SHARED / "elpv")
    train = read_image_folder(cells / "train", (64, 64)).images.astype(np.float32) / 255
    test = read_image_folder(cells / "test", (64, 64)).images.astype(np.float32) / 255
    return {"mnist": (digits[:4000], digits[9000:9500]), "elpv64": (train, test[:500])}


def peers(test: np.ndarray, noisy: np.ndarray, sigma: float) -> dict[str, float]:
    """PSNR of the noisy input, a 3x3 median filter and BM3D (given the true sigma)."""
    import bm3d
    from scipy.ndimage import median_filter

    cleaned = np.stack([bm3d.bm3d(image[0], sigma_psd=sigma)[None] for image in noisy])
    return {"noisy": psnr(test, noisy),
            "median 3x3": psnr(test, median_filter(noisy, size=(1, 1, 3, 3))),
            "BM3D": psnr(test, np.clip(cleaned, 0, 1))}


def main() -> None:
    from aetool import Denoiser

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peers-only", action="store_true",
                        help="recompute the classical peers into the saved results")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    saved = RESULTS / "denoise_image_defaults.json"
    previous = json.loads(saved.read_text()) if args.peers_only else {}
    rows = []
    for name, (train, test) in image_sets().items():
        for sigma in (0.3, 0.5):
            noisy = np.clip(test + np.random.default_rng(0).normal(scale=sigma, size=test.shape),
                            0, 1).astype(np.float32)
            row = {"set": name, "sigma": sigma, **peers(test, noisy, sigma)}
            print(row, flush=True)
            if args.peers_only:
                old = next(r for r in previous["rows"] if (r["set"], r["sigma"]) == (name, sigma))
                rows.append({**old, **row})
                continue
            for label, params in CANDIDATES.items():
                start = time.perf_counter()
                model = Denoiser(variant="dae", noise=f"gaussian:{sigma}", variant_params=params,
                                 device="cpu").fit(train)
                row[label] = psnr(test, np.clip(model.transform(noisy), 0, 1))
                row[f"{label} fit s"] = time.perf_counter() - start
                print(row, flush=True)
            rows.append(row)
    print_table(rows, ["set", "sigma", "median 3x3", "BM3D", *CANDIDATES])
    write_json("denoise_image_defaults.json", {**previous, "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
