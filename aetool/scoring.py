"""The score engine: batched reconstruction errors -> per-sample anomaly scores and per-feature
contributions, with the fitted scoring state kept as JSON.

The default score adds robust z-scores, all from the autoencoder alone:
- reconstruction: the squared error of each feature divided by that feature's mean training
  error (so features the model always reconstructs badly do not drown the rest), averaged;
- latent: the Mahalanobis distance of the code from the core of the training codes (shrunk
  covariance), which catches rows the decoder reconstructs well but that sit far from the data
  in code space. The core is found by concentration steps as in FastMCD (:func:`core_codes`):
  training data hold anomalies, and fitted on all codes they stretch the covariance towards
  themselves (the detector uses the core on tables and all codes on images). It is used only with at least 5 training rows per code unit; below that the
  covariance is too noisy and the score is the reconstruction part alone.
- code mixture (tables with at least 20 training rows per code unit): the negative
  log-density of the code under a two-component Gaussian mixture fitted to the core codes
  (the estimation half of DAGMM, fitted by EM after training), so a normal class with two modes
  does not make the space between them look normal. It adds to the single-Gaussian distance
  rather than replacing it: the pair ranked better on ODDS than either alone.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from aetool.approx import with_rational_tanh
from aetool.device import autocast_dtype, resolve_device
from aetool.thresholds import training_percentile, training_quantiles

SCORE_METHODS = ("combined", "reconstruction", "latent")
EPS = 1e-8
SHARE_TRIM = 0.1  # see column_error_scale
MIN_ROWS_PER_CODE = 5  # 'combined' adds the code distance only with this many rows per code unit
MIXTURE_COMPONENTS = 2
MIN_ROWS_PER_MIXTURE = 20  # rows per code unit before the mixture is fitted (10 per component)
MIXTURE_MAX_ROWS = 20_000  # the mixture is fitted on at most this many (random) training codes
CORE_SHARE = 0.6  # the code distribution is estimated from this share of training codes ...
CORE_STEPS = 2  # ... found by this many concentration steps (see core_codes)


def iter_batches(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


BatchFn = Callable[[Any, Any, Any], dict[str, Any]]


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> compiled steps


def _compiled_model(model: Any, dtype: Any) -> Any:
    """The model a compiled step runs: in bf16/fp16 a copy in that precision with the cheaper
    tanh of :mod:`aetool.approx` (rebuilt when the weights change), in fp32 the model itself."""
    if dtype is None:
        return model
    params = list(model.parameters())
    state = (tuple(p._version for p in params), str(params[0].device) if params else "")
    cached = _COMPILED.setdefault(model, {}).get("approx")
    if cached is None or cached[0] != state:
        cached = (state, with_rational_tanh(model).to(dtype).eval())
        _COMPILED[model]["approx"] = cached
    return cached[1]


def _batch_step(model: Any, per_batch: BatchFn, dtype: Any, device_type: str,
                compile_model: bool) -> Callable[[Any, Any], dict[str, Any]]:
    """encode -> decode (under autocast) -> ``per_batch`` (in fp32); with ``compile_model`` a
    ``torch.compile``d version, cached per model so later chunks do not compile again."""
    runs = _compiled_model(model, dtype) if compile_model else model

    def step(xb: Any, yb: Any) -> dict[str, Any]:
        # a bf16/fp16 copy needs only its input cast; autocast stays for the exact model and for
        # a copy fed one-hot labels (built in fp32)
        cast_input = runs is not model and yb is None
        with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None and not cast_input):
            code = runs.encode(xb.to(dtype) if cast_input else xb, yb)
            recon = runs.decode(code, yb)
        return per_batch(xb, code, recon)

    if not compile_model:
        return step
    steps = _COMPILED.setdefault(model, {})
    key = (id(per_batch), id(runs), dtype, device_type)
    if key not in steps:
        steps[key] = torch.compile(step, dynamic=False)
    return steps[key]


def run_batches(model: Any, x: np.ndarray, per_batch: BatchFn, y: np.ndarray | None = None,
                batch_size: int = 4096, device: str = "cpu", precision: str = "fp32",
                compile_model: bool = False) -> dict[str, np.ndarray]:
    """Run ``model`` over ``x`` in batches and gather what ``per_batch(x, code, reconstruction)``
    returns (a dict of per-row tensors) into NumPy arrays. The one inference loop of aetool:
    device placement, autocast precision, pinned host memory and non-blocking copies on GPUs,
    and optionally ``torch.compile`` (every batch padded to full size: one compiled shape)."""
    dev = resolve_device(device)
    model.to(dev).eval()
    dtype = autocast_dtype(precision)
    step = _batch_step(model, per_batch, dtype, dev.type, compile_model)
    pin = dev.type == "cuda"  # page-locked host memory lets the copy overlap with compute
    gathered: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for sl in iter_batches(x.shape[0], batch_size):
            rows = sl.stop - sl.start
            host = torch.from_numpy(np.ascontiguousarray(x[sl]))
            labels = torch.from_numpy(y[sl]) if y is not None else None
            if compile_model and rows < batch_size:
                host = _pad_rows(host, batch_size)
                labels = _pad_rows(labels, batch_size) if labels is not None else None
            xb = (host.pin_memory() if pin else host).to(dev, non_blocking=True)
            yb = labels.to(dev) if labels is not None else None
            for key, value in step(xb, yb).items():
                if key not in gathered:  # float32, or float64 for an image's error mean
                    dtype = np.float64 if value.dtype == torch.float64 else np.float32
                    gathered[key] = np.empty((x.shape[0], *value.shape[1:]), dtype)
                torch.from_numpy(gathered[key][sl]).copy_(value[:rows])
    return gathered


def _pad_rows(tensor: Any, rows: int) -> Any:
    padding = tensor.new_zeros((rows - tensor.shape[0], *tensor.shape[1:]))
    return torch.cat([tensor, padding])


def squared_errors_and_codes(xb: Any, code: Any, recon: Any) -> dict[str, Any]:
    """Per-element squared reconstruction errors and the codes, for :func:`run_batches`."""
    return {"errors": (recon.float() - xb).square_(), "codes": code.float()}


def code_outputs(xb: Any, code: Any, recon: Any) -> dict[str, Any]:
    """The codes, in fp32, for :func:`run_batches`."""
    return {"codes": code.float()}


def codes_and_residuals(xb: Any, code: Any, recon: Any, worst_share: float = 1.0,
                        values: int | None = None) -> dict[str, Any]:
    """The codes and each row's reconstruction error, in fp32, for :func:`run_batches`: the
    root of the mean of its ``worst_share`` largest squared errors (1: all, the RMS error),
    so a thin defect is not averaged away by a patch's many well-drawn values. ``values``:
    only each row's first so many values count (a patch's intensity channels before its edge
    channel; None: all)."""
    errors = (recon.float() - xb.float()).flatten(1)[:, :values].pow(2)
    if worst_share < 1.0:
        errors = errors.topk(max(1, round(errors.shape[1] * worst_share)), dim=1).values
    return {"codes": code.float(), "residuals": errors.mean(1).sqrt()}


def reconstructions(xb: Any, code: Any, recon: Any) -> dict[str, Any]:
    """The model's reconstructions, in fp32, for :func:`run_batches`."""
    return {"recon": recon.float()}


