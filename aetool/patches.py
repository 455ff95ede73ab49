"""Patches of images for the local-defect detector: where they sit, how they are cut out of
per-image standardised images, how each patch's code is compared with the training codes near
its position, and how per-patch values go back to a per-pixel map or image."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from aetool.data.images import working_shape

MIN_PATCH = 4  # pixels: below this a patch holds too little structure to compare
MIN_SPREAD_IMAGES = 10  # training images needed to measure each position's normal spread
ROUNDING = 1e-9  # squared code distances below this share of |q|^2 + |p|^2 are the encoder's rounding
TIE_SLACK = 1e-5  # float32 search: codes within this share of |q|^2 + |p|^2 of the nearest tie
# The nearest-code search on a CPU takes the squared distances of at most CPU_BLOCK query-code
# pairs at once, POOL_BLOCK pool codes wide: a block that stays in cache is searched in about
# half the time of one as wide as the pool (anywhere search, 270,000 codes; session timing).
CPU_BLOCK = 1 << 20
POOL_BLOCK = 4096


def _offsets(length: int, size: int) -> list[int]:
    """Start positions of half-overlapping windows of ``size`` that cover 0..length exactly
    (the last one ends at the border, so no pixel is left out)."""
    if size >= length:
        return [0]
    count = math.ceil((length - size) / max(1, size // 2)) + 1
    return sorted(set(np.rint(np.linspace(0, length - size, count)).astype(int).tolist()))


@dataclass(frozen=True)
class PatchGrid:
    """Square patches of ``size`` pixels whose top-left corners are ``rows`` x ``cols``."""

    size: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]

    @classmethod
    def for_image(cls, height: int, width: int, size: int | None = None, parts: int = 4,
                  smallest: int = MIN_PATCH) -> PatchGrid:
        """Patches ``size`` pixels wide, half-overlapping, covering the whole image. None:
        1/``parts`` of the shorter side, but at least ``smallest`` pixels, or a quarter of the
        side where that is less (small images), and at least MIN_PATCH."""
        side = min(height, width)
        if size is None:
            size = max(MIN_PATCH, side // parts, min(smallest, side // 4))
        if not 1 <= size <= side:
            raise ValueError(f"patch_size must be between 1 and the shorter image side "
                             f"({side}), got {size}")
        return cls(size, tuple(_offsets(height, size)), tuple(_offsets(width, size)))

    @property
    def count(self) -> int:
        """Patches per image (the patch axis of :meth:`cut`)."""
        return len(self.rows) * len(self.cols)

    def corners(self) -> list[tuple[int, int]]:
        """Top-left corners in row-major order (the patch axis of :meth:`cut`)."""
        return [(r, c) for r in self.rows for c in self.cols]

    def neighbours(self, index: int, reach: int | None) -> list[int]:
        """Patch indices within ``reach`` grid steps of patch ``index`` (None: every patch)."""
        if reach is None:
            return list(range(self.count))
        n_cols = len(self.cols)
        row, col = divmod(index, n_cols)
        return [r * n_cols + c
                for r in range(max(0, row - reach), min(len(self.rows), row + reach + 1))
                for c in range(max(0, col - reach), min(n_cols, col + reach + 1))]

    def cut(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, P, C * size * size) patches."""
        s = self.size
        return torch.stack([images[:, :, r:r + s, c:c + s] for r, c in self.corners()],
                           dim=1).flatten(2)

    def window(self) -> torch.Tensor:
        """(size, size) weights that fall off from a patch's centre (a Gaussian, sigma a
        quarter of the patch): pasted values lean on the patches centred near a pixel, so a
        map peaks where the bad patches overlap instead of in flat blocks."""
        axis = torch.arange(self.size, dtype=torch.float32) - (self.size - 1) / 2
        bump = torch.exp(-0.5 * (axis / max(self.size / 4, 0.5)) ** 2)
        return bump[:, None] * bump[None, :]

    def paste(self, patches: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        """(N, P, C * size * size) -> (N, C, H, W): every pixel the :meth:`window`-weighted
        mean of the patches that cover it. Per-patch values (N, P) become maps (N, 1, H, W)."""
        channels, height, width = shape
        n, s = patches.shape[0], self.size
        if patches.dim() == 2:
            channels = 1
            patches = patches[:, :, None].expand(n, self.count, s * s)
        weight = self.window().to(patches)
        out = patches.new_zeros(n, channels, height, width)
        cover = patches.new_zeros(1, 1, height, width)
        blocks = patches.reshape(n, self.count, channels, s, s)
        for j, (r, c) in enumerate(self.corners()):
            out[:, :, r:r + s, c:c + s] += blocks[:, j] * weight
            cover[:, :, r:r + s, c:c + s] += weight
        return out / cover

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, state: dict[str, object]) -> PatchGrid:
        return cls(int(state["size"]), tuple(int(v) for v in state["rows"]),
                   tuple(int(v) for v in state["cols"]))


