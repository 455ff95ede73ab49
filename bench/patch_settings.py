"""The patch detector's settings on the real-defect sets (issue #18): how far a patch looks for
its nearest training code (``reach``), how many of an image's worst patches make its score
(``top_k``) and the patch size, each measured on every set, so the defaults are chosen by a
rule that holds across sets rather than on one.

Distances are divided by each position's normal spread, as the detector does by default,
with the spread measured for each reach (rows whose patch label lacks "scaled by position"
were measured on raw distances, before the scaling). One fit per set and patch size; every
(reach, top_k) pair is scored from the same codes (searching anywhere only with the default quarter-side patches: with eighth-side patches it is
25 times the work). A set and size measured again replaces its earlier rows.

    python bench/patch_settings.py                    # about 10 minutes on 2 cores
    python bench/patch_settings.py --sets elpv64 --sizes quarter
    python bench/patch_settings.py --sets elpv64,mtile128 --sizes quarter --unaligned

``--unaligned`` measures the same sets as parts photographed without a jig: every training and
test image is turned by a random multiple of 90 degrees, maybe mirrored, and shifted by up to
an eighth of its side (reflected at the border), seeded; labels are unchanged. It also scores
two whole-image pixel peers (5-NN, IsolationForest) on both versions of each set.
``--augment`` trains on the eight turned and mirrored copies of every training image
(``PatchDetector(turns=True)``, ``--set turns=true``), the obvious remedy for parts in any
orientation.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
from common import RESULTS, SHARED, machine, print_table, require, write_json
from real_defects import SETS, load

REACHES = (0, 1, 2, None)
TOP_K = (1, 3, 5, 10)


def unalign(images: np.ndarray, seed: int) -> np.ndarray:
    """Each (C, H, W) image of a square set turned by a random multiple of 90 degrees, maybe
    mirrored, and shifted by up to an eighth of its side (reflected at the border)."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(images)
    side = images.shape[-1]
    reach = side // 8
    for i, image in enumerate(images):
        turned = np.rot90(image, int(rng.integers(4)), axes=(1, 2))
        if rng.integers(2):
            turned = turned[:, :, ::-1]
        padded = np.pad(turned, ((0, 0), (reach, reach), (reach, reach)), mode="reflect")
        dy, dx = rng.integers(0, 2 * reach + 1, size=2)
        out[i] = padded[:, dy:dy + side, dx:dx + side]
    return out


def sweep(name: str, size_rule: str, unaligned: bool = False,
          augment: bool = False) -> list[dict]:
    """ROC-AUC of every (reach, top_k) for one set and patch size ('quarter' of the shorter
    side, the default, or 'eighth')."""
    from sklearn.metrics import roc_auc_score

    from aetool import PatchDetector
    from aetool.patches import top_mean

    root, size = SETS[name]
    train, test, labels = load(require(SHARED / root), size)
    if unaligned:
        if size[0] != size[1]:
            raise SystemExit(f"--unaligned turns images by 90 degrees: {name} is not square")
        train, test = unalign(train, 0), unalign(test, 1)
        name = f"{name} unaligned"
    side = min(size)
    patch = max(4, side // (4 if size_rule == "quarter" else 8))  # the default is a sixth now
    start = time.perf_counter()
    detector = PatchDetector(variant="ae", patch_size=patch, turns=augment, edges=False,
                              whole_image=False, device="cpu").fit(train)
    seconds = time.perf_counter() - start
    matrix, _ = detector._prepare(test, reset=False)
    grid = detector.scorer_.grid
    codes = detector._patch_codes(grid.cut(detector.scorer_.patch_input(matrix)))
    rows = []
    searches = REACHES if size_rule == "quarter" and not augment else REACHES[:-1]
    for reach in searches:  # anywhere: 25x the work (eighth side) or 8x (augmented)
        detector.scorer_.reach = reach
        detector._training_distances(len(train))  # the spread this search would fit
        distances = detector._distances(codes)
        for k in TOP_K:
            scores = top_mean(distances, k).numpy()
            label = (f"{size_rule} ({grid.size} px)" + (", 8 turned copies" if augment else "")
                     + ", scaled by position")  # rows without it: raw distances (before)
            rows.append({"set": name, "patch": label,
                         "reach": "anywhere" if reach is None else reach, "top_k": k,
                         "roc_auc": float(roc_auc_score(labels, scores)),
                         "fit_seconds": seconds})
            print(rows[-1], flush=True)
    return rows


def peers_aligned_and_not(name: str) -> dict[str, float]:
    """ROC-AUC of 5-NN and IsolationForest on pixels, aligned and unaligned."""
    from defect_peers import isolation_forest, knn_pixels
    from sklearn.metrics import roc_auc_score

    root, size = SETS[name]
    train, test, labels = load(require(SHARED / root), size)
    out = {}
    for version, (fit, score) in {"aligned": (train, test),
                                  "unaligned": (unalign(train, 0), unalign(test, 1))}.items():
        for peer, method in {"5-NN on pixels": knn_pixels,
                             "IsolationForest on pixels": isolation_forest}.items():
            out[f"{peer}, {version}"] = float(roc_auc_score(labels, method(fit, score)))
    print(name, out, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="elpv64,elpv150,mtile128")
    parser.add_argument("--augment", action="store_true",
                        help="train on 8 turned and mirrored copies of each training image")
    parser.add_argument("--peers-only", action="store_true",
                        help="with --unaligned: only the pixel peers")
    parser.add_argument("--unaligned", action="store_true",
                        help="turn, mirror and shift every image at random (seeded)")
    parser.add_argument("--sizes", default="quarter,eighth",
                        help="patch sizes: quarter (default) and eighth of the shorter side; "
                             "eighth is skipped at 150x150 (6x the training patches)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    path = RESULTS / "patch_settings.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    rows: list[dict] = saved.get("rows", [])
    peers: dict = saved.get("unaligned_peers", {})
    for name in args.sets.split(","):
        for rule in [] if args.peers_only else args.sizes.split(","):
            if rule == "eighth" and min(SETS[name][1]) > 128:
                continue
            measured = sweep(name, rule, args.unaligned, args.augment)  # replaces the rows of an earlier run of the same pair
            rows = [r for r in rows
                    if (r["set"], r["patch"]) != (measured[0]["set"], measured[0]["patch"])]
            rows += measured
            write_json("patch_settings.json", {"protocol": __doc__, "machine": machine(),
                                               "rows": rows, "unaligned_peers": peers})
        if args.unaligned and not args.augment:
            peers[name] = peers_aligned_and_not(name)
            write_json("patch_settings.json", {"protocol": __doc__, "machine": machine(),
                                               "rows": rows, "unaligned_peers": peers})
    print_table(rows, ["set", "patch", "reach", "top_k", "roc_auc", "fit_seconds"])


if __name__ == "__main__":
    main()
