"""The fitted scoring state of a patch detector (JSON in its bundle): the patch grid, search
reach, pooling, per-position spreads and levels, and the rules that set its weights; kept
apart from the estimator, which trains and searches (patch_detector.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from aetool.defaults import TEXTURE_FROM_IMAGES, TEXTURE_POWERS, TOP_K
from aetool.patches import PatchGrid, resized, standardise, with_edges
from aetool.thresholds import training_percentile


@dataclass
class PatchScorer:
    """Fitted scoring state (JSON) of a patch detector: the patch grid, how far a patch looks
    for its neighbours, how many of an image's worst patches make its score, the training
    scores' quantiles (for the threshold, percentiles and probabilities) and the size images
    are scaled to before patching (None: their own)."""

    grid: PatchGrid
    reach: int | None = 1
    top_k: int = TOP_K
    train_quantiles: list[float] = field(default_factory=list)
    work_shape: tuple[int, int] | None = None
    copies: int = 1  # turned and mirrored copies of each training image in the bank
    # How much farther a turned training image lies from the others than as it is
    # (patches.turn_cost), measured when ``turns`` was "auto"; None: not measured.
    turn_cost: float | None = None
    # How much farther a training image's patches lie from the others' half the image away
    # than at their own place (patches.place_cost), measured when ``reach`` or
    # ``scale_positions`` was "auto"; None: not measured.
    place_cost: float | None = None
    # Per grid position, the spread of normal patches' distances (patches.position_spread);
    # distances are divided by it. None: raw distances (turned off, or an older bundle).
    position_scale: list[float] | None = None
    # Per grid position, the median distance (scaled as the scores are) of normal training
    # patches there; maps show how far a patch lies beyond it, so 0 means "as normal as a
    # normal patch at this place" and edges or textures do not glow. None: maps show raw
    # distances (an older bundle).
    position_level: list[float] | None = None
    # Sigma (pixels) of the smoothing before the edge channel (patches.with_edges) that every
    # patch carries beside the intensities; None: intensities only (turned off, or an older
    # bundle).
    edge_sigma: float | None = None
    # An image's score is divided by the texture level of the training images its patches
    # matched to this power (PatchDetector.texture_power); None: not (turned off, a turned set
    # of fewer than TEXTURE_FROM_IMAGES images, images of one patch, or an older bundle).
    texture_power: float | None = None
    # Shorter side (pixels) of the thumbnail that stands for the whole image as one more
    # distance beside the patches' (PatchDetector.whole_image); None: none.
    whole_side: int | None = None
    # Weight of the one more coordinate each patch's code carries: its root-mean-square
    # reconstruction error (PatchDetector.residual); None: codes only (turned off, or an older
    # bundle).
    residual_weight: float | None = None
    # Share of each patch's values, the worst drawn, whose mean squared error makes that error
    # (PatchDetector.residual_share); None: all of them, the RMS error (an older bundle).
    residual_share: float | None = None
    # Leading channels of each patch (the image's own, the edge channel left out) whose values
    # make that error (PatchDetector.residual_edges false); None: every channel (residual_edges
    # true, no edge channel, or an older bundle).
    residual_channels: int | None = None
    # The quantile of the training patches' errors (at each grid position; overall, when
    # searched anywhere) the code bank's error coordinate was floored at; a scored patch's is
    # floored at the bank's lowest, the same level (PatchDetector.residual_floor). None: not
    # floored (turned off, no error coordinate, or an older bundle).
    residual_floor: float | None = None
    # Weight of the thumbnail's distance beside the mean of the worst patches' in an image's
    # score (PatchDetector.whole_weight); None: one value among top_k + 1 (an older bundle).
    whole_weight: float | None = None

    @property
    def columns(self) -> int:
        """Distances per image: one per patch, and the whole image's when it has one."""
        return self.grid.count + (self.whole_side is not None)

    def residual_values(self) -> int | None:
        """How many leading values of a flattened patch (channel-major) its reconstruction
        error is taken over; None: all of them."""
        channels = self.residual_channels
        return None if channels is None else channels * self.grid.size ** 2

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        return training_percentile(scores, self.train_quantiles)

    def contributions(self, maps: np.ndarray) -> np.ndarray:
        """Each pixel's share of its image's map; rows sum to 1."""
        flat = maps.reshape(maps.shape[0], -1)
        return flat / (flat.sum(axis=1, keepdims=True) + 1e-12)

    def to_dict(self) -> dict[str, Any]:
        return {"grid": self.grid.to_dict(), "reach": self.reach, "top_k": self.top_k,
                "train_quantiles": self.train_quantiles,
                "work_shape": None if self.work_shape is None else list(self.work_shape),
                "copies": self.copies, "position_scale": self.position_scale,
                "position_level": self.position_level, "edge_sigma": self.edge_sigma,
                "turn_cost": self.turn_cost, "place_cost": self.place_cost,
                "texture_power": self.texture_power, "whole_side": self.whole_side,
                "residual_weight": self.residual_weight, "residual_share": self.residual_share,
                "residual_channels": self.residual_channels, "whole_weight": self.whole_weight,
                "residual_floor": self.residual_floor}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> PatchScorer:
        reach, shape = state.get("reach"), state.get("work_shape")

        def optional(name: str, cast: type) -> Any:  # a setting an older bundle may lack
            return None if state.get(name) is None else cast(state[name])

        if state["grid"].get("whole"):
            raise ValueError("it was fitted with an earlier form of whole_image (the shrunk "
                             "image encoded as one more patch), which this version replaced "
                             "with a pixel thumbnail; fit it again")
        per_position = {name: None if state.get(name) is None
                        else [float(v) for v in state[name]]
                        for name in ("position_scale", "position_level")}
        scorer = cls(PatchGrid.from_dict(state["grid"]), None if reach is None else int(reach),
                     int(state["top_k"]), [float(v) for v in state["train_quantiles"]],
                     None if shape is None else (int(shape[0]), int(shape[1])),
                     int(state.get("copies", 1)), **per_position,
                     **{name: optional(name, float) for name in (
                         "edge_sigma", "turn_cost", "place_cost", "texture_power",
                         "residual_weight", "residual_share", "whole_weight")},
                     whole_side=optional("whole_side", int),
                     residual_channels=optional("residual_channels", int),
                     residual_floor=optional("residual_floor", float))
        for name, values in per_position.items():
            if values is not None and len(values) != scorer.columns:
                raise ValueError(f"{name} has {len(values)} values, the detector "
                                 f"{scorer.columns} distances per image")
        return scorer

    def to_work(self, matrix: np.ndarray) -> torch.Tensor:
        """Images (N, C, H, W) as the patches are cut from: scaled to ``work_shape``."""
        images = torch.from_numpy(matrix)
        return images if self.work_shape is None else resized(images, self.work_shape)

    def patch_input(self, matrix: np.ndarray) -> torch.Tensor:
        """Images (N, C, H, W) as the patches are cut from them: at ``work_shape``,
        standardised, with the edge channel when the detector has one."""
        return self.add_edges(standardise(self.to_work(matrix))[0])

    def add_edges(self, work: torch.Tensor) -> torch.Tensor:
        """Standardised images with the edge channel appended, when the detector has one."""
        return work if self.edge_sigma is None else with_edges(work, self.edge_sigma)


