"""ONNX export exactness: onnxruntime against ``aetool score`` on every ODDS set and every
built-in variant, with the largest differences per set.

- ODDS (22 sets, seed 0, the 60/40 split of bench/odds.py): the default detector fitted on the
  train part, exported, and both engines scoring the test part;
- variants: each built-in variant (and the installed plugins) as a detector on a table with
  NaNs and a categorical column, and conv on 28x28 MNIST digits; cvae as an autoencoder (codes).

Differences are relative to max(|aetool value|, 1); 'flags differ' counts rows whose
is_anomaly disagrees. On ODDS also the distance of each engine from the exact score (the same
model and scorer evaluated in float64): how far float32 itself is from the truth.

    python bench/onnx_export.py        # about 10 minutes on 2 CPU cores
"""

from __future__ import annotations

import warnings

import numpy as np
from common import SHARED, machine, print_table, require, write_json

from aetool.export.onnx import relative_gap as gap


def compare(detector, features) -> dict[str, float]:
    from aetool.export import onnx as onnx_export

    got = onnx_export.run_on(onnx_export.export_model(detector, "detect"), features)
    expected = detector.anomaly_details(features)
    return {"_onnx_scores": got["anomaly_score"],
            "score_rel": gap(got["anomaly_score"], expected["anomaly_score"]),
            "probability_abs": float(np.abs(got["anomaly_probability"]
                                            - expected["anomaly_probability"]).max()),
            "contributions_abs": float(np.abs(got["contributions"].reshape(
                expected["contributions"].shape) - expected["contributions"]).max()),
            "flags_differ": int((got["is_anomaly"] != expected["is_anomaly"]).sum()),
            "rows": len(expected["anomaly_score"])}


def exact_scores(detector, x) -> np.ndarray:
    """The detector's scores with its model and score terms evaluated in float64."""
    import copy

    import torch

    scorer = detector.scorer_
    matrix, _ = detector._prepare(x, reset=False)
    model = copy.deepcopy(detector.model_).double()
    with torch.no_grad():
        inputs = torch.from_numpy(matrix).double()
        code = model.encode(inputs, None)
        squared = (model.decode(code, None) - inputs).square().flatten(1).numpy()
    code = code.numpy()
    recon = squared @ (1.0 / (np.asarray(scorer.feature_error_mean) * squared.shape[1])) \
        if scorer.normalize_features else squared.mean(1)
    latent = mixture = None
    if scorer.uses_latent:
        factor = np.linalg.cholesky(np.asarray(scorer.code_precision))
        latent = np.linalg.norm((code - np.asarray(scorer.code_mean)) @ factor, axis=1)
    if scorer.uses_mixture:
        means, factors, log_norms = (np.asarray(v) for v in (
            scorer.mixture_means, scorer.mixture_factors, scorer.mixture_log_norms))
        terms = log_norms - 0.5 * np.stack(
            [(((code - means[k]) @ factors[k]) ** 2).sum(1) for k in range(len(log_norms))], 1)
        top = terms.max(1)
        mixture = -(top + np.log(np.exp(terms - top[:, None]).sum(1)))
    return scorer.combine(recon, latent, mixture)


def odds_rows() -> list[dict]:
    from sklearn.model_selection import train_test_split

    from aetool import AutoencoderDetector

    rows = []
    for path in sorted(require(SHARED / "odds").glob("*.npz")):
        data = np.load(path)
        x_train, x_test = train_test_split(data["X"], test_size=0.4, stratify=data["y"],
                                           random_state=0)
        detector = AutoencoderDetector(random_state=0, device="cpu").fit(x_train)
        row = {"set": path.stem, **compare(detector, x_test)}
        exact = exact_scores(detector, x_test)
        row["aetool_vs_exact"] = gap(detector.anomaly_details(x_test, explain=False)
                                     ["anomaly_score"], exact)
        row["onnx_vs_exact"] = gap(row.pop("_onnx_scores"), exact)
        rows.append(row)
        print(rows[-1], flush=True)
    return rows


def table_with_categories(n: int, seed: int):
    import pandas as pd

    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 2))
    values = latent @ np.random.default_rng(99).normal(size=(2, 6)) + 0.1 * rng.normal(
        size=(n, 6))
    frame = pd.DataFrame(values, columns=[f"v{i}" for i in range(6)])
    frame["v1"] = np.exp(frame["v1"]) * 50
    frame["kind"] = np.where(latent[:, 0] > 0, "upper", "lower")
    frame.loc[::9, "v0"] = np.nan
    frame.loc[::13, "kind"] = None
    return frame


def main() -> None:
    import torch

    from aetool import Autoencoder, AutoencoderDetector
    from aetool.export import onnx as onnx_export
    from aetool.plugins import list_variants

    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    variants = []
    train, test = table_with_categories(2000, 0), table_with_categories(1000, 1)
    mnist = np.load(require(SHARED / "mnist" / "mnist_train10k_uint8.npz"))["X"]
    for name, variant in sorted(list_variants().items()):
        if "conditional" in variant.capabilities:
            labels = np.arange(2000) % 2
            model = Autoencoder(variant=name, epochs=20, random_state=0).fit(train, labels)
            got = onnx_export.run_on(onnx_export.export_model(model, "autoencoder"), test,
                                     labels[:1000])
            variants.append({"set": f"{name} table (codes)",
                             "score_rel": gap(got["code"], model.transform(test, labels[:1000])),
                             "rows": len(test)})
            print(variants[-1], flush=True)
            continue
        if "tabular" in variant.capabilities:
            detector = AutoencoderDetector(variant=name, random_state=0).fit(train)
            variants.append({"set": f"{name} table", **compare(detector, test)})
            variants[-1].pop("_onnx_scores")
            print(variants[-1], flush=True)
        if name == "conv":
            detector = AutoencoderDetector(variant=name, random_state=0).fit(mnist[:2000])
            variants.append({"set": "conv MNIST 28x28", **compare(detector, mnist[2000:3000])})
            variants[-1].pop("_onnx_scores")
            print(variants[-1], flush=True)
    odds = odds_rows()
    columns = ["set", "score_rel", "probability_abs", "contributions_abs", "flags_differ", "rows",
               "aetool_vs_exact", "onnx_vs_exact"]
    shown = [{k: f"{v:.2g}" if isinstance(v, float) else v for k, v in row.items()}
             for row in variants + odds]
    print_table(shown, columns)
    summary = {"odds_max_score_rel": max(r["score_rel"] for r in odds),
               "odds_flags_differ": sum(r["flags_differ"] for r in odds),
               "variants_max_score_rel": max(r["score_rel"] for r in variants),
               "odds_max_aetool_vs_exact": max(r["aetool_vs_exact"] for r in odds),
               "odds_max_onnx_vs_exact": max(r["onnx_vs_exact"] for r in odds)}
    print(summary)
    write_json("onnx_export.json", {"machine": machine(), "variants": variants, "odds": odds,
                                    "summary": summary})


if __name__ == "__main__":
    main()
