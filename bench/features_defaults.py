"""Features at default settings on images (issue #19, item 1): which backbone should `aetool
train --variant V --set code_size=W` use on images when the user names nothing else?

Each variant (ae, dae, sparse, contractive) at widths 32 and 256 is trained as `aetool train`
does (the `Autoencoder` estimator, its default epochs), once with the fully connected backbone
(today's default: the image is flattened) and once convolutional; its codes go to a logistic
probe, beside PCA of the same width and raw pixels.

- MNIST: trained on the shared training images (10,000, or a seeded random ``--mnist-rows`` of them), probe
  fitted on their codes, accuracy on the official 10,000 test images.
- Fashion-MNIST (``--sets fashion``, ten kinds of clothing; a third set, on which no default
  was chosen): as MNIST, on its first 10,000 training images.
- scikit-learn's 8x8 digits (``--sets digits``; 1,797 images, a small set): trained on a seeded
  1,000, probe fitted on their codes, accuracy on the other 797.
- ELPV solar cells at 64x64: trained on the 1,000 normal training cells; probe normal vs
  defect by 5-fold cross-validation on the 1,223 test cells' codes (stratified, seeded);
  accuracy. PCA is fitted on the training cells.

    python bench/features_defaults.py --mnist-rows 4000  # about an hour on 2 cores
    python bench/features_defaults.py --sets elpv64 --variants ae
    python bench/features_defaults.py --mnist-rows 4000 --backbones conv --set activation=relu
    python bench/features_defaults.py --sets mnist --backbones conv --output features_defaults_mnist10k
    AETOOL_FASHION_MNIST=DIR python bench/features_defaults.py --sets fashion --backbones conv \
        --output features_defaults_fashion

``--min-steps N`` trains every variant for at least N optimiser steps (epochs and patience
stretched together; 0: the 60 epochs as they are), the method named after it; without it, the
estimator's own rule (``aetool.defaults.IMAGE_TRAINING_STEPS``: 2,000 for the four
variants here). The 60-epoch rows of features_defaults.json were measured before that rule;
``--min-steps 0`` reproduces them.

    python bench/features_defaults.py --sets digits,mnist --mnist-rows 1000 --backbones conv \
        --min-steps 0 --output features_min_steps    # and again with --min-steps 2000

The plain ``ae`` rows without a ``weight_penalty`` in their name were measured with the
variant's 1e-5; on images ``ae`` now trains without it (``IMAGE_FEATURE_DEFAULTS``), so
``--variants ae --set weight_penalty=1e-5`` reproduces them.

``--set NAME=VALUE`` trains every variant with that setting as well (the method is named after
it, e.g. "ae-32 conv activation=relu"); a (set, method) measured again replaces its row.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from common import (
    SHARED,
    load_fashion_mnist,
    load_mnist,
    machine,
    print_table,
    require,
    saved_rows,
    seeded_subset,
    write_json,
)

VARIANTS = ("ae", "dae", "sparse", "contractive")
WIDTHS = (32, 256)
BACKBONES = ("mlp", "conv")


def probe_accuracy(train: np.ndarray, train_y: np.ndarray, test: np.ndarray | None,
                   test_y: np.ndarray | None) -> float:
    """Logistic probe on standardised features: test accuracy, or (``test`` None) 5-fold
    cross-validated accuracy on ``train``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    if test is None:
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        return float(cross_val_score(model, train, train_y, cv=folds).mean())
    return float(model.fit(train, train_y).score(test, test_y))


