"""Do the columns `top_features` names find the column that was broken?

Each set's normal rows (at most 2,000, seeded) get 2% of rows broken in one column each: a
numeric value shifted by 3 to 8 standard deviations or, for a positive column, multiplied by 5
to 50; a category swapped for another of the column's categories. The detector is fitted on
the broken table itself, as `aetool detect` does, and each broken row's explanation is checked:
hit@1 (the broken column comes first) and hit@3 (among the first three). Each way of scaling
a feature's reconstruction error (the training errors' statistic the shares are divided by)
is scored from the same fit, and so is a repair (how much the row's error falls when one
column is set to what the model drew for it); the peer is each column's robust z-score of its
value alone.

    python bench/explanations.py                   # 14 sets x 5 seeds (about 2 minutes)
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
from common import ROOT, SHARED, machine, print_table, write_json

ODDS_SETS = ("annthyroid", "breastw", "cardio", "ionosphere", "letter", "mammography",
             "pendigits", "satellite", "shuttle", "thyroid", "vowels", "wbc")
SETS = (*ODDS_SETS, "breast_cancer", "sales")
BROKEN_SHARE = 0.02
MAX_ROWS = 2000


def odds_frame(name: str, rng: np.random.Generator) -> pd.DataFrame:
    data = np.load(SHARED / "odds" / f"{name}.npz")
    normal = data["X"][data["y"] == 0].astype(np.float64)
    keep = rng.permutation(len(normal))[:MAX_ROWS]
    return pd.DataFrame(normal[keep], columns=[f"x{j}" for j in range(normal.shape[1])])


def sales_frame(rng: np.random.Generator, n: int = MAX_ROWS) -> pd.DataFrame:
    """A shop's table: skewed amounts that follow quantity and shop, a temperature, a
    weekday and a payment kind that depends on the amount."""
    shop = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1])
    qty = rng.integers(1, 10, n)
    price = np.exp(rng.normal(2.0, 0.6, n)) * np.where(shop == "west", 1.5, 1.0)
    amount = (qty * price).round(2)
    payment = np.where(amount > np.quantile(amount, 0.7), "card",
                       rng.choice(["cash", "card"], n, p=[0.6, 0.4]))
    return pd.DataFrame({"amount": amount, "quantity": qty, "unit_price": price.round(2),
                         "shop": shop, "payment": payment,
                         "weekday": rng.choice(["mon", "tue", "wed", "thu", "fri"], n),
                         "temperature": rng.normal(18, 6, n).round(1)})


def base_frame(name: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    if name == "sales":
        return sales_frame(rng)
    if name == "breast_cancer":
        table = pd.read_csv(ROOT / "datasets" / "breast_cancer.csv")
        return table[table["malignant"] == 0].drop(columns=["patient_id", "malignant"]) \
            .reset_index(drop=True)
    return odds_frame(name, rng)


def break_rows(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The table with 2% of rows broken in one column each; the rows and their columns."""
    rng = np.random.default_rng(1000 + seed)
    broken = frame.astype({c: float for c in frame.columns
                           if pd.api.types.is_integer_dtype(frame[c])})
    rows = rng.choice(len(frame), max(5, int(BROKEN_SHARE * len(frame))), replace=False)
    usable = [c for c in frame.columns if frame[c].nunique() > 1]
    columns = rng.choice(len(usable), len(rows))
    for row, k in zip(rows, columns, strict=True):
        column = usable[k]
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values):
            others = [v for v in values.unique() if v != values.iat[row]]
            broken.at[row, column] = rng.choice(others)
        elif (values > 0).all() and rng.random() < 0.5:
            broken.at[row, column] = values.iat[row] * rng.uniform(5, 50)
        else:
            spread = values.std() or 1.0
            broken.at[row, column] = values.iat[row] + rng.choice([-1, 1]) \
                * rng.uniform(3, 8) * spread
    return broken, rows, np.asarray([list(frame.columns).index(usable[k]) for k in columns])


SHIPPED = "each column's typical error, its 10% worst-drawn rows left out (aetool)"


def other_scales(errors: np.ndarray, by_column: np.ndarray) -> dict[str, tuple[np.ndarray, bool]]:
    """Other levels to divide a feature's (or column's: True) error by, measured beside it."""
    mean = errors.mean(axis=0)
    upper = np.quantile(errors, 0.99, axis=0)
    column_upper = np.quantile(by_column, 0.99, axis=0)
    return {"each feature's mean error (before)": (mean, False),
            "each feature's median error": (np.median(errors, axis=0), False),
            "each feature's mean error, clipped at its 99th percentile":
                (np.minimum(errors, upper).mean(axis=0), False),
            "each column's mean error": (by_column.mean(axis=0), True),
            "each column's median error": (np.median(by_column, axis=0), True),
            "each column's mean error, clipped at its 99th percentile":
                (np.minimum(by_column, column_upper).mean(axis=0), True)}


