"""Whole images or tiles: which way `aetool denoise fit` learns an image set (Denoiser's
``tile``). A whole-image denoiser squeezes each image through one code, so its training cost
grows with the image's pixels and the detail it keeps falls with them; a tile denoiser learns
random tiles (aetool.defaults.DENOISE_TILES of DENOISE_TILE px) and cleans an image tile by
tile, overlapping and blended, at a cost that does not grow with the image.

Each set: the dae with its own settings (`--selection off`, so the two ways differ in nothing
else), trained on clean images, scored on seeded test images with Gaussian noise of sigma 0.3
(clipped to [0, 1]); PSNR in dB and training seconds, beside a 3x3 median filter and BM3D
(given the true sigma); and tiles with the settings `denoise fit` chooses by validation
PSNR, as a user's run does on 200 images or more. Sets: ELPV cells at 64 px and at their own
150 px (1,000 training cells, 60 seeded test cells), the magnetic tiles at 128 px (650 training images, 60 seeded
normal test images), and bench/synthetic_photos.py's round part (grey) and leather (RGB) at 256 px
(100 training images, the normal test images).

    python bench/denoise_tiles.py                                   # a few hours on 2 cores
    python bench/denoise_tiles.py --cases elpv64 --methods "tiles of 32"

Rows of a partial run replace the same (case, method) and keep the rest of the results file.
"""

from __future__ import annotations

import functools
import time

import numpy as np
from common import SHARED, cases_and_methods, measure_all, require

from aetool.estimators.denoiser import psnr

CASES = ("elpv64", "elpv150", "mtile128", "bottle", "leather")
METHODS = ("whole images", "tiles of 32", "tiles of 32, settings chosen (--selection auto)",
           "median 3x3", "BM3D")
# the shared sets: (folder under ../shared/datasets, size read at or None for their own,
# test images' folder)
SHARED_CASES = {"elpv64": ("elpv", (64, 64), "test"), "elpv150": ("elpv", None, "test"),
                "mtile128": ("mtile", (128, 128), "test/normal")}
SIGMA = 0.3
RESULTS = "denoise_tiles.json"
PROTOCOL = ("dae, own settings (--selection off), Gaussian sigma 0.3 clipped; PSNR on seeded "
            "test images; whole images (tile=None) against tiles (tile=32)")


@functools.lru_cache(maxsize=1)  # every method of a case, one after the other
def case_images(case: str) -> tuple[np.ndarray, np.ndarray]:
    """(clean training images, clean test images) of ``case``, [0, 1] floats (N, C, H, W),
    read once for all the methods measured on it."""
    if case in SHARED_CASES:
        from aetool.data.images import read_image_folder

        name, size, test_folder = SHARED_CASES[case]
        folder = require(SHARED / name)
        train = read_image_folder(folder / "train", size).images
        test = read_image_folder(folder / test_folder, size).images
        test = test[np.sort(np.random.default_rng(0).choice(len(test), 60, replace=False))]
        return train.astype(np.float32) / 255, test.astype(np.float32) / 255
    from synthetic_photos import photo_set

    train, test, labels = photo_set(case)
    return train.astype(np.float32) / 255, test[labels == 0].astype(np.float32) / 255


def noisy_copy(images: np.ndarray) -> np.ndarray:
    """``images`` with seeded Gaussian noise of SIGMA, clipped to [0, 1]."""
    noise = np.random.default_rng(1).normal(scale=SIGMA, size=images.shape)
    return np.clip(images + noise, 0, 1).astype(np.float32)


def peer(method: str, noisy: np.ndarray) -> np.ndarray:
    """A classical filter's output for ``noisy``."""
    if method == "median 3x3":
        from scipy.ndimage import median_filter

        return median_filter(noisy, size=(1, 1, 3, 3))
    import bm3d

    return np.stack([np.stack([bm3d.bm3d(plane, sigma_psd=SIGMA) for plane in image])
                     for image in noisy])


def measure(case: str, method: str) -> dict:
    """One row: PSNR of ``method`` on ``case``'s noisy test images, and its seconds."""
    from aetool import Denoiser

    train, test = case_images(case)
    noisy = noisy_copy(test)
    start = time.perf_counter()
    row = {"case": case, "method": method, "noisy_psnr": round(psnr(test, noisy), 3)}
    if method in ("median 3x3", "BM3D"):
        out = peer(method, noisy)
    else:
        denoiser = Denoiser(noise=f"gaussian:{SIGMA}", selection="auto" if "chosen" in method
                            else "off", tile=None if method == "whole images" else 32).fit(train)
        row.update(fit_seconds=round(time.perf_counter() - start, 1),
                   epochs=len(denoiser.history_), tile=denoiser.tile_,
                   chosen=(denoiser.choice_ or {}).get("chosen"))
        out = denoiser.transform(noisy)
    row.update(psnr=round(psnr(test, out), 3), seconds=round(time.perf_counter() - start, 1),
               train_images=len(train), test_images=len(test), shape=list(train.shape[1:]))
    return row


def main() -> None:
    measure_all(cases_and_methods(__doc__, CASES, METHODS), (CASES, METHODS), measure, RESULTS,
                PROTOCOL, ["psnr", "noisy_psnr", "fit_seconds", "seconds"])


if __name__ == "__main__":
    main()
