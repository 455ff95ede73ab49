"""Image denoising with the defaults, on two image sets: is a candidate default better than
today's on both? (The rule for changing a default: it must hold on at least two sets.)

The dae as `aetool denoise fit CLEAN --variant dae --noise gaussian:SIGMA` trains it (convolutional
on images), with today's settings and with each candidate, against a 3x3 median filter. MNIST:
4,000 shared training digits, 500 scored; ELPV: the 1,000 normal training cells at 64x64, 500
test cells scored. PSNR in dB on [0, 1] pixels, Gaussian noise clipped to [0, 1], seed 0.

    python bench/denoise_defaults.py     # about 25 minutes on 2 CPU cores
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from common import SHARED, machine, print_table, require, write_json

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


def main() -> None:
    from scipy.ndimage import median_filter

    from aetool import Denoiser

    warnings.filterwarnings("ignore")
    rows = []
    for name, (train, test) in image_sets().items():
        for sigma in (0.3, 0.5):
            noisy = np.clip(test + np.random.default_rng(0).normal(scale=sigma, size=test.shape),
                            0, 1).astype(np.float32)
            row = {"set": name, "sigma": sigma, "noisy": psnr(test, noisy),
                   "median 3x3": psnr(test, median_filter(noisy, size=(1, 1, 3, 3)))}
            for label, params in CANDIDATES.items():
                start = time.perf_counter()
                model = Denoiser(variant="dae", noise=f"gaussian:{sigma}", variant_params=params,
                                 device="cpu").fit(train)
                row[label] = psnr(test, np.clip(model.transform(noisy), 0, 1))
                row[f"{label} fit s"] = time.perf_counter() - start
                print(row, flush=True)
            rows.append(row)
    print_table(rows, ["set", "sigma", "median 3x3", *CANDIDATES])
    write_json("denoise_image_defaults.json", {"machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
