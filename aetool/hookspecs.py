"""Hook specifications: the points where plugins, built-in or installed, extend aetool."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("aetool")
hookimpl = pluggy.HookimplMarker("aetool")


@hookspec
def register_variants(register: Callable[[type], None]) -> None:
    """Register autoencoder variants.

    Called once when the plugin manager first needs the variant registry. Call
    ``register(VariantClass)`` for each variant the plugin provides; see
    :class:`aetool.variants.base.Variant` for the contract. Return nothing.
    """


@hookspec
def register_noise_models(register: Callable[[type], None]) -> None:
    """Register noise models used to corrupt inputs (denoising training and benchmarks).

    Called once when the noise registry is first needed. Call ``register(NoiseClass)`` for each
    model; see :class:`aetool.noise.NoiseModel` for the contract. Return nothing.
    """
