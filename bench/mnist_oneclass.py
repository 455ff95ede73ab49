"""One-class MNIST (Ruff et al., ICML 2018 protocol): train on one digit, score all test images.

For each digit k: fit on the shared training images of digit k (about 1,000; the published Deep
SVDD figures used about 6,000), score the official 10,000 test images, ROC-AUC with digit k as
normal. aetool's default image detector ("aetool default": the one `aetool fit` trains for
images of this size, aetool.defaults.image_detector_for: the patch detector at 28 px, the
whole-image conv detector at 8 px), its whole-image variants, with scikit-learn's
IsolationForest and the 5-NN distance on raw pixels and PyOD's AutoEncoder on flattened pixels
as peers.

    python bench/mnist_oneclass.py          # about 30 minutes on 2 CPU cores
    python bench/mnist_oneclass.py --methods "aetool default" --output mnist_oneclass_default
    python bench/mnist_oneclass.py --data digits   # the second image set, about 3 minutes
    AETOOL_FASHION_MNIST=DIR python bench/mnist_oneclass.py --data fashion   # the third

``--data digits``: the same protocol on scikit-learn's 8x8 digits (1,797 images, bundled with
scikit-learn): a seeded, stratified half of the images is the training pool (about 90 per
digit), the other half the test set; pixels 0-16 scaled to 0-255. Results
``digits_oneclass.json``.

``--data fashion``: the same protocol as MNIST on Fashion-MNIST (ten kinds of clothing, 28x28
grey; the first 10,000 training images, about 1,000 per class, and the 10,000 test images), a
set no default was chosen on. Results ``fashion_oneclass.json``.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from common import (
    RESULTS,
    load_fashion_mnist,
    load_mnist,
    machine,
    print_table,
    timed,
    write_json,
)

DEEP_SVDD = [98.0, 99.7, 91.7, 91.9, 94.9, 88.5, 98.3, 94.6, 93.9, 96.5]
METHODS = ("aetool default", "aetool conv", "aetool vae", "aetool ae", "iforest", "5nn", "pyod_ae")


def scores_for(method: str, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Anomaly scores (higher = more abnormal) of ``test`` after fitting on ``train`` (uint8)."""
    if method == "aetool default":  # the detector `aetool fit` trains for images of this size
        from aetool.defaults import image_detector_for

        kind = image_detector_for(*train.shape[1:3])
        method = "aetool patches" if kind == "patches" else "aetool conv"
    if method == "aetool patches":  # the local-defect detector, at its default settings
        from aetool import PatchDetector

        return -PatchDetector(device="cpu").fit(train).score_samples(test)
    if method.startswith("aetool"):
        from aetool import AutoencoderDetector

        variant = method.split()[1]
        detector = AutoencoderDetector(variant=variant, device="cpu")  # default settings
        return -detector.fit(train).score_samples(test)
    flat_train = train.reshape(len(train), -1) / 255.0
    flat_test = test.reshape(len(test), -1) / 255.0
    if method == "iforest":
        from sklearn.ensemble import IsolationForest

        return -IsolationForest(random_state=0).fit(flat_train).score_samples(flat_test)
    if method == "5nn":  # mean distance to the 5 nearest training images
        from sklearn.neighbors import NearestNeighbors

        return NearestNeighbors(n_neighbors=5).fit(flat_train).kneighbors(flat_test)[0].mean(1)
    from pyod.models.auto_encoder import AutoEncoder

    return AutoEncoder(verbose=0).fit(flat_train).decision_function(flat_test)


def load_digits_halves() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits as uint8 images, split in stratified, seeded halves:
    (train images, train labels, test images, test labels)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.clip(digits.images * 16, 0, 255).astype(np.uint8)
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.5, stratify=digits.target, random_state=0)
    return x_train, y_train, x_test, y_test


