"""Images that are not aligned: crops of a surface, parts photographed at any position.

The patch detector compares a patch with the training patches near its own place and divides
its distance by how much normal patches vary there; both assume every part has its place, as
on the ELPV cells and magnetic tiles. A user's surfaces (fabric, wood, gravel, a tile cut
anywhere) have none. Does the default hold there, and does the place cost
(aetool.patches.place_cost, label-free) tell the two kinds apart?

Cases:

- brick, gravel, grass: real photographs (512 x 512 grey, bundled with scikit-image, read from
  the installed package, never downloaded); 150 training crops of 96 x 96 from the top 60% of
  the photograph, 100 normal test crops and 100 more with one synthetic defect each
  (bench/synthetic_defects.py: a spot, a scratch, a CutPaste patch or a noise patch over 1-5%
  of the crop, seeded) from the bottom 40%;
- elpv64 rolled, mtile128 rolled: the shared ELPV cells and magnetic tiles (their real
  defects and test folders) with every image moved round by a random offset (seeded): the
  same parts at any position.

Methods: aetool's default (the patch detector as `aetool fit` trains it; where the place
cost is below PLACE_FREE_BELOW it searches every patch anywhere, unscaled, each code carrying
its patch's reconstruction error: bench/patch_residual.py), the place-bound
search it used before (``reach=1, scale_positions=True``), the default without its edge
channel and without its texture division (both were chosen on aligned sets), and the pixel
peers of bench/real_defects.py (5-NN, IsolationForest, patch kNN on raw pixels, which
searches anywhere). Image ROC-AUC and AUPR. Then (alone with ``--costs-only``) the place
cost of aligned sets (ELPV, tiles, every MNIST digit, every Fashion-MNIST class when
AETOOL_FASHION_MNIST is set) beside the unaligned ones, the measurements the cut was chosen
from.

    python bench/unaligned.py                  # about 35 minutes on 2 cores
    python bench/unaligned.py --cases brick --methods "aetool default"
    python bench/unaligned.py --costs-only
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
from common import (
    RESULTS,
    SHARED,
    machine,
    print_table,
    require,
    rows_by_case_method,
    write_json,
)
from defect_peers import isolation_forest, knn_pixels, patch_knn_pixels
from real_defects import image_metrics, load
from synthetic_defects import _paste_defect

NAME = "unaligned.json"
CROP = 96
TRAIN_CROPS, TEST_CROPS = 150, 100
PHOTOS = ("brick", "gravel", "grass")
ROLLED = {"elpv64 rolled": ("elpv", (64, 64)), "mtile128 rolled": ("mtile", (128, 128))}


def crops(photo: np.ndarray, rows: tuple[int, int], n: int, rng: np.random.Generator,
          crop: int = CROP) -> np.ndarray:
    """``n`` random ``crop`` x ``crop`` crops (N, C, H, W) of a grey (H, W) or colour (H, W, 3)
    photograph whose rows lie within ``rows``."""
    top, bottom = rows
    out = []
    for _ in range(n):
        y, x = rng.integers(top, bottom - crop), rng.integers(0, photo.shape[1] - crop)
        out.append(photo[y:y + crop, x:x + crop])
    stacked = np.stack(out)
    return stacked[:, None] if photo.ndim == 2 else stacked.transpose(0, 3, 1, 2)


def photo_case(name: str, crop: int = CROP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training crops (``crop`` pixels square), test crops and labels (1: a synthetic defect)
    of one photograph."""
    import skimage.data

    photo = getattr(skimage.data, name)()
    rng = np.random.default_rng(0)
    cut = int(photo.shape[0] * 0.6)
    train = crops(photo, (0, cut), TRAIN_CROPS, rng, crop)
    normal = crops(photo, (cut, photo.shape[0]), TEST_CROPS, rng, crop)
    defective = crops(photo, (cut, photo.shape[0]), TEST_CROPS, rng, crop).astype(np.float32)
    for image in defective:
        _paste_defect(image, rng)
    test = np.concatenate([normal, np.clip(defective, 0, 255).astype(np.uint8)])
    return train, test, np.r_[np.zeros(TEST_CROPS, int), np.ones(TEST_CROPS, int)]


