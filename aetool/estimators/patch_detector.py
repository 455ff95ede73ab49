"""PatchDetector: local defects in images, found by comparing each patch's autoencoder code with
the codes of the training patches at the same place (PatchCore's idea on aetool's own encoder,
no pretrained weights). On real defect photographs it beat the whole-image detector and every
pixel peer (bench/real_defects.py), and on whole-object images from 12 px on (one-class MNIST)
too; on the smallest images with few training images the whole-image detector stays better, so
``aetool fit`` picks by image size (see docs/images.md)."""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import OutlierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from aetool.bundle import load_bundle_parts, manifest_errors, save_bundle
from aetool.data.images import working_shape
from aetool.defaults import (
    CONV_PATCHES_BELOW,
    PATCH_DETECTION_DEFAULTS,
    PATCH_MAX_SHORT_SIDE,
    PATCH_SIZE_RULE,
    RESIDUAL_FLOOR,
    RESIDUAL_OVER_EDGES,
    RESIDUAL_WORST_SHARE,
    TOP_K,
    WHOLE_WEIGHT,
)
from aetool.device import resolve_device
from aetool.errors import BundleError, DataError, SettingError
from aetool.estimators.base import AutoencoderEstimator
from aetool.estimators.patch_scorer import (
    PatchScorer,
    auto_texture_power,
    floor_bank,
    floored_levels,
    residual_floors,
    residual_weight,
)
from aetool.estimators.saved import (
    DetectorScoring,
    check_detector_bundle,
    restore_detector_state,
)
from aetool.patches import (
    MIN_SPREAD_IMAGES,
    ORIENTATION_FREE_BELOW,
    PLACE_FREE_BELOW,
    WHOLE_SIDE,
    LayoutCosts,
    PatchGrid,
    copy_count,
    edge_sigma,
    local_nearest,
    own_spread,
    position_spread,
    resized,
    standardise,
    top_mean,
    turned_copies,
    turned_copy,
    whole_nearest,
    whole_thumbnails,
)
from aetool.plugins import get_variant
from aetool.scoring import code_outputs, codes_and_residuals, reconstructions, run_batches
from aetool.thresholds import (
    check_threshold_settings,
    fitted_threshold,
    training_quantiles,
)
from aetool.training import progress
from aetool.variants.base import CONDITIONAL, IMAGE, TABULAR

# Patch values (floats) cut and encoded at once when scoring: 64M, 256 MB (64 colour images of
# 144 patches at 256 px, 2,300 grey ELPV cells at 64 px); more images are taken in turn.
PATCH_VALUES_AT_ONCE = 1 << 26
BANK = "patch_bank"  # the extra tensor of the bundle: training codes (N, P, K)
LEVELS = "patch_levels"  # and each training image's texture level (N,), when it has them
SELF_MATCH = ("some images match a training image exactly (anomaly score 0): the patch detector "
              "keeps its training images, so scored again they find themselves; to score the "
              "images it was fitted on use `aetool detect` (or training_details() in Python), "
              "which scores each without itself")
WHOLE = "whole_thumbnails"  # and the training images' whole-image thumbnails (N, D), when used
# Training scores from unseen turned copies that set the threshold of a fit that learnt turned
# copies: its 0.9 quantile then flags new normal images at 0.1 +- about 0.01 (binomial).
UNSEEN_SCORES = 1000


