"""Autoencoder: any variant trained on X (labels only for conditional variants), with codes,
reconstructions, samples and bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from aetool.bundle import load_bundle, manifest_errors, save_bundle
from aetool.errors import AetoolError, DataError
from aetool.estimators.base import AutoencoderEstimator
from aetool.scoring import run_batches
from aetool.variants.base import CONDITIONAL


class Autoencoder(AutoencoderEstimator):
    """Any variant trained on ``X`` (labels ``y`` only for conditional variants), with
    ``transform`` (codes), ``reconstruct``, ``sample`` and bundle save/load."""

    def fit(self, X: Any, y: Any = None) -> Autoencoder:
        variant = self._variant_class()
        matrix, _ = self._prepare(X, reset=True)
        labels = n_classes = None
        if CONDITIONAL in variant.capabilities:
            if y is None:
                raise DataError(f"variant '{variant.name}' needs class labels "
                                "(a 'y' array in the .npz file or --label-column)")
            self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
            labels, n_classes = codes.astype(np.int64), len(self.classes_)
        self._fit_model(matrix, variant, labels, n_classes)
        return self

    def transform(self, X: Any, labels: Any = None) -> np.ndarray:
        """The encoder's codes (for VAEs the posterior mean); conditional variants need the
        class ``labels`` of the rows."""
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
        check_is_fitted(self)
        manifest = self._manifest("autoencoder")
        if hasattr(self, "classes_"):
            manifest["classes"] = [c.item() if hasattr(c, "item") else c for c in self.classes_]
        return save_bundle(path, self.model_, manifest, force=force)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Autoencoder:
        manifest, model = load_bundle(path, device=device)
        with manifest_errors(str(path)):
            estimator = cls._rebuild(manifest, model, device)
            if "classes" in manifest:
                estimator.classes_ = np.asarray(manifest["classes"])
        return estimator


def _codes(xb: Any, code: Any, recon: Any) -> dict[str, Any]:
    return {"codes": code.float()}
