"""Command-line settings turned into estimator parameters: ``--set key=value`` pairs checked
against the estimator's own constructor parameters and the variant's Config, and the table
spec and image size options. The variant is looked up here, once per command."""

from __future__ import annotations

import typing
from typing import Any

from aetool.data.source import TableSpec
from aetool.device import Inference
from aetool.errors import AetoolError, SettingError
from aetool.plugins import get_variant
from aetool.thresholds import check_contamination, check_threshold
from aetool.variants.base import coerce_value, config_from_dict

SETTING_ALIASES = {"lr": "learning_rate", "seed": "random_state"}
NOT_SETTINGS = {"variant", "variant_params", "verbose"}  # chosen by options of their own


def estimator_settings(estimator: type, options: set[str] = frozenset()) -> dict[str, Any]:
    """The ``--set`` keys an estimator takes and their types, read from its constructor
    (scikit-learn's ``_get_param_names``), less those that have options of their own."""
    hints = typing.get_type_hints(estimator.__init__)
    return {name: hints.get(name, Any) for name in estimator._get_param_names()
            if name not in NOT_SETTINGS | set(options)}


def parse_settings(values: tuple[str, ...], variant: str, estimator: type,
                   options: set[str] = frozenset()) -> tuple[type, dict[str, Any]]:
    """The Variant class of ``variant`` and the estimator parameters (``variant_params``
    inside) from ``--set key=value`` pairs; ``options``: parameters the command sets from
    options of its own (e.g. contamination), which ``--set`` does not take."""
    own = estimator_settings(estimator, options)
    params: dict[str, Any] = {}
    variant_values: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise AetoolError(f"--set expects key=value, got '{item}'")
        key = SETTING_ALIASES.get(key.strip(), key.strip())
        if key in own:
            try:
                params[key] = coerce_value(value.strip(), own[key], key)
            except ValueError as exc:
                raise AetoolError(f"--set: {exc}") from None
        else:
            variant_values[key] = value
    variant_cls = get_variant(variant)
    try:
        config = config_from_dict(variant_cls.Config, variant_values,
                                  owner=f"variant '{variant}' (other settings: "
                                        f"{', '.join(sorted(set(own) | {'lr', 'seed'}))})")
    except ValueError as exc:
        raise AetoolError(str(exc)) from None
    params["variant_params"] = {k: getattr(config, k) for k in variant_values}
    return variant_cls, params


def contamination(value: Any) -> float | str:
    """A share in (0, 0.5) or 'auto' (a ValueError that says what is wrong otherwise)."""
    return check_contamination(value)


def threshold(value: Any) -> float:
    """A fixed threshold: a finite anomaly score (a ValueError that says what is wrong
    otherwise)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingError(f"expects an anomaly score (a number), got {value!r}") from None
    return check_threshold(number)


def split(text: str | None) -> list[str]:
    """Comma-separated names as a list (empty for None)."""
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def image_size(value: str | None) -> tuple[int, int] | None:
    """``--image-size`` H,W (or HxW, or one number for a square) as (H, W)."""
    if not value:
        return None
    parts = value.lower().replace("x", ",").split(",")
    try:
        sizes = [int(p) for p in parts if p.strip()]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        raise AetoolError(f"--image-size expects H,W (or one size for a square) of whole "
                          f"numbers of pixels of at least 1, got '{value}'")
    return (sizes[0], sizes[-1])


def table_spec(columns: str | None = None, exclude: str | None = None,
               id_column: str | None = None, label_column: str | None = None,
               image_size_text: str | None = None, normal_class: str | None = None,
               strict: bool = False) -> TableSpec:
    """The :class:`TableSpec` the table and image options describe."""
    size = image_size(image_size_text)
    return TableSpec(columns=split(columns) or None, exclude=split(exclude),
                     id_column=id_column, label_column=label_column,
                     image_size=list(size) if size else None, normal_class=normal_class,
                     strict=strict)


def inference(device: str = "auto", precision: str = "fp32", batch_size: str | int = "auto",
              compile_model: bool = False) -> Inference:
    """The typed :class:`Inference` the command-line options describe, checked once here."""
    return Inference.from_options(device, precision, batch_size, compile_model)
