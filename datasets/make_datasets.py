"""Regenerate the small data sets aetool ships, from data bundled with scikit-learn (no download).

    python datasets/make_datasets.py

- breast_cancer.csv: Wisconsin diagnostic breast cancer; all 357 benign rows plus 30 malignant
  rows drawn with a fixed seed, so malignant tumours are rare anomalies (label column 'malignant').
- digits.npz: the 1,797 8x8 handwritten digits, X uint8 (values 0-16), y the digit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_digits

HERE = Path(__file__).resolve().parent


def breast_cancer(n_malignant: int = 30, seed: int = 0) -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["malignant"] = (frame.pop("target") == 0).astype(int)
    rng = np.random.default_rng(seed)
    malignant = frame.index[frame["malignant"] == 1]
    chosen = rng.choice(malignant, size=n_malignant, replace=False)
    keep = frame.loc[(frame["malignant"] == 0) | frame.index.isin(chosen)].copy()
    keep.insert(0, "patient_id", [f"P{i:04d}" for i in keep.index])
    return keep.round(6).reset_index(drop=True)


def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return data.images.astype(np.uint8), data.target.astype(np.uint8)


def main() -> None:
    breast_cancer().to_csv(HERE / "breast_cancer.csv", index=False)
    x, y = digits()
    np.savez_compressed(HERE / "digits.npz", X=x, y=y)
    print(f"wrote {HERE / 'breast_cancer.csv'} and {HERE / 'digits.npz'}")


if __name__ == "__main__":
    main()