def resized(images: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) images or maps brought to ``shape``: area averaging down (no aliasing),
    bilinear up; unchanged when already that size."""
    if tuple(images.shape[-2:]) == tuple(shape):
        return images
    shrinking = shape[0] <= images.shape[-2] and shape[1] <= images.shape[-1]
    if shrinking:
        return torch.nn.functional.interpolate(images, size=shape, mode="area")
    return torch.nn.functional.interpolate(images, size=shape, mode="bilinear",
                                           align_corners=False)


STD_FLOOR = 1e-3  # a flat image keeps its pixels near zero instead of exploding


def standardise(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each image to zero mean and unit variance over its pixels, so a brighter or darker
    exposure is not an anomaly by itself; returns the images, means and spreads."""
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    spread = images.std(dim=(1, 2, 3), keepdim=True).clamp_min(STD_FLOOR)
    return (images - mean) / spread, mean, spread


EDGE_SMOOTHING = 1 / 64  # the edge channel's Gaussian sigma, as a share of the shorter side


def edge_sigma(height: int, width: int) -> float:
    """Sigma in pixels of the smoothing before the edge channel's gradient: 1/64 of the shorter
    side, at least 1 pixel, so a texture's grain (tiles) does not read as edges while a crack
    a pixel or two wide (cells) still does (bench/patch_edges.py)."""
    return max(1.0, min(height, width) * EDGE_SMOOTHING)


def with_edges(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, C, H, W) standardised images -> (N, C + 1, H, W): one more channel, the gradient
    magnitude of each image (its channels averaged) smoothed at ``sigma`` pixels, itself
    standardised. A thin crack changes few pixels but many edges, so patches that carry both
    tell it from a plain patch better than intensity alone (bench/patch_edges.py)."""
    from torchvision.transforms.functional import gaussian_blur

    radius = max(1, math.ceil(3 * sigma))
    smooth = gaussian_blur(images.mean(dim=1, keepdim=True), [2 * radius + 1] * 2,
                           [float(sigma)] * 2)
    rows, cols = torch.gradient(smooth, dim=(2, 3))
    return torch.cat([images, standardise(torch.hypot(rows, cols))[0]], dim=1)


def _rounding_to_zero(d2: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """Squared distances ``d2`` set to 0 where within ROUNDING of ``norms`` (|q|^2 + |p|^2):
    codes equal but for the encoder's own rounding count as equal."""
    return d2.masked_fill_(d2 <= ROUNDING * norms, 0.0)