def rolled(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image (N, C, H, W) moved round by a random offset (what leaves one side comes
    back on the other)."""
    h, w = images.shape[2:]
    return np.stack([np.roll(x, (rng.integers(h), rng.integers(w)), (1, 2)) for x in images])


def rolled_case(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    root, size = ROLLED[name]
    train, test, labels = load(require(SHARED / root), size)
    rng = np.random.default_rng(0)
    return rolled(train, rng), rolled(test, rng), labels


def detector(**settings):
    def run(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, dict]:
        from aetool import PatchDetector

        fitted = PatchDetector(device="cpu", **settings).fit(train)
        scorer = fitted.scorer_
        return -fitted.score_samples(test), {"place_cost": scorer.place_cost,
                                             "reach": scorer.reach,
                                             "scaled": scorer.position_scale is not None,
                                             "residual": scorer.residual_weight is not None,
                                             "threshold": fitted.threshold_}
    return run


def peer(func):
    return lambda train, test: (func(train, test), {})


def method_row(case: str, method: str, run, data: tuple[np.ndarray, np.ndarray, np.ndarray]
               ) -> tuple[dict, np.ndarray]:
    """One method (``run``: a :func:`detector` or :func:`peer`) on one case's (train, test,
    labels): its row (image metrics, what the detector chose, seconds) and its test scores."""
    train, test, labels = data
    start = time.perf_counter()
    scores, extra = run(train, test)
    return {"case": case, "method": method, **image_metrics(labels, scores), **extra,
            "seconds": time.perf_counter() - start}, scores


METHODS = {
    "aetool default": detector(),
    "aetool place-bound (reach=1, scaled: the default before)":
        detector(reach=1, scale_positions=True),
    "aetool default, edges=false": detector(edges=False),
    "aetool default, texture_power=0": detector(texture_power=0),
    "5-NN on pixels": peer(knn_pixels),
    "IsolationForest on pixels": peer(isolation_forest),
    "patch kNN on pixels (max)": peer(patch_knn_pixels),
}


def place_costs() -> list[dict]:
    """The place cost of aligned and unaligned training sets (no fitting)."""
    import torch

    from aetool.patches import place_cost

    def cost(images: np.ndarray) -> float:
        return place_cost(torch.from_numpy(np.ascontiguousarray(images)))

    rows = [{"set": name, "aligned": False, "place_cost": cost(photo_case(name)[0])}
            for name in PHOTOS]
    for root, size in (("elpv", (64, 64)), ("elpv", (150, 150)), ("mtile", (128, 128)),
                       ("mtile", (240, 96))):
        train = load(require(SHARED / root), size)[0]
        rng = np.random.default_rng(0)
        label = f"{root}{size[0]}" + ("" if size[0] == size[1] else f"x{size[1]}")
        turned = np.stack([np.rot90(x, rng.integers(4), (1, 2)) if size[0] == size[1]
                           else x[:, ::-1] for x in train])
        moved = rolled(train, rng)
        rows += [{"set": label, "aligned": True, "place_cost": cost(train)},
                 {"set": f"{label}, 54 images", "aligned": True, "place_cost": cost(train[:54])},
                 {"set": f"{label} turned in place", "aligned": True, "place_cost": cost(turned)},
                 {"set": f"{label} rolled", "aligned": False, "place_cost": cost(moved)}]
    from common import load_fashion_mnist, load_mnist

    sources = [("MNIST digit", load_mnist)]
    if os.environ.get("AETOOL_FASHION_MNIST"):
        sources.append(("Fashion-MNIST class", load_fashion_mnist))
    for label, loader in sources:
        images, labels = loader()[:2]
        images = images[:, None] if images.ndim == 3 else images
        rows += [{"set": f"{label} {k}", "aligned": True,
                  "place_cost": cost(images[labels == k][:1000])} for k in range(10)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join([*PHOTOS, *ROLLED]))
    parser.add_argument("--methods", default=";".join(METHODS), help="';'-separated")
    parser.add_argument("--costs-only", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from aetool.patches import PLACE_FREE_BELOW

    path = RESULTS / NAME
    rows = rows_by_case_method(NAME)

    def save(costs: list[dict]) -> None:
        write_json(NAME, {"protocol": __doc__, "machine": machine(),
                          "place_free_below": PLACE_FREE_BELOW, "rows": list(rows.values()),
                          "place_costs": costs})

    costs = json.loads(path.read_text()).get("place_costs", []) if path.exists() else []
    if not args.costs_only:
        for case in args.cases.split(","):
            data = photo_case(case) if case in PHOTOS else rolled_case(case)
            for method in args.methods.split(";"):
                rows[(case, method)] = method_row(case, method, METHODS[method], data)[0]
                print(rows[(case, method)], flush=True)
                save(costs)
        print_table(list(rows.values()), ["case", "method", "roc_auc", "aupr", "seconds"])
    by_set = {row["set"]: row for row in costs}  # a set not measured now keeps its row
    by_set.update({row["set"]: row for row in place_costs()})  # (Fashion-MNIST when unset)
    costs = list(by_set.values())
    save(costs)
    print_table(costs, ["set", "aligned", "place_cost"])


if __name__ == "__main__":
    main()
