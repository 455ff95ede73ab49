"""Where `aetool fit` should switch from the whole-image conv detector to the patch detector
(``aetool.defaults.PATCH_DETECTOR_MIN_SIDE``): both detectors at their defaults on small images
of two kinds, by image side and by training-set size.

- one-class MNIST (train on one digit, ROC-AUC on a seeded 2,000 of the official test images,
  the digit as normal), brought down to 8-16 px, and at 8, 12 and 28 px with only 90 training
  images per digit (the first 90 of each digit);
- scikit-learn's 8x8 digits (the halves of ``mnist_oneclass.py --data digits``, about 90
  training images per digit), as they are and brought up to 16 px;
- drawn shapes at 28 px (generated here, seeded: a disc, square, triangle, ring or cross of
  random size, place and brightness on noise; 300 training images per shape, 200 test images
  of each), one shape normal, the others anomalies: a class is a whole shape, as in MNIST;
- the real-defect sets (ELPV cells, magnetic tiles) read at 8, 12, 16 and 28 px as the CLI
  reads folders.

Downscaling by area averaging, upscaling bilinear; every fit seeded with 0. The full-size rows
are in ``mnist_oneclass*.json``, ``digits_oneclass*.json`` and ``real_defects.json``.

    python bench/detector_cut.py                 # every case, about 35 minutes on 2 CPU cores
    python bench/detector_cut.py --cases mnist12,elpv12
    python bench/detector_cut.py --cases ""      # print what the results file holds
"""

from __future__ import annotations

import numpy as np
from common import (
    RESULTS,
    SHARED,
    cases_from_command_line,
    load_mnist,
    machine,
    print_table,
    rows_on_file,
    seeded_subset,
    timed,
    write_json,
)

CASES = ("digits8", "digits16", "shapes28", "mnist8", "mnist10", "mnist12", "mnist16",
         "mnist8_n90", "mnist12_n90", "mnist28_n90", "elpv8", "elpv12", "elpv16", "elpv28", "mtile8",
         "mtile12", "mtile16", "mtile28")
DETECTORS = ("patches", "whole")
TEST_IMAGES = 2000
NAME = "detector_cut.json"


