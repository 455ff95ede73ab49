"""The size at which `aetool train` learns a whole-image autoencoder of photographs: how good
its codes are for a probe, and how long it trains, against the image side.

`train` (and `evaluate-features`) learn whole images; a user's photographs of several hundred
pixels would take hours (a 900x1200 folder: `train` estimated 524 minutes). This measures what
a smaller working size costs the codes. The issue's features setting (`ae` with a code of 32,
today's image defaults, as `aetool train --variant ae --set code_size=32` trains it) on two
sets of real photographs at each size, every image resized as the CLI reads it; a logistic
probe normal vs defect by 5-fold cross-validation on the test images' codes (as
bench/features_defaults.py does on the cells), beside PCA 32 and raw pixels at the same size:

- ELPV cells (1,000 normal training cells; 1,223 test cells), native 150x150;
- magnetic tiles (650 normal training tiles; 694 test tiles), native sizes vary (median
  192x166, what `train` reads them at without --image-size).

    python bench/features_image_size.py --sizes 32,64               # about 40 minutes on 2 cores
    python bench/features_image_size.py --sizes 128 --skip-peers --sets mtile   # about an hour
"""

from __future__ import annotations

import argparse
import time
import warnings

from common import SHARED, machine, print_table, require, saved_rows, write_json
from features_defaults import flat, probe_accuracy
from real_defects import load

SETS = ("elpv", "mtile")  # folders under the shared data
SIZES = {"32": (32, 32), "64": (64, 64), "128": (128, 128), "elpv native": (150, 150),
         "mtile native": (192, 166)}
RESULTS = "features_image_size.json"
WIDTH = 32


def measure(name: str, size: str, peers: bool = True) -> list[dict]:
    """The `ae` 32 codes of one set at one size, and (``peers``) PCA 32 and raw pixels."""
    from sklearn.decomposition import PCA

    from aetool import Autoencoder

    height, width = SIZES[size]
    train, test, labels = load(require(SHARED / name), (height, width))
    common = {"set": name, "size": f"{height}x{width}", "training_images": len(train)}
    rows = []
    if peers:
        rows.append({**common, "method": "raw pixels",
                     "accuracy": probe_accuracy(flat(test), labels, None, None)})
        pca = PCA(WIDTH, random_state=0).fit(flat(train))
        rows.append({**common, "method": f"pca-{WIDTH}",
                     "accuracy": probe_accuracy(pca.transform(flat(test)), labels, None, None)})
    model = Autoencoder(variant="ae", device="cpu", variant_params={"code_size": WIDTH})
    start = time.perf_counter()
    model.fit(train)
    rows.append({**common, "method": f"ae-{WIDTH}", "fit_seconds": round(time.perf_counter() - start),
                 "epochs": len(model.history_), "stop_reason": model.stop_reason_,
                 "accuracy": probe_accuracy(model.transform(test), labels, None, None)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--sizes", default="32,64,128,native")
    parser.add_argument("--skip-peers", action="store_true",
                        help="the ae codes only (a raw-pixel probe of 128 px takes long)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    saved = {(r["set"], r["size"], r["method"]): r for r in saved_rows(RESULTS)}
    rows: list[dict] = []
    for size in args.sizes.split(","):
        for name in args.sets.split(","):
            key = f"{name} native" if size == "native" else size
            for row in measure(name, key, peers=not args.skip_peers):
                saved[(row["set"], row["size"], row["method"])] = row
                print(row, flush=True)
            rows = list(saved.values())
            write_json(RESULTS, {"protocol": __doc__, "machine": machine(), "rows": rows})
    print_table(rows, ["set", "size", "method", "accuracy", "fit_seconds", "epochs"])


if __name__ == "__main__":
    main()