def _is_number(value: Any) -> bool:
    """Whether a setting's value is a real number (an int or float, not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class PatchDetector(OutlierMixin, AutoencoderEstimator, DetectorScoring):
    """Image anomaly detector for local defects (a crack, a spot) learnt from normal images.

    Each image is standardised (zero mean, unit variance), given an edge channel (``edges``:
    the gradient magnitude of the image smoothed at 1/64 of its shorter side, at least a
    pixel; a thin crack moves few intensities but many edges), cut into half-overlapping
    patches (``patch_size`` pixels, None: a tenth of the shorter side, at least 7 px (or a
    quarter of a side under 28 px), where each patch is compared near its place, an eighth, at
    least 16 px (or a quarter of a side under 64 px), where it is searched anywhere;
    PATCH_SIZE_RULE) and an autoencoder
    (``variant``) is trained on the training patches, each a small image of its own (fully
    connected variants flatten it); "auto" (default): ``conv`` (two strided convolutions, a
    code of 16) below CONV_PATCHES_BELOW training patches, where its shared weights learn few
    patches better, else ``ae`` (256 -> 16), as good there and three times faster. A
    test patch's score is the distance from its code to the nearest training code within
    ``reach`` grid steps of its position (None: anywhere; "auto" (default): 1 when the
    training images are aligned, anywhere when they are not, by patches.place_cost below
    PLACE_FREE_BELOW: crops of a surface, parts at any position); an image's score is the mean of its
    ``top_k`` worst patches, and its map shows how far each patch lies beyond a normal patch
    at its place (0: not at all), so edges and textures do not glow. Images whose shorter
    side is above ``max_short_side`` pixels are scaled down to it first (aspect kept; None:
    never), since the cost grows with the square of the side and the score barely with it;
    maps come back at the input size. ``turns``: also learn every training image turned and
    mirrored (8 copies of a square image, 4 otherwise), for parts that lie in any orientation
    (6-8x the fit time; measured on turned copies of ELPV cells and tiles: +0.04 to +0.05
    ROC-AUC); "auto" (default) does so when turning a training image barely moves it away
    from the others (patches.turn_cost below ORIENTATION_FREE_BELOW), that is when the
    training set already holds its parts in every orientation, and then trains the
    autoencoder on the original images alone (they show it every orientation already), which
    keeps the fit near its single-copy time (and takes the threshold from the turned copies,
    which the autoencoder never saw). Training images are
    scored without their own patches, so the threshold (``contamination`` or ``threshold``)
    and probabilities mean what they do for :class:`AutoencoderDetector`, whose
    scikit-learn conventions it shares (``score_samples``: lower = more abnormal).
    ``scale_positions``: divide each patch's distance by how much the training patches'
    distances vary at its position (measured with every training image left out of the search
    in turn), so a place where normal images differ a lot, an edge or a texture, does not
    outshout a small defect on a plain one; +0.06 ROC-AUC on magnetic tiles, +0.005 or less
    either way on ELPV cells (bench/position_scale.py); "auto" (default): on for aligned
    training images, off for unaligned ones, where a place has no normal spread of its own
    (bench/unaligned.py). ``top_k`` 8 and ``whole_weight`` 0.25 (below): the pooling with
    the smallest worst loss over 25 cases (bench/patch_pooling.py, aetool.defaults.TOP_K).
    ``texture_power``: an image's score is divided by the texture level of the training images
    its patches matched (how far each one's patch codes lie from their nearest neighbour
    within the same image), to this power, so a grainy normal image (a polycrystalline cell),
    whose every patch lies far from the others, does not pass for a defective one; 0 turns it
    off; "auto" (default): :func:`auto_texture_power`, 0.25 below TEXTURE_FROM_IMAGES
    training images and 0.5 from there, one step lower (off, 0.25) for sets learnt turned
    (bench/patch_texture.py). ``whole_image``: one more distance beside the patches', so a
    wrong overall shape whose parts are each normal (a sandal cut like a boot) scores too: a
    thumbnail of the standardised image (shorter side patches.WHOLE_SIDE pixels) against the
    nearest training thumbnail, scaled by its normal spread like a position's (it needs that
    scaling: "auto" (default) leaves it out with ``scale_positions`` off or below
    MIN_SPREAD_IMAGES training images, True the same but says so). It always counts: the
    image score is the mean of the ``top_k`` worst patches' distances and its, weighted
    1 - ``whole_weight`` and ``whole_weight``. On by default: of six thumbnail and pooling
    forms measured on 24 cases (real defects, every MNIST digit and Fashion-MNIST class), two
    lost nothing anywhere and this one had the better mean; real defects 0.847 -> 0.854,
    Fashion-MNIST 0.916 -> 0.925, MNIST 0.969 -> 0.982 (bench/whole_thumbnail.py).
    ``residual``: each patch's code carries one more coordinate, the patch's reconstruction
    error (the root of the mean of its ``residual_share`` worst squared errors: 1 is the RMS
    error; the default, a tenth, keeps a thin scratch from being averaged into the texture
    around it, aetool.defaults.RESIDUAL_WORST_SHARE), weighted to vary over the training
    patches as much as a code coordinate does on average (:func:`residual_weight`): a defect
    the encoder maps near a normal code (a fine texture the 16 numbers leave out) still
    stands out, since the decoder cannot draw it. On by default (True; "auto", the earlier
    default, now means the same): over 19 cases its worst loss is 0.024 ROC-AUC (gravel, near
    chance; 0.008 on MNIST digits), leaving it out loses 0.21 on a photographed striped
    surface with thin scratches and colour stains (and 0.10 on crops of brick;
    bench/patch_residual.py). ``residual_edges``: whether that error counts the edge
    channel's values too; off by default, since the decoder draws a grain's edges worst, so
    the error over them glows on every textured patch (over the intensities alone, 25 cases:
    a striped surface 0.913 -> 0.948, brick 0.883 -> 0.918, worst loss 0.006;
    bench/residual_channels.py). ``residual_floor``: a patch's error counts no lower than
    this quantile of the training patches' errors at its place (of all of them, where
    searched anywhere), in the bank and when scoring, so an image drawn more smoothly than the
    training images (another camera, JPEG) does not stand out for being reconstructed too
    well; 0.5 (default), the median: over 25 cases worst loss 0.006 against 0.008 for 0 (the
    lowest) and None (not floored), normal JPEG images 3.4 (None) -> 1.3 (0) -> 1.0 times the
    threshold, resampled 3.7 -> 2.9 -> 1.7 (bench/residual_floor.py).
    """

    def __init__(
        self,
        variant: Any = "auto",
        contamination: float | str = 0.1,
        threshold: float | None = None,
        patch_size: int | None = None,
        reach: int | str | None = "auto",
        top_k: int = TOP_K,
        whole_weight: float = WHOLE_WEIGHT,
        max_short_side: int | None = PATCH_MAX_SHORT_SIDE,
        turns: bool | str = "auto",
        scale_positions: bool | str = "auto",
        edges: bool = True,
        texture_power: float | str = "auto",
        whole_image: bool | str = "auto",
        residual: bool | str = True,
        residual_share: float = RESIDUAL_WORST_SHARE,
        residual_edges: bool = RESIDUAL_OVER_EDGES,
        residual_floor: float | None = RESIDUAL_FLOOR,
        code_size: int | None = None,
        variant_params: dict[str, Any] | None = None,
        epochs: int | None = None,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        max_steps: int | None = None,
        patience: int = 8,
        random_state: int | None = 0,
        device: str = "auto",
        verbose: bool = False,
    ) -> None:
        super().__init__(variant, variant_params, epochs, batch_size, learning_rate, max_steps,
                         patience, random_state, device, verbose)
        self.contamination = contamination
        self.threshold = threshold
        self.patch_size = patch_size
        self.reach = reach
        self.top_k = top_k
        self.whole_weight = whole_weight
        self.max_short_side = max_short_side
        self.turns = turns
        self.scale_positions = scale_positions
        self.edges = edges
        self.texture_power = texture_power
        self.whole_image = whole_image
        self.residual = residual
        self.residual_share = residual_share
        self.residual_edges = residual_edges
        self.residual_floor = residual_floor
        self.code_size = code_size

    KIND = "patches"
    DEFAULT_EPOCHS = 20

    def _task_defaults(self, images: bool) -> dict[str, dict[str, Any]]:
        """The patch autoencoder's settings (it sees patches, never whole images)."""
        return PATCH_DETECTION_DEFAULTS

    @staticmethod
    def _check_variant(variant: type) -> None:
        if CONDITIONAL in variant.capabilities or not {TABULAR, IMAGE} & variant.capabilities:
            raise SettingError(f"variant '{variant.name}' cannot learn patches; the patch "
                               "detector trains an unconditional variant that takes images "
                               "or vectors (conv, ae, dae, sparse, contractive, vae)")

    def check_settings(self) -> None:
        """Refuse settings the detector cannot work with, naming them, before any image is
        read (``fit`` calls it; ``aetool fit`` too, before it reads a folder at a size the
        settings choose)."""
        if self.variant != "auto":
            self._check_variant(self._variant_class())
        if self.reach != "auto" and self.reach is not None and (
                isinstance(self.reach, (bool, str)) or int(self.reach) < 0):
            raise SettingError(f"reach must be auto, 0 or more grid steps, or none "
                               f"(anywhere), got '{self.reach}'")
        if self.max_short_side is not None and int(self.max_short_side) < 8:
            raise SettingError(f"max_short_side must be at least 8 pixels (None: never scale "
                               f"down), got {self.max_short_side}")
        if int(self.top_k) < 1:
            raise SettingError(f"top_k must be at least 1 patch, got {self.top_k}")
        weight = self.whole_weight
        if not _is_number(weight) or not 0 < weight < 1:
            raise SettingError(f"whole_weight must be above 0 and below 1 (the thumbnail's "
                               f"share of an image's score), got '{weight}'")
        power = self.texture_power
        if power != "auto" and not (_is_number(power) and power >= 0):
            raise SettingError(f"texture_power must be auto, 0 (off) or more, got "
                               f"'{self.texture_power}'")
        for name in ("turns", "whole_image", "scale_positions", "residual"):
            if getattr(self, name) not in (True, False, "auto"):
                raise SettingError(f"{name} must be true, false or auto, got "
                                   f"'{getattr(self, name)}'")
        share = self.residual_share
        if not _is_number(share) or not 0 < share <= 1:
            raise SettingError(f"residual_share must be above 0 and at most 1 (the share of "
                               f"each patch's worst-drawn values), got '{share}'")
        if not isinstance(self.residual_edges, bool):
            raise SettingError(f"residual_edges must be true or false, got "
                               f"'{self.residual_edges}'")
        floor = self.residual_floor
        if floor is not None and (not _is_number(floor) or not 0 <= floor < 1):
            raise SettingError(f"residual_floor must be at least 0 and below 1 (a quantile of "
                               f"the training patches' errors; none: not floored), got '{floor}'")
        check_threshold_settings(self.threshold, self.contamination)

    def fit(self, X: Any, y: Any = None) -> PatchDetector:
        """Train the patch autoencoder on the normal images ``X`` (N, C, H, W) or (N, H, W)
        and keep their patch codes (``y`` is ignored)."""
        self.check_settings()
        matrix, _ = self._prepare(X, reset=True)
        side = None if self.max_short_side is None else int(self.max_short_side)
        shape = working_shape(*matrix.shape[2:], side)
        layout = LayoutCosts(torch.from_numpy(matrix), seed=self.random_state or 0)
        reach, self.scales_positions_, cost = self._search_layout(layout)
        parts, smallest = PATCH_SIZE_RULE["anywhere" if reach is None else "placed"]
        try:
            grid = PatchGrid.for_image(*shape, size=self.patch_size, parts=parts,
                                       smallest=smallest)
        except ValueError as exc:
            raise SettingError(str(exc)) from None
        variant = self._patch_variant(len(matrix) * grid.count)
        residual = self._uses_residual()
        self.scorer_ = PatchScorer(grid, None, int(self.top_k),
                                   work_shape=None if shape == matrix.shape[2:] else shape,
                                   edge_sigma=edge_sigma(*shape) if self.edges else None,
                                   residual_share=float(self.residual_share)
                                   if residual else None,
                                   residual_channels=matrix.shape[1] if residual and self.edges
                                   and not self.residual_edges else None)
        self.scorer_.reach, self.scorer_.place_cost = reach, cost
        work = self.scorer_.patch_input(matrix)
        # copy by copy (patches.turned_copies): bank entry t*N + i is from image i
        self.scorer_.copies = copy_count(work) if self._learns_turns(layout) else 1
        self.scorer_.whole_side = WHOLE_SIDE if self._uses_whole(len(matrix)) else None
        self.scorer_.whole_weight = None if self.scorer_.whole_side is None \
            else float(self.whole_weight)
        self.whole_bank_ = None if self.scorer_.whole_side is None else torch.cat(
            [self._thumbnails(turned_copy(work, t), matrix.shape[1])
             for t in range(self.scorer_.copies)])
        # "auto" turns only when the images already lie every way up, so the originals show the
        # autoencoder every orientation: it learns from them alone, as well and 6-8x faster
        # (bench/patch_turns.py). turns=True may mean aligned training images and turned test
        # parts, so then it learns from every copy.
        every_copy = self.turns != "auto" and self.scorer_.copies > 1
        patches = grid.cut(turned_copies(work) if every_copy else work)
        self._fit_model(self._model_rows(patches, self._patch_shape(patches)), variant)
        if every_copy or self.scorer_.copies == 1:
            self.bank_ = self._patch_codes(patches, learn_residual=residual)
        else:  # the copies made, cut and encoded one at a time
            self.bank_ = self._bank_codes(work, residual)
        del patches
        if residual and self.residual_floor is not None:  # before the training search
            self.scorer_.residual_floor = float(self.residual_floor)
            floor_bank(self.bank_, self.scorer_.residual_floor, self.scorer_.reach is None)
        distances, entries = self._training_search(len(matrix))
        self._learn_textures(len(matrix))
        # each training image's distances without its own patches, for training_details: as
        # found, its own patches would match exactly and every training image score 0
        self._own_search = (distances, entries, tuple(matrix.shape[2:]))
        if self.turns == "auto" and self.scorer_.copies > 1:
            distances, entries = self._unseen_copy_search(len(matrix))
        scores = self._image_scores(distances, entries)
        self.scorer_.train_quantiles = training_quantiles(scores)
        self.threshold_ = fitted_threshold(scores, self.threshold, self.contamination)
        self.offset_ = -self.threshold_
        return self

    # -- internals -------------------------------------------------------------------------------
    def _patch_variant(self, n_patches: int) -> type:
        """The variant to train: as given, or for "auto" conv below CONV_PATCHES_BELOW
        training patches (of the original images), else ae (aetool.defaults)."""
        if self.variant != "auto":
            return self._variant_class()
        return get_variant("conv" if n_patches < CONV_PATCHES_BELOW else "ae")

    def _uses_whole(self, n_images: int) -> bool:
        """Whether the whole image's thumbnail is one more distance: ``whole_image`` (True or
        "auto"), where the distances are scaled by their normal spread (the thumbnail's is in
        those units); True says so when they are not."""
        if self.whole_image is False:
            return False
        if not self.scales_positions_:
            if self.whole_image is True:
                warnings.warn("whole_image is left out: its distance is only comparable with "
                              "the patches' once both are scaled (scale_positions)",
                              UserWarning, stacklevel=3)
            return False
        return n_images >= MIN_SPREAD_IMAGES  # else the spread warning says why

    def _uses_residual(self) -> bool:
        """Whether each code carries its patch's reconstruction error: ``residual``, where
        "auto" (the earlier default, kept for settings written then) is on as True is."""
        return self.residual in (True, "auto")

    def _thumbnails(self, work: torch.Tensor, channels: int) -> torch.Tensor | None:
        """(N, D) whole-image thumbnails of standardised images ``work`` (their first
        ``channels``: the edge channel is left out), or None when the detector uses none."""
        side = self.scorer_.whole_side
        return None if side is None else whole_thumbnails(work[:, :channels], side)

    def _search_layout(self, layout: LayoutCosts) -> tuple[int | None, bool, float | None]:
        """(reach, whether to scale by each position's spread, the place cost if measured):
        as given, or for "auto" by whether the training images are aligned (place cost):
        within a grid step, scaled, when each part has its place; anywhere, unscaled, when it
        has none (crops of a surface, parts at any position)."""
        aligned, cost = True, None
        if "auto" in (self.reach, self.scale_positions):
            cost = layout.place()
            aligned = cost >= PLACE_FREE_BELOW
        reach = (1 if aligned else None) if self.reach == "auto" else self.reach
        scale = aligned if self.scale_positions == "auto" else bool(self.scale_positions)
        return None if reach is None else int(reach), scale, cost

    def _learns_turns(self, layout: LayoutCosts) -> bool:
        """Whether to learn turned copies: ``turns`` as given, or for "auto" whether the
        training images already lie in every orientation (kept as the scorer's turn_cost)."""
        if self.turns != "auto":
            return bool(self.turns)
        self.scorer_.turn_cost = layout.turn()
        return self.scorer_.turn_cost < ORIENTATION_FREE_BELOW

    def _prepare(self, X: Any, reset: bool) -> tuple[np.ndarray, Any]:
        """Images as the model's float32 input; anything else is refused in one line."""
        if np.ndim(X) < 3:
            raise DataError(f"PatchDetector needs images (N, H, W) or (N, C, H, W), got an "
                            f"array of shape {np.shape(X)}; for tables use "
                            "AutoencoderDetector")
        return self._prepare_images(np.asarray(X), reset)

    def _patch_shape(self, patches: torch.Tensor) -> tuple[int, int, int]:
        """(C, size, size): one patch as the small image the autoencoder learns."""
        size = self.scorer_.grid.size
        return (patches.shape[2] // (size * size), size, size)

    def _model_rows(self, patches: torch.Tensor, shape: tuple[int, ...] | None = None
                    ) -> np.ndarray:
        """(N, P, D) patches -> (N * P, *shape): the rows the patch autoencoder takes (``shape``
        None: the fitted model's input shape), small images (bundles fitted before the conv
        default take them flat, shape (D,))."""
        shape = tuple(self.model_.input_shape) if shape is None else shape
        return np.ascontiguousarray(patches.reshape(-1, *shape).numpy())

    def _patch_codes(self, patches: torch.Tensor, learn_residual: bool = False) -> torch.Tensor:
        """(N, P, D) patches -> (N, P, K) codes, and when the detector has a residual weight
        one more coordinate: the patch's reconstruction error times it, floored as
        ``residual_floor`` says. ``learn_residual`` (training patches): set that weight from
        these patches first, floor nothing."""
        carries = learn_residual or self.scorer_.residual_weight is not None
        codes, residuals = self._encoded(patches, carries)
        codes = self._carrying(codes, residuals, learn_residual).view(*patches.shape[:2], -1)
        if self.scorer_.residual_floor is not None and not learn_residual:
            floors = residual_floors(self.bank_, anywhere=self.scorer_.reach is None)
            codes[..., -1] = torch.maximum(codes[..., -1], floors)
        return codes

    def _bank_codes(self, work: torch.Tensor, learn_residual: bool) -> torch.Tensor:
        """(T * N, P, K) codes of the training images ``work`` (N, C, H, W) and their T - 1
        turned copies, as :meth:`_patch_codes` finds them, each copy made, cut and encoded on
        its own: every copy's patches at once hold each pixel about four times over in every
        copy (8 GB for 245 colour images at 256 px turned 8 ways)."""
        grid, copies = self.scorer_.grid, self.scorer_.copies
        carries = learn_residual or self.scorer_.residual_weight is not None
        found = [self._encoded(grid.cut(turned_copy(work, t)), carries) for t in range(copies)]
        codes = torch.cat([c for c, _ in found])
        residuals = torch.cat([r for _, r in found]) if carries else None
        return self._carrying(codes, residuals, learn_residual).view(
            copies * len(work), grid.count, -1)

    def _encoded(self, patches: torch.Tensor, residuals: bool
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(N, P, D) patches -> their (N * P, K) codes and, with ``residuals``, their (N * P,)
        reconstruction errors."""
        out = run_batches(self.model_, self._model_rows(patches),
                          partial(codes_and_residuals,
                                  worst_share=self.scorer_.residual_share or 1.0,
                                  values=self.scorer_.residual_values())
                          if residuals else code_outputs,
                          **self._inference())
        return (torch.from_numpy(out["codes"]),
                torch.from_numpy(out["residuals"]) if residuals else None)

    def _carrying(self, codes: torch.Tensor, residuals: torch.Tensor | None,
                  learn_residual: bool) -> torch.Tensor:
        """Codes (M, K) with the weighted reconstruction error as one more coordinate when
        ``residuals`` are given (``learn_residual``: the weight is set from them first)."""
        if residuals is None:
            return codes
        if learn_residual:
            self.scorer_.residual_weight = residual_weight(codes, residuals)
        return torch.cat([codes, self.scorer_.residual_weight * residuals[:, None]], dim=1)

    def _image_codes(self, matrix: np.ndarray) -> torch.Tensor:
        """(N, P, K) patch codes of images already encoded (N, C, H, W), cut as in training."""
        return self._image_views(matrix)[0]

    def _image_views(self, matrix: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What :meth:`_search` compares of images already encoded (N, C, H, W): their (N, P,
        K) patch codes, cut as in training, and their (N, D) whole-image thumbnails (None
        when the detector uses none). Cut and encoded a few images at a time, at most
        PATCH_VALUES_AT_ONCE patch values: a folder's patches at once hold each pixel about
        four times over (2 GB for 512 colour images at 256 px)."""
        grid, channels = self.scorer_.grid, matrix.shape[1]
        per_image = grid.count * int(np.prod(self.model_.input_shape))  # values of its patches
        step = max(1, PATCH_VALUES_AT_ONCE // per_image)
        views = []
        for start in range(0, max(1, len(matrix)), step):
            work = self.scorer_.patch_input(matrix[start:start + step])
            views.append((self._patch_codes(grid.cut(work)), self._thumbnails(work, channels)))
        if len(views) == 1:
            return views[0]
        thumbs = None if views[0][1] is None else torch.cat([t for _, t in views])
        return torch.cat([c for c, _ in views]), thumbs

    def _bank_views(self, entries: torch.Tensor | slice
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The codes and thumbnails of some bank entries, for :meth:`_search`."""
        thumbs = self.whole_bank_
        return self.bank_[entries], None if thumbs is None else thumbs[entries]

    def _search(self, codes: torch.Tensor, owners: torch.Tensor | None = None,
                thumbs: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, P) distances of patch codes to the bank (``owners``: see local_nearest), and
        when the detector uses the whole image, a last column: the distance of the images'
        ``thumbs`` to the training ones; in units of each position's normal spread once it is
        measured. Also (N, P) the bank entry of each nearest code."""
        device = resolve_device(self.inference_settings().device)
        bank = self.bank_.to(device)
        entries = torch.empty(codes.shape[:2], dtype=torch.long, device=device)
        distances = local_nearest(codes.to(device), bank, self.scorer_.grid, self.scorer_.reach,
                                  owners=owners, entries=entries).cpu()
        if self.whole_bank_ is not None:
            if thumbs is None:
                raise ValueError("this detector compares whole-image thumbnails too; pass them")
            whole = whole_nearest(thumbs.to(device), self.whole_bank_.to(device),
                                  None if owners is None else owners.to(device))
            distances = torch.cat([distances, whole.cpu()[:, None]], dim=1)
        return self._scaled(distances), entries.cpu()

    def _distances(self, codes: torch.Tensor, owners: torch.Tensor | None = None,
                   thumbs: torch.Tensor | None = None) -> torch.Tensor:
        """Distances of patch codes (and thumbnails) to the bank, as :meth:`_search` finds
        them."""
        return self._search(codes, owners, thumbs)[0]

    def _training_distances(self, n_images: int) -> torch.Tensor:
        """(N, P) distances of the training images to the others (:meth:`_training_search`)."""
        return self._training_search(n_images)[0]

    def _training_search(self, n_images: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, P) distances of the ``n_images`` training images' codes (the bank's first
        entries) to the other images' codes, for the search the scorer holds now, and the bank
        entries they matched. With ``scale_positions`` it (re)measures each position's spread
        from them first and returns them scaled, each image by the spread measured without it;
        each position's median of them is the normal level the maps start from."""
        self.scorer_.position_scale = self.scorer_.position_level = None
        codes, thumbs = self._bank_views(slice(0, n_images))
        distances, entries = self._search(codes, self._owners(n_images), thumbs)
        spreads = position_spread(distances) if self.scales_positions_ else None
        if spreads is not None:
            self.scorer_.position_scale = spreads[0].tolist()
            distances = distances / spreads[1]
        elif self.scales_positions_:
            why = (f"{n_images} training images are too few to measure how much normal "
                   f"patches vary at each place (it takes {MIN_SPREAD_IMAGES})"
                   if n_images < MIN_SPREAD_IMAGES else
                   "the training images' patches do not vary at all")
            warnings.warn(f"{why}: patch distances are left unscaled", UserWarning,
                          stacklevel=3)
        if bool(torch.isfinite(distances).all()):  # one image alone has no neighbours
            self.scorer_.position_level = distances.median(dim=0).values.tolist()
        return distances, entries

    def _learn_textures(self, n_images: int) -> None:
        """Keep each training image's texture level (patches.own_spread of its codes, the
        bank's first entries), for :meth:`_image_scores`; none when the power is 0 (for
        "auto": :func:`auto_texture_power`) or an image has a single patch."""
        self.levels_ = None
        self.scorer_.texture_power = None
        power = self.texture_power
        if power == "auto":
            power = auto_texture_power(n_images, turned=self.scorer_.copies > 1)
        if float(power) == 0:
            return
        levels = own_spread(self.bank_[:n_images])
        if not bool(torch.isfinite(levels).all()):
            return
        self.levels_ = floored_levels(levels)
        self.scorer_.texture_power = float(power)

    def _unseen_copy_search(self, n_images: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(J * N, P) distances of turned copies of the training images, which the autoencoder
        never saw (it learnt the originals), to the other images' codes. They score as new
        images do, while the originals' own codes, learnt, lie nearer the bank than a new
        image's: the threshold from the originals flagged 0.16-0.22 of new normal images at
        contamination 0.1 on 54 turned cells, from the copies 0.10-0.20; the mean distance
        from 0.1 over six turned sets halved (docs/benchmarks.md). J copies of each image,
        taken in turn, so that about UNSEEN_SCORES scores are measured (all of them for few
        images, one copy each for many): each costs a search as long as a test image's."""
        others = self.scorer_.copies - 1
        rounds = max(1, min(others, UNSEEN_SCORES // n_images))
        images = torch.arange(n_images)
        found = []
        # the longest step after training on turned sets (gravel at 128 px: about 2 minutes)
        with progress(rounds * n_images, not self.verbose, "threshold from turned copies",
                      "image") as bar:
            for j in range(rounds):
                codes, thumbs = self._bank_views((1 + (images + j) % others) * n_images + images)
                found.append(self._search(codes, self._owners(n_images), thumbs))
                bar.update(n_images)
        return torch.cat([d for d, _ in found]), torch.cat([e for _, e in found])

    def _owners(self, n_images: int) -> torch.Tensor:
        """(M,) the training image each bank entry was cut from (copy by copy), so a training
        image's search skips its own patches and their turned copies (patches.local_nearest)."""
        return torch.arange(n_images).repeat(self.scorer_.copies)

    def _scaled(self, distances: torch.Tensor) -> torch.Tensor:
        """Distances (N, P) divided by the positions' normal spread, when there is one."""
        scale = self.scorer_.position_scale
        return distances if scale is None else distances / torch.tensor(scale).to(distances)

    def _beyond_normal(self, distances: torch.Tensor) -> torch.Tensor:
        """(N, P) distances less each position's normal level, floored at 0, for the maps
        (not the scores: centred scores lost 0.006-0.033 ROC-AUC on the real defects, while
        centred maps found synthetic defects' pixels better; bench/pixel_maps.py)."""
        level = self.scorer_.position_level
        if level is None:
            return distances
        return (distances - torch.tensor(level).to(distances)).clamp_min(0)

    def _image_scores(self, distances: torch.Tensor, entries: torch.Tensor) -> np.ndarray:
        """(N, P) patch distances -> (N,) image scores: the mean of the ``top_k`` worst and,
        when the detector has one, the whole image's distance (the last column) at
        ``whole_weight`` beside it, divided by the texture of the training images the patches
        matched (``entries``, the bank entry of each nearest code) when it learnt textures."""
        count = self.scorer_.grid.count
        k = min(self.scorer_.top_k, count)
        scores = top_mean(distances[:, :count], k)
        if distances.shape[1] > count:
            share = self.scorer_.whole_weight
            share = 1 / (k + 1) if share is None else share  # an older bundle: one of k + 1
            scores = (1 - share) * scores + share * distances[:, count]
        power = self.scorer_.texture_power
        if self.levels_ is not None and power:
            texture = self.levels_[entries % len(self.levels_)].median(dim=1).values
            scores = scores / texture.to(scores) ** power
        return scores.double().numpy()

    def _check_fitted(self) -> None:
        check_is_fitted(self)

    # -- scoring (set_threshold, anomaly_details, score_samples, predict: DetectorScoring) -----
    def details_of_encoded(self, matrix: np.ndarray, explain: bool = True
                           ) -> dict[str, np.ndarray]:
        """Scores, probabilities, flags and, with ``explain``, per-pixel maps ('errors': how
        far, in the scores' units, the patches covering a pixel lie beyond a normal patch at
        their place, 0 if not at all) of images already encoded."""
        codes, thumbs = self._image_views(matrix)
        distances, entries = self._search(codes, thumbs=thumbs)
        if bool((distances == 0).all(dim=1).any()):
            warnings.warn(SELF_MATCH, UserWarning, stacklevel=3)
        return self._details_of_search(distances, entries, tuple(matrix.shape[2:]), explain)

    def training_details(self, explain: bool = True) -> dict[str, np.ndarray]:
        """The details of :meth:`anomaly_details` for the images the detector was fitted on,
        each scored without its own patches (and their turned copies): scored as new images,
        they would find themselves in the bank and all score 0. What ``aetool detect`` (fit
        and score one folder) and :meth:`fit_predict` report; only after :meth:`fit`, not on
        a loaded bundle, which keeps no training images' own distances."""
        if getattr(self, "_own_search", None) is None:
            check_is_fitted(self)
            raise NotFittedError("training_details needs the detector fitted in this session "
                                 "(a loaded bundle does not keep its training distances)")
        distances, entries, shape = self._own_search
        return self._details_of_search(distances, entries, shape, explain)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit on ``X`` and flag its own outliers (-1; inliers 1), each image scored without
        its own patches (:meth:`training_details`), as scikit-learn's LocalOutlierFactor
        does; ``fit(X).predict(X)`` would find every image in its own bank and flag none."""
        flags = self.fit(X).training_details(explain=False)["is_anomaly"]
        return np.where(flags, -1, 1)

    def _details_of_search(self, distances: torch.Tensor, entries: torch.Tensor,
                           shape: tuple[int, int], explain: bool) -> dict[str, np.ndarray]:
        """Scores, probabilities, flags and, with ``explain``, the (N, 1, H, W) maps at image
        size ``shape`` of images' patch distances and matched bank entries."""
        scores = self._image_scores(distances, entries)
        maps = None
        if explain:  # the patches' distances only: the whole image has no place on a map
            grid, work_shape = self.scorer_.grid, self.scorer_.work_shape or shape
            pasted = grid.paste(self._beyond_normal(distances)[:, :grid.count],
                                (1, *work_shape))
            maps = resized(pasted, shape).numpy()
        return self._details(scores, maps)

    def image_reconstructions(self, matrix: np.ndarray) -> np.ndarray:
        """The patch autoencoder's reconstruction of each patch, pasted back together and
        brought back from the standardised scale (for the figures)."""
        grid = self.scorer_.grid
        flat, mean, spread = standardise(self.scorer_.to_work(matrix))
        patches = grid.cut(self.scorer_.add_edges(flat))
        out = run_batches(self.model_, self._model_rows(patches), reconstructions,
                          **self._inference())["recon"]
        channels, height, width = flat.shape[1:]
        shape = (self._patch_shape(patches)[0], height, width)
        pasted = grid.paste(torch.from_numpy(out).view(patches.shape), shape)[:, :channels]
        return resized(pasted * spread + mean, tuple(matrix.shape[2:])).numpy()

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path: str | Path, force: bool = False) -> Path:
        """Write a bundle: the patch autoencoder and the training codes in safetensors, the
        rest in manifest.json; no pickle is involved."""
        check_is_fitted(self)
        manifest = self._manifest("detect")
        manifest["detector"] = {"kind": self.KIND, "scorer": self.scorer_.to_dict(),
                                "threshold": self.threshold_,
                                "contamination": self.contamination}
        if hasattr(self, "table_spec_"):
            manifest["table"] = self.table_spec_.to_dict()
        extras = {BANK: self.bank_}
        if self.levels_ is not None:
            extras[LEVELS] = self.levels_
        if self.whole_bank_ is not None:
            extras[WHOLE] = self.whole_bank_
        return save_bundle(path, self.model_, manifest, force=force, extras=extras)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> PatchDetector:
        """Load a patch detector bundle saved by :meth:`save` (or ``aetool fit``)."""
        manifest, model, extras = load_bundle_parts(path, device=device)
        return cls.from_bundle(manifest, model, extras, device, where=str(path))

    @classmethod
    def from_bundle(cls, manifest: dict[str, Any], model: Any, extras: dict[str, Any],
                    device: str = "cpu", where: str = "bundle") -> PatchDetector:
        """A patch detector from a loaded manifest, model and code bank."""
        check_detector_bundle(manifest, where, kind=cls.KIND)
        if BANK not in extras:
            raise BundleError(f"{where}: not a patch detector bundle (no code bank)")
        with manifest_errors(where):
            detector = cls._rebuild(manifest, model, device)
            restore_detector_state(detector, manifest, PatchScorer)
            detector.bank_ = extras[BANK].cpu()
            if detector.bank_.shape[1] != detector.scorer_.grid.count:
                raise ValueError(f"the code bank has {detector.bank_.shape[1]} patches per "
                                 f"image, the grid {detector.scorer_.grid.count}")
            scorer = detector.scorer_
            detector.levels_ = extras[LEVELS].cpu() if LEVELS in extras else None
            detector.whole_bank_ = extras[WHOLE].cpu() if WHOLE in extras else None
            if (detector.whole_bank_ is None) != (scorer.whole_side is None) or (
                    detector.whole_bank_ is not None
                    and len(detector.whole_bank_) != len(detector.bank_)):
                raise ValueError("the whole-image thumbnails do not match the code bank")
            images = detector.bank_.shape[0] // scorer.copies
            if (detector.levels_ is None) != (scorer.texture_power is None) or (
                    detector.levels_ is not None and detector.levels_.shape != (images,)):
                raise ValueError(f"texture levels do not match the {images} training images "
                                 f"of the code bank")
            channels = int(manifest["preprocessing"]["shape"][0])
            channels += scorer.edge_sigma is not None
            size = scorer.grid.size
            if list(model.input_shape) not in ([channels, size, size], [channels * size**2]):
                raise ValueError(f"the patch autoencoder takes inputs of shape "
                                 f"{list(model.input_shape)}, but the patches are {channels} "
                                 f"channel(s) of {size}x{size} px")
        return detector

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