def resized(images: np.ndarray, side: int) -> np.ndarray:
    """uint8 (N, H, W) images at ``side`` x ``side``, as the patch detector resizes
    (aetool.patches.resized: area averaging down, bilinear up)."""
    import torch

    from aetool.patches import resized as resized_tensor

    work = resized_tensor(torch.from_numpy(images).float()[:, None], (side, side))
    return work[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()


def parsed(case: str) -> tuple[str, int, int | None]:
    """A case's set, side and training images per class (None: all): 'mnist12_n90' ->
    ('mnist', 12, 90)."""
    name, _, per_class = case.partition("_n")
    set_name = name.rstrip("0123456789")
    return set_name, int(name[len(set_name):]), int(per_class) if per_class else None


def fitted(detector: str, train: np.ndarray):
    """The detector `aetool fit` trains for ``detector`` ('patches' or 'whole'), defaults."""
    import torch

    from aetool import AutoencoderDetector, PatchDetector

    torch.manual_seed(0)
    if detector == "patches":
        return PatchDetector(device="cpu").fit(train)
    return AutoencoderDetector(variant="conv", device="cpu").fit(train)


def drawn_shapes(per_shape: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 28, 28) images of five shapes, ``per_shape`` of each, and their labels 0-4."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:28, 0:28]
    images, labels = [], []
    for shape in range(5):
        for _ in range(per_shape):
            radius = rng.uniform(5, 9)
            dy, dx = rows - rng.uniform(radius + 1, 27 - radius), cols - rng.uniform(radius + 1,
                                                                                    27 - radius)
            mask = [dy ** 2 + dx ** 2 <= radius ** 2,
                    (abs(dy) <= 0.8 * radius) & (abs(dx) <= 0.8 * radius),
                    (dy <= 0.7 * radius) & (dy >= -0.8 * radius)
                    & (abs(dx) <= 0.6 * (dy + 0.8 * radius)),
                    abs(np.hypot(dy, dx) - 0.75 * radius) <= 1.3,
                    ((abs(dy) <= 1.5) & (abs(dx) <= radius))
                    | ((abs(dx) <= 1.5) & (abs(dy) <= radius))][shape]
            image = mask * rng.uniform(150, 255) + rng.normal(0, 12, (28, 28))
            images.append(np.clip(image, 0, 255).astype(np.uint8))
            labels.append(shape)
    return np.stack(images), np.array(labels)


def one_class(case: str) -> dict:
    """Mean and per-class ROC-AUC of both detectors on a one-class case (mnist*, digits*)."""
    from mnist_oneclass import load_digits_halves
    from sklearn.metrics import roc_auc_score

    name, side, per_class = parsed(case)
    if name == "digits":
        x_train, y_train, x_test, y_test = load_digits_halves()
    elif name == "shapes":
        (x_train, y_train), (x_test, y_test) = drawn_shapes(300), drawn_shapes(200, seed=1)
    else:
        x_train, y_train, x_test, y_test = load_mnist()
        keep = seeded_subset(len(x_test), TEST_IMAGES, 0)
        x_test, y_test = x_test[keep], y_test[keep]
    if per_class:
        first = np.concatenate([np.flatnonzero(y_train == k)[:per_class] for k in range(10)])
        x_train, y_train = x_train[first], y_train[first]
    x_train, x_test = resized(x_train, side), resized(x_test, side)
    row: dict = {"case": case, "side": side, "kind": "one class of digits or shapes",
                 "training images": int(np.median(np.bincount(y_train)))}
    for detector in DETECTORS:
        per_digit, seconds = [], 0.0
        for digit in np.unique(y_train).tolist():
            model, fit_seconds = timed(lambda d=detector, k=digit: fitted(d, x_train[y_train == k]))
            scores = -model.score_samples(x_test)
            per_digit.append(float(roc_auc_score(y_test != digit, scores)))
            seconds += fit_seconds
        row[detector] = float(np.mean(per_digit))
        row[f"{detector} per digit"] = per_digit
        row[f"{detector} fit seconds"] = round(seconds, 1)
    return row


def real_defects(case: str) -> dict:
    """ROC-AUC of both detectors on ELPV or the tiles read at a small side (elpv*, mtile*)."""
    from real_defects import load
    from sklearn.metrics import roc_auc_score

    name, side, _ = parsed(case)
    train, test, labels = load(SHARED / name, (side, side))
    row: dict = {"case": case, "side": side, "kind": "real defects",
                 "training images": len(train)}
    for detector in DETECTORS:
        model, seconds = timed(lambda d=detector: fitted(d, train))
        row[detector] = float(roc_auc_score(labels, -model.score_samples(test)))
        row[f"{detector} fit seconds"] = round(seconds, 1)
    return row


def main() -> None:
    cases = cases_from_command_line(__doc__, CASES)
    rows = rows_on_file(NAME)
    for case in cases:
        one = parsed(case)[0] in ("mnist", "digits", "shapes")
        rows[case] = one_class(case) if one else real_defects(case)
        rows[case]["patches - whole"] = rows[case]["patches"] - rows[case]["whole"]
        print({k: v for k, v in rows[case].items() if "per digit" not in k}, flush=True)
        write_json(NAME, {"machine": machine(), "protocol": __doc__.split("\n\n")[1],
                          "rows": [rows[c] for c in CASES if c in rows]})
    ordered = [rows[c] for c in CASES if c in rows]
    print()
    print_table(ordered, ["case", "kind", "side", "training images", *DETECTORS,
                          "patches - whole", "patches fit seconds", "whole fit seconds"])
    print(f"\nresults in {RESULTS / NAME}")


if __name__ == "__main__":
    main()
