"""ODDS benchmark: aetool's default detector against IsolationForest and PyOD's AutoEncoder/VAE.

Protocol (../shared/datasets/README.md): 22 ODDS sets, stratified 60/40 split per seed, fit on
the contaminated train part without labels, ROC-AUC and PR-AUC on the test part.

    python bench/odds.py                      # all methods, seeds 0-4 (about 40 minutes)
    python bench/odds.py --methods aetool --seeds 0
    python bench/odds.py --methods knn --output odds_knn   # 5-NN on standardised columns, a minute
    python bench/odds.py --methods aetool --output odds_relu \
        --aetool-params '{"variant_params": {"activation": "relu"}}'   # one trial setting
"""

from __future__ import annotations

import argparse
import csv
import json
import warnings

import numpy as np
from common import RESULTS, SHARED, machine, print_table, require, timed, write_json

METHODS = ("aetool", "iforest", "pyod_ae", "pyod_vae")  # and "knn" (5-NN), on request


class StandardisedKNN:
    """The distance to the 5th nearest training row on standardised columns (PyOD's KNN
    score, after the scaling aetool's own preprocessing does)."""

    def fit(self, x):
        from sklearn.neighbors import NearestNeighbors
        from sklearn.preprocessing import StandardScaler

        self.scaler_ = StandardScaler().fit(x)
        self.neighbours_ = NearestNeighbors(n_neighbors=5).fit(self.scaler_.transform(x))
        return self

    def score_samples(self, x):
        distances, _ = self.neighbours_.kneighbors(self.scaler_.transform(x))
        return -distances[:, -1]


def make(method: str, seed: int, aetool_params: dict | None = None):
    if method == "aetool":
        from aetool import AutoencoderDetector

        return AutoencoderDetector(random_state=seed, device="cpu", **(aetool_params or {}))
    if method == "iforest":
        from sklearn.ensemble import IsolationForest

        return IsolationForest(random_state=seed)
    if method == "knn":
        return StandardisedKNN()
    if method == "pyod_ae":
        from pyod.models.auto_encoder import AutoEncoder

        return AutoEncoder(verbose=0)
    if method == "pyod_vae":
        from pyod.models.vae import VAE

        return VAE(verbose=0)
    raise ValueError(method)


def anomaly_scores(model, x):
    if hasattr(model, "decision_scores_"):  # PyOD: higher = more abnormal
        return model.decision_function(x)
    return -model.score_samples(x)


