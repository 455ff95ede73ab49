"""Cleaning one large colour photograph with a tile denoiser: seconds and memory at a tile
every half side and every quarter side, with the tiles cut and cleaned in bands (as
`aetool.tiles.blended` does) and, for comparison, all of an image's tiles at once (as it did
before the bands). Decides what `aetool.defaults.DENOISE_TILES_PER_IMAGE` bounds: time, not
memory.

The denoiser is the dae with its own settings, fitted for one epoch on 2,000 tiles of seeded
noise images (cleaning time depends on the network, not on what it learnt); each measurement
runs in a fresh process, so its memory is the peak resident size of that process above what it
held before cleaning. The bands must give the same pixels as all tiles at once (the largest
difference is reported).

    python bench/denoise_large_image.py        # about 5 minutes on 2 cores
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, print_table, write_json

SIZES = {"2 MP": (1200, 1600), "12 MP": (3000, 4000)}
METHODS = {"half step, bands": (2, "bands"), "quarter step, bands": (4, "bands"),
           "half step, all tiles at once": (2, "once"),
           "quarter step, all tiles at once": (4, "once")}
SKIP = {("12 MP", "quarter step, all tiles at once")}  # over 8 GB; not run on a 24 GB machine
RESULTS = "denoise_large_image.json"


def output_file(size: str, method: str) -> Path:
    """Where one measurement leaves its cleaned photograph, for the comparison."""
    name = f"{size}-{method}".replace(" ", "_").replace(",", "")
    return Path(tempfile.gettempdir()) / f"aetool-denoise-large-{name}.npy"


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def measure_one(size: str, method: str) -> dict:
    """Fit the small denoiser, clean one seeded photograph; seconds, memory, a checksum."""
    from aetool import Denoiser, defaults, tiles

    defaults.DENOISE_TILES = 2000
    rng = np.random.default_rng(0)
    denoiser = Denoiser(noise="gaussian:0.3", epochs=1, min_steps=0, selection="off",
                        device="cpu").fit(rng.random((8, 3, 160, 160)).astype(np.float32))
    starts, how = METHODS[method]
    step = denoiser.tile_ // starts
    denoiser._blend_step = lambda _size: step
    if how == "once":
        tiles.TILES_AT_ONCE = 10**12
    height, width = SIZES[size]
    photo = rng.random((1, 3, height, width)).astype(np.float32)
    before = peak_gb()
    start = time.perf_counter()
    out = denoiser.transform(photo)
    seconds = time.perf_counter() - start
    np.save(output_file(size, method), out)
    return {"case": size, "method": method, "step_px": step,
            "tiles": int((height // step + 2) * (width // step + 2)),
            "seconds": round(seconds, 1), "memory_gb_above_start": round(peak_gb() - before, 2)}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        print(json.dumps(measure_one(sys.argv[2], sys.argv[3])))
        return
    rows = []
    for size in SIZES:
        for method in METHODS:
            if (size, method) in SKIP:
                continue
            done = subprocess.run([sys.executable, __file__, "--one", size, method],
                                  capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print_table(rows[-1:], list(rows[-1]))
    for row in rows:  # the bands must change nothing but the memory
        once = row["method"].replace("bands", "all tiles at once")
        if row["method"] != once and (row["case"], once) not in SKIP:
            bands, all_at_once = (np.load(output_file(row["case"], method))
                                  for method in (row["method"], once))
            row["largest_difference_to_all_at_once"] = float(np.abs(bands - all_at_once).max())
    for row in rows:
        output_file(row["case"], row["method"]).unlink(missing_ok=True)
    print_table(rows, list(rows[0]))
    write_json(RESULTS, {"protocol": __doc__.split("\n\n")[1].replace("\n", " "),
                         "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
