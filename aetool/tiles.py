"""Square tiles of images: random ones to learn from, and overlapping ones blended back into
whole images, so a model that sees one tile at a time cleans images of any size."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# tiles cut, cleaned and blended at a time: bounds the memory of a large photograph's tiles
TILES_AT_ONCE = 4096


def random_tiles(images: np.ndarray, side: int, count: int, seed: int) -> np.ndarray:
    """``count`` tiles of ``side`` x ``side`` pixels from (N, C, H, W) ``images``, each from
    a random image at a random place (seeded), as (count, C, side, side)."""
    rng = np.random.default_rng(seed)
    n, channels, height, width = images.shape
    which = rng.integers(0, n, count)
    tops = rng.integers(0, height - side + 1, count)
    lefts = rng.integers(0, width - side + 1, count)
    out = np.empty((count, channels, side, side), dtype=images.dtype)
    for k, (i, top, left) in enumerate(zip(which, tops, lefts)):
        out[k] = images[i, :, top:top + side, left:left + side]
    return out


def _window_sums(length: int, side: int, step: int, hann: np.ndarray) -> np.ndarray:
    """Along one axis of ``length`` padded pixels: the sum of the Hann weights of every tile
    over each pixel, tiles starting every ``step`` pixels."""
    sums = np.zeros(length, dtype=np.float64)
    for start in range(0, length - side + 1, step):
        sums[start:start + side] += hann
    return sums


def blended(images: np.ndarray, side: int, clean: Callable[[np.ndarray], np.ndarray],
            step: int | None = None) -> np.ndarray:
    """(N, C, H, W) float ``images`` (each side at least ``side``) cleaned tile by tile:
    tiles start every ``step`` pixels (half a side by default), each is cleaned by ``clean``
    ((T, C, side, side) in and out) and weighted by a Hann window, and every pixel is the
    weighted mean of the tiles over it, so tile seams do not show. The images are mirrored
    at their borders so every pixel lies inside some tile's middle. About TILES_AT_ONCE
    tiles exist at a time (small images in groups, a large one in bands of tile rows, at least
    one row), so memory stays a few times the images' own at any image size and step."""
    import torch
    from torch.nn import functional as F

    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    n, channels, height, width = x.shape
    step = step or side // 2
    bottom, right = step + (-height) % step, step + (-width) % step
    x = F.pad(x, (step, right, step, bottom), mode="reflect")
    padded_h, padded_w = x.shape[2:]
    hann = torch.hann_window(side, periodic=True, dtype=torch.float64).numpy()
    window = torch.from_numpy(np.outer(hann, hann).astype(np.float32)).repeat(channels, 1, 1)
    window = window.reshape(1, -1, 1)
    # the Hann window is separable and the tiles lie on a grid, so their weights' sum is too
    weights = np.outer(_window_sums(padded_h, side, step, hann),
                       _window_sums(padded_w, side, step, hann))
    inside = (slice(step, step + height), slice(step, step + width))
    divisor = np.maximum(weights[inside], 1e-6).astype(np.float32)  # the same for every image
    tile_rows, tile_cols = (padded_h - side) // step + 1, (padded_w - side) // step + 1
    rows_at_once = max(1, min(tile_rows, TILES_AT_ONCE // tile_cols))
    group = max(1, TILES_AT_ONCE // (tile_rows * tile_cols))
    out = np.empty((n, channels, height, width), dtype=np.float32)
    for first in range(0, n, group):
        part = x[first:first + group]
        total = torch.zeros_like(part)
        for row in range(0, tile_rows, rows_at_once):
            rows = min(rows_at_once, tile_rows - row)
            top, band_h = row * step, (rows - 1) * step + side
            columns = F.unfold(part[:, :, top:top + band_h], side, stride=step)
            tiles = columns.transpose(1, 2).reshape(-1, channels, side, side).numpy()
            done = torch.from_numpy(np.asarray(clean(tiles), dtype=np.float32))
            done = done.reshape(len(part), rows * tile_cols, -1).transpose(1, 2) * window
            total[:, :, top:top + band_h] += F.fold(done, (band_h, padded_w), side, stride=step)
        out[first:first + group] = total[:, :, inside[0], inside[1]].numpy() / divisor
    return out
