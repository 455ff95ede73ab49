"""Generative VAE and CVAE: do samples look like the data? (issue #24 protocol)

A scikit-learn ``MLPClassifier(hidden_layer_sizes=(256,))`` is trained on the real training
images and scores the real test images. Each model is trained on the same training images,
draws 100 samples per class from the prior (``Autoencoder.sample``), and the classifier labels
them:

- conditional accuracy (CVAE): the share of samples of class k that the classifier calls k;
- classifier score: the Inception Score computed with this classifier,
  exp(E_x KL(p(y|x) || p(y))), on the samples (real test images give the reference);
- both with codes from aetool's default fitted prior (a Gaussian mixture fitted to the
  training codes) and from the standard normal prior (``*_standard_prior``), same model;
- test NLL: -log p(x) in nats per image, importance-weighted with k=100 (Burda et al. 2016),
  on the first 1,000 test images, binarised at 0.5 (as the published MLP VAE figures are on
  binarised MNIST; ours are trained on grey levels, which the Bernoulli likelihood reads as
  probabilities).

Data sets: MNIST (the shared 10,000 training images, the official test set) and scikit-learn's
8x8 digits (a 70/30 split, 0-16 grey levels scaled to [0, 1]).

    python bench/generative.py                       # defaults of vae and cvae, both sets
    python bench/generative.py --configs all         # also the measured alternatives
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
from common import RESULTS, load_mnist, machine, print_table, write_json

PER_CLASS = 100
NLL_IMAGES = 1000

# name -> (variant, settings over the defaults); "defaults" rows are what a user gets
CONFIGS: dict[str, tuple[str, dict]] = {
    "vae defaults": ("vae", {}),
    "cvae defaults": ("cvae", {}),
    "cvae label at every decoder layer": ("cvae", {"label_layers": "all"}),
    "cvae gaussian sigma 0.1 (old likelihood)": ("cvae", {"likelihood": "gaussian"}),
    "cvae kl warm-up 2000 steps": ("cvae", {"kl_warmup": 2000}),
    "cvae free bits 0.25": ("cvae", {"free_bits": 0.25}),
    "cvae mlp 400, code 20 (the seed's design)": (
        "cvae", {"backbone": "mlp", "hidden": [400], "code_size": 20}),
    "vae mlp 400, code 20 (the seed's design)": (
        "vae", {"backbone": "mlp", "hidden": [400], "code_size": 20}),
    "betavae defaults (plugin)": ("betavae", {}),
    # the unconditional VAE's KL floor on images (aetool.defaults.IMAGE_GENERATION_DEFAULTS)
    "vae without free bits (previous default)": ("vae", {"free_bits": 0.0}),
    "vae free bits 0.25": ("vae", {"free_bits": 0.25}),
    "vae kl warm-up 1000 steps, no free bits": ("vae", {"free_bits": 0.0, "kl_warmup": 1000}),
}
NOT_GENERATIVE = {"vqvae": "the VQ-VAE plugin has no prior over its codebook, so it cannot "
                           "draw samples (it is registered as tabular, image, denoising)"}
DEFAULT_CONFIGS = ("vae defaults", "cvae defaults")


def load_digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0 * 255).round().astype(np.uint8)
    x_tr, x_te, y_tr, y_te = train_test_split(images, digits.target, test_size=0.3,
                                              random_state=0, stratify=digits.target)
    return x_tr, y_tr, x_te, y_te


def classifier_for(x_train: np.ndarray, y_train: np.ndarray):
    from sklearn.neural_network import MLPClassifier

    flat = x_train.reshape(len(x_train), -1) / 255.0
    return MLPClassifier(hidden_layer_sizes=(256,), max_iter=200, random_state=0).fit(flat, y_train)


def classifier_score(probs: np.ndarray) -> float:
    """Inception Score with this classifier: exp(mean KL(p(y|x) || p(y)))."""
    marginal = probs.mean(0, keepdims=True)
    kl = (probs * (np.log(probs + 1e-12) - np.log(marginal + 1e-12))).sum(1)
    return float(np.exp(kl.mean()))


def evaluate(name: str, variant: str, settings: dict, data: tuple, classifier, classes,
             epochs: int | None) -> dict:
    import torch

    from aetool import Autoencoder

    x_train, y_train, x_test, y_test = data
    params = {"epochs": epochs} if epochs else {}
    start = time.perf_counter()
    model = Autoencoder(variant=variant, variant_params=settings, device="cpu", **params)
    model.fit(x_train[:, None], y_train if variant == "cvae" else None)
    fit_s = time.perf_counter() - start
    row = {"method": name, "epochs_trained": len(model.history_),
           "stop_reason": model.stop_reason_, "fit_s": round(fit_s, 1)}
    for prior, suffix in (("fitted", ""), ("standard", "_standard_prior")):
        samples, wanted = [], []
        for k in classes:
            label = k if variant == "cvae" else None
            samples.append(model.sample(PER_CLASS, label=label, seed=int(k), prior=prior))
            wanted += [k] * PER_CLASS
        flat = np.concatenate(samples).reshape(len(wanted), -1)
        probs = classifier.predict_proba(flat)
        predicted = classifier.classes_[probs.argmax(1)]
        row[f"classifier_score{suffix}"] = classifier_score(probs)
        if variant == "cvae":
            row[f"conditional_accuracy{suffix}"] = float((predicted == np.asarray(wanted)).mean())
        if prior == "fitted":
            row["_samples"] = np.concatenate(samples)
    test = (x_test[:NLL_IMAGES, None] >= 128).astype(np.uint8) * 255  # binarised at 0.5
    torch.manual_seed(0)
    nll = -model.log_likelihood(test, y_test[:NLL_IMAGES] if variant == "cvae" else None, k=100)
    row["test_nll_binarised"] = float(nll.mean())
    row["held_out_nll"] = model.validation_nll_
    return row


def sample_figure(rows: list[dict], dataset: str, path) -> None:
    from aetool.plots import _pyplot, save_figure

    plt = _pyplot()
    shown = [r for r in rows if r["method"] in DEFAULT_CONFIGS]
    if not shown:  # a run of alternatives only: no figure
        return
    fig, axes = plt.subplots(len(shown), 1, figsize=(6, 4.2 * len(shown)), squeeze=False)
    for ax, row in zip(axes[:, 0], shown):
        grid = row["_samples"].reshape(-1, PER_CLASS, *row["_samples"].shape[-2:])[:, :8]
        tiles = np.concatenate([np.concatenate(list(cls), axis=0) for cls in grid], axis=1)
        ax.imshow(np.clip(tiles, 0, 1), cmap="gray")
        ax.set_title(f"{dataset} {row['method']}: 8 samples per class (columns)", fontsize=8)
        ax.axis("off")
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="defaults", help="defaults, all, or names")
    parser.add_argument("--datasets", default="mnist,digits")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the default epochs (trials only)")
    parser.add_argument("--output", default="generative")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    names = {"defaults": list(DEFAULT_CONFIGS), "all": list(CONFIGS)}.get(
        args.configs, [c.strip() for c in args.configs.split(";")])
    results = {}
    for dataset in args.datasets.split(","):
        if dataset == "mnist":
            x_tr, y_tr, x_te, y_te = load_mnist()
        else:
            x_tr, y_tr, x_te, y_te = load_digits_split()
        classifier = classifier_for(x_tr, y_tr)
        flat_test = x_te.reshape(len(x_te), -1) / 255.0
        real = {"method": "real test images",
                "classifier_score": classifier_score(classifier.predict_proba(flat_test)),
                "conditional_accuracy": float(classifier.score(flat_test, y_te))}
        rows = [real]
        for name in names:
            variant, settings = CONFIGS[name]
            rows.append(evaluate(name, variant, settings, (x_tr, y_tr, x_te, y_te), classifier,
                                 np.unique(y_tr), args.epochs))
            print(json.dumps({k: v for k, v in rows[-1].items() if not k.startswith("_")}))
        sample_figure(rows, dataset, RESULTS / f"{args.output}_{dataset}.png")
        results[dataset] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
        print_table(results[dataset], ["method", "conditional_accuracy", "classifier_score",
                                       "conditional_accuracy_standard_prior",
                                       "classifier_score_standard_prior",
                                       "test_nll_binarised", "epochs_trained", "fit_s"])
    write_json(f"{args.output}.json", {"protocol": __doc__, "machine": machine(),
                                       "results": results, "not_generative": NOT_GENERATIVE})


if __name__ == "__main__":
    main()