def _exact_squares(queries: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """(n, m) squared distances in float64 (:func:`_rounding_to_zero`)."""
    q, p = queries.double(), pool.double()
    q_sq, p_sq = q.square().sum(1, keepdim=True), p.square().sum(1)
    return _rounding_to_zero(q_sq - 2 * q @ p.T + p_sq, q_sq + p_sq)


def _pair_squares(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n,) squared distances in float64 between rows of ``a`` and ``b`` (n, K)
    (:func:`_rounding_to_zero`)."""
    a, b = a.double(), b.double()
    return _rounding_to_zero((a - b).square().sum(1), a.square().sum(1) + b.square().sum(1))


def _nearest(queries: torch.Tensor, q_sq: torch.Tensor, pool: torch.Tensor,
             pool_sq: torch.Tensor, width: int,
             squares: Callable[[int, int], torch.Tensor],
             excluded: Callable[[torch.Tensor], torch.Tensor] | None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(n,) squared distance in float64 of each query code (n, K) to its nearest pool code
    (m, K) not ``excluded`` (given query rows, their (len, m) mask), and (n,) which one.
    ``squares(first, stop)``: the float32 squared distances (n, stop - first) in product form
    to pool codes first..stop-1, excluded ones inf; taken ``width`` pool codes at a time, so on
    a CPU each block stays in cache (half the time of a block as wide as the pool). That form
    rounds differently for each number of queries multiplied at once (a folder scored in chunks
    scored up to 0.2 differently, on plain backgrounds whose codes are equal): where another
    code lies within that rounding, float64 distances decide, the first of equally near codes
    winning, and the distance returned is always the float64 one."""
    nearest = queries.new_full((len(queries),), float("inf"))
    runner_up = nearest.clone()
    where = torch.zeros(len(queries), dtype=torch.long, device=queries.device)
    for first in range(0, len(pool), width):
        d2 = squares(first, min(first + width, len(pool)))
        block_best, block_where = d2.min(dim=1)
        block_next = d2.scatter_(1, block_where[:, None], float("inf")).min(dim=1).values
        runner_up = torch.minimum(torch.maximum(nearest, block_best),
                                  torch.minimum(runner_up, block_next))
        better = block_best < nearest  # ties keep the earlier code
        where = torch.where(better, block_where + first, where)
        nearest = torch.where(better, block_best, nearest)
    slack = TIE_SLACK * (q_sq[:, 0] + pool_sq.max())
    unsure = (runner_up <= nearest + slack).nonzero()[:, 0]
    if len(unsure):
        exact = _exact_squares(queries[unsure], pool)
        if excluded is not None:
            exact.masked_fill_(excluded(unsure), float("inf"))
        where[unsure] = exact.min(dim=1).indices
    chosen = _pair_squares(queries, pool[where])
    return chosen.masked_fill_(~nearest.isfinite(), float("inf")), where


def local_nearest(queries: torch.Tensor, bank: torch.Tensor, grid: PatchGrid,
                  reach: int | None, owners: torch.Tensor | None = None,
                  budget: int = 1 << 24, neighbours: int = 1,
                  entries: torch.Tensor | None = None) -> torch.Tensor:
    """(N, P) Euclidean distance of each query patch code (N, P, K) to the nearest bank code
    (M, P, K) within ``reach`` grid steps of its position. ``owners`` (M,), when the queries
    are training images 0..N-1: the training image each bank entry was cut from; query i skips
    the entries of image i (its own patches, and their turned copies), so training images
    score as unseen ones. ``budget``: distance entries computed at once (memory). ``neighbours``:
    the mean distance to that many nearest instead (the detector uses 1; bench/patch_neighbours.py).
    ``entries``, an (N, P) integer tensor: filled with the bank entry (0..M-1) each nearest code
    belongs to (with ``neighbours`` 1)."""
    n, _, k = queries.shape
    out = queries.new_empty(n, grid.count)
    if entries is not None and neighbours != 1:
        raise ValueError("the nearest bank entries are only found with neighbours=1")
    owners = None if owners is None else owners.to(bank.device)
    if reach is None:  # every position searches the whole bank: all positions at once
        found = None if entries is None else entries.view(-1)
        _pool_nearest(queries.reshape(-1, k), grid.count, bank.reshape(-1, k), grid.count,
                      owners, budget, neighbours, out.view(-1), found)
        return out
    for j in range(grid.count):
        near = grid.neighbours(j, reach)
        found = None if entries is None else entries[:, j]  # views: filled in place
        _pool_nearest(queries[:, j], 1, bank[:, near].reshape(-1, k), len(near), owners,
                      budget, neighbours, out[:, j], found)
    return out


def _pool_nearest(rows: torch.Tensor, per_image: int, pool: torch.Tensor, per_entry: int,
                  owners: torch.Tensor | None, budget: int, neighbours: int,
                  out: torch.Tensor, entries: torch.Tensor | None) -> None:
    """Fill ``out`` (R,) with the distance of each query code ``rows`` (R, K), ``per_image``
    consecutive rows from each query image, to its nearest code in ``pool`` (``per_entry``
    consecutive rows from each bank entry), or the mean to its ``neighbours`` nearest;
    ``entries`` (R,), when given, with the bank entry each nearest code belongs to. With
    ``owners``, a query image skips the bank entries of its own (see local_nearest)."""
    pool_sq = pool.square().sum(1)
    pool_owner = None if owners is None else owners.repeat_interleave(per_entry)
    cpu = pool.device.type == "cpu"
    at_once = min(budget, CPU_BLOCK) if cpu else budget
    width = len(pool) if neighbours != 1 else max(1, min(len(pool), at_once,
                                                        POOL_BLOCK if cpu else len(pool)))
    step = max(1, at_once // width)
    for start in range(0, len(rows), step):
        q = rows[start:start + step]
        q_sq = q.square().sum(1, keepdim=True)
        image = None if pool_owner is None else torch.arange(
            start, start + len(q), device=pool.device) // per_image

        def squares(first: int, stop: int, q: torch.Tensor = q, q_sq: torch.Tensor = q_sq,
                    image: torch.Tensor | None = image) -> torch.Tensor:
            d2 = torch.addmm(pool_sq[first:stop], q, pool[first:stop].T, alpha=-2).add_(q_sq)
            if image is not None:
                owner = pool_owner[first:stop]
                if per_image > 1:  # few images in the rows: their own codes column by column
                    _skip_own(d2, image, owner)
                else:
                    d2.masked_fill_(owner[None, :] == image[:, None], float("inf"))
            return d2

        if neighbours != 1:
            nearest = squares(0, len(pool)).topk(min(neighbours, len(pool)), dim=1,
                                                 largest=False).values
            out[start:start + len(q)] = nearest.clamp_min(0).sqrt().mean(dim=1)
            continue
        mine = None if image is None else (
            lambda chosen, image=image: pool_owner[None, :] == image[chosen][:, None])
        nearest, where = _nearest(q, q_sq, pool, pool_sq, width, squares, mine)
        if entries is not None:  # pool row r is bank entry r // per_entry
            entries[start:start + len(q)] = (where // per_entry).to(entries)
        out[start:start + len(q)] = nearest.sqrt().to(out)


def _skip_own(d2: torch.Tensor, image: torch.Tensor, pool_owner: torch.Tensor) -> None:
    """Set to inf the squared distances ``d2`` (n, m) of each query row to the pool codes of
    its own image (``image`` (n,), ascending; ``pool_owner`` (m,)): column by column for each
    image in the rows, not with an (n, m) mask, which costs as much as the search's minimum
    where the rows are a few images' many patches (the search anywhere)."""
    owners, counts = torch.unique_consecutive(image, return_counts=True)
    start = 0
    for owner, count in zip(owners.tolist(), counts.tolist(), strict=True):
        own = (pool_owner == owner).nonzero()[:, 0]
        d2[start:start + count].index_fill_(1, own, float("inf"))
        start += count


def own_spread(codes: torch.Tensor, budget: int = 1 << 24) -> torch.Tensor:
    """(N,) how grainy each image is by itself: the median, over its patch codes (N, P, K), of
    the distance from each code to the nearest other code of the same image (inf for an image
    of one patch). No other image takes part, so it means the same with 54 training images as
    with 1,000 (bench/patch_texture.py). ``budget``: distance entries computed at once."""
    n, p, _ = codes.shape
    out = codes.new_empty(n)
    step = max(1, budget // max(1, p * p))
    for start in range(0, n, step):
        distances = torch.cdist(codes[start:start + step], codes[start:start + step])
        distances.diagonal(dim1=1, dim2=2).fill_(float("inf"))
        out[start:start + step] = distances.min(dim=2).values.median(dim=1).values
    return out


def position_spread(distances: torch.Tensor, floor: float = 0.01,
                    min_images: int = MIN_SPREAD_IMAGES
                    ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """How much normal patches vary at each grid position: the standard deviation over the
    training images of their patches' distances to the other images' codes (N, P -> P), and
    the same with each image left out in turn (N, P), to scale the training images' own
    distances without their own influence (which would make them look more normal than new
    images, and the threshold too low). Floored at ``floor`` times the mean spread, so a
    position that never varies cannot divide by zero. None below ``min_images`` (at least 3):
    a spread from a handful of images is too noisy to divide by (from 3 synthetic images, the
    threshold came out 4 times the scores of new normal images)."""
    n = len(distances)
    if n < max(3, min_images) or not bool(torch.isfinite(distances).all()):
        return None
    d = distances.double()
    total, squares = d.sum(dim=0), d.square().sum(dim=0)
    spread = ((squares - total.square() / n) / (n - 1)).clamp_min(0).sqrt()
    level = float(spread.mean())
    if not level > 0:
        return None
    rest, rest_squares = total - d, squares - d.square()
    left_out = ((rest_squares - rest.square() / (n - 1)) / (n - 2)).clamp_min(0).sqrt()
    return (spread.clamp_min(floor * level).float(),
            left_out.clamp_min(floor * level).float())


def turned_copies(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (T * N, C, H, W): the copies of each image turned and mirrored that keep
    its shape, copy by copy (T = 8 for square images: four quarter turns, each mirrored; 4
    otherwise: as is, upside down, and both mirrored)."""
    return torch.cat([turned_copy(images, t) for t in range(copy_count(images))])


def copy_count(images: torch.Tensor) -> int:
    """How many turned and mirrored copies of (N, C, H, W) images keep their shape (8 square,
    4 otherwise), the first being the images as they are."""
    return 8 if images.shape[-1] == images.shape[-2] else 4


def turned_copy(images: torch.Tensor, copy: int) -> torch.Tensor:
    """Copy number ``copy`` of :func:`turned_copies` alone, so the copies can be made one at a
    time: the quarter turns (half turns if not square) in order, then the same mirrored; copy 0
    is ``images`` themselves."""
    if copy == 0:
        return images
    turns = copy_count(images) // 2
    turned = torch.rot90(images, (copy % turns) * (4 // turns), dims=(2, 3))
    return turned.flip(-1) if copy >= turns else turned


TURN_COST_SIDE = 32  # pixels: the thumbnails the orientation test compares (shorter side)
TURN_COST_IMAGES = 200  # training images it looks at, at most (a seeded sample)
# Below this, turning a training image barely moves it away from the others: the set already
# holds its parts in every orientation. Measured (bench/patch_turns.py, three samples each):
# 0.98-1.09 on ELPV cells, magnetic tiles and MNIST digits turned at random; 1.45-2.35 on the
# cells and tiles as photographed (54 to 1,000 training images), 1.23-3.3 on upright digits
# (the zeros lowest); 1.15 is the geometric middle of the gap (1.09, 1.23).
ORIENTATION_FREE_BELOW = 1.15


CostSearch = tuple[torch.Tensor, PatchGrid, torch.Tensor, torch.Tensor, torch.Tensor]


def _cost_search(images: torch.Tensor, max_images: int, seed: int) -> CostSearch | None:
    """What the label-free layout tests compare: standardised thumbnails of (a seeded sample
    of) the training images, their grid, patches and owners, and the distance of each of their
    patches to the nearest patch of another image within a grid step, (N, P) (None: fewer
    than two images, or images that repeat each other)."""
    if len(images) < 2:
        return None
    if len(images) > max_images:
        pick = np.random.default_rng(seed).choice(len(images), max_images, replace=False)
        images = images[torch.from_numpy(np.sort(pick))]
    thumbs = standardise(images.float())[0]
    thumbs = resized(thumbs, working_shape(*thumbs.shape[2:], TURN_COST_SIDE))
    grid = PatchGrid.for_image(*thumbs.shape[2:])
    bank = grid.cut(thumbs)
    owners = torch.arange(len(thumbs))
    as_is = local_nearest(bank, bank, grid, 1, owners=owners)
    return (thumbs, grid, bank, owners, as_is) if float(as_is.median()) > 0 else None


def turn_cost(images: torch.Tensor, max_images: int = TURN_COST_IMAGES, seed: int = 0) -> float:
    """How much farther a training image lies from the other training images when it is
    turned (a quarter turn; half a turn for images that are not square) than as it is: the
    median distance of its patches to the nearest patch of another image within a grid step,
    turned over as is, on standardised thumbnails. About 1: the parts already lie in every
    orientation; well above 1: they are photographed aligned. Label-free and cheap (seconds)."""
    return LayoutCosts(images, max_images, seed).turn()


def _turn_cost(found: CostSearch | None) -> float:
    """:func:`turn_cost` from the layout search of the training images."""
    if found is None:  # nothing to compare, or the images repeat each other
        return float("inf")
    thumbs, grid, bank, owners, as_is = found
    quarters = 1 if thumbs.shape[-1] == thumbs.shape[-2] else 2
    turned = torch.rot90(thumbs, quarters, dims=(2, 3))
    return (float(local_nearest(grid.cut(turned), bank, grid, 1, owners=owners).median())
            / float(as_is.median()))


# Below this, a patch matches the other training images as well half the image away as at its
# own place: the images are not aligned (crops of a surface or a texture, parts photographed at
# any position), so a place-bound search and each place's normal spread mean nothing there.
# Measured (bench/unaligned.py, "place cost"): 0.99-1.05 on photographed brick, gravel and
# grass crops and on ELPV cells and magnetic tiles moved round at random; 1.61-22 on every
# aligned set (ELPV cells and magnetic tiles at two sizes each, from 54 images or all, turned
# at random but in place, every MNIST digit and Fashion-MNIST class); 1.30 is the geometric
# middle of the gap (1.05, 1.61).
PLACE_FREE_BELOW = 1.30


def place_cost(images: torch.Tensor, max_images: int = TURN_COST_IMAGES, seed: int = 0) -> float:
    """How much farther a training image's patches lie from the other training images' when
    each is compared with the patches half the image away (the grid moved round by half its
    rows and columns) than at its own place, within a grid step, on standardised thumbnails:
    per place the ratio of the median distances, then their geometric mean over the places
    (so plain places next to busy ones still count). About 1: the images are not aligned;
    well above 1: each part has its place. Label-free and cheap (a second or two)."""
    return LayoutCosts(images, max_images, seed).place()


def _place_cost(found: CostSearch | None) -> float:
    """:func:`place_cost` from the layout search of the training images."""
    if found is None:
        return float("inf")
    _, grid, bank, owners, as_is = found
    if len(grid.rows) < 2 and len(grid.cols) < 2:  # one place: nothing to move it to
        return float("inf")
    places = torch.arange(grid.count).view(len(grid.rows), len(grid.cols))
    moved = torch.roll(places, (len(grid.rows) // 2, len(grid.cols) // 2), dims=(0, 1))
    moved_away = local_nearest(bank, bank[:, moved.flatten()], grid, 1, owners=owners)
    ratios = moved_away.median(dim=0).values / as_is.median(dim=0).values.clamp(min=1e-12)
    return float(ratios.clamp(min=1e-12).log().mean().exp())


class LayoutCosts:
    """The place and turn costs of one set of training images from one shared search, made
    on first use: a fit that measures both searches the images once."""

    def __init__(self, images: torch.Tensor, max_images: int = TURN_COST_IMAGES,
                 seed: int = 0) -> None:
        self.images, self.max_images, self.seed = images, max_images, seed

    @functools.cached_property
    def _found(self) -> CostSearch | None:
        return _cost_search(self.images, self.max_images, self.seed)

    def place(self) -> float:
        """:func:`place_cost` of the images."""
        return _place_cost(self._found)

    def turn(self) -> float:
        """:func:`turn_cost` of the images."""
        return _turn_cost(self._found)

# Pixels: the shorter side of the thumbnail that stands for the whole image beside its patches
# (PatchDetector's ``whole_image``; bench/whole_thumbnail.py).
WHOLE_SIDE = 7
ONE_PATCH = PatchGrid(1, (0,), (0,))  # a grid of one patch: a whole thumbnail is searched as one


def whole_thumbnails(images: torch.Tensor, side: int = WHOLE_SIDE) -> torch.Tensor:
    """(N, C, H, W) standardised images -> (N, D) thumbnails: each shrunk by area averaging,
    aspect kept, until its shorter side is ``side`` pixels, and flattened."""
    return resized(images, working_shape(*images.shape[2:], side)).flatten(1)


def whole_nearest(queries: torch.Tensor, bank: torch.Tensor,
                  owners: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) distance of each thumbnail (N, D) to the nearest training thumbnail (M, D);
    ``owners``: as for :func:`local_nearest` (a training image skips its own)."""
    return local_nearest(queries[:, None], bank[:, None], ONE_PATCH, 0, owners=owners)[:, 0]


def top_mean(values: torch.Tensor, k: int) -> torch.Tensor:
    """Mean of each row's ``k`` largest values: a defect covers a few patches, not one."""
    return values.topk(min(k, values.shape[1]), dim=1).values.mean(dim=1)
