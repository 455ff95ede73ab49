"""Settings that depend on the task and the kind of data, over a variant's general defaults.
Torch-free, so ``aetool variants`` can show them without loading a model."""

from __future__ import annotations

from typing import Any

# A table detector wants a smoother plain AE than the variant's general default: with the
# stronger L2 penalty it cannot learn to copy rare rows; on ODDS the mean ROC-AUC rose
# 0.842 -> 0.848 (5e-4: 0.844, 3e-3: 0.846, 1e-2: 0.826). Images keep the variant's default
# (not measured there). See docs/benchmarks.md.
TABLE_DETECTION_DEFAULTS: dict[str, dict[str, Any]] = {"ae": {"weight_penalty": 1e-3}}