def main() -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--datasets", default="")
    parser.add_argument("--output", default="odds")
    parser.add_argument("--aetool-params", default={}, type=json.loads,
                        help="JSON keyword arguments for AutoencoderDetector (trials; use with "
                             "--output so the default results are not overwritten)")
    parser.add_argument("--replot", action="store_true",
                        help="only redraw OUTPUT.png from the saved OUTPUT.json")
    args = parser.parse_args()
    if args.replot:
        saved = json.loads((RESULTS / f"{args.output}.json").read_text())
        figure(saved["per_dataset"], list(saved["summary"]), args.output)
        return
    aetool_params = args.aetool_params
    methods = args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    folder = require(SHARED / "odds")
    names = args.datasets.split(",") if args.datasets else sorted(
        p.stem for p in folder.glob("*.npz"))
    warnings.filterwarnings("ignore")

    records = []
    for name in names:
        data = np.load(folder / f"{name}.npz")
        x, y = data["X"].astype(np.float64), data["y"].astype(int)
        for seed in seeds:
            x_tr, x_te, _, y_te = train_test_split(x, y, test_size=0.4, stratify=y,
                                                   random_state=seed)
            for method in methods:
                model = make(method, seed, aetool_params)
                _, fit_s = timed(lambda m=model, a=x_tr: m.fit(a))
                scores, score_s = timed(lambda m=model, b=x_te: anomaly_scores(m, b))
                records.append({"dataset": name, "seed": seed, "method": method,
                                "roc_auc": float(roc_auc_score(y_te, scores)),
                                "pr_auc": float(average_precision_score(y_te, scores)),
                                "fit_s": fit_s, "score_s": score_s})
        row = {"dataset": name}
        for method in methods:
            mine = [r for r in records if r["dataset"] == name and r["method"] == method]
            row[method] = float(np.mean([r["roc_auc"] for r in mine]))
        print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else v for k, v in row.items()),
              flush=True)

    table, summary = [], {}
    for name in names:
        row = {"dataset": name}
        for method in methods:
            mine = [r for r in records if r["dataset"] == name and r["method"] == method]
            row[f"{method}_roc"] = float(np.mean([r["roc_auc"] for r in mine]))
            row[f"{method}_pr"] = float(np.mean([r["pr_auc"] for r in mine]))
        table.append(row)
    for method in methods:
        mine = [r for r in records if r["method"] == method]
        summary[method] = {
            "mean_roc_auc": float(np.mean([r["roc_auc"] for r in mine])),
            "mean_pr_auc": float(np.mean([r["pr_auc"] for r in mine])),
            "fit_s_total": float(np.sum([r["fit_s"] for r in mine])),
            "score_s_total": float(np.sum([r["score_s"] for r in mine])),
        }
    pyod = [m for m in ("pyod_ae", "pyod_vae") if m in methods]
    if "aetool" in methods and pyod:
        wins = sum(row["aetool_roc"] >= max(row[f"{m}_roc"] for m in pyod) - 1e-12
                   for row in table)
        summary["aetool"]["sets_at_least_best_pyod"] = int(wins)
        if "pyod_ae" in methods:
            summary["aetool"]["fit_time_ratio_vs_pyod_ae"] = (
                summary["aetool"]["fit_s_total"] / summary["pyod_ae"]["fit_s_total"])
    print()
    print_table(table, ["dataset", *[f"{m}_roc" for m in methods]])
    print()
    print_table([{"method": m, **v} for m, v in summary.items()],
                ["method", "mean_roc_auc", "mean_pr_auc", "fit_s_total", "score_s_total"])
    for key in ("sets_at_least_best_pyod", "fit_time_ratio_vs_pyod_ae"):
        if key in summary.get("aetool", {}):
            print(f"aetool {key}: {summary['aetool'][key]:.3g}")
    write_json(f"{args.output}.json", {"protocol": "ODDS 60/40 stratified, fit on train, "
                                       "ROC/PR-AUC on test", "seeds": seeds,
                                       "aetool_params": aetool_params, "machine": machine(),
                                       "summary": summary, "per_dataset": table,
                                       "runs": records})
    with open(RESULTS / f"{args.output}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    figure(table, methods, args.output)


def figure(table: list[dict], methods: list[str], output: str) -> None:
    """OUTPUT.png: each data set's mean ROC-AUC per method, one row per set (sorted by the
    first method), so where aetool wins and loses shows at a glance."""
    from aetool.plots import _pyplot, save_figure

    plt = _pyplot()
    rows = sorted(table, key=lambda r: r[f"{methods[0]}_roc"])
    fig, ax = plt.subplots(figsize=(6.5, 0.28 * len(rows) + 1.2))
    markers = {"aetool": ("o", "tab:red"), "iforest": ("s", "tab:green"),
               "pyod_ae": ("^", "tab:blue"), "pyod_vae": ("v", "tab:purple")}
    for method in methods:
        marker, colour = markers.get(method, ("x", "grey"))
        values = [r[f"{method}_roc"] for r in rows]
        ax.scatter(values, range(len(rows)), marker=marker, color=colour, s=28, zorder=3,
                   label=f"{method} (mean {np.mean(values):.3f})")
    ax.set_yticks(range(len(rows)), [r["dataset"] for r in rows], fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set(xlabel="ROC-AUC (mean over seeds)", title="ODDS: aetool's default against the peers")
    ax.legend(fontsize=7, loc="upper left")  # the top rows are near 1: that corner is empty
    save_figure(fig, RESULTS / f"{output}.png")


if __name__ == "__main__":
    main()
