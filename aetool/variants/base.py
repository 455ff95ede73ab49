"""The Variant contract every autoencoder plugin implements.

A variant is a class with a ``name`` (lower case, unique, stored in saved models), a one-line
``summary``, a set of ``capabilities`` and a ``Config`` dataclass of hyper-parameters. Its
``build`` returns an :class:`aetool.models.base.AutoencoderModule`. This module imports no torch,
so listing variants stays fast.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, ClassVar

TABULAR = "tabular"
IMAGE = "image"
GENERATIVE = "generative"
CONDITIONAL = "conditional"
DENOISING = "denoising"
EXPORTABLE = "onnx"  # exports to ONNX with scores equal to aetool's (aetool.testing checks)
CAPABILITIES = (TABULAR, IMAGE, GENERATIVE, CONDITIONAL, DENOISING, EXPORTABLE)


@dataclasses.dataclass
class NetConfig:
    """Network shape shared by the built-in variants.

    ``backbone``: 'mlp' (flattens images), 'conv' (images only) or 'auto' (conv for images).
    ``hidden``: widths of the fully connected layers; ``channels``: convolution widths.
    ``code_size`` 0 picks a size from the input (see :func:`auto_code_size`).
    """

    backbone: str = "mlp"
    hidden: list[int] = dataclasses.field(default_factory=lambda: [64])
    channels: list[int] = dataclasses.field(default_factory=lambda: [32, 64])
    code_size: int = 0
    activation: str = "tanh"

    def __post_init__(self) -> None:
        """Refuse values no network can have, naming the setting (not a torch error later):
        widths must be positive and every number (sizes, penalties, weights) finite and >= 0."""
        if self.backbone not in ("mlp", "conv", "auto"):
            raise ValueError(f"setting 'backbone' must be mlp, conv or auto, got '{self.backbone}'")
        for name in ("hidden", "channels"):
            widths = getattr(self, name)
            if any(int(w) < 1 for w in widths):
                raise ValueError(f"setting '{name}' needs positive widths, got {list(widths)}")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not (
                    math.isfinite(value) and value >= 0):
                raise ValueError(f"setting '{field.name}' must be a finite number >= 0, "
                                 f"got {value}")


class Variant:
    """Base class of all variants; subclasses set the class attributes and implement ``build``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset({TABULAR})
    Config: ClassVar[type] = NetConfig
    # Settings a bundle saved before the setting existed was trained with, where that differs
    # from today's default (e.g. the VAE's Gaussian likelihood before 'likelihood' existed).
    bundle_defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def build(
        cls, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None
    ) -> Any:
        """Return an ``AutoencoderModule`` for inputs of ``input_shape`` (without batch axis)."""
        raise NotImplementedError

    # -- config helpers, shared by every variant -------------------------------------------------
    @classmethod
    def default_config(cls) -> Any:
        return cls.Config()

    @classmethod
    def config_fields(cls) -> dict[str, Any]:
        """Field name -> default value (JSON types), the schema the CLI shows."""
        return config_to_dict(cls.Config())

    @classmethod
    def make_config(cls, values: dict[str, Any] | None = None) -> Any:
        """A Config from a dict of (possibly string) values; unknown keys are an error."""
        return config_from_dict(cls.Config, values or {}, owner=f"variant '{cls.name}'")

    @classmethod
    def config_from_bundle(cls, values: dict[str, Any] | None) -> Any:
        """The Config a saved bundle was trained with: its settings over ``bundle_defaults``,
        so a bundle from before a setting existed loads as it was trained."""
        return cls.make_config({**cls.bundle_defaults, **(values or {})})

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "name": cls.name,
            "summary": cls.summary,
            "capabilities": sorted(cls.capabilities),
            "config": cls.config_fields(),
        }


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain JSON-compatible values."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _field_types(config_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(config_cls)}


def coerce_value(raw: Any, annotation: Any, key: str) -> Any:
    """Turn a CLI string (or JSON value) into the field's declared type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null")):
            return None
        non_none = [a for a in args if a is not type(None)]
        for option in non_none[:-1]:  # float | str: a number if it reads as one, else text
            try:
                return coerce_value(raw, option, key)
            except ValueError:
                continue
        return coerce_value(raw, non_none[-1], key)
    if origin in (list, tuple):
        item_type = args[0] if args else Any
        if isinstance(raw, str):
            raw = [part for part in raw.replace(" ", "").split(",") if part]
        return [coerce_value(item, item_type, key) for item in raw]
    if not isinstance(raw, str):
        if annotation is float and isinstance(raw, int) and not isinstance(raw, bool):
            return float(raw)
        return raw
    try:
        if annotation is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if annotation is int:
            return int(raw)
        if annotation is float:
            return float(raw)
    except ValueError:
        raise ValueError(
            f"setting '{key}' expects {getattr(annotation, '__name__', annotation)}, got '{raw}'"
        ) from None
    return raw


def config_from_dict(config_cls: type, values: dict[str, Any], owner: str) -> Any:
    """Build ``config_cls`` from ``values``, converting strings, rejecting unknown keys."""
    types_by_name = _field_types(config_cls)
    unknown = sorted(set(values) - set(types_by_name))
    if unknown:
        raise ValueError(
            f"unknown setting(s) {', '.join(unknown)} for {owner}; "
            f"valid: {', '.join(sorted(types_by_name))}"
        )
    converted = {k: coerce_value(v, types_by_name[k], k) for k, v in values.items()}
    return config_cls(**converted)
