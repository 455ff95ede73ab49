"""PNG figures (matplotlib, no display needed): ROC/PR curves, score histograms, image grids,
explanation heat maps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from aetool.data.output import atomic_output


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as PNG via a temporary file renamed into place, then close it."""
    path = Path(path)
    try:
        with atomic_output(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    finally:
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


HEAVY_TAIL_RATIO = 10.0  # (max - median) over (q90 - median) beyond which a linear axis hides the tail


def score_axis_scale(scores: np.ndarray) -> str:
    """'symlog' when the scores are heavy-tailed (the largest is more than HEAVY_TAIL_RATIO
    times further from the median than the 90th percentile is), else 'linear': on a linear
    axis a few scores of 400 squeeze every other bar into one."""
    q50, q90 = np.quantile(scores, [0.5, 0.9])
    spread = q90 - q50
    tail = float(np.max(scores)) - q50
    return "symlog" if spread > 0 and tail > HEAVY_TAIL_RATIO * spread else "linear"


def _score_bins(scores: np.ndarray, scale: str, count: int = 50) -> tuple[np.ndarray, float]:
    """Histogram bins equally wide on the axis the scores are drawn on, and the symlog
    linear range (the typical spread of the scores)."""
    if scale == "linear":
        return np.histogram_bin_edges(scores, bins=count), 0.0
    q10, q50, q90 = np.quantile(scores, [0.1, 0.5, 0.9])
    linear = float(max(q90 - q10, abs(q50), 1e-6))
    forward = np.sign(scores) * np.log1p(np.abs(scores) / linear)
    edges = np.linspace(forward.min(), forward.max(), count + 1)
    return np.sign(edges) * np.expm1(np.abs(edges)) * linear, linear


def histogram_figure(scores: np.ndarray, threshold: float, path: str | os.PathLike[str],
                     labels: np.ndarray | None = None) -> Path:
    """Histogram of anomaly scores (by label when given) with the threshold; heavy-tailed
    scores on a symmetric log axis (see :func:`score_axis_scale`)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    scale = score_axis_scale(scores)
    bins, linear = _score_bins(scores, scale)
    if labels is None:
        ax.hist(scores, bins=bins, color="tab:blue", alpha=0.8)
    else:
        ax.hist(scores[labels == 0], bins=bins, alpha=0.6, label="normal", color="tab:blue")
        ax.hist(scores[labels == 1], bins=bins, alpha=0.6, label="anomaly", color="tab:red")
        ax.legend()
    if scale == "symlog":
        ax.set_xscale("symlog", linthresh=linear)
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    axis = "anomaly score" + (" (symmetric log scale)" if scale == "symlog" else "")
    ax.set(xlabel=axis, ylabel="rows", title="Anomaly scores (dashed: threshold)")
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


def explanation_heatmap(shares: np.ndarray, row_names: list[str], column_names: list[str],
                        path: str | os.PathLike[str], marked: np.ndarray | None = None) -> Path:
    """Rows (most anomalous first, top to bottom) against the columns that explain them: each
    cell is the column's share of that row's error. ``marked`` rows (e.g. labelled anomalies)
    get red names."""
    plt = _pyplot()
    n_rows, n_cols = shares.shape
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * n_cols + 0.07 * max(map(len, row_names)),
                                    1.4 + 0.28 * n_rows))
    image = ax.imshow(shares, cmap="Reds", vmin=0, vmax=max(float(shares.max()), 1e-9),
                      aspect="auto")
    ax.set_xticks(range(n_cols), column_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n_rows), row_names, fontsize=8)
    if marked is not None:
        for tick, flag in zip(ax.get_yticklabels(), marked):
            tick.set_color("tab:red" if flag else "black")
    for i in range(n_rows):
        for j in range(n_cols):
            if shares[i, j] >= 0.1:
                ax.text(j, i, f"{shares[i, j]:.0%}", ha="center", va="center", fontsize=6,
                        color="white" if shares[i, j] > 0.5 * shares.max() else "black")
    title = "Most anomalous rows: each column's share of the error"
    ax.set_title(title + ("\n(red names: labelled anomalies)" if marked is not None else ""),
                 fontsize=9)
    from matplotlib.ticker import PercentFormatter

    # decimals follow the range: on a wide table every share is under 1%, and whole percents
    # would label the whole bar 0%
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, format=PercentFormatter(1.0))
    return save_figure(fig, path)