def auto_texture_power(n_images: int, turned: bool) -> float:
    """The texture power "auto" picks for ``n_images`` training images, learnt turned or not
    (aetool.defaults.TEXTURE_POWERS, as measured by bench/patch_texture.py)."""
    below, above = TEXTURE_POWERS["turned" if turned else "aligned"]
    return above if n_images >= TEXTURE_FROM_IMAGES else below


def residual_weight(codes: torch.Tensor, residuals: torch.Tensor) -> float:
    """The weight that makes the training patches' reconstruction errors (M,) vary as much as
    one coordinate of their codes (M, K) does on average, so the error counts in a distance as
    one more coordinate; 0 when the errors do not vary at all (a constant adds nothing)."""
    spread = float(residuals.std()) if len(residuals) > 1 else 0.0
    code_spread = float(codes.std(dim=0).mean()) if len(codes) > 1 else 0.0
    return code_spread / spread if spread > 1e-8 * max(code_spread, 1e-12) else 0.0


def residual_floors(bank: torch.Tensor, anywhere: bool) -> torch.Tensor:
    """The lowest error coordinate (the last) of the code bank (M, P, K): per grid position
    (P,), or one value overall when patches are searched ``anywhere``."""
    last = bank[..., -1]
    return last.min() if anywhere else last.min(dim=0).values


def floor_bank(bank: torch.Tensor, quantile: float, anywhere: bool) -> None:
    """Raise the code bank's (M, P, K) error coordinate, in place, to its ``quantile`` per grid
    position (overall when searched ``anywhere``), so that is the bank's lowest after."""
    last = bank[..., -1].numpy()
    level = np.quantile(last, quantile) if anywhere else np.quantile(last, quantile, axis=0)
    bank[..., -1] = torch.maximum(bank[..., -1], torch.as_tensor(level, dtype=bank.dtype))


def floored_levels(levels: torch.Tensor) -> torch.Tensor:
    """Texture levels floored at 1% of their mean (and above 0), so a test image that matched
    only flat training images (identical images: every level 0) is not divided by zero."""
    return levels.clamp_min(max(float(levels.mean()) * 0.01, 1e-12))
