"""The score engine: batched reconstruction errors -> per-sample anomaly scores and per-feature
contributions, with the fitted scoring state kept as JSON.

The default score adds two robust z-scores, both from the autoencoder alone:
- reconstruction: the squared error of each feature divided by that feature's mean training
  error (so features the model always reconstructs badly do not drown the rest), averaged;
- latent: the Mahalanobis distance of the code from the training codes (shrunk covariance),
  which catches rows the decoder reconstructs well but that sit far from the data in code space.
  It is used only with at least 5 training rows per code unit; below that the covariance is
  too noisy and the score is the reconstruction part alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCORE_METHODS = ("combined", "reconstruction", "latent")
EPS = 1e-8
MIN_ROWS_PER_CODE = 5  # 'combined' adds the code distance only with this many rows per code unit


def iter_batches(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def model_outputs(model: Any, x: np.ndarray, y: np.ndarray | None = None,
                  batch_size: int = 4096, device: str = "cpu",
                  precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """Squared errors per element (same shape as ``x``) and codes, computed in batches."""
    import torch

    from aetool.training import resolve_device

    dev = resolve_device(device)
    model.to(dev).eval()
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    errors = np.empty(x.shape, dtype=np.float32)
    codes: list[np.ndarray] = []
    pin = dev.type == "cuda"  # page-locked host memory lets the copy overlap with compute
    with torch.inference_mode():
        for sl in iter_batches(x.shape[0], batch_size):
            host = torch.from_numpy(np.ascontiguousarray(x[sl]))
            xb = (host.pin_memory() if pin else host).to(dev, non_blocking=True)
            yb = torch.from_numpy(y[sl]).to(dev) if y is not None else None
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                code = model.encode(xb, yb)
                recon = model.decode(code, yb)
            errors[sl] = (recon.float() - xb).pow(2).cpu().numpy()
            codes.append(code.float().cpu().numpy())
    return errors, np.concatenate(codes) if codes else np.zeros((0, 0), np.float32)


def _robust_center_scale(values: np.ndarray) -> tuple[float, float]:
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median))) * 1.4826
    if mad < EPS:
        mad = float(np.std(values)) or 1.0
    return median, mad


@dataclass
class Scorer:
    """Fitted scoring state (JSON): turns errors and codes into scores and contributions."""

    method: str = "combined"
    normalize_features: bool = True
    feature_error_mean: list[float] = field(default_factory=list)
    code_mean: list[float] = field(default_factory=list)
    code_precision: list[list[float]] = field(default_factory=list)
    recon_center: float = 0.0
    recon_scale: float = 1.0
    latent_center: float = 0.0
    latent_scale: float = 1.0
    train_quantiles: list[float] = field(default_factory=list)

    @classmethod
    def fit(cls, errors: np.ndarray, codes: np.ndarray, method: str = "combined") -> Scorer:
        """Fit on training errors and codes. Tables (2-D errors) normalise each feature by its
        mean training error; images do not (a pixel that is always blank would explode)."""
        if method not in SCORE_METHODS:
            raise ValueError(f"score method must be one of {', '.join(SCORE_METHODS)}, got '{method}'")
        flat = errors.reshape(errors.shape[0], -1)
        scorer = cls(method=method, normalize_features=errors.ndim == 2)
        scorer.feature_error_mean = (flat.mean(axis=0) + EPS).astype(float).tolist() \
            if scorer.normalize_features else []
        recon = scorer._recon_raw(flat)
        scorer.recon_center, scorer.recon_scale = _robust_center_scale(recon)
        if method == "combined" and codes.shape[0] < MIN_ROWS_PER_CODE * max(codes.shape[1], 1):
            scorer.method = "reconstruction"  # too few rows for a stable code covariance
        if scorer.method != "reconstruction" and codes.size:
            from sklearn.covariance import LedoitWolf

            lw = LedoitWolf().fit(codes.astype(np.float64))
            scorer.code_mean = lw.location_.tolist()
            scorer.code_precision = lw.precision_.tolist()
            latent = scorer._latent_raw(codes)
            scorer.latent_center, scorer.latent_scale = _robust_center_scale(latent)
        train_scores = scorer.score(errors, codes)
        scorer.train_quantiles = np.quantile(train_scores, np.linspace(0, 1, 1001)).tolist()
        return scorer

    def _weighted(self, flat_errors: np.ndarray) -> np.ndarray:
        if not self.normalize_features:
            return flat_errors
        return flat_errors / np.asarray(self.feature_error_mean)

    def _recon_raw(self, flat_errors: np.ndarray) -> np.ndarray:
        return self._weighted(flat_errors).mean(axis=1)

    def _latent_raw(self, codes: np.ndarray) -> np.ndarray:
        centred = codes.astype(np.float64) - np.asarray(self.code_mean)
        return np.sqrt(np.einsum("ij,jk,ik->i", centred, np.asarray(self.code_precision), centred))

    def contributions(self, errors: np.ndarray) -> np.ndarray:
        """Each feature's share of the (normalised) reconstruction error; rows sum to 1."""
        flat = self._weighted(errors.reshape(errors.shape[0], -1))
        return flat / (flat.sum(axis=1, keepdims=True) + EPS)

    def score(self, errors: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Anomaly scores: higher is more anomalous (robust z-units, typical rows near 0)."""
        flat = errors.reshape(errors.shape[0], -1)
        recon = (self._recon_raw(flat) - self.recon_center) / self.recon_scale
        if self.method == "reconstruction" or not self.code_mean:
            return recon
        latent = (self._latent_raw(codes) - self.latent_center) / self.latent_scale
        return latent if self.method == "latent" else recon + latent

    def probability(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated anomaly probability: the share of training rows scoring below."""
        grid = np.asarray(self.train_quantiles)
        return np.interp(scores, grid, np.linspace(0, 1, grid.size))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Scorer:
        return cls(**state)