def ranks_of(shares: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Where the broken column stands in each row's explanation (1 = first)."""
    own = shares[np.arange(len(truth)), truth][:, None]
    return 1 + (shares > own).sum(axis=1)


def robust_z(frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """The peer: each numeric column's |value - median| / (1.4826 MAD), categories by rarity."""
    out = np.zeros((len(rows), frame.shape[1]))
    for j, column in enumerate(frame.columns):
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            mad = 1.4826 * np.median(np.abs(values - values.median())) or values.std() or 1.0
            out[:, j] = np.abs(values.iloc[rows] - values.median()) / mad
        else:  # a category's rarity, on the z scale of a normal tail of the same share
            from scipy.stats import norm

            share = values.map(values.value_counts(normalize=True)).iloc[rows]
            out[:, j] = norm.isf(np.asarray(share, dtype=float) / 2)
    return out


def repair_drops(detector, rows: pd.DataFrame, kept: list[str]) -> np.ndarray:
    """How much each row's normalised reconstruction error falls when one column's encoded
    features are replaced by what the model drew for them (one pass per column)."""
    matrix = detector.encode(rows)
    groups = np.asarray(detector.preprocessor_.feature_groups)
    weights = 1.0 / np.asarray(detector.scorer_.feature_error_mean)

    def error(m):
        return (np.square(detector.image_reconstructions(m) - m) * weights).sum(axis=1)

    drawn = detector.image_reconstructions(matrix)
    before = error(matrix)
    drops = np.zeros((len(rows), len(kept)))
    for j, column in enumerate(kept):
        repaired = matrix.copy()
        mask = groups == column
        repaired[:, mask] = drawn[:, mask]
        drops[:, j] = before - error(repaired)
    return drops


def measure(name: str, seed: int) -> list[dict]:
    from sklearn.metrics import roc_auc_score

    from aetool import AutoencoderDetector
    from aetool.estimators.explain import column_shares

    frame, rows, truth = break_rows(base_frame(name, seed), seed)
    detector = AutoencoderDetector(random_state=seed, device="cpu").fit(frame)
    details = detector.anomaly_details(frame)
    labels = np.zeros(len(frame), dtype=int)
    labels[rows] = 1
    auc = float(roc_auc_score(labels, details["anomaly_score"]))
    names, _ = column_shares(details["contributions"][:1], detector.preprocessor_)
    kept = [c for c in frame.columns if c in names]  # constant columns are dropped
    order = [names.index(c) for c in kept]
    truth = np.asarray([kept.index(frame.columns[j]) for j in truth])
    errors = details["errors"].reshape(len(frame), -1).astype(np.float64)
    _, by_column = column_shares(errors, detector.preprocessor_)  # summed per column
    _, shipped = column_shares(details["contributions"][rows], detector.preprocessor_)
    results = [(SHIPPED, ranks_of(shipped[:, order], truth))]
    for method, (scale, per_column) in other_scales(errors, by_column).items():
        if per_column:
            shares = by_column[rows] / (scale + 1e-12)
        else:
            _, shares = column_shares(errors[rows] / (scale + 1e-12), detector.preprocessor_)
        results.append((method, ranks_of(shares[:, order], truth)))
    results.append(("repair: error drop when a column is set to its reconstruction",
                    ranks_of(repair_drops(detector, frame.iloc[rows], kept), truth)))
    results.append(("peer: robust z of the value", ranks_of(robust_z(frame[kept], rows), truth)))
    return [{"set": name, "seed": seed, "method": method, "broken_rows": len(rows),
             "hit_at_1": float(np.mean(rank == 1)), "hit_at_3": float(np.mean(rank <= 3)),
             "detector_roc_auc": auc} for method, rank in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--output", default="explanations")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    records = []
    for name in args.sets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            rows = measure(name, seed)
            records += rows
            print("  ".join(f"{r['method'][:12]} {r['hit_at_1']:.2f}" for r in rows),
                  f"| {name} seed {seed} auc {rows[0]['detector_roc_auc']:.3f}", flush=True)
    table = (pd.DataFrame(records).groupby(["set", "method"], sort=False)[["hit_at_1", "hit_at_3"]]
             .mean().reset_index())
    summary = table.groupby("method", sort=False)[["hit_at_1", "hit_at_3"]].mean().reset_index()
    wide = table.pivot(index="set", columns="method", values="hit_at_1")
    levels = wide[[m for m in wide.columns if m == SHIPPED or m.startswith("each ")]]
    best = levels.max(axis=1)
    summary["worst_loss_at_1"] = [float((best - levels[m]).max()) if m in levels else None
                                  for m in summary["method"]]
    summary = summary.astype(object).where(summary.notna(), None)  # JSON null, not NaN
    print_table(table.to_dict("records"), ["set", "method", "hit_at_1", "hit_at_3"])
    print_table(summary.to_dict("records"), ["method", "hit_at_1", "hit_at_3", "worst_loss_at_1"])
    write_json(f"{args.output}.json", {
        "protocol": "normal rows (at most 2,000), 2% broken in one column each; detector "
                    "fitted on the broken table; hit@1 / hit@3 of the broken column; worst "
                    "loss: against the best level on each set (the peer and repair left out)",
        "machine": machine(), "summary": summary.to_dict("records"),
        "per_set": table.to_dict("records"), "runs": records})


if __name__ == "__main__":
    main()
