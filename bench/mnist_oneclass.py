"""One-class MNIST (Ruff et al., ICML 2018 protocol): train on one digit, score all test images.

For each digit k: fit on the shared training images of digit k (about 1,000; the published Deep
SVDD figures used about 6,000), score the official 10,000 test images, ROC-AUC with digit k as
normal. aetool's default image detector (conv) and its other image variants, with
scikit-learn's IsolationForest and the 5-NN distance on raw pixels and PyOD's AutoEncoder on
flattened pixels as peers.

    python bench/mnist_oneclass.py          # about 20 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from common import RESULTS, load_mnist, machine, print_table, timed, write_json

DEEP_SVDD = [98.0, 99.7, 91.7, 91.9, 94.9, 88.5, 98.3, 94.6, 93.9, 96.5]
METHODS = ("aetool conv", "aetool vae", "aetool ae", "iforest", "5nn", "pyod_ae")


def scores_for(method: str, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Anomaly scores (higher = more abnormal) of ``test`` after fitting on ``train`` (uint8)."""
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


def main() -> None:
    from sklearn.metrics import roc_auc_score

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--output", default="mnist_oneclass",
                        help="results name (trials: use another, so the full run stays)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    x_train, y_train, x_test, y_test = load_mnist()
    digits = [int(d) for d in args.digits.split(",")]
    methods = args.methods.split(",")
    rows = []
    for digit in digits:
        row = {"digit": digit, "deep_svdd_published": DEEP_SVDD[digit] / 100}
        for method in methods:
            scores, seconds = timed(lambda m=method, d=digit: scores_for(
                m, x_train[y_train == d], x_test))
            row[method] = float(roc_auc_score(y_test != digit, scores))
            row[f"{method} seconds"] = seconds
        rows.append(row)
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    means = {m: float(np.mean([r[m] for r in rows])) for m in methods}
    means["deep_svdd_published"] = float(np.mean([r["deep_svdd_published"] for r in rows]))
    print()
    print_table([*rows, {"digit": "mean", **means}], ["digit", *methods, "deep_svdd_published"])
    write_json(f"{args.output}.json", {"machine": machine(), "protocol": "train on one digit of "
               "mnist_train10k (about 1,000 images), ROC-AUC on the 10,000 official test images",
               "per_digit": rows, "mean": means})
    figure(rows, methods, args.output)
    if "aetool conv" in methods and args.output == "mnist_oneclass":
        heat_map_examples(x_train[y_train == digits[0]], x_test, y_test, digits[0])
    print(f"\nwrote {RESULTS / (args.output + '.json')} and figures")


def figure(rows: list[dict], methods: list[str], name: str = "mnist_oneclass") -> None:
    from aetool.plots import _pyplot, save_figure

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    digits = [r["digit"] for r in rows]
    width = 0.8 / (len(methods) + 1)
    for i, method in enumerate([*methods, "deep_svdd_published"]):
        ax.bar(np.arange(len(digits)) + i * width, [r[method] for r in rows], width,
               label=method)
    ax.set_xticks(np.arange(len(digits)) + 0.4 - width / 2, [str(d) for d in digits])
    ax.set(ylim=(0.5, 1.0), xlabel="normal digit", ylabel="ROC-AUC",
           title="One-class MNIST (Deep SVDD: published, ~6x more training data)")
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
