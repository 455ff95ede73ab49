"""The tile denoiser's settings (aetool.defaults.DENOISE_TILE, DENOISE_TILES,
DENOISE_TILE_STARTS, the dae's weight penalty and Denoiser's clip_noise), each measured on
every image set of 128 px and more, where `aetool denoise fit` learns tiles.

Each method is one fit of the dae with its own settings (`--selection off`) on the clean
training images, changed in one thing from tiles of 32, 20,000 tiles, weight penalty 1e-5,
training noise as drawn (not clipped to the pixel range);
each fit cleans the seeded noisy test images twice: with a tile every half side (2 starts per
side) and every quarter side (4), the blended mean over more tiles. Gaussian sigma 0.3
clipped, PSNR in dB, the same images as bench/denoise_tiles.py (whose BM3D and median rows are
the classical peers): ELPV cells at 150 px, magnetic tiles at 128 px, the synthetic round part
and leather at 256 px RGB.

    python bench/denoise_tile_settings.py                  # about 3 hours on one thread
    python bench/denoise_tile_settings.py --cases elpv150 --methods "no weight penalty"
"""

from __future__ import annotations

import time

from common import cases_and_methods, measure_all
from denoise_tiles import SIGMA, case_images, noisy_copy

from aetool import defaults
from aetool.estimators.denoiser import psnr

CASES = ("elpv150", "mtile128", "bottle", "leather")
# method: (tile side, training tiles, dae settings, training noise clipped to [0, 1])
METHODS = {"tiles of 32, 20,000 tiles, noise as drawn": (32, 20_000, {}, False),
           "no weight penalty": (32, 20_000, {"weight_penalty": 0.0}, False),
           "60,000 tiles": (32, 60_000, {}, False),
           "tiles of 48": (48, 20_000, {}, False),
           "training noise clipped": (32, 20_000, {}, True),
           "training noise clipped, no weight penalty": (32, 20_000, {"weight_penalty": 0.0},
                                                         True)}
STARTS = (2, 4)
RESULTS = "denoise_tile_settings.json"
PROTOCOL = (f"dae, own settings (--selection off) but for the method's change, Gaussian sigma "
            f"{SIGMA} clipped; PSNR on bench/denoise_tiles.py's seeded test images, blended "
            f"with a tile every half side (psnr_starts_2) and every quarter (psnr_starts_4)")


def measure(case: str, method: str) -> dict:
    """One fit of ``method`` on ``case`` and its PSNR at each number of tile starts."""
    from aetool import Denoiser

    side, count, settings, clip = METHODS[method]
    train, test = case_images(case)
    noisy = noisy_copy(test)
    defaults.DENOISE_TILES, before = count, defaults.DENOISE_TILES
    start = time.perf_counter()
    try:
        denoiser = Denoiser(noise=f"gaussian:{SIGMA}", selection="off", tile=side,
                            variant_params=settings or None, clip_noise=clip).fit(train)
    finally:
        defaults.DENOISE_TILES = before
    row = {"case": case, "method": method, "tile": side, "tiles": count, "settings": settings,
           "clip_noise": clip,
           "fit_seconds": round(time.perf_counter() - start, 1),
           "epochs": len(denoiser.history_), "noisy_psnr": round(psnr(test, noisy), 3)}
    starts_before = defaults.DENOISE_TILE_STARTS
    try:
        for starts in STARTS:
            defaults.DENOISE_TILE_STARTS = starts
            row[f"psnr_starts_{starts}"] = round(psnr(test, denoiser.transform(noisy)), 3)
    finally:
        defaults.DENOISE_TILE_STARTS = starts_before
    return row


def main() -> None:
    measure_all(cases_and_methods(__doc__, CASES, list(METHODS)), (CASES, METHODS), measure,
                RESULTS, PROTOCOL, ["psnr_starts_2", "psnr_starts_4", "fit_seconds"])


if __name__ == "__main__":
    main()
