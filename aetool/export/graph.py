"""The torch modules an ONNX export traces: the fitted preprocessing, the model and the score,
written with the same tensor functions aetool scores with, so the exported graph computes what
``aetool score`` computes (only the kernels differ).

Tables enter as raw values: a float64 matrix of the numeric columns in training order (NaN =
missing) and, per categorical column, the category's index in the training categories (the
string-to-index step is an ONNX-ML ``LabelEncoder`` added by :mod:`aetool.export.onnx`). Images
enter as raw pixel values. Scores are combined in float64, as :class:`aetool.scoring.Scorer`
combines them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from aetool.data.preprocess import MAX_STANDARD_SCORE
from aetool.scoring import EPS, _code_distance, _mixture_nll, _recon_distance
from aetool.thresholds import probability_scale


def _double(values: Any) -> torch.Tensor:
    return torch.tensor(np.asarray(values, dtype=np.float64), dtype=torch.float64)


class TableInput(nn.Module):
    """Raw table values -> the model's float32 matrix, as :meth:`TablePreprocessor.transform`:
    median imputation, standardisation, one-hot codes (unknown index -1: all zero), the log
    views and the clip, in float64 until the final cast."""

    def __init__(self, preprocessor: Any) -> None:
        super().__init__()
        prep = preprocessor
        self.numeric_columns = prep.numeric_columns
        self.categorical_columns = prep.categorical_columns
        stats = [prep.numeric[c] for c in self.numeric_columns]
        self.register_buffer("fill", _double([s["fill"] for s in stats]))
        self.register_buffer("mean", _double([s["mean"] for s in stats]))
        self.register_buffer("scale", _double([s["scale"] for s in stats]))
        logged = [self.numeric_columns.index(c) for c in prep.log_views]
        self.register_buffer("log_index", torch.tensor(logged, dtype=torch.long))
        self.register_buffer("log_mean", _double([v["mean"] for v in prep.log_views.values()]))
        self.register_buffer("log_scale", _double([v["scale"] for v in prep.log_views.values()]))
        self.widths = [len(prep.categorical[c]) for c in self.categorical_columns]
        # the blocks are computed numeric first, then categorical, then log views; this
        # permutation puts them in the encoded order of TablePreprocessor.feature_names
        starts, offset = [], len(self.numeric_columns)
        for width in self.widths:
            starts.append(offset)
            offset += width
        order: list[int] = []
        for column in prep.order:
            if column in prep.numeric:
                order.append(self.numeric_columns.index(column))
            else:
                j = self.categorical_columns.index(column)
                order.extend(range(starts[j], starts[j] + self.widths[j]))
        order.extend(range(offset, offset + len(logged)))
        self.register_buffer("order", torch.tensor(order, dtype=torch.long))

    def forward(self, numeric: torch.Tensor | None, codes: torch.Tensor | None) -> torch.Tensor:
        blocks = []
        filled = None
        if numeric is not None:
            filled = torch.where(torch.isnan(numeric), self.fill, numeric)
            blocks.append((filled - self.mean) / self.scale)
        for j, width in enumerate(self.widths):
            index = torch.arange(width, device=codes.device)
            blocks.append((codes[:, j:j + 1] == index).to(torch.float64))
        if filled is not None and self.log_index.numel():
            z = (filled[:, self.log_index] - self.fill[self.log_index]) / self.scale[self.log_index]
            view = torch.sign(z) * torch.log1p(torch.abs(z))
            blocks.append((view - self.log_mean) / self.log_scale)
        matrix = torch.cat(blocks, dim=1)[:, self.order]
        return matrix.clamp(-MAX_STANDARD_SCORE, MAX_STANDARD_SCORE).to(torch.float32)


class ImageInput(nn.Module):
    """Raw pixel values -> [0, 1], by the divisor saved at training (255 for 8-bit images)."""

    def __init__(self, preprocessor: Any) -> None:
        super().__init__()
        self.divisor = float(preprocessor.scale)
        self.shape = tuple(preprocessor.shape)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(torch.float32) / torch.tensor(self.divisor, dtype=torch.float32)


class ScoreHead(nn.Module):
    """Squared errors and codes -> anomaly score, probability, flag and each feature's share of
    the error, as :class:`aetool.scoring.Scorer` and :func:`aetool.thresholds.anomaly_probability`
    compute them for ``threshold``."""

    def __init__(self, scorer: Any, threshold: float) -> None:
        super().__init__()
        weights, code_mean, factor = scorer._tensors("cpu")
        mixture = scorer._mixture_tensors("cpu")
        self.table = weights is not None
        self.register_buffer("weights", weights if weights is not None else torch.zeros(0))
        self.register_buffer("share_scale", _double(scorer.explanation_scale
                                                    if self.table else []))
        self.latent = factor is not None
        self.register_buffer("code_mean", code_mean if self.latent else torch.zeros(0))
        self.register_buffer("factor", factor if self.latent else torch.zeros(0))
        self.mixture = mixture is not None
        for name, value in zip(("centre", "stacked", "offsets", "log_norms"),
                               mixture or (torch.zeros(0),) * 4, strict=True):
            self.register_buffer(f"mix_{name}", value)
        self.only_latent = scorer.method == "latent" and self.latent
        self.centres = (scorer.recon_center, scorer.latent_center, scorer.mixture_center)
        self.scales = (scorer.recon_scale, scorer.latent_scale, scorer.mixture_scale)
        self.threshold = float(threshold)
        self.probability_scale = float(probability_scale(threshold, scorer.train_quantiles))

    def _z(self, raw: torch.Tensor, part: int) -> torch.Tensor:
        return (raw.to(torch.float64) - self.centres[part]) / self.scales[part]

    def forward(self, x: torch.Tensor, code: torch.Tensor, recon: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        squared = (recon.float() - x).square().flatten(1)
        score = self._z(_recon_distance(squared, self.weights if self.table else None), 0)
        if self.latent:
            latent = self._z(_code_distance(code, self.code_mean, self.factor), 1)
            if self.mixture:
                latent = latent + self._z(_mixture_nll(code, self.mix_centre, self.mix_stacked,
                                                       self.mix_offsets, self.mix_log_norms), 2)
            score = latent if self.only_latent else score + latent
        z = ((score - self.threshold) / self.probability_scale).clamp(-700.0, 700.0)
        probability = torch.sigmoid(z)
        weighted = squared.to(torch.float64)
        if self.table:
            weighted = weighted / self.share_scale
        shares = weighted / (weighted.sum(dim=1, keepdim=True) + EPS)
        return score, probability, score > self.threshold, shares.view(x.shape)


class _FromRawInput(nn.Module):
    """The shared front of the exported graphs: the estimator's preprocessing and model."""

    def __init__(self, estimator: Any) -> None:
        super().__init__()
        prep = estimator.preprocessor_
        self.images = hasattr(prep, "shape")
        self.prepare = ImageInput(prep) if self.images else TableInput(prep)
        self.model = estimator.model_

    def model_input(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if self.images:
            return self.prepare(*inputs)
        return self.prepare(*_table_args(self.prepare, inputs))


class DetectorGraph(_FromRawInput):
    """Raw input -> score, probability, flag and per-feature error shares of a fitted
    :class:`aetool.AutoencoderDetector`."""

    def __init__(self, detector: Any) -> None:
        super().__init__(detector)
        self.head = ScoreHead(detector.scorer_, detector.threshold_)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.model_input(inputs)
        code = self.model.encode(x, None)
        return self.head(x, code, self.model.decode(code, None))


class AutoencoderGraph(_FromRawInput):
    """Raw input (and, for conditional variants, the class index) -> code and reconstruction
    (in model space: [0, 1] images, standardised tables) of a fitted :class:`aetool.Autoencoder`."""

    def __init__(self, estimator: Any) -> None:
        super().__init__(estimator)
        self.conditional = hasattr(estimator, "classes_")

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        labels = inputs[-1] if self.conditional else None
        x = self.model_input(inputs[:-1] if self.conditional else inputs)
        code = self.model.encode(x, labels)
        return code, self.model.decode(code, labels)


def _table_args(prepare: TableInput, inputs: tuple[torch.Tensor, ...]
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(numeric, codes) from the traced inputs, which hold only the kinds the table has."""
    rest = list(inputs)
    numeric = rest.pop(0) if prepare.numeric_columns else None
    codes = rest.pop(0) if prepare.categorical_columns else None
    return numeric, codes


def example_inputs(graph: nn.Module, rows: int = 3) -> tuple[torch.Tensor, ...]:
    """Inputs of the right kinds and shapes to trace ``graph`` with (values do not matter)."""
    prep = graph.prepare
    if graph.images:
        inputs: list[torch.Tensor] = [torch.rand(rows, *prep.shape, dtype=torch.float32)]
    else:
        inputs = []
        if prep.numeric_columns:
            inputs.append(torch.randn(rows, len(prep.numeric_columns), dtype=torch.float64))
        if prep.categorical_columns:
            inputs.append(torch.zeros(rows, len(prep.categorical_columns), dtype=torch.long))
    if getattr(graph, "conditional", False):
        inputs.append(torch.zeros(rows, dtype=torch.long))
    return tuple(inputs)


__all__ = ["AutoencoderGraph", "DetectorGraph", "ImageInput", "ScoreHead", "TableInput",
           "example_inputs"]
