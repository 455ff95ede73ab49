"""Conditional VAE: one-hot labels condition the encoder and decoder; samples for a chosen class."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from aetool.hookspecs import hookimpl
from aetool.variants.base import CONDITIONAL, EXPORTABLE, GENERATIVE, IMAGE, TABULAR, Variant
from aetool.variants.vae import VAEConfig


@dataclasses.dataclass
class CVAEConfig(VAEConfig):
    """As the VAE; labels are one-hot encoded (never fed as raw integers). ``label_layers``:
    'input' feeds the label to the decoder's first layer (with the code), 'all' to every
    decoder layer. 'input' is the default: on MNIST it drew the asked-for digit more often
    (conditional accuracy 0.925 against 0.902) and tied on scikit-learn's digits (1.000 both),
    bench/generative.py."""

    label_layers: str = "input"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.label_layers not in ("all", "input"):
            raise ValueError(f"setting 'label_layers' must be all or input, got "
                             f"'{self.label_layers}'")


class ConditionalVAE(Variant):
    name = "cvae"
    summary = "conditional VAE; one-hot labels, class-conditional sampling"
    capabilities = frozenset({TABULAR, IMAGE, GENERATIVE, CONDITIONAL, EXPORTABLE})
    Config = CVAEConfig
    bundle_defaults: ClassVar[dict[str, Any]] = {"likelihood": "gaussian"}  # saved before it

    @classmethod
    def build(cls, input_shape: tuple[int, ...], config: Any, n_classes: int | None = None) -> Any:
        from aetool.models.vae import CVAE

        return CVAE(input_shape, config, n_classes)


@hookimpl
def register_variants(register: Any) -> None:
    register(ConditionalVAE)
