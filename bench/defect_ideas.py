"""Ideas for local-defect image detection measured by bench/real_defects.py (issue #18). Each
takes (train, test) uint8 arrays (N, C, H, W) of normal training images and test images and
returns test scores, higher = more abnormal. None of them is aetool's default yet: they are
measured here first, on every set, before one becomes a default."""

from __future__ import annotations

import numpy as np
import torch
from defect_peers import nearest_distances, patch_grid


def standardised(images: np.ndarray) -> np.ndarray:
    """Each image to zero mean and unit variance over its pixels: photometric normalisation,
    so a brighter or darker part (or exposure) is not an anomaly by itself."""
    x = images.astype(np.float32) / 255.0
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return (x - mean) / (x.std(axis=(1, 2, 3), keepdims=True) + 1e-6)


def patch_distances(train: torch.Tensor, test: torch.Tensor, grid: tuple[int, int],
                    reach: int | None) -> torch.Tensor:
    """(N_test, P) distance of each test patch to the nearest training patch: at any position
    (``reach`` None) or within ``reach`` grid steps of its own position."""
    n, p, dim = test.shape
    if reach is None:
        return nearest_distances(test.reshape(-1, dim), train.reshape(-1, train.shape[2])).view(n, p)
    rows, cols = grid
    out = torch.empty(n, p)
    for j in range(p):
        r, c = divmod(j, cols)
        near = [rr * cols + cc for rr in range(max(0, r - reach), min(rows, r + reach + 1))
                for cc in range(max(0, c - reach), min(cols, c + reach + 1))]
        out[:, j] = nearest_distances(test[:, j], train[:, near].reshape(-1, train.shape[2]))
    return out


def _geometry(images: np.ndarray) -> tuple[int, int, tuple[int, int]]:
    """Patches a quarter of the shorter side, half-overlapping; the grid they form."""
    h, w = images.shape[-2:]
    size = max(4, min(h, w) // 4)
    stride = max(1, size // 2)
    return size, stride, ((h - size) // stride + 1, (w - size) // stride + 1)


def top_mean(distances: torch.Tensor, k: int = 5) -> np.ndarray:
    return distances.topk(min(k, distances.shape[1]), dim=1).values.mean(1).numpy()


def patch_knn(train: np.ndarray, test: np.ndarray, normalise: bool = True,
              reach: int | None = None) -> np.ndarray:
    """Patch kNN on pixels (optionally of standardised images), top-5 mean of the patch map."""
    prep = standardised if normalise else (lambda x: x.astype(np.float32) / 255.0)  # as peers
    size, stride, grid = _geometry(train)
    return top_mean(patch_distances(patch_grid(prep(train), size, stride),
                                    patch_grid(prep(test), size, stride), grid, reach))


def patch_code_knn(train: np.ndarray, test: np.ndarray, reach: int | None = 1,
                   epochs: int = 20) -> np.ndarray:
    """aetool's own encoder on patches: an ``ae`` (256 -> 32) trained on the standardised
    training patches; each test patch's code is compared with the training codes near its
    position; top-5 mean of the map."""
    from aetool import Autoencoder

    size, stride, grid = _geometry(train)
    bank, queries = (patch_grid(standardised(x), size, stride) for x in (train, test))
    dim = bank.shape[2]
    model = Autoencoder(variant="ae", variant_params={"hidden": [256], "code_size": 32},
                        epochs=epochs, device="cpu").fit(bank.reshape(-1, dim).numpy())

    def codes(patches: torch.Tensor) -> torch.Tensor:
        flat = model.transform(patches.reshape(-1, dim).numpy())
        return torch.from_numpy(np.ascontiguousarray(flat)).view(patches.shape[0], patches.shape[1], -1)

    return top_mean(patch_distances(codes(bank), codes(queries), grid, reach))


def conv_error_map_max(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """aetool's conv detector, but the image score is the maximum of its error map, smoothed
    (σ = H/32) and standardised per pixel by the training maps, instead of the mean error."""
    from scipy.ndimage import gaussian_filter

    from aetool import AutoencoderDetector

    detector = AutoencoderDetector(variant="conv", device="cpu").fit(train)
    model = detector.model_.eval()

    def maps(images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(detector._prepare(images, reset=False)[0])
        with torch.no_grad():
            errors = torch.cat([(model(x[i:i + 256])["recon"] - x[i:i + 256]).pow(2).sum(1)
                                for i in range(0, len(x), 256)])
        sigma = images.shape[-2] / 32  # smoothed within each map, mirrored at its borders
        return torch.from_numpy(gaussian_filter(errors.numpy(), (0, sigma, sigma),
                                                mode="mirror", truncate=3.0))

    reference = maps(train)
    centre, spread = reference.mean(0), reference.std(0) + 1e-6
    return ((maps(test) - centre) / spread).flatten(1).max(1).values.numpy()


IDEAS = {
    "patch kNN on pixels, same patches as below": lambda a, b: patch_knn(a, b, False, None),
    "conv, max of the smoothed per-pixel z error map": conv_error_map_max,
    "patch kNN on standardised images": lambda a, b: patch_knn(a, b, True, None),
    "patch kNN on standardised images, near its position": lambda a, b: patch_knn(a, b, True, 1),
    "aetool patch codes kNN, standardised, near its position": patch_code_knn,
}
