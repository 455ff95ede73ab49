"""PNG figures (matplotlib, no display needed): ROC/PR curves, score histograms, image grids."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as PNG via a temporary file renamed into place, then close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    _pyplot().close(fig)
    return path


def roc_figure(labels: np.ndarray, scores: np.ndarray, path: str | os.PathLike[str]) -> Path:
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    fpr, tpr, _ = roc_curve(labels, scores)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"ROC-AUC {roc_auc_score(labels, scores):.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    ax.legend(loc="lower right")
    return save_figure(fig, path)


def pr_figure(labels: np.ndarray, scores: np.ndarray, path: str | os.PathLike[str]) -> Path:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _pyplot()
    precision, recall, _ = precision_recall_curve(labels, scores)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(recall, precision, label=f"PR-AUC {average_precision_score(labels, scores):.3f}")
    ax.axhline(labels.mean(), linestyle="--", color="grey", linewidth=0.8, label="chance")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve")
    ax.legend(loc="upper right")
    return save_figure(fig, path)


def histogram_figure(scores: np.ndarray, threshold: float, path: str | os.PathLike[str],
                     labels: np.ndarray | None = None) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.histogram_bin_edges(scores, bins=50)
    if labels is None:
        ax.hist(scores, bins=bins, color="tab:blue", alpha=0.8)
    else:
        ax.hist(scores[labels == 0], bins=bins, alpha=0.6, label="normal", color="tab:blue")
        ax.hist(scores[labels == 1], bins=bins, alpha=0.6, label="anomaly", color="tab:red")
        ax.legend()
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    ax.set(xlabel="anomaly score", ylabel="rows", title="Anomaly scores (dashed: threshold)")
    return save_figure(fig, path)


def image_grid(images: np.ndarray, path: str | os.PathLike[str], ncols: int = 8,
               titles: list[str] | None = None, cmap: str = "gray") -> Path:
    """Images (N, C, H, W) or (N, H, W) in [0, 1] as one grid PNG."""
    plt = _pyplot()
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[:, 0] if images.shape[1] == 1 else np.transpose(images, (0, 2, 3, 1))
    n = images.shape[0]
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.3 * nrows + 0.2 * bool(titles)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(np.clip(images[i], 0, 1), cmap=cmap, vmin=0, vmax=1)
            if titles:
                ax.set_title(titles[i], fontsize=7)
    return save_figure(fig, path)
