"""Shared fixtures: tiny structured data and fast settings so the suite runs in minutes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aetool.plugins import reset_registry

torch.set_num_threads(1)

SHARED_DATA = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(autouse=True)
def fresh_registry():
    """Each test sees plugins as installed now (tests add fake ones to sys.path)."""
    reset_registry()
    yield
    reset_registry()


def low_rank_table(n: int = 256, d: int = 8, rank: int = 2, seed: int = 0) -> np.ndarray:
    """Rows on a ``rank``-dimensional linear manifold plus a little noise."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, rank))
    mixing = rng.normal(size=(rank, d))
    return (latent @ mixing + 0.05 * rng.normal(size=(n, d))).astype(np.float32)


def blob_images(n: int = 64, size: int = 12, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Images of one bright square at a random position: simple structure a model can learn."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, channels, size, size), dtype=np.float32)
    for i in range(n):
        r, c = rng.integers(0, size - 4, size=2)
        images[i, :, r:r + 4, c:c + 4] = 1.0
    return images


@pytest.fixture
def table() -> np.ndarray:
    return low_rank_table()


@pytest.fixture
def images() -> np.ndarray:
    return blob_images()
