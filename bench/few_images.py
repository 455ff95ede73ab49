"""Few training images (issue #18): the real-defect sets users bring often hold 50-250 normal
images, not ELPV's 1,000. Does the default image detector keep its lead over the pixel peers
when it learns from that few?

For each set and training size n, a seeded random n of the normal training images is kept
(three seeds); the test folder is the whole one. aetool's default image detector (the patch
detector, as `aetool fit` trains it) is scored beside 5-NN, IsolationForest and patch kNN on
raw pixels (max), all on the same images. Metric: image ROC-AUC, mean and range over seeds.

    python bench/few_images.py                     # about 15 minutes on 2 cores
    python bench/few_images.py --sets elpv64 --sizes 54
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from common import SHARED, machine, print_table, require, seeded_subset, write_json
from defect_peers import isolation_forest, knn_pixels, patch_knn_pixels
from real_defects import SETS, load

SIZES = (54, 150)
SEEDS = (0, 1, 2)


def aetool_default(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """The detector `aetool fit` trains on this image size; its anomaly scores on the test
    images (score_samples is scikit-learn's "higher is more normal", hence the sign)."""
    from aetool import PatchDetector

    return -PatchDetector(device="cpu").fit(train).score_samples(test)


METHODS = {
    "aetool default (patch detector)": aetool_default,
    "5-NN on pixels": knn_pixels,
    "IsolationForest on pixels": isolation_forest,
    "patch kNN on pixels (max)": patch_knn_pixels,
}


def measure(name: str, n: int) -> list[dict]:
    """One row per (method, seed) for ``n`` training images of set ``name``."""
    from sklearn.metrics import roc_auc_score

    root, size = SETS[name]
    train, test, labels = load(require(SHARED / root), size)
    rows = []
    for seed in SEEDS:
        subset = np.ascontiguousarray(train[seeded_subset(len(train), n, seed)])
        for method, score in METHODS.items():
            start = time.perf_counter()
            auc = float(roc_auc_score(labels, score(subset, test)))
            rows.append({"set": name, "train_images": n, "seed": seed, "method": method,
                         "roc_auc": auc, "seconds": time.perf_counter() - start})
            print(rows[-1], flush=True)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Mean, min and max ROC-AUC over seeds per (set, size, method)."""
    keys = sorted({(r["set"], r["train_images"], r["method"]) for r in rows},
                  key=lambda k: (k[0], k[1], list(METHODS).index(k[2])))
    out = []
    for key in keys:
        aucs = [r["roc_auc"] for r in rows if (r["set"], r["train_images"], r["method"]) == key]
        out.append({"set": key[0], "train_images": key[1], "method": key[2],
                    "roc_auc_mean": float(np.mean(aucs)), "roc_auc_min": float(np.min(aucs)),
                    "roc_auc_max": float(np.max(aucs))})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="elpv64,mtile128")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows: list[dict] = []
    for name in args.sets.split(","):
        for n in map(int, args.sizes.split(",")):
            rows += measure(name, n)
            write_json("few_images.json", {"protocol": __doc__, "machine": machine(),
                                            "rows": rows, "summary": summary(rows)})
    print_table(summary(rows), ["set", "train_images", "method", "roc_auc_mean", "roc_auc_min",
                                "roc_auc_max"])


if __name__ == "__main__":
    main()
