"""Training noise clipped to the pixel range, or not: a noisy image that a user saves keeps its
pixels in [0, 255], so Gaussian noise on a dark or bright pixel is cut off at the range's end,
while the dae trained on noise added without that cut (Denoiser ``clip_noise``).

Each case: the dae with one fixed setting (`--selection off`: the variant's own settings, or
the candidate `denoise fit` chose on that set, bench/denoise_defaults.py --selection), trained
once with the training noise added as it is and once clipped to [0, 1], on bench/denoise_
defaults.py's images (MNIST and Fashion-MNIST: a seeded 4,000 to train, 500 to score; ELPV
cells at 64 px: 1,000 to train, 500 test cells); PSNR in dB of the seeded, clipped noisy
images cleaned. The tile denoiser (images of 128 px and more) is measured the same way by
bench/denoise_tile_settings.py ("training noise clipped").

    python bench/denoise_clipped_noise.py                 # about an hour on one thread
    python bench/denoise_clipped_noise.py --cases mnist-0.3-default
"""

from __future__ import annotations

import functools
import time

import numpy as np
from common import cases_and_methods, measure_all
from denoise_defaults import CANDIDATES, image_sets, noisy_copy

from aetool.estimators.denoiser import psnr

# case: (set, sigma, candidate of bench/denoise_defaults.py, training seed)
CASES = {"mnist-0.3-default": ("mnist", 0.3, "default", 0),
         "mnist-0.3-relu + code 512": ("mnist", 0.3, "relu + code 512", 0),
         "mnist-0.5-relu + code 512": ("mnist", 0.5, "relu + code 512", 0),
         "elpv64-0.3-default": ("elpv64", 0.3, "default", 0),
         "elpv64-0.5-default": ("elpv64", 0.5, "default", 0),
         "elpv64-0.5-default-seed1": ("elpv64", 0.5, "default", 1),
         "fashion-0.3-relu + code 512": ("fashion", 0.3, "relu + code 512", 0)}
METHODS = ("noise as drawn", "noise clipped to [0, 1]")
RESULTS = "denoise_clipped_noise.json"
PROTOCOL = ("dae, --selection off, one candidate's settings; trained with Gaussian noise as "
            "drawn or clipped to [0, 1]; PSNR on 500 seeded test images with clipped noise")


@functools.lru_cache(maxsize=1)  # both methods of a case, one after the other
def set_images(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(clean training images, clean test images) of set ``name``, read once per case."""
    return image_sets([name])[name]


def measure(case: str, method: str) -> dict:
    """One fit of ``case``'s settings with the training noise as ``method`` says, and its PSNR."""
    from aetool import Denoiser

    name, sigma, candidate, seed = CASES[case]
    train, test = set_images(name)
    noisy = noisy_copy(test, sigma)
    start = time.perf_counter()
    denoiser = Denoiser(variant="dae", noise=f"gaussian:{sigma}", device="cpu",
                        variant_params=CANDIDATES[candidate], selection="off",
                        clip_noise=method == METHODS[1], random_state=seed).fit(train)
    return {"case": case, "method": method, "set": name, "sigma": sigma,
            "settings": candidate, "seed": seed, "epochs": len(denoiser.history_),
            "fit_seconds": round(time.perf_counter() - start, 1),
            "psnr": round(psnr(test, np.clip(denoiser.transform(noisy), 0, 1)), 3)}


def main() -> None:
    measure_all(cases_and_methods(__doc__, list(CASES), METHODS), (CASES, METHODS), measure,
                RESULTS, PROTOCOL, ["psnr", "epochs", "fit_seconds"])


if __name__ == "__main__":
    main()
