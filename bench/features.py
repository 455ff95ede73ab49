"""Encoder features benchmark: a logistic-regression probe on autoencoder codes.

MNIST: autoencoders trained on the 10,000 shared training images (labels unused), a logistic
regression fitted on the codes of the same images, accuracy on the official 10,000 test images;
raw pixels and PCA with the same width as peers. Also 5-fold CV on scikit-learn's digits and on
the wine table (every transformer fitted inside each fold).

    python bench/features.py            # about 15 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse

from common import RESULTS, load_mnist, machine, print_table, timed, write_json

MNIST_VARIANTS = {
    # name: (variant, code size, extra variant settings)
    "ae-32": ("ae", 32, {"hidden": [256]}),
    "dae-32": ("dae", 32, {"hidden": [256], "noise": "masking:0.3"}),
    "sparse-32": ("sparse", 32, {"hidden": [256]}),
    "contractive-32": ("contractive", 32, {"hidden": [256]}),
    "conv-32": ("conv", 32, {}),
    "vae-32": ("vae", 32, {"hidden": [256], "backbone": "mlp"}),
    "sparse conv-32": ("sparse", 32, {"backbone": "conv"}),
    # wider codes: a sparse sigmoid code on a convolutional encoder is the strongest
    "conv-512": ("conv", 512, {}),
    "sparse conv-512": ("sparse", 512, {"backbone": "conv"}),
    "sparse conv-1024": ("sparse", 1024, {"backbone": "conv"}),
}


def probe(train_x, train_y, test_x, test_y, scale: bool = True) -> float:
    """Test accuracy of a logistic regression on standardised (or raw) features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [StandardScaler()] if scale else []
    model = make_pipeline(*steps, LogisticRegression(max_iter=2000))
    model.fit(train_x, train_y)
    return float(model.score(test_x, test_y))


def mnist(epochs: int, only: list[str] | None) -> list[dict]:
    from sklearn.decomposition import PCA

    from aetool import EncoderTransformer

    x_train, y_train, x_test, y_test = load_mnist()
    flat_train = x_train.reshape(len(x_train), -1) / 255.0
    flat_test = x_test.reshape(len(x_test), -1) / 255.0
    rows = []
    for scale in (True, False):  # the peer gets the better of the two
        acc, seconds = timed(lambda s=scale: probe(flat_train, y_train, flat_test, y_test, s))
        rows.append({"method": "raw pixels" + ("" if scale else " (unscaled)"), "width": 784,
                     "accuracy": acc, "fit_s": seconds})
        print(rows[-1], flush=True)
    chosen = {name: spec for name, spec in MNIST_VARIANTS.items() if not only or name in only}
    for width in sorted({spec[1] for spec in chosen.values() if spec[1] <= 784}):
        pca = PCA(width, random_state=0).fit(flat_train)
        acc, seconds = timed(lambda p=pca: probe(p.transform(flat_train), y_train,
                                                 p.transform(flat_test), y_test))
        rows.append({"method": f"pca-{width}", "width": width, "accuracy": acc,
                     "fit_s": seconds})
        print(rows[-1], flush=True)
    for name, (variant, width, settings) in chosen.items():
        encoder = EncoderTransformer(variant=variant, code_size=width, variant_params=settings,
                                     epochs=epochs, device="cpu", verbose=False)
        _, fit_s = timed(lambda e=encoder: e.fit(x_train))
        acc = probe(encoder.transform(x_train), y_train, encoder.transform(x_test), y_test)
        rows.append({"method": name, "width": width, "accuracy": acc, "fit_s": fit_s})
        print(rows[-1], flush=True)
    return rows


def cross_validated(epochs: int) -> list[dict]:
    from sklearn.datasets import load_digits, load_wine

    from aetool.data.source import Loaded
    from aetool.tasks.features import evaluate_features

    rows = []
    for name, (x, y) in {"digits": load_digits(return_X_y=True),
                         "wine": load_wine(return_X_y=True)}.items():
        table = evaluate_features(Loaded(x, None, y, name),
                                  ["ae", "sparse", "contractive", "dae", "vae"],
                                  ["logreg", "svm"],
                                  code_size=8 if name == "wine" else 32, folds=5,
                                  train_settings={"epochs": epochs}, progress=False)
        for row in table.to_dict("records"):
            rows.append({"dataset": name, **row})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--only", default="", help="comma-separated MNIST method names")
    parser.add_argument("--skip-cv", action="store_true")
    args = parser.parse_args()
    rows = mnist(args.epochs, [m for m in args.only.split(",") if m])
    print()
    print_table(rows, ["method", "width", "accuracy", "fit_s"])
    peers = [r for r in rows if r["method"].startswith(("raw", "pca"))]
    best = max((r for r in rows if r not in peers), key=lambda r: r["accuracy"])
    raw = max(r["accuracy"] for r in peers if r["method"].startswith("raw"))
    # wider than the 784 pixels, PCA keeps everything: the raw-pixel probe is that peer
    pca = next((r["accuracy"] for r in peers if r["method"] == f"pca-{best['width']}"), raw)
    summary = {"best": best["method"], "best_accuracy": best["accuracy"],
               "points_over_raw": 100 * (best["accuracy"] - raw),
               "points_over_pca_same_width": 100 * (best["accuracy"] - pca)}
    print(f"\nbest {best['method']}: {best['accuracy']:.4f} "
          f"({summary['points_over_raw']:+.1f} points over the better raw-pixel probe, "
          f"{summary['points_over_pca_same_width']:+.1f} over PCA-{best['width']})")
    cv = [] if args.skip_cv else cross_validated(args.epochs)
    if cv:
        print()
        print_table(cv, ["dataset", "method", "classifier", "accuracy_mean", "accuracy_std",
                         "macro_f1_mean"])
    write_json("features.json", {"machine": machine(), "epochs": args.epochs,
                                 "mnist_probe": rows, "summary": summary, "cross_validated": cv})
    print(f"\nwrote {RESULTS / 'features.json'}")


if __name__ == "__main__":
    main()
