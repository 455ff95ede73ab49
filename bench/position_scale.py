"""Scaling patch distances by each position's normal spread (issue #18): the patch detector
divides a patch's distance to its nearest training code by the standard deviation, over the
training images (each left out of the search in turn), of the distances at that grid position.
Is that better than raw distances on every kind of set, or only on some?

One fit per set (the default PatchDetector); both scores come from the same codes and
distances. Sets: ELPV cells at 64 and 150 px and magnetic tiles at 128 px (all training
images); the 64/128 px sets turned, mirrored and shifted at random (bench/patch_settings.py
``--unaligned``); and a seeded random 54 or 150 of their training images (seeds 0-2), the
size of the small sets users bring. Metric: image ROC-AUC, for the pooling of the time (the
mean of an image's 5 worst patches) and, to re-check that choice on scaled distances, 1, 3 and
10; and, with the detector's pooling, the share of normal test images above the threshold
fitted at the default contamination (0.1), scaled and raw.

    python bench/position_scale.py                   # about 8 minutes on 2 cores
    python bench/position_scale.py --cases elpv64,mtile128
"""

from __future__ import annotations

import time

import numpy as np
from common import (
    EARLIER_PATCH_DETECTOR,
    SHARED,
    cases_from_command_line,
    machine,
    print_table,
    require,
    seeded_subset,
    write_json,
)
from patch_settings import unalign
from real_defects import SETS, load

CASES = ("elpv64", "elpv150", "mtile128", "elpv64 unaligned", "mtile128 unaligned",
         *(f"{name} {n} images seed {seed}" for name in ("elpv64", "mtile128")
           for n in (54, 150) for seed in (0, 1, 2)))
TOP_K = (1, 3, 5, 10)  # worst patches averaged into the image score (5: the default)


def case_data(case: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training images, test images and labels of one case name."""
    words = case.split()
    train, test, labels = load(require(SHARED / SETS[words[0]][0]), SETS[words[0]][1])
    if "unaligned" in words:
        train, test = unalign(train, 0), unalign(test, 1)
    if "images" in words:
        count = int(words[words.index("images") - 1])
        train = np.ascontiguousarray(train[seeded_subset(len(train), count, int(words[-1]))])
    return train, test, labels


def measure(case: str) -> dict:
    """ROC-AUC with raw and with position-scaled distances, from one fit, for the default
    pooling (mean of the 5 worst patches) and for the other ``TOP_K``."""
    import torch
    from sklearn.metrics import roc_auc_score

    from aetool import PatchDetector
    from aetool.patches import top_mean
    from aetool.thresholds import fitted_threshold

    train, test, labels = case_data(case)
    start = time.perf_counter()
    detector = PatchDetector(**EARLIER_PATCH_DETECTOR).fit(train)
    seconds = time.perf_counter() - start
    scorer = detector.scorer_
    scaled = detector._distances(detector._image_codes(detector._prepare(test, reset=False)[0]))
    raw = scaled * torch.tensor(scorer.position_scale)
    row = {"case": case, "train_images": len(train), "fit_seconds": seconds}
    for k in TOP_K:
        for name, distances in (("raw", raw), ("scaled", scaled)):
            auc = float(roc_auc_score(labels, top_mean(distances, k).numpy()))
            row[name if k == 5 else f"{name} top {k}"] = auc
    row["gain"] = row["scaled"] - row["raw"]
    # Does the threshold keep its meaning? Share of normal test images above it (the default
    # contamination is 0.1); for raw distances, the threshold raw training scores would give.
    normal = labels == 0
    row["normal flagged, scaled"] = float(np.mean(
        top_mean(scaled, scorer.top_k).numpy()[normal] > detector.threshold_))
    detector.scales_positions_ = False  # the raw training distances (the detector is done with)
    raw_train = top_mean(detector._training_distances(len(train)), scorer.top_k).numpy()
    raw_threshold = fitted_threshold(raw_train.astype(float), None, detector.contamination)
    row["normal flagged, raw"] = float(np.mean(
        top_mean(raw, scorer.top_k).numpy()[normal] > raw_threshold))
    print(row, flush=True)
    return row


def main() -> None:
    rows = []
    for case in cases_from_command_line(__doc__, CASES):
        rows.append(measure(case))
        gains = [r["gain"] for r in rows]
        write_json("position_scale.json", {
            "protocol": __doc__, "machine": machine(), "rows": rows,
            "worst_gain": min(gains), "mean_gain": float(np.mean(gains))})
    print_table(rows, ["case", "train_images", "raw", "scaled", "gain"])


if __name__ == "__main__":
    main()
