"""A folder of images of many sizes cleaned by a tile denoiser: each image at its own size
(a tile denoiser in Python takes any size) against what `aetool denoise apply` does, every
image brought to the size the denoiser was fitted at, cleaned there and brought back. Measured
to decide whether `apply` should clean at own sizes (it did for one commit, a60cfc4, reverted:
no gain here).

Each set: `denoise fit` on the clean training folder as a user runs it (the dae, Gaussian
noise of sigma 0.3, `--selection off` as in bench/denoise_tiles.py, so the two ways share one
model), then 60 seeded clean test images, saved at their own sizes, with seeded noise of sigma
0.3 (clipped, 8-bit PNG); PSNR in dB pooled over every pixel of every size, beside a 3x3
median filter and BM3D (true sigma) on each image at its own size. Sets: the magnetic tiles
(158 sizes from 76 to 192 px; fitted at their median size, 192x166) and ELPV cells at 150 px,
tested on seeded crops of 64 to 150 px (a folder of cut-outs).

    python bench/denoise_own_sizes.py                       # about 20 minutes on 2 cores
    python bench/denoise_own_sizes.py --cases mtile
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from common import SHARED, cases_and_methods, merge_row, print_table, require, saved_rows
from denoise_tiles import peer

from aetool import Denoiser

CASES = ("mtile", "elpv-crops")
METHODS = ("tiles, each image at its own size", "tiles, through the fitted size and back",
           "median 3x3", "BM3D")
SIGMA = 0.3
TEST_IMAGES = 60
RESULTS = "denoise_own_sizes.json"
PROTOCOL = ("denoise fit on the clean training folder (dae, gaussian:0.3, --selection off); 60 "
            "seeded clean test images at their own sizes with noise of sigma 0.3 (clipped, "
            "8-bit PNG); PSNR pooled over every pixel of every size against the clean images")


def test_images(case: str) -> tuple[Path, list[np.ndarray]]:
    """(clean training folder, seeded clean test images at their own sizes, 8-bit (H, W))."""
    from PIL import Image

    from aetool.data.images import list_images

    folder = require(SHARED / ("mtile" if case == "mtile" else "elpv"))
    paths = list_images(folder / "test" / ("normal" if case == "mtile" else ""))
    rng = np.random.default_rng(0)
    chosen = np.sort(rng.choice(len(paths), TEST_IMAGES, replace=False))
    images = [np.asarray(Image.open(paths[i]).convert("L")) for i in chosen]
    if case == "elpv-crops":  # cut-outs of 64 to 150 px at seeded places
        cut = []
        for image in images:
            height, width = rng.integers(64, 151, size=2)
            top, left = rng.integers(0, 151 - height), rng.integers(0, 151 - width)
            cut.append(image[top:top + height, left:left + width])
        images = cut
    return folder / "train", images


def pooled_psnr(clean: list[np.ndarray], estimate: list[np.ndarray]) -> float:
    """PSNR in dB of 8-bit images of many sizes, squared errors pooled over every pixel."""
    squared = sum(float(np.sum((c.astype(float) - e.astype(float)) ** 2))
                  for c, e in zip(clean, estimate, strict=True))
    return float(10 * np.log10(255**2 / (squared / sum(c.size for c in clean))))


def noisy_folder(root: Path, clean: list[np.ndarray]) -> Path:
    """The noisy copies (seeded) of the clean test images, as a PNG folder under ``root``."""
    from PIL import Image

    rng = np.random.default_rng(1)
    (root / "noisy").mkdir()
    for i, image in enumerate(clean):
        noisy = np.clip(image / 255 + rng.normal(scale=SIGMA, size=image.shape), 0, 1)
        Image.fromarray(np.rint(noisy * 255).astype(np.uint8)).save(root / "noisy" / f"{i:03d}.png")
    return root / "noisy"


def cleaned(denoiser: Denoiser, noisy: list[np.ndarray], folder: Path, own_sizes: bool
            ) -> list[np.ndarray]:
    """The noisy images cleaned: each at its own size, or as `denoise apply` does, their
    ``folder`` read at the fitted size, cleaned and each image brought back to its own."""
    from aetool.data.images import at_own_sizes, read_image_folder

    if own_sizes:
        return [denoiser.transform(image[None, None])[0, 0] for image in noisy]
    found = read_image_folder(folder, tuple(denoiser.preprocessor_.shape[1:]))
    return [image[0] for image in at_own_sizes(denoiser.transform(found.images), found.sizes)]


def filtered(method: str, image: np.ndarray) -> np.ndarray:
    """bench/denoise_tiles.py's classical filter on one 8-bit image, at its own size."""
    out = peer(method, image[None, None] / 255)[0, 0]
    return np.clip(np.rint(out * 255), 0, 255)


def main() -> None:
    from PIL import Image

    from aetool.tasks.denoise import fit_denoiser

    cases, methods = cases_and_methods(__doc__, CASES, METHODS)
    for case in cases:
        train, clean = test_images(case)
        with tempfile.TemporaryDirectory() as tmp:
            folder = noisy_folder(Path(tmp), clean)
            noisy = [np.asarray(Image.open(p)) for p in sorted(folder.iterdir())]
            start = time.perf_counter()
            if any(m.startswith("tiles") for m in methods):
                denoiser = fit_denoiser(train, {"noise": f"gaussian:{SIGMA}",
                                                "selection": "off"}, None, [], None, False)
                fit_seconds = round(time.perf_counter() - start, 1)
            for method in methods:
                start = time.perf_counter()
                row = {"case": case, "method": method, "test_images": len(clean),
                       "sizes": len({image.shape for image in clean}),
                       "noisy_psnr": round(pooled_psnr(clean, noisy), 3)}
                if method.startswith("tiles"):
                    out = cleaned(denoiser, noisy, folder, own_sizes="own size" in method)
                    row.update(fit_seconds=fit_seconds, tile=denoiser.tile_,
                               fitted_size=list(denoiser.preprocessor_.shape[1:]))
                else:
                    out = [filtered(method, image) for image in noisy]
                row.update(psnr=round(pooled_psnr(clean, out), 3),
                           seconds=round(time.perf_counter() - start, 1))
                merge_row(RESULTS, PROTOCOL, row)
                print(case, method, row["psnr"], flush=True)
    rows = saved_rows(RESULTS)
    print_table(sorted(rows, key=lambda r: (CASES.index(r["case"]), METHODS.index(r["method"]))),
                ["case", "method", "psnr", "noisy_psnr", "sizes", "fit_seconds", "seconds"])


if __name__ == "__main__":
    main()
