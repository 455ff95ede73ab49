"""Tables of categorical columns: the table detector as it was (the plain AE with the 1e-3
penalty chosen on the all-numeric ODDS sets, and the combined score) against the default since
this bench (score_method "auto": on tables whose encoded columns are mostly one-hot codes, the
reconstruction error alone, the variant's own 1e-5 penalty and 1,500 steps; aetool.defaults
CATEGORICAL_TABLE_SHARE), with 5-NN and IsolationForest on the standardised one-hot table.

No shared set has categorical columns, so the cases are generated, seeded (3,000 rows, 5%
anomalous, fitted and scored on all rows as ``aetool detect`` does; seeds 0 and 1):
- prototypes C x L: C categorical columns of L levels, each a fixed function of two hidden
  factors (5% of cells replaced at random); an anomaly has 3 of its columns at random levels;
- mixed K x L + N: K categorical columns of L levels and N numeric ones whose centre depends on
  the row's categories; an anomaly takes another row's numbers (each typical by itself);
- rare levels: 8 columns of 6 common levels; an anomaly shows, in two of its columns, a
  seventh level that only anomalies have (about 1% of a column's rows).

    python bench/categorical_tables.py      # about 3 minutes on 2 cores
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from common import machine, print_table, write_json

NAME = "categorical_tables.json"
ROWS = 3000


def labelled(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, the anomalous rows): 5% of ``n`` rows."""
    labels = np.zeros(n, dtype=int)
    odd = rng.choice(n, n // 20, replace=False)
    labels[odd] = 1
    return labels, odd


def as_categories(codes: np.ndarray) -> dict[str, list[str]]:
    return {f"c{j}": [f"v{v}" for v in codes[:, j]] for j in range(codes.shape[1])}


def prototypes(columns: int, levels: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, levels, size=(ROWS, 2))
    maps = rng.integers(0, levels, size=(columns, levels, levels))
    codes = np.stack([maps[j][factors[:, 0], factors[:, 1]] for j in range(columns)], axis=1)
    noise = rng.random(codes.shape) < 0.05
    codes[noise] = rng.integers(0, levels, size=noise.sum())
    labels, odd = labelled(rng, ROWS)
    for row in odd:
        codes[row, rng.choice(columns, 3, replace=False)] = rng.integers(0, levels, size=3)
    return pd.DataFrame(as_categories(codes)), labels


def mixed(categorical: int, levels: int, numeric: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, levels, size=(ROWS, categorical))
    effects = rng.normal(size=(categorical, levels, numeric)) * 2
    x = sum(effects[j][codes[:, j]] for j in range(categorical)) + 0.3 * rng.normal(size=(ROWS, numeric))
    labels, odd = labelled(rng, ROWS)
    x[odd] = x[rng.integers(0, ROWS, size=len(odd))] + 0.3 * rng.normal(size=(len(odd), numeric))
    frame = pd.DataFrame(as_categories(codes))
    for k in range(numeric):
        frame[f"x{k}"] = x[:, k]
    return frame, labels


def rare_levels(seed: int, columns: int = 8, levels: int = 6) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = np.stack([rng.integers(0, levels, size=ROWS) for _ in range(columns)], axis=1)
    labels, odd = labelled(rng, ROWS)
    for row in odd:
        codes[row, rng.choice(columns, 2, replace=False)] = levels
    return pd.DataFrame(as_categories(codes)), labels


CASES = {
    "prototypes 10 x 10": lambda s: prototypes(10, 10, s),
    "prototypes 10 x 30": lambda s: prototypes(10, 30, s),
    "mixed 5 x 8 + 5": lambda s: mixed(5, 8, 5, s),
    "mixed 2 x 8 + 10": lambda s: mixed(2, 8, 10, s),
    "mixed 1 x 4 + 10": lambda s: mixed(1, 4, 10, s),
    "rare levels": rare_levels,
}
METHODS = {"aetool default": {}, "aetool before (combined, 1e-3)": {
    "score_method": "combined", "variant_params": {"weight_penalty": 1e-3}, "max_steps": 300}}


def scores(method: str, frame: pd.DataFrame, seed: int) -> tuple[np.ndarray, dict]:
    """Anomaly scores of one method (higher: more anomalous) and what it chose."""
    if method in METHODS:
        from aetool import AutoencoderDetector

        detector = AutoencoderDetector(random_state=seed, device="cpu", **METHODS[method])
        detector.fit(frame)
        return -detector.score_samples(frame), {
            "score": detector.scorer_.method, "weight_penalty": detector.config_.weight_penalty,
            "categorical_share": detector.preprocessor_.categorical_share}
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import NearestNeighbors

    x = pd.get_dummies(frame).to_numpy(float)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)
    if method == "IsolationForest":
        return -IsolationForest(random_state=seed).fit(x).score_samples(x), {}
    distances, _ = NearestNeighbors(n_neighbors=6).fit(x).kneighbors(x)
    return distances[:, 1:].mean(axis=1), {}


def main() -> None:
    from sklearn.metrics import roc_auc_score

    warnings.filterwarnings("ignore")
    rows = []
    for case, make in CASES.items():
        for seed in (0, 1):
            frame, labels = make(seed)
            for method in (*METHODS, "5-NN", "IsolationForest"):
                found, chose = scores(method, frame, seed)
                rows.append({"case": case, "seed": seed, "method": method,
                             "roc_auc": float(roc_auc_score(labels, found)), **chose})
        print(case, flush=True)
    table = []
    for case in CASES:
        row = {"case": case}
        for method in (*METHODS, "5-NN", "IsolationForest"):
            row[method] = float(np.mean([r["roc_auc"] for r in rows
                                         if r["case"] == case and r["method"] == method]))
        table.append(row)
    print_table(table, ["case", *METHODS, "5-NN", "IsolationForest"])
    write_json(NAME, {"protocol": __doc__, "machine": machine(), "rows": rows,
                      "per_case": table})


if __name__ == "__main__":
    main()
