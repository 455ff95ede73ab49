"""Peer detectors for the real-defect benchmark (bench/real_defects.py), on the same resized
pixels aetool sees: IsolationForest, k-NN distance, PCA reconstruction error, PyOD's
AutoEncoder and patch kNN on raw pixels (PatchCore's idea without a pretrained network).
Each takes (train, test) uint8 arrays (N, C, H, W) and returns test scores, higher = more
abnormal."""

from __future__ import annotations

import numpy as np


def _flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def isolation_forest(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    from sklearn.ensemble import IsolationForest

    return -IsolationForest(random_state=0).fit(_flat(train)).score_samples(_flat(test))


def knn_pixels(train: np.ndarray, test: np.ndarray, k: int = 5) -> np.ndarray:
    """Mean distance to the k nearest training images."""
    from sklearn.neighbors import NearestNeighbors

    distances, _ = NearestNeighbors(n_neighbors=k).fit(_flat(train)).kneighbors(_flat(test))
    return distances.mean(axis=1)


def pca_error(train: np.ndarray, test: np.ndarray, variance: float = 0.9) -> np.ndarray:
    """Squared reconstruction error from the principal components that keep ``variance``."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=variance, svd_solver="full", random_state=0).fit(_flat(train))
    flat = _flat(test)
    return ((pca.inverse_transform(pca.transform(flat)) - flat) ** 2).sum(axis=1)


def pyod_autoencoder(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    from pyod.models.auto_encoder import AutoEncoder

    return AutoEncoder(verbose=0).fit(_flat(train)).decision_function(_flat(test))


def patch_grid(x: np.ndarray, size: int, stride: int):
    """(N, P, C*size*size) float patches of float images on a regular grid, row-major."""
    import torch
    from torch.nn import functional as F

    return F.unfold(torch.from_numpy(x), kernel_size=size, stride=stride).transpose(1, 2).contiguous()


def nearest_distances(queries, bank, chunk: int = 4096):
    """Euclidean distance of each query row to its nearest bank row, a few thousand queries
    per matrix product."""
    import torch

    bank_sq = (bank ** 2).sum(1)
    out = torch.empty(len(queries))
    for start in range(0, len(queries), chunk):
        q = queries[start:start + chunk]
        d2 = (q ** 2).sum(1, keepdim=True) - 2 * q @ bank.T + bank_sq
        out[start:start + chunk] = d2.min(dim=1).values.clamp(min=0).sqrt()
    return out


_LAST: dict[tuple[int, int], np.ndarray] = {}  # the max and top-5 rows share one distance run


def patch_knn_pixels(train: np.ndarray, test: np.ndarray, size: int = 16, stride: int = 8,
                     top: int = 1) -> np.ndarray:
    """Each test patch's distance to the nearest training patch at any position; the image
    score is the mean of its ``top`` largest (1: the maximum)."""
    key = (id(train), id(test))
    if key not in _LAST:
        _LAST.clear()
        bank = patch_grid(train.astype(np.float32) / 255.0, size, stride).flatten(0, 1)
        queries = patch_grid(test.astype(np.float32) / 255.0, size, stride)
        nearest = nearest_distances(queries.flatten(0, 1), bank)
        _LAST[key] = nearest.view(queries.shape[0], queries.shape[1]).numpy()
    distances = np.sort(_LAST[key], axis=1)[:, ::-1]
    return distances[:, :top].mean(axis=1)


PEERS = {
    "IsolationForest on pixels": isolation_forest,
    "5-NN on pixels": knn_pixels,
    "PCA reconstruction error": pca_error,
    "PyOD AutoEncoder": pyod_autoencoder,
    "patch kNN on pixels (max)": patch_knn_pixels,
    "patch kNN on pixels (top-5 mean)": lambda a, b: patch_knn_pixels(a, b, top=5),
}
