"""Square tiles of images: random ones to learn from, and overlapping ones blended back into
whole images, so a model that sees one tile at a time cleans images of any size."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# tiles cleaned in one call of the model: bounds the memory of a large photograph's tiles
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


def blended(images: np.ndarray, side: int, clean: Callable[[np.ndarray], np.ndarray],
            step: int | None = None) -> np.ndarray:
    """(N, C, H, W) float ``images`` (each side at least ``side``) cleaned tile by tile:
    tiles start every ``step`` pixels (half a side by default), each is cleaned by ``clean``
    ((T, C, side, side) in and out) and weighted by a Hann window, and every pixel is the
    weighted mean of the tiles over it, so tile seams do not show. The images are mirrored
    at their borders so every pixel lies inside some tile's middle."""
    import torch
    from torch.nn import functional as F

    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    n, channels, height, width = x.shape
    step = step or side // 2
    bottom, right = step + (-height) % step, step + (-width) % step
    x = F.pad(x, (step, right, step, bottom), mode="reflect")
    padded = tuple(x.shape[2:])
    hann = torch.hann_window(side, periodic=True, dtype=torch.float32)
    window = (hann[:, None] * hann[None, :]).repeat(channels, 1, 1).reshape(-1, 1)
    per_image = ((padded[0] - side) // step + 1) * ((padded[1] - side) // step + 1)
    weights = F.fold(window.expand(-1, per_image)[None], padded, side, stride=step)
    out = torch.empty_like(x)
    group = max(1, TILES_AT_ONCE // per_image)
    for start in range(0, n, group):
        part = x[start:start + group]
        columns = F.unfold(part, side, stride=step)  # (n, C*side*side, tiles)
        tiles = columns.transpose(1, 2).reshape(-1, channels, side, side).numpy()
        done = torch.from_numpy(np.asarray(clean(tiles), dtype=np.float32))
        done = done.reshape(len(part), per_image, -1).transpose(1, 2) * window
        out[start:start + group] = F.fold(done, padded, side, stride=step) / weights.clamp_min(
            1e-6)
    return out[:, :, step:step + height, step:step + width].numpy()
