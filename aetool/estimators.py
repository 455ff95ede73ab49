"""scikit-learn estimators over the autoencoder variants: AutoencoderDetector (outlier detector
with IsolationForest's conventions), and the shared base that trains any registered variant."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from aetool.errors import AetoolError, DataError, SettingError
from aetool.thresholds import anomaly_probability


def _sk_validation() -> Any:
    from sklearn.utils import validation

    return validation


class AutoencoderEstimator(BaseEstimator):
    """Shared by the aetool estimators: input checks, preprocessing and training a variant.

    Parameters are stored as given (scikit-learn convention); learned state ends in ``_``.
    ``variant`` is a registered name or a Variant class; ``variant_params`` sets its Config.
    """

    def __init__(
        self,
        variant: Any = "ae",
        variant_params: dict[str, Any] | None = None,
        epochs: int = 60,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        max_steps: int = 300,
        patience: int = 8,
        random_state: int | None = 0,
        device: str = "auto",
        verbose: bool = False,
    ) -> None:
        self.variant = variant
        self.variant_params = variant_params
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_steps = max_steps
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # -- inputs --------------------------------------------------------------------------------
    def _prepare(self, X: Any, reset: bool) -> tuple[np.ndarray, Any]:
        """Validate ``X`` and turn it into the model's float32 input with the fitted preprocessor."""
        validation = _sk_validation()
        if isinstance(X, pd.DataFrame):
            validation._check_feature_names(self, X, reset=reset)
            validation._check_n_features(self, X, reset=reset)
            frame = X
        else:
            arr = np.asarray(X) if not hasattr(X, "toarray") else X
            if getattr(arr, "ndim", 2) >= 3:
                return self._prepare_images(arr, reset)
            arr = validation.validate_data(
                self, X, reset=reset, ensure_all_finite="allow-nan", dtype=np.float64,
                ensure_min_samples=2 if reset else 1,
            )
            frame = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
        if reset:
            from aetool.data.preprocess import TablePreprocessor, source_name

            self.preprocessor_ = TablePreprocessor.fit(frame, source=source_name("training data"),
                                                       **self._table_options())
        matrix, unseen = self.preprocessor_.transform(frame, source="data")
        if unseen:
            from aetool.data.preprocess import UnseenCategoryWarning, source_name

            warnings.warn(UnseenCategoryWarning(source_name("data"), unseen), stacklevel=3)
        return matrix, self.preprocessor_

    def _table_options(self) -> dict[str, Any]:
        """Extra :meth:`TablePreprocessor.fit` settings of this estimator."""
        return {}

    def _prepare_images(self, arr: np.ndarray, reset: bool) -> tuple[np.ndarray, Any]:
        from aetool.data.arrays import ImagePreprocessor

        if reset:
            self.preprocessor_ = ImagePreprocessor.fit(arr, source="training images")
            self.n_features_in_ = int(np.prod(self.preprocessor_.shape))
        return self.preprocessor_.transform(arr, source="images")[0], self.preprocessor_

    # -- training --------------------------------------------------------------------------------
    def _variant_class(self) -> type:
        from aetool.plugins import get_variant

        return self.variant if isinstance(self.variant, type) else get_variant(str(self.variant))

    def _train_config(self) -> Any:
        from aetool.training import TrainConfig

        seed = 0 if self.random_state is None else int(
            self.random_state if not isinstance(self.random_state, np.random.RandomState)
            else self.random_state.randint(2**31 - 1)
        )
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.learning_rate,
                           max_steps=self.max_steps, patience=self.patience, seed=seed,
                           device=self.device)

    def _config_values(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        """The variant settings this estimator trains with."""
        return dict(self.variant_params or {})

    def _adapt_model(self, model: Any) -> None:
        """Adjust the built model before it trains (nothing by default)."""

    def _fit_model(self, matrix: np.ndarray, labels: np.ndarray | None = None,
                   n_classes: int | None = None) -> Any:
        import torch

        from aetool.training import fit_variant

        variant = self._variant_class()
        try:
            config = variant.make_config(self._config_values(matrix.shape[1:]))
        except ValueError as exc:
            raise AetoolError(str(exc)) from None
        y = torch.from_numpy(labels) if labels is not None else None
        model, result = fit_variant(variant, config, torch.from_numpy(matrix), y, n_classes,
                                    self._train_config(), quiet=not self.verbose,
                                    adapt=self._adapt_model)
        self.variant_name_ = variant.name
        self.config_ = config
        self.history_ = result.history
        self.model_ = model
        return model

    def _manifest(self, task: str) -> dict[str, Any]:
        from aetool.variants.base import config_to_dict

        return {
            "task": task,
            "variant": self.variant_name_,
            "config": config_to_dict(self.config_),
            "input_shape": list(self.model_.input_shape),
            "n_classes": self.model_.n_classes,
            "preprocessing": self.preprocessor_.to_dict(),
            "feature_names_in": [str(c) for c in getattr(self, "feature_names_in_", [])],
            "n_features_in": int(self.n_features_in_),
            "params": {k: v for k, v in self.get_params().items()
                       if k != "variant" and isinstance(v, (int, float, str, bool, dict, type(None)))},
            "history": self.history_,
        }

    @classmethod
    def _rebuild(cls, manifest: dict[str, Any], model: Any, device: str) -> Any:
        """An estimator of this class with the saved parameters and the learned state of a
        loaded bundle (the shared part of every ``load``)."""
        params = {k: v for k, v in manifest.get("params", {}).items()
                  if k in cls._get_param_names()}
        estimator = cls(variant=manifest["variant"], **params)
        estimator.device = device
        estimator._restore(manifest, model)
        return estimator

    def _restore(self, manifest: dict[str, Any], model: Any) -> None:
        from aetool.data.arrays import preprocessor_from_dict

        self.model_ = model
        self.variant_name_ = manifest["variant"]
        self.config_ = self._variant_class().make_config(manifest["config"])
        self.preprocessor_ = preprocessor_from_dict(manifest["preprocessing"])
        self.history_ = manifest.get("history", [])
        self.n_features_in_ = manifest["n_features_in"]
        if manifest.get("feature_names_in"):
            self.feature_names_in_ = np.asarray(manifest["feature_names_in"], dtype=object)

    def set_inference(self, device: str = "auto", precision: str = "fp32",
                      batch_size: int | str = "auto",
                      compile_model: bool = False) -> AutoencoderEstimator:
        """How scoring runs: device, precision (fp32, bf16 or fp16 autocast), batch size
        ('auto': 4096 rows on CPU, 65536 on GPUs) and ``torch.compile`` (pays only for long
        runs: see docs/scale.md). Learned state is untouched."""
        from aetool.training import resolve_device

        if precision not in ("fp32", "bf16", "fp16"):
            raise AetoolError(f"precision must be fp32, bf16 or fp16, got '{precision}'")
        self.device = device
        self.precision_ = precision
        if batch_size == "auto":
            batch_size = 4096 if resolve_device(device).type == "cpu" else 65536
        if int(batch_size) < 1:
            raise AetoolError(f"batch size must be a positive number or auto, got {batch_size}")
        self.inference_batch_size_ = int(batch_size)
        self.compile_model_ = bool(compile_model)
        return self

    def _inference(self) -> dict[str, Any]:
        """How :func:`aetool.scoring.run_batches` runs the model (see :meth:`set_inference`)."""
        return {"device": self.device, "precision": getattr(self, "precision_", "fp32"),
                "batch_size": getattr(self, "inference_batch_size_", 4096),
                "compile_model": getattr(self, "compile_model_", False)}

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


# A table detector wants a smoother plain AE than the variant's general default: with the
# stronger L2 penalty it cannot learn to copy rare rows; on ODDS the mean ROC-AUC rose
# 0.842 -> 0.848 (5e-4: 0.844, 3e-3: 0.846, 1e-2: 0.826). Images keep the variant's default
# (not measured there). See docs/benchmarks.md.
TABLE_DETECTION_DEFAULTS: dict[str, dict[str, Any]] = {"ae": {"weight_penalty": 1e-3}}


class AutoencoderDetector(OutlierMixin, AutoencoderEstimator):
    """Outlier detector from an autoencoder's reconstruction (and code) with the conventions of
    scikit-learn's IsolationForest: ``score_samples`` (lower = more abnormal),
    ``decision_function`` (negative = outlier), ``predict`` (+1 inlier / -1 outlier).

    ``contamination`` sets the threshold as a training-score quantile unless ``threshold`` (a
    fixed anomaly score) is given; 'auto', for an unknown share, puts it at Tukey's upper fence
    of the training scores (Q3 + 1.5 IQR). ``score_method`` is 'combined' (reconstruction, code
    distance and code mixture density), 'reconstruction' or 'latent'. ``trim`` refits on the rows below
    the (1 - trim) training-score quantile, so anomalies in the training data teach the model
    less. ``log_views`` feeds the model a log-compressed copy of each numeric table column as
    well (see docs/detect.md). On tables the plain ``ae`` trains with ``weight_penalty`` 1e-3
    (TABLE_DETECTION_DEFAULTS) unless ``variant_params`` says otherwise. ``code_core`` is the
    share of training codes the code distribution is estimated from (see
    :func:`aetool.scoring.core_codes`): 'auto' is 0.6 on tables, whose training data usually hold
    anomalies, and 1 (all codes) on images, whose training sets are usually curated normal ones.
    """

    def __init__(
        self,
        variant: Any = "ae",
        contamination: float | str = 0.1,
        threshold: float | None = None,
        score_method: str = "combined",
        trim: float = 0.0,
        log_views: bool = True,
        code_core: float | str = "auto",
        variant_params: dict[str, Any] | None = None,
        epochs: int = 60,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        max_steps: int = 300,
        patience: int = 8,
        random_state: int | None = 0,
        device: str = "auto",
        verbose: bool = False,
    ) -> None:
        super().__init__(variant, variant_params, epochs, batch_size, learning_rate, max_steps,
                         patience, random_state, device, verbose)
        self.contamination = contamination
        self.threshold = threshold
        self.score_method = score_method
        self.trim = trim
        self.log_views = log_views
        self.code_core = code_core

    def _table_options(self) -> dict[str, Any]:
        return {"log_views": bool(self.log_views)}

    def _config_values(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        """The variant's settings, over the table-detection defaults when the input is a table
        row (``variant_params`` wins)."""
        name = self._variant_class().name
        defaults = TABLE_DETECTION_DEFAULTS.get(name, {}) if len(input_shape) == 1 else {}
        return {**defaults, **(self.variant_params or {})}

    def _core_share(self, table: bool) -> float:
        """``code_core`` as a number: 'auto' is CORE_SHARE on tables and 1 (all codes) on images,
        where a curated training set trimmed by 40% scored worse (one-class MNIST 0.950 ->
        0.936)."""
        from aetool.scoring import CORE_SHARE

        if isinstance(self.code_core, str) and self.code_core == "auto":
            return CORE_SHARE if table else 1.0
        try:
            share = float(self.code_core)
        except (TypeError, ValueError):
            share = float("nan")
        if not 0.5 <= share <= 1.0:
            raise SettingError(f"code_core must be 'auto' or a share of training codes in "
                               f"[0.5, 1], got {self.code_core!r}")
        return share

    def fit(self, X: Any, y: Any = None) -> AutoencoderDetector:
        """Train the autoencoder on ``X`` (``y`` is ignored: detection is unsupervised)."""
        from aetool.variants.base import CONDITIONAL

        variant = self._variant_class()
        if CONDITIONAL in variant.capabilities:
            raise AetoolError(f"variant '{variant.name}' is conditional (needs class labels); "
                              "use an unconditional variant for anomaly detection")
        if not 0.0 <= float(self.trim) < 0.5:
            raise DataError(f"trim must be in [0, 0.5) (the share of training rows to leave out "
                            f"of the refit), got {self.trim}")
        if self.threshold is None:
            from aetool.thresholds import check_contamination

            check_contamination(self.contamination)  # before training, not after
        elif not np.isfinite(float(self.threshold)):
            raise SettingError(f"threshold must be a finite anomaly score, got {self.threshold}")
        self._core_share(table=True)  # a bad value fails before training
        matrix, _ = self._prepare(X, reset=True)
        self._fit_model(matrix)
        if self.trim and matrix.shape[0] >= 20:
            scores = self._fit_scorer(matrix)
            keep = scores <= np.quantile(scores, 1.0 - self.trim)
            self._refit(matrix[keep])
        self._fit_scorer(matrix)
        return self

    def _refit(self, matrix: np.ndarray) -> Any:
        import torch

        from aetool.training import seed_everything, train_model

        cfg = self._train_config()
        result = train_model(self.model_, torch.from_numpy(matrix), None, cfg,
                             seed_everything(cfg.seed + 1), quiet=not self.verbose)
        self.history_ = self.history_ + result.history
        return self.model_

    def _fit_scorer(self, matrix: np.ndarray) -> np.ndarray:
        from aetool.scoring import Scorer, model_outputs
        from aetool.thresholds import contamination_threshold

        errors, codes = model_outputs(self.model_, matrix, device=self.device)
        try:
            self.scorer_, scores = Scorer.fit(errors, codes, self.score_method,
                                              self._core_share(table=matrix.ndim == 2))
        except ValueError as exc:
            raise AetoolError(str(exc)) from None
        if self.threshold is not None:
            self.threshold_ = float(self.threshold)
        else:
            self.threshold_ = contamination_threshold(scores, self.contamination)
        self.offset_ = -self.threshold_
        return scores

    def set_threshold(self, threshold: float | None = None,
                      contamination: float | str | None = None) -> AutoencoderDetector:
        """Move the threshold of a fitted detector without retraining: to a fixed score, or to
        the ``contamination`` quantile of the saved training scores (the same value fitting
        with that contamination gives). The probabilities follow the new threshold."""
        from aetool.thresholds import threshold_from_training

        check_is_fitted(self)
        if threshold is not None and contamination is not None:
            raise SettingError("give a threshold or a contamination, not both")
        if threshold is not None:
            self.threshold_ = float(threshold)
        elif contamination is not None:
            self.threshold_ = threshold_from_training(self.scorer_.train_quantiles, contamination)
        self.offset_ = -self.threshold_
        return self

    # -- scoring ---------------------------------------------------------------------------------
    def anomaly_details(self, X: Any, explain: bool = True) -> dict[str, np.ndarray]:
        """Scores, probabilities and labels for ``X`` in one pass; with ``explain`` also the
        per-element squared errors and each feature's share of them ('contributions')."""
        from aetool.scoring import score_rows

        check_is_fitted(self)
        matrix, _ = self._prepare(X, reset=False)
        scores, errors = score_rows(self.model_, self.scorer_, matrix, keep_errors=explain,
                                    **self._inference())
        details = {
            "anomaly_score": scores,
            "anomaly_probability": anomaly_probability(scores, self.threshold_,
                                                       self.scorer_.train_quantiles),
            "score_percentile": self.scorer_.percentile(scores),
            "is_anomaly": scores > self.threshold_,
        }
        if explain:
            details["errors"] = errors
            details["contributions"] = self.scorer_.contributions(errors)
        return details

    def score_samples(self, X: Any) -> np.ndarray:
        """The opposite of the anomaly score: lower means more abnormal."""
        return -self.anomaly_details(X, explain=False)["anomaly_score"]

    def decision_function(self, X: Any) -> np.ndarray:
        """Negative for outliers, positive for inliers (``score_samples - offset_``)."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """+1 for inliers and -1 for outliers."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Columns (inlier, outlier): the outlier column is ``anomaly_probability``, above 0.5
        exactly for the rows :meth:`predict` flags (PyOD's layout, so code written for it
        works)."""
        outlier = self.anomaly_details(X, explain=False)["anomaly_probability"]
        return np.column_stack([1.0 - outlier, outlier])

    def explain(self, X: Any, top_k: int = 3) -> list[list[tuple[str, float]]]:
        """For each row, the ``top_k`` input columns by their share of the reconstruction error."""
        details = self.anomaly_details(X)
        return top_features(details["contributions"], self.preprocessor_, top_k)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path: str | Path, force: bool = False) -> Path:
        """Write a bundle (manifest.json + weights.safetensors); no pickle is involved."""
        from aetool.bundle import save_bundle

        check_is_fitted(self)
        manifest = self._manifest("detect")
        manifest["detector"] = {"scorer": self.scorer_.to_dict(), "threshold": self.threshold_,
                                "contamination": self.contamination}
        if hasattr(self, "table_spec_"):
            manifest["table"] = self.table_spec_.to_dict()
        return save_bundle(path, self.model_, manifest, force=force)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> AutoencoderDetector:
        """Load a detector bundle saved by :meth:`save` (or ``aetool fit``)."""
        from aetool.bundle import load_bundle

        manifest, model = load_bundle(path, device=device)
        return cls.from_bundle(manifest, model, device, where=str(path))

    @classmethod
    def from_bundle(cls, manifest: dict[str, Any], model: Any, device: str = "cpu",
                    where: str = "bundle") -> AutoencoderDetector:
        """A detector from a loaded manifest and model (used by :meth:`load` and by workers)."""
        from aetool.bundle import manifest_errors
        from aetool.errors import BundleError
        from aetool.scoring import Scorer

        if manifest.get("task") != "detect":
            raise BundleError(f"{where}: holds a '{manifest.get('task')}' model, not a detector")
        with manifest_errors(where):
            detector = cls._rebuild(manifest, model, device)
            detector.scorer_ = Scorer.from_dict(manifest["detector"]["scorer"])
            detector.threshold_ = float(manifest["detector"]["threshold"])
            detector.offset_ = -detector.threshold_
            if manifest.get("table"):
                from aetool.tasks.detect import TableSpec

                detector.table_spec_ = TableSpec(**manifest["table"])
        return detector


def column_shares(contributions: np.ndarray, preprocessor: Any) -> tuple[list[str], np.ndarray]:
    """Each original column's share of each row's error: encoded-feature shares (one-hot
    categories, log views) summed by the column they came from."""
    groups = getattr(preprocessor, "feature_groups", None)
    if groups is None:
        raise DataError("explanations by feature need tabular data")
    names = list(dict.fromkeys(groups))
    index = np.asarray([names.index(g) for g in groups])
    per_column = np.zeros((contributions.shape[0], len(names)))
    np.add.at(per_column, (slice(None), index), contributions)
    return names, per_column


def top_features(contributions: np.ndarray, preprocessor: Any,
                 top_k: int) -> list[list[tuple[str, float]]]:
    """Group encoded-feature shares by original column and keep the ``top_k`` largest per row."""
    names, per_column = column_shares(contributions, preprocessor)
    order = np.argsort(-per_column, axis=1)[:, :top_k]
    return [[(names[j], float(per_column[i, j])) for j in row] for i, row in enumerate(order)]


class Autoencoder(AutoencoderEstimator):
    """Any variant trained on ``X`` (labels ``y`` only for conditional variants), with
    ``transform`` (codes), ``reconstruct``, ``sample`` and bundle save/load."""

    def fit(self, X: Any, y: Any = None) -> Autoencoder:
        from aetool.variants.base import CONDITIONAL

        matrix, _ = self._prepare(X, reset=True)
        labels = n_classes = None
        if CONDITIONAL in self._variant_class().capabilities:
            if y is None:
                raise DataError(f"variant '{self._variant_class().name}' needs class labels "
                                "(a 'y' array in the .npz file or --label-column)")
            self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
            labels, n_classes = codes.astype(np.int64), len(self.classes_)
        self._fit_model(matrix, labels, n_classes)
        return self

    def transform(self, X: Any, labels: Any = None) -> np.ndarray:
        """The encoder's codes (for VAEs the posterior mean); conditional variants need the
        class ``labels`` of the rows."""
        from aetool.scoring import run_batches

        check_is_fitted(self)
        matrix, _ = self._prepare(X, reset=False)
        out = run_batches(self.model_, matrix, _codes, self._label_codes(labels),
                          **self._inference())
        return out.get("codes", np.zeros((len(matrix), 0), np.float32))

    def _label_codes(self, labels: Any) -> np.ndarray | None:
        if not hasattr(self, "classes_"):
            return None
        if labels is None:
            raise AetoolError(f"variant '{self.variant_name_}' is conditional: pass the labels")
        labels = np.asarray(labels)
        known = np.isin(labels, self.classes_)
        if not known.all():
            raise AetoolError(f"label '{labels[~known][0]}' was not seen in training; known: "
                              f"{', '.join(map(str, self.classes_))}")
        return np.searchsorted(self.classes_, labels).astype(np.int64)

    def sample(self, n: int, label: Any = None, seed: int = 0) -> np.ndarray:
        """``n`` new samples in model space ([0, 1] for images), optionally of class ``label``."""
        import torch

        check_is_fitted(self)
        generator = torch.Generator().manual_seed(seed)
        y = None
        if label is not None:
            classes = [str(c) for c in getattr(self, "classes_", [])]
            if str(label) not in classes:
                raise AetoolError(f"label '{label}' is not one of the model's classes: "
                                  f"{', '.join(classes) or 'none (not a conditional model)'}")
            y = torch.full((n,), classes.index(str(label)), dtype=torch.long)
        self.model_.to("cpu")
        try:
            out = self.model_.sample(n, y, generator)
        except NotImplementedError:
            raise AetoolError(f"variant '{self.variant_name_}' is not generative; "
                              "train a vae or cvae to sample") from None
        return out.numpy()

    def save(self, path: str | Path, force: bool = False) -> Path:
        from aetool.bundle import save_bundle

        check_is_fitted(self)
        manifest = self._manifest("autoencoder")
        if hasattr(self, "classes_"):
            manifest["classes"] = [c.item() if hasattr(c, "item") else c for c in self.classes_]
        return save_bundle(path, self.model_, manifest, force=force)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Autoencoder:
        from aetool.bundle import load_bundle, manifest_errors

        manifest, model = load_bundle(path, device=device)
        with manifest_errors(str(path)):
            estimator = cls._rebuild(manifest, model, device)
            if "classes" in manifest:
                estimator.classes_ = np.asarray(manifest["classes"])
        return estimator


def _codes(xb: Any, code: Any, recon: Any) -> dict[str, Any]:
    return {"codes": code.float()}
