"""The table detector's weight penalty on wide tables: a fixed λ = 1e-3 against λ that falls
as CAP / columns beyond CAP columns (aetool.defaults.table_detection_defaults; the default
since this bench: CAP = 64). The penalty sums the squared weights, whose count grows with the
width, while the reconstruction error is a mean over the columns.

Cases, ROC-AUC of the default detector (only its weight penalty differs between rows):
- synthetic dense low-rank tables, 30 to 2,000 columns (rank 10 plus noise; 5% of rows
  anomalous: a sparse shift of a fiftieth of the columns by 3, or a dense shift off the
  subspace), fitted and scored on all rows as ``aetool detect`` does, seeds 0 and 1;
- tables of 784 pixel columns: MNIST and Fashion-MNIST test images of one class (0, 3, 7)
  with 5% of other classes, ODDS protocol (stratified 60/40, fit on the train part), seeds 0, 1;
- the ODDS sets wider than 32 columns, seeds 0-4 (narrower ones keep 1e-3 under every cap).

A rule is a candidate default when its worst loss against the best rule of each case, over
every case, is the smallest (with the ODDS sets of at most 32 columns, equal under every rule).

    python bench/wide_tables.py                     # about 25 minutes on 2 cores
    python bench/wide_tables.py --cases synthetic   # or mnist, fashion, odds (comma-separated)
"""

from __future__ import annotations

import numpy as np
from common import (
    SHARED,
    cases_from_command_line,
    load_fashion_mnist,
    load_mnist,
    merge_row,
    print_table,
    require,
    saved_rows,
)

NAME = "wide_tables.json"
RULES = {"fixed 1e-3": None, "cap 100": 100, "cap 64 (default)": 64, "cap 32": 32}
WIDTHS = (30, 64, 100, 274, 768, 2000)


def penalty(cap: int | None, columns: int) -> float:
    """λ for a table of ``columns`` under a rule (None: the fixed 1e-3)."""
    return 1e-3 if cap is None else 1e-3 * min(1.0, cap / columns)


def synthetic(columns: int, kind: str, seed: int, rows: int = 2000, rank: int = 10):
    """A dense low-rank table with 5% anomalous rows (labels 1): ``kind`` 'sparse' shifts a
    fiftieth of a row's columns by +-3, 'dense' adds noise off the subspace."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(rank, columns))
    x = rng.normal(size=(rows, rank)) @ basis / np.sqrt(rank) + 0.1 * rng.normal(size=(rows, columns))
    labels = np.zeros(rows, dtype=int)
    odd = rng.choice(rows, rows // 20, replace=False)
    labels[odd] = 1
    for row in odd:
        if kind == "sparse":
            cols = rng.choice(columns, max(3, columns // 50), replace=False)
            x[row, cols] += rng.choice([-3.0, 3.0], size=len(cols))
        else:
            x[row] += 0.3 * rng.normal(size=columns)
    return x.astype(np.float32), labels


def pixel_table(kind: str, k: int):
    """Test images of class ``k`` with 5% of the other classes, as rows of 784 pixels."""
    _, _, images, classes = (load_mnist if kind == "mnist" else load_fashion_mnist)()
    rng = np.random.default_rng(k)
    normal = np.flatnonzero(classes == k)
    other = rng.choice(np.flatnonzero(classes != k), len(normal) // 19, replace=False)
    rows = np.concatenate([normal, other])
    return images[rows].reshape(len(rows), -1).astype(np.float32) / 255, (classes[rows] != k).astype(int)


def detector_auc(cap: int | None, seed: int, train, test, labels) -> float:
    from sklearn.metrics import roc_auc_score

    from aetool import AutoencoderDetector

    lam = penalty(cap, train.shape[1])
    detector = AutoencoderDetector(random_state=seed, device="cpu",
                                   variant_params={"weight_penalty": lam}).fit(train)
    return float(roc_auc_score(labels, -detector.score_samples(test)))


def split_auc(cap: int | None, seed: int, x, y) -> float:
    from sklearn.model_selection import train_test_split

    train, test, _, labels = train_test_split(x, y, test_size=0.4, stratify=y, random_state=seed)
    return detector_auc(cap, seed, train, test, labels)


def cases(groups: list[str]):
    """(case name, columns, ROC-AUC function of a cap) of the chosen groups."""
    if "synthetic" in groups:
        for columns in WIDTHS:
            for kind in ("sparse", "dense"):
                for seed in (0, 1):
                    x, y = synthetic(columns, kind, seed)
                    yield (f"synthetic {columns} {kind} seed {seed}", columns,
                           lambda cap, x=x, y=y, s=seed: detector_auc(cap, s, x, x, y))
    for kind in ("mnist", "fashion"):
        if kind in groups:
            for k in (0, 3, 7):
                x, y = pixel_table(kind, k)
                for seed in (0, 1):
                    yield (f"{kind} {k} pixels seed {seed}", 784,
                           lambda cap, x=x, y=y, s=seed: split_auc(cap, s, x, y))
    if "odds" in groups:
        for path in sorted(require(SHARED / "odds").glob("*.npz")):
            data = np.load(path)
            x, y = data["X"].astype(np.float64), data["y"].astype(int)
            if x.shape[1] > 32:
                yield (f"odds {path.stem}", x.shape[1],
                       lambda cap, x=x, y=y: float(np.mean([split_auc(cap, s, x, y)
                                                            for s in range(5)])))


def main() -> None:
    groups = cases_from_command_line(__doc__, ("synthetic", "mnist", "fashion", "odds"))
    for case, columns, auc in cases(groups):
        found = {}
        for rule, cap in RULES.items():
            if rule in found:
                continue
            value = auc(cap)
            # rules that give this width the same penalty give the same fit
            for other, other_cap in RULES.items():
                if penalty(other_cap, columns) == penalty(cap, columns):
                    found[other] = value
        for rule, value in found.items():
            merge_row(NAME, __doc__, {"case": case, "method": rule, "columns": columns,
                                      "roc_auc": value})
        print(case, " ".join(f"{r}: {v:.3f}" for r, v in found.items()), flush=True)
    summarise(saved_rows(NAME))


def summarise(rows: list[dict]) -> None:
    """Each rule's mean by group and worst loss against each case's best rule."""
    by = {(r["case"], r["method"]): r["roc_auc"] for r in rows}
    names = sorted({r["case"] for r in rows})
    table = []
    for rule in RULES:
        losses = [max(by[(c, r)] for r in RULES) - by[(c, rule)] for c in names]
        worst = int(np.argmax(losses))
        row = {"rule": rule, "worst loss": losses[worst], "where": names[worst]}
        for group in ("synthetic", "mnist", "fashion", "odds"):
            mine = [by[(c, rule)] for c in names if c.startswith(group)]
            row[f"{group} mean"] = float(np.mean(mine)) if mine else None
        table.append(row)
    print()
    print_table(table, ["rule", "worst loss", "where", "synthetic mean", "mnist mean",
                        "fashion mean", "odds mean"])


if __name__ == "__main__":
    main()