def model_outputs(model: Any, x: np.ndarray, y: np.ndarray | None = None,
                  batch_size: int = 4096, device: str = "cpu",
                  precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """Squared errors per element (same shape as ``x``) and codes, computed in batches."""
    out = run_batches(model, x, squared_errors_and_codes, y, batch_size, device, precision)
    if "codes" not in out:
        return np.empty(x.shape, np.float32), np.zeros((0, 0), np.float32)
    return out["errors"], out["codes"]


def score_rows(model: Any, scorer: Scorer, x: np.ndarray, keep_errors: bool = False,
               batch_size: int = 4096, device: str = "cpu", precision: str = "fp32",
               compile_model: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Anomaly scores of ``x``; the errors are reduced to one number per row on the device, so
    per-element errors (returned second) cost memory and time only with ``keep_errors``."""
    parts = run_batches(model, x, scorer.batch_reducer(device, keep_errors), None, batch_size,
                        device, precision, compile_model)
    if not parts:
        return np.empty(0), (np.empty(x.shape, np.float32) if keep_errors else None)
    return (scorer.combine(parts["recon"], parts.get("latent"), parts.get("mixture")),
            parts.get("errors"))


def column_error_scale(flat_errors: np.ndarray, row_error: np.ndarray,
                       groups: Iterable[Any]) -> np.ndarray:
    """For each feature, its column's typical squared training error: the column's summed
    error (one-hot categories and log views together), averaged over the rows drawn best (all
    but the worst :data:`SHARE_TRIM` by ``row_error``, the score's reconstruction part). A fit
    on data that holds its own anomalies draws them badly; left in, they inflate the level of
    the columns they broke and hide those columns from the explanation
    (bench/explanations.py)."""
    columns, index = np.unique(np.asarray(list(groups)), return_inverse=True)
    kept = row_error <= np.quantile(row_error, 1.0 - SHARE_TRIM)
    membership = np.zeros((flat_errors.shape[1], len(columns)))
    membership[np.arange(len(index)), index] = 1.0
    return (flat_errors[kept].astype(np.float64) @ membership).mean(axis=0)[index] + EPS


def _recon_distance(squared: Any, weights: Any) -> Any:
    """Per-row reconstruction distance: weighted mean (tables) or plain mean (images). An
    image's mean over thousands of pixels is summed in float64 (except on Apple's MPS, which
    has none): in float32 its rounding moved scores by more than torch and onnxruntime differ
    in the model itself (bench/onnx_export.py); a table's few features keep float32."""
    if weights is not None:
        return squared @ weights
    return squared.to(torch.float32 if squared.device.type == "mps" else torch.float64).mean(1)


def _code_distance(code: Any, code_mean: Any, factor: Any) -> Any:
    """Per-row Mahalanobis distance of the code from the training codes, in the code's own
    precision (a bf16 code carries no more digits than a bf16 product keeps; the fp32 product
    cost as much as a layer of the model), summed in fp32."""
    whitened = (code - code_mean.to(code.dtype)) @ factor.to(code.dtype)
    return torch.linalg.vector_norm(whitened, dim=1, dtype=torch.float32)


def _mixture_nll(code: Any, centre: Any, stacked: Any, offsets: Any, log_norms: Any) -> Any:
    """Per-row negative log-density (up to a constant) of the code under a Gaussian mixture,
    from the precomputed terms of :meth:`Scorer._mixture_tensors`: all K whitenings are one
    (n, d) x (d, K d) product on the centred code; the log-sum-exp is in fp32."""
    whitened = (code - centre.to(code.dtype)) @ stacked.to(code.dtype) - offsets.to(code.dtype)
    squared = whitened.float().square().view(code.shape[0], log_norms.numel(), -1).sum(-1)
    return -(log_norms - 0.5 * squared).logsumexp(dim=1)


def _fit_mixture(codes: np.ndarray) -> dict[str, Any]:
    """A two-component full-covariance Gaussian mixture of the codes (fixed seed, at most
    MIXTURE_MAX_ROWS rows), as JSON-ready means, precision Cholesky factors and log norms."""
    from sklearn.mixture import GaussianMixture

    rows = codes.astype(np.float64)
    if rows.shape[0] > MIXTURE_MAX_ROWS:
        rows = rows[np.random.default_rng(0).choice(rows.shape[0], MIXTURE_MAX_ROWS, replace=False)]
    gm = GaussianMixture(MIXTURE_COMPONENTS, covariance_type="full", reg_covar=1e-3,
                         random_state=0).fit(rows)
    factors = gm.precisions_cholesky_  # P_k = L_k L_k'
    log_det = np.log(np.diagonal(factors, axis1=1, axis2=2)).sum(axis=1)
    return {"mixture_means": gm.means_.tolist(), "mixture_factors": factors.tolist(),
            "mixture_log_norms": (np.log(gm.weights_) + log_det).tolist()}


def core_codes(codes: np.ndarray, share: float = CORE_SHARE,
               steps: int = CORE_STEPS) -> tuple[Any, np.ndarray]:
    """The core of the training codes, for a code distribution that the anomalies in
    (contaminated) training data do not stretch: starting from all codes, ``steps``
    concentration steps as in FastMCD (keep the ``share`` of codes nearest the centre under the
    current shrunk covariance, refit on them). Returns the last Ledoit-Wolf fit and the indices
    (ascending) of the core rows."""
    from sklearn.covariance import LedoitWolf

    codes = codes.astype(np.float64)
    fit = LedoitWolf().fit(codes)
    core = np.arange(codes.shape[0])
    size = int(np.ceil(share * codes.shape[0]))
    for _ in range(steps):
        nearest = np.sort(np.argsort(fit.mahalanobis(codes), kind="stable")[:size])
        if np.array_equal(nearest, core):
            break
        core = nearest
        fit = LedoitWolf().fit(codes[core])
    return fit, core


def _positive_definite(matrix: np.ndarray) -> bool:
    """Whether a code precision matrix can be factored as the scorer does (Cholesky in float64):
    not when every training code is the same (a covariance of zeros)."""
    if not np.isfinite(matrix).all():
        return False
    try:
        np.linalg.cholesky(np.asarray(matrix, dtype=np.float64))
    except np.linalg.LinAlgError:
        return False
    return True


def _float_tensor(values: np.ndarray) -> Any:
    """A float32 CPU tensor sharing memory with ``values`` where it can (host-side scoring)."""
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))


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
    share_scale: list[float] = field(default_factory=list)
    code_mean: list[float] = field(default_factory=list)
    code_precision: list[list[float]] = field(default_factory=list)
    recon_center: float = 0.0
    recon_scale: float = 1.0
    latent_center: float = 0.0
    latent_scale: float = 1.0
    mixture_means: list[list[float]] = field(default_factory=list)
    mixture_factors: list[list[list[float]]] = field(default_factory=list)
    mixture_log_norms: list[float] = field(default_factory=list)
    mixture_center: float = 0.0
    mixture_scale: float = 1.0
    train_quantiles: list[float] = field(default_factory=list)
    _reducers: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def fit(cls, errors: np.ndarray, codes: np.ndarray, method: str = "combined",
            core_share: float = 1.0, groups: Sequence[str] | None = None
            ) -> tuple[Scorer, np.ndarray]:
        """Fit on training errors and codes; returns the scorer and the training rows' scores.
        Tables (2-D errors) normalise each feature by its mean training error; images do not
        (a pixel that is always blank would explode). A table's explanations divide each
        column's error by its typical level instead (:func:`column_error_scale`; ``groups``
        names each feature's column, as the preprocessor's ``feature_groups``). The code
        distribution (distance and mixture) is estimated from the ``core_share`` of codes at
        its core (:func:`core_codes`; 1: all codes)."""
        if method not in SCORE_METHODS:
            raise ValueError(f"score method must be one of {', '.join(SCORE_METHODS)}, got '{method}'")
        flat = errors.reshape(errors.shape[0], -1)
        scorer = cls(method=method, normalize_features=errors.ndim == 2)
        if scorer.normalize_features:
            scorer.feature_error_mean = (flat.mean(axis=0) + EPS).astype(float).tolist()
        recon = scorer._recon_raw(flat)
        if scorer.normalize_features:
            scorer.share_scale = column_error_scale(
                flat, recon, groups if groups is not None else range(flat.shape[1])).tolist()
        scorer.recon_center, scorer.recon_scale = _robust_center_scale(recon)
        if method == "combined" and codes.shape[0] < MIN_ROWS_PER_CODE * max(codes.shape[1], 1):
            scorer.method = "reconstruction"  # too few rows for a stable code covariance
        latent = None
        fit, core = core_codes(codes, core_share) \
            if scorer.method != "reconstruction" and codes.size else (None, None)
        if fit is not None and not _positive_definite(fit.precision_):
            warnings.warn("the training codes do not vary (the autoencoder gives every row the "
                          "same code), so they have no distribution to score against: scored "
                          "by reconstruction error alone", UserWarning, stacklevel=3)
            scorer.method, fit = "reconstruction", None
        if fit is not None:
            scorer.code_mean = fit.location_.tolist()
            scorer.code_precision = fit.precision_.tolist()
            latent = scorer._latent_raw(codes)
            scorer.latent_center, scorer.latent_scale = _robust_center_scale(latent)
        mixture = None
        if latent is not None and scorer.normalize_features and \
                codes.shape[0] >= MIN_ROWS_PER_MIXTURE * codes.shape[1]:
            for key, value in _fit_mixture(codes[core]).items():
                setattr(scorer, key, value)
            mixture = scorer._mixture_raw(codes)
            scorer.mixture_center, scorer.mixture_scale = _robust_center_scale(mixture)
        train_scores = scorer.combine(recon, latent, mixture)
        scorer.train_quantiles = training_quantiles(train_scores)
        return scorer, train_scores

    @property
    def uses_latent(self) -> bool:
        return self.method != "reconstruction" and bool(self.code_mean)

    @property
    def uses_mixture(self) -> bool:
        return self.uses_latent and bool(self.mixture_means)

    def _mixture_tensors(self, device: Any) -> tuple[Any, Any, Any, Any] | None:
        """The code mixture as :func:`_mixture_nll` uses it, on ``device`` (None without one):
        with c the centre of the means m_k and L_k the precision factors,
        (z - m_k) L_k = (z - c) L_k - (m_k - c) L_k, so the factors are stacked side by side
        and the offsets (m_k - c) L_k computed once (centring keeps bf16 from cancelling)."""
        if not self.uses_mixture:
            return None
        means, factors, log_norms = (torch.tensor(v, dtype=torch.float32) for v in (
            self.mixture_means, self.mixture_factors, self.mixture_log_norms))
        k, d = means.shape
        centre = means.mean(0)
        stacked = factors.permute(1, 0, 2).reshape(d, k * d)  # [L_1 | L_2 | ...]
        offsets = torch.einsum("kd,kde->ke", means - centre, factors).reshape(k * d)
        return tuple(t.to(device) for t in (centre, stacked, offsets, log_norms))

    def _tensors(self, device: Any) -> tuple[Any, Any, Any]:
        """Feature weights (mean of error / feature mean == errors @ weights) and the code mean
        and Cholesky factor L of the code precision P = L L' (d' P d == |d @ L|^2)."""
        weights = code_mean = factor = None
        if self.normalize_features:
            mean = torch.tensor(self.feature_error_mean, dtype=torch.float32)
            weights = (1.0 / (mean * mean.numel())).to(device)
        if self.uses_latent:
            precision = torch.tensor(self.code_precision, dtype=torch.float64)
            factor = torch.linalg.cholesky(precision).float().to(device)
            code_mean = torch.tensor(self.code_mean, dtype=torch.float32, device=device)
        return weights, code_mean, factor

    def batch_reducer(self, device: Any = "cpu", keep_errors: bool = False) -> BatchFn:
        """A :func:`run_batches` step that reduces a batch to its raw reconstruction and code
        distances (and keeps the per-element errors only when asked)."""
        dev = resolve_device(device)
        if (str(dev), keep_errors) in self._reducers:  # one function per setting: see _batch_step
            return self._reducers[str(dev), keep_errors]
        weights, code_mean, factor = self._tensors(dev)
        mixture = self._mixture_tensors(dev)

        def reduce(xb: Any, code: Any, recon: Any) -> dict[str, Any]:
            squared = (recon.float() - xb).square_().flatten(1)
            out = {"recon": _recon_distance(squared, weights)}
            if factor is not None:
                out["latent"] = _code_distance(code, code_mean, factor)
            if mixture is not None:
                out["mixture"] = _mixture_nll(code, *mixture)
            if keep_errors:
                out["errors"] = squared.view(xb.shape)
            return out

        self._reducers[str(dev), keep_errors] = reduce
        return reduce

    def _recon_raw(self, flat_errors: np.ndarray) -> np.ndarray:
        weights = self._tensors("cpu")[0]
        return _recon_distance(_float_tensor(flat_errors), weights).numpy()

    def _latent_raw(self, codes: np.ndarray) -> np.ndarray:
        _, code_mean, factor = self._tensors("cpu")
        return _code_distance(_float_tensor(codes), code_mean, factor).numpy()

    def _mixture_raw(self, codes: np.ndarray) -> np.ndarray:
        return _mixture_nll(_float_tensor(codes), *self._mixture_tensors("cpu")).numpy()

    @property
    def explanation_scale(self) -> list[float]:
        """What each feature's error is divided by in :meth:`contributions` (tables only):
        its column's typical error, or for bundles saved before that, its mean error."""
        return self.share_scale or self.feature_error_mean

    def contributions(self, errors: np.ndarray) -> np.ndarray:
        """Each feature's share of the reconstruction error, a table's measured against its
        column's typical error (:func:`column_error_scale`); rows sum to 1."""
        flat = errors.reshape(errors.shape[0], int(np.prod(errors.shape[1:])))
        if self.normalize_features:
            flat = flat / np.asarray(self.explanation_scale)
        return flat / (flat.sum(axis=1, keepdims=True) + EPS)

    def combine(self, recon_raw: np.ndarray, latent_raw: np.ndarray | None,
                mixture_raw: np.ndarray | None = None) -> np.ndarray:
        """Anomaly scores from the raw parts: higher is more anomalous (robust z-units)."""
        recon = (recon_raw.astype(np.float64) - self.recon_center) / self.recon_scale
        if latent_raw is None or not self.uses_latent:
            return recon
        latent = (latent_raw.astype(np.float64) - self.latent_center) / self.latent_scale
        if mixture_raw is not None and self.uses_mixture:
            latent = latent + (mixture_raw.astype(np.float64) - self.mixture_center) \
                / self.mixture_scale
        return latent if self.method == "latent" else recon + latent

    def score(self, errors: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Anomaly scores from per-element errors and codes (see :func:`score_rows`)."""
        flat = errors.reshape(errors.shape[0], -1)
        latent = self._latent_raw(codes) if self.uses_latent else None
        mixture = self._mixture_raw(codes) if self.uses_mixture else None
        return self.combine(self._recon_raw(flat), latent, mixture)

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """The share of training rows that score lower (0-1): a rank, not a probability."""
        return training_percentile(scores, self.train_quantiles)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Scorer:
        return cls(**state)
