"""Denoiser: a scikit-learn transformer that removes noise with a denoising-capable variant.

``fit(X_clean)`` is the normal case: a DAE learns to undo the configured noise model applied to
clean rows/images; a contractive AE learns the clean data's manifold and projects onto it.
``fit(X_noisy)`` works when no clean data exists: the model then learns the structure the noisy
samples share, and removes what its bottleneck cannot represent; expect less gain than with
clean training data. ``transform(X_noisy)`` returns data in the input's units and columns.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted

from aetool import defaults
from aetool.bundle import load_bundle, manifest_errors, save_bundle
from aetool.data.arrays import to_image_layout
from aetool.errors import AetoolError, BundleError, SettingError
from aetool.estimators.base import AutoencoderEstimator
from aetool.noise import Clipped, InDataUnits, parse_noise
from aetool.scoring import reconstructions, run_batches
from aetool.tiles import blended, random_tiles
from aetool.variants.base import DENOISING

# what _fit_model learns: kept from the chosen candidate
FITTED_STATE = ("model_", "config_", "history_", "stop_reason_", "variant_name_",
                "_validation_rows")


def psnr(clean: np.ndarray, estimate: np.ndarray) -> float:
    """Mean over images of the PSNR in dB of ``estimate`` against ``clean`` ([0, 1] pixels)."""
    squared = ((clean - np.clip(estimate, 0.0, 1.0)) ** 2).reshape(len(clean), -1).mean(axis=1)
    return float(np.mean(10.0 * np.log10(1.0 / np.maximum(squared, 1e-12))))


class Denoiser(TransformerMixin, AutoencoderEstimator):
    """``variant``: 'dae', 'contractive' or any plugin with the 'denoising' capability.
    ``noise``: the training corruption NAME:LEVEL for variants that corrupt (gaussian:σ,
    masking:p, salt_pepper:p), in model units: [0, 1] for images, standard deviations for tables
    (``noise_units="std"``) or, with ``noise_units="data"``, each column's own unit (σ = 0.3
    volts on every column, when that is what the sensor adds). ``clip_noise``: on images, clip
    each corrupted training image to the pixel range, as a saved noisy image is (a dark pixel's
    noise cannot go below black), so the denoiser learns the noise it will meet (tables are not
    clipped). ``min_steps``: small tables get more epochs, so that training makes at least this
    many optimiser steps. ``selection``
    'auto': on images, train each of the variant's candidate settings
    (``aetool.defaults.IMAGE_DENOISING_CANDIDATES``) on 90% of the clean images and keep the one
    with the best PSNR on the other 10%, corrupted with ``noise`` (``choice_`` says what was
    chosen and why); 'off' trains the variant's settings only. A choice needs at least
    MIN_IMAGES_TO_CHOOSE images and is skipped when ``variant_params`` sets what the candidates
    vary. ``tile``: learn from random square tiles of this side and clean an image tile by
    tile (overlapping, blended), so training costs the same at any image size and the
    cleaned images keep their detail; 'auto' (aetool.defaults.DENOISE_TILE) for images whose
    shorter side is at least DENOISE_TILE_MIN_SIDE, None for whole images.
    """

    MIN_IMAGES_TO_CHOOSE = 200
    VALIDATION_SHARE = 0.1

    def __init__(
        self,
        variant: Any = "dae",
        noise: str = "gaussian:0.3",
        variant_params: dict[str, Any] | None = None,
        epochs: int | None = None,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        max_steps: int = 0,
        patience: int = 5,
        random_state: int | None = 0,
        device: str = "auto",
        verbose: bool = False,
        noise_units: str = "std",
        min_steps: int = 500,
        selection: str = "auto",
        tile: int | str | None = "auto",
        clip_noise: bool = True,
    ) -> None:
        super().__init__(variant, variant_params, epochs, batch_size, learning_rate, max_steps,
                         patience, random_state, device, verbose)
        self.noise = noise
        self.noise_units = noise_units
        self.min_steps = min_steps
        self.selection = selection
        self.tile = tile
        self.clip_noise = clip_noise

    DEFAULT_EPOCHS = 30

    def _tile_side(self, shape: tuple[int, ...]) -> int | None:
        """The side of the tiles it learns from for inputs of ``shape`` (None: whole rows or
        images), as ``tile`` says."""
        if len(shape) != 3:
            return None
        shorter = min(shape[1:])
        if self.tile == "auto":
            return defaults.DENOISE_TILE if shorter >= defaults.DENOISE_TILE_MIN_SIDE else None
        if self.tile is None or self.tile == 0:
            return None
        if isinstance(self.tile, bool) or not isinstance(self.tile, (int, np.integer)) \
                or not 8 <= self.tile <= shorter:
            raise SettingError(f"tile must be 'auto', none or a whole number of pixels from 8 "
                               f"to the images' shorter side ({shorter}), not {self.tile!r}")
        return int(self.tile)

    def _training_rows(self, matrix: np.ndarray) -> np.ndarray:
        """What the model learns from: ``matrix`` itself, or DENOISE_TILES random tiles of
        its images."""
        if not self.tile_:
            return matrix
        return random_tiles(matrix, self.tile_, defaults.DENOISE_TILES,
                            self._train_config().seed)

    def _cleaned(self, model: Any, matrix: np.ndarray) -> np.ndarray:
        """``matrix`` (model units) through ``model``: whole, or tile by tile."""
        def through(rows: np.ndarray) -> np.ndarray:
            out = run_batches(model, rows, reconstructions, **self._inference())
            return out["recon"] if out else np.empty_like(rows)

        if not self.tile_:
            return through(matrix)
        return blended(matrix, self.tile_, through, step=self._blend_step(matrix.shape[2:]))

    def _blend_step(self, size: tuple[int, ...]) -> int:
        """Pixels between tile starts when cleaning images of ``size``: a DENOISE_TILE_STARTS-th
        of a tile, or half a tile where that would cut one image into more than
        DENOISE_TILES_PER_IMAGE tiles (four times fewer tiles to clean on a large photograph)."""
        step = max(1, self.tile_ // defaults.DENOISE_TILE_STARTS)
        tiles = (size[0] // step + 2) * (size[1] // step + 2)
        return step if tiles <= defaults.DENOISE_TILES_PER_IMAGE else self.tile_ // 2

    def _adapt_model(self, model: Any) -> None:
        """Images: corrupted training images clipped to the pixel range (``clip_noise``).
        Tables with ``noise_units="data"``: the corruption in each column's own unit."""
        if hasattr(self.preprocessor_, "shape"):
            if self.clip_noise and hasattr(model, "noise"):
                model.noise = Clipped(model.noise, 0.0, 1.0)
            return
        if self.noise_units == "std":
            return

        spread = [self.preprocessor_.numeric[c]["scale"] if c in self.preprocessor_.numeric
                  else 1.0 for c in self.preprocessor_.feature_groups]
        model.noise = InDataUnits(model.noise, torch.tensor(spread))

    def _check_noise_units(self, variant: type) -> None:
        if self.noise_units not in ("std", "data"):
            raise SettingError(f"noise_units must be 'std' or 'data', not '{self.noise_units}'")
        if self.noise_units == "data":
            if hasattr(self.preprocessor_, "shape"):
                raise SettingError("noise_units='data' is for tables; image noise levels are "
                                  "already in pixel units ([0, 1])")
            if "noise" not in variant.Config.__dataclass_fields__:
                raise SettingError(f"noise_units='data' needs a variant trained with a noise "
                                  f"model; '{variant.name}' has none")

    def _config_values(self, input_shape: tuple[int, ...], variant: type) -> dict[str, Any]:
        fields = variant.Config.__dataclass_fields__
        values: dict[str, Any] = {}
        if "noise" in fields:
            values["noise"] = self.noise
        user = self.variant_params or {}
        images = len(getattr(self.preprocessor_, "shape", ())) == 3
        if "backbone" in fields and "backbone" not in user and images:
            values["backbone"] = "auto"  # convolutional on images unless told otherwise
        if images:  # what the denoising benchmark proved on images (aetool.defaults)
            values.update(defaults.IMAGE_DENOISING_DEFAULTS.get(variant.name, {}))
            values.update(getattr(self, "_candidate", {}))
        values.update(user)
        return values

    def fit(self, X: Any, y: Any = None) -> Denoiser:
        """Train on ``X`` (clean data if you have it; see the module docs for noisy data)."""
        variant = self._variant_class()
        if DENOISING not in variant.capabilities:
            raise AetoolError(f"variant '{variant.name}' cannot denoise (no 'denoising' "
                              "capability); use dae, contractive or a denoising plugin")
        if self.selection not in ("auto", "off"):
            raise SettingError(f"selection must be 'auto' or 'off', not '{self.selection}'")
        matrix, _ = self._prepare(X, reset=True)
        self._check_noise_units(variant)
        self.tile_ = self._tile_side(matrix.shape[1:])
        candidates = self._candidates(variant, matrix)
        if candidates is None:
            self._fit_model(self._training_rows(matrix), variant)
        else:
            self._choose(matrix, variant, candidates)
        return self

    def _candidates(self, variant: type, matrix: np.ndarray) -> dict[str, dict] | None:
        """The candidate settings to choose among, or None (with ``choice_`` saying why)."""
        self.choice_: dict[str, Any] | None = None
        table = defaults.IMAGE_DENOISING_CANDIDATES.get(variant.name)
        if self.selection == "off" or matrix.ndim != 4 or not table:
            return None
        varied = {key for settings in table.values() for key in settings}
        given = varied & set(self.variant_params or {})
        if given or len(matrix) < self.MIN_IMAGES_TO_CHOOSE:
            why = (f"variant_params sets {', '.join(sorted(given))}" if given else
                   f"{len(matrix)} images, fewer than {self.MIN_IMAGES_TO_CHOOSE}")
            self.choice_ = {"chosen": None, "why": f"no choice: {why}"}
            return None
        return table

    def _choose(self, matrix: np.ndarray, variant: type,
                candidates: dict[str, dict[str, Any]]) -> None:
        """Train every candidate on most of ``matrix`` and keep the model with the best PSNR on
        the held-out rest, corrupted with the training noise and clipped to [0, 1] like a saved
        image (seeded, so the same data gives the same choice)."""
        seed = self._train_config().seed
        order = np.random.default_rng(seed).permutation(len(matrix))
        held = max(1, round(self.VALIDATION_SHARE * len(matrix)))
        train = self._training_rows(matrix[np.sort(order[held:])])
        clean = matrix[np.sort(order[:held])]
        generator = torch.Generator().manual_seed(seed)
        noisy = parse_noise(self.noise).apply(torch.from_numpy(clean), generator)
        noisy = noisy.clamp(0.0, 1.0).numpy()
        scores: dict[str, float] = {}
        seconds: dict[str, float] = {}
        kept: dict[str, Any] = {}
        try:
            for name, settings in candidates.items():
                self._candidate = settings  # read by _config_values
                start = time.perf_counter()
                model = self._fit_model(train, variant)
                seconds[name] = round(time.perf_counter() - start, 1)
                value = round(psnr(clean, self._cleaned(model, noisy)), 3)
                if value > max(scores.values(), default=-np.inf):  # best so far: keep it
                    kept = {k: getattr(self, k) for k in FITTED_STATE}
                scores[name] = value
        finally:
            del self._candidate
        for key, value in kept.items():
            setattr(self, key, value)
        chosen = max(scores, key=scores.__getitem__)  # ties: the first, the variant's own
        self.choice_ = {"chosen": chosen, "settings": candidates[chosen],
                        "validation_psnr_db": scores, "fit_seconds": seconds,
                        "validation_images": held,
                        "why": f"best PSNR on {held} held-out clean images with {self.noise}"}

    def _denoised_model_units(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        if getattr(self, "tile_", None):
            return self._cleaned(self.model_, self._any_size_images(X))
        matrix, _ = self._prepare(X, reset=False)
        return self._cleaned(self.model_, matrix)

    def _any_size_images(self, X: Any) -> np.ndarray:
        """Images of any size at least a tile, in model units: a tile denoiser is not bound
        to the size it was fitted at."""
        images = to_image_layout(np.asarray(X))
        channels = self.preprocessor_.shape[0]
        if images.ndim != 4 or images.shape[1] != channels or \
                min(images.shape[2:]) < self.tile_:
            raise AetoolError(f"images have shape {tuple(images.shape[1:])}; this denoiser "
                              f"cleans images of {channels} channel(s) and sides of at least "
                              f"{self.tile_} pixels")
        return self.preprocessor_.scaled(images)

    def transform(self, X: Any) -> Any:
        """Denoised ``X`` in its own units: a DataFrame keeps its columns (non-numeric ones and
        constant ones untouched), an image array keeps its shape and dtype."""
        cleaned = self._denoised_model_units(X)
        prep = self.preprocessor_
        if hasattr(prep, "shape"):  # images
            values = prep.inverse(cleaned)
            original = np.asarray(X)
            if np.issubdtype(original.dtype, np.integer):
                values = np.clip(np.rint(values), 0, np.iinfo(original.dtype).max)
            return values.astype(original.dtype).reshape(original.shape)
        restored = prep.inverse(cleaned)
        if isinstance(X, pd.DataFrame):
            out = X.copy()
            for column in prep.numeric:
                out[column] = restored[column].to_numpy()
            return out
        out = np.array(X, dtype=np.float64, copy=True)
        for column in prep.numeric:
            out[:, int(column[1:])] = restored[column].to_numpy()
        return out

    def save(self, path: Any, force: bool = False) -> Any:
        check_is_fitted(self)
        manifest = self._manifest("denoise")
        manifest["denoise"] = {"noise": self.noise, "noise_units": self.noise_units,
                               "columns": getattr(self, "columns_", None),
                               "choice": getattr(self, "choice_", None),
                               "tile": getattr(self, "tile_", None)}
        return save_bundle(path, self.model_, manifest, force=force)

    @classmethod
    def load(cls, path: Any, device: str = "cpu") -> Denoiser:
        manifest, model = load_bundle(path, device=device)
        if manifest.get("task") != "denoise":
            raise BundleError(f"{path}: holds a '{manifest.get('task')}' model, not a denoiser "
                              "(train one with 'aetool denoise fit')")
        with manifest_errors(str(path)):
            denoiser = cls._rebuild(manifest, model, device)
            denoiser.columns_ = manifest["denoise"].get("columns")
            denoiser.choice_ = manifest["denoise"].get("choice")
            denoiser.tile_ = manifest["denoise"].get("tile")  # None: saved before tiles
        return denoiser