def main() -> None:
    from sklearn.metrics import roc_auc_score

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--data", choices=("mnist", "digits", "fashion"), default="mnist")
    parser.add_argument("--output", default=None,
                        help="results name (default: DATA_oneclass; trials: use another, so the "
                             "full run stays)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    mnist = args.data == "mnist"
    args.output = args.output or f"{args.data}_oneclass"
    loaders = {"mnist": load_mnist, "digits": load_digits_halves, "fashion": load_fashion_mnist}
    x_train, y_train, x_test, y_test = loaders[args.data]()
    digits = [int(d) for d in args.digits.split(",")]
    methods = args.methods.split(",")
    rows = []
    for digit in digits:
        row = {"digit": digit, "deep_svdd_published": DEEP_SVDD[digit] / 100 if mnist else None}
        for method in methods:
            scores, seconds = timed(lambda m=method, d=digit: scores_for(
                m, x_train[y_train == d], x_test))
            row[method] = float(roc_auc_score(y_test != digit, scores))
            row[f"{method} seconds"] = seconds
        rows.append(row)
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    means = {m: float(np.mean([r[m] for r in rows])) for m in methods}
    reference = ["deep_svdd_published"] if mnist else []
    if mnist:
        means["deep_svdd_published"] = float(np.mean([r["deep_svdd_published"] for r in rows]))
    print()
    print_table([*rows, {"digit": "mean", **means}], ["digit", *methods, *reference])
    protocol = {"mnist": "train on one digit of mnist_train10k (about 1,000 images), ROC-AUC "
                         "on the 10,000 official test images",
                "digits": "scikit-learn digits 8x8, stratified halves (random_state=0): train "
                          "on one digit of the first half (about 90 images), ROC-AUC on the "
                          "other half (899)",
                "fashion": "Fashion-MNIST: train on one class of the first 10,000 official "
                           "training images (about 1,000), ROC-AUC on the 10,000 official test "
                           "images"}[args.data]
    write_json(f"{args.output}.json", {"machine": machine(), "protocol": protocol,
                                       "per_digit": rows, "mean": means})
    figure(rows, methods, args.output, reference, "One-class MNIST (Deep SVDD: published, ~6x "
           "more training data)" if mnist else {"digits": "One-class 8x8 digits (scikit-learn)",
                                     "fashion": "One-class Fashion-MNIST"}[args.data])
    if "aetool conv" in methods and args.output == "mnist_oneclass":
        heat_map_examples(x_train[y_train == digits[0]], x_test, y_test, digits[0])
    print(f"\nwrote {RESULTS / (args.output + '.json')} and figures")


def figure(rows: list[dict], methods: list[str], name: str, reference: list[str],
           title: str) -> None:
    from aetool.plots import _pyplot, save_figure

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    digits = [r["digit"] for r in rows]
    width = 0.8 / (len(methods) + 1)
    for i, method in enumerate([*methods, *reference]):
        ax.bar(np.arange(len(digits)) + i * width, [r[method] for r in rows], width,
               label=method)
    ax.set_xticks(np.arange(len(digits)) + 0.4 - width / 2, [str(d) for d in digits])
    normal = "normal class (kind of clothing)" if "Fashion" in title else "normal digit"
    ax.set(ylim=(0.5, 1.0), xlabel=normal, ylabel="ROC-AUC", title=title)
    ax.legend(fontsize=7, ncol=3, loc="lower right")
    save_figure(fig, RESULTS / f"{name}.png")


def heat_map_examples(train: np.ndarray, test: np.ndarray, labels: np.ndarray, digit: int) -> None:
    """Heat maps of the most anomalous test images for one digit's detector."""
    from aetool import AutoencoderDetector
    from aetool.data.source import Loaded
    from aetool.tasks.heatmaps import most_anomalous_grid

    detector = AutoencoderDetector(variant="conv", device="cpu").fit(train)
    sample = test[:2000]
    details = detector.anomaly_details(sample)
    table = Loaded(sample, None, (labels[:2000] != digit).astype(int), "mnist test")
    most_anomalous_grid(detector, table, details, RESULTS / "mnist_heatmaps.png")


if __name__ == "__main__":
    main()