def load_set(name: str, mnist_rows: int = 10000) -> dict:
    """fit: images the autoencoder learns; probe: (features source, labels) for the probe."""
    if name in ("mnist", "fashion"):
        x_train, y_train, x_test, y_test = (load_mnist if name == "mnist" else
                                            load_fashion_mnist)()
        keep = seeded_subset(len(x_train), mnist_rows, 0)
        x_train, y_train = x_train[keep], y_train[keep]  # the shared file is sorted by digit
        return {"fit": x_train, "probe_train": (x_train, y_train), "probe_test": (x_test, y_test)}
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.round(digits.images * (255 / 16)).astype(np.uint8)
        order = np.random.default_rng(0).permutation(len(images))
        fit, test = order[:1000], order[1000:]
        return {"fit": images[fit], "probe_train": (images[fit], digits.target[fit]),
                "probe_test": (images[test], digits.target[test])}
    from real_defects import load

    train, test, labels = load(require(SHARED / "elpv"), (64, 64))
    return {"fit": train, "probe_train": (test, labels), "probe_test": None}


def measure(name: str, data: dict, method: str, codes) -> dict:
    """The probe accuracy of ``codes`` (a function from images to features)."""
    images, labels = data["probe_train"]
    start = time.perf_counter()
    if data["probe_test"] is None:
        accuracy = probe_accuracy(codes(images), labels, None, None)
    else:
        test, test_labels = data["probe_test"]
        accuracy = probe_accuracy(codes(images), labels, codes(test), test_labels)
    return {"set": name, "method": method, "accuracy": accuracy,
            "probe_seconds": time.perf_counter() - start}


def flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="elpv64,mnist")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="NAME=VALUE", help="an extra variant setting, e.g. activation=relu")
    parser.add_argument("--min-steps", type=int, default=None,
                        help="optimiser steps each variant makes at least (default: the rule)")
    parser.add_argument("--skip-peers", action="store_true", help="no raw-pixel and PCA rows")
    parser.add_argument("--mnist-rows", type=int, default=10000,
                        help="MNIST training images (a seeded random N of the shared 10,000)")
    parser.add_argument("--output", default="features_defaults",
                        help="results file under bench/results/ (without .json)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from sklearn.decomposition import PCA

    from aetool import Autoencoder

    sets = args.sets.split(",")
    extra = dict(setting.split("=", 1) for setting in args.settings)
    suffix = "".join(f" {name}={value}" for name, value in extra.items())
    if args.min_steps is not None:
        suffix += f" min_steps={args.min_steps}"
    rows = saved_rows(f"{args.output}.json")  # a (set, method) measured again replaces its row

    def keep(row: dict) -> None:
        rows[:] = [r for r in rows if (r["set"], r["method"]) != (row["set"], row["method"])]
        rows.append(row)
        print(row, flush=True)
        write_json(f"{args.output}.json", {"protocol": __doc__, "machine": machine(),
                                           "rows": rows})

    for name in sets:
        data = load_set(name, args.mnist_rows)
        if not args.skip_peers:
            keep({**measure(name, data, "raw pixels", flat),
                  "width": int(flat(data["fit"][:1]).shape[1]),
                  "training_images": len(data["fit"])})
        for width in [] if args.skip_peers else WIDTHS:
            if width < flat(data["fit"][:1]).shape[1] and width < len(data["fit"]):
                pca = PCA(width, random_state=0).fit(flat(data["fit"]))
                keep({**measure(name, data, f"pca-{width}", lambda x, p=pca: p.transform(flat(x))),
                      "width": width})
        for variant in args.variants.split(","):
            for width in WIDTHS:
                for backbone in args.backbones.split(","):
                    model = Autoencoder(variant=variant, device="cpu", min_steps=args.min_steps,
                                        variant_params={"code_size": width,
                                                        "backbone": backbone, **extra})
                    start = time.perf_counter()
                    model.fit(data["fit"])
                    fit_s = time.perf_counter() - start
                    method = f"{variant}-{width} {backbone}{suffix}"
                    keep({**measure(name, data, method, model.transform),
                          "width": width, "variant": variant, "backbone": backbone,
                          "epochs": len(model.history_), "fit_seconds": fit_s,
                          "min_steps": args.min_steps, "stop_reason": model.stop_reason_,
                          "activation": getattr(model.config_, "activation", None), **extra})
    print_table(rows, ["set", "method", "width", "accuracy", "epochs", "fit_seconds"])


if __name__ == "__main__":
    main()
