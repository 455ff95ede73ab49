"""Noise models, registered as plugins: they corrupt inputs for denoising training and benchmarks.

Each model is built from a spec such as ``gaussian:0.3`` and applies seeded, reproducible noise.
"""

from __future__ import annotations

from typing import Any, ClassVar

from aetool.hookspecs import hookimpl
from aetool.plugins import get_registry


class NoiseModel:
    """Contract: ``name``, ``summary``, ``__init__(level)`` and ``apply(x, generator)``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    bounded: ClassVar[bool] = True  # level is a probability in [0, 1]

    def __init__(self, level: float) -> None:
        level = float(level)
        if not level >= 0.0 or level == float("inf") or (self.bounded and level > 1.0):
            allowed = "in [0, 1]" if self.bounded else "a finite number >= 0"
            raise ValueError(f"noise level for '{self.name}' must be {allowed}, got {level:g}")
        self.level = level

    def apply(self, x: Any, generator: Any = None) -> Any:
        raise NotImplementedError

    def spec(self) -> str:
        return f"{self.name}:{self.level:g}"


class GaussianNoise(NoiseModel):
    name = "gaussian"
    summary = "adds N(0, level^2) to every value"
    bounded = False

    def apply(self, x: Any, generator: Any = None) -> Any:
        import torch

        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + self.level * noise


class MaskingNoise(NoiseModel):
    name = "masking"
    summary = "sets a fraction 'level' of values to zero (dropout-style masking)"

    def apply(self, x: Any, generator: Any = None) -> Any:
        import torch

        keep = torch.rand(x.shape, generator=generator, device=x.device) >= self.level
        return x * keep.to(x.dtype)


class SaltPepperNoise(NoiseModel):
    name = "salt_pepper"
    summary = "sets a fraction 'level' of values to the minimum or maximum, half each"

    def apply(self, x: Any, generator: Any = None, low: float | None = None,
              high: float | None = None) -> Any:
        import torch

        low = float(x.min()) if low is None else low
        high = float(x.max()) if high is None else high
        u = torch.rand(x.shape, generator=generator, device=x.device)
        out = x.clone()
        out[u < self.level / 2] = low
        out[(u >= self.level / 2) & (u < self.level)] = high
        return out


ALIASES = {"sp": "salt_pepper", "salt-and-pepper": "salt_pepper", "saltpepper": "salt_pepper",
           "mask": "masking", "gauss": "gaussian", "normal": "gaussian"}


def parse_noise(spec: str) -> NoiseModel:
    """Build a registered noise model from ``NAME:LEVEL`` (for example ``gaussian:0.3``)."""
    name, _, level = spec.partition(":")
    name = ALIASES.get(name.strip().lower(), name.strip().lower())
    cls = get_registry().noise_model(name)
    try:
        return cls(float(level) if level else 0.1)
    except ValueError as exc:
        raise ValueError(f"bad noise spec '{spec}': {exc}") from None


@hookimpl
def register_noise_models(register: Any) -> None:
    for cls in (GaussianNoise, MaskingNoise, SaltPepperNoise):
        register(cls)


class InDataUnits:
    """A noise model applied in the data's own units to standardised columns: each feature is
    scaled back by its training spread, corrupted, and standardised again (so gaussian:σ adds
    σ in the column's unit to every column, not σ standard deviations)."""

    def __init__(self, inner: NoiseModel, spread: Any) -> None:
        self.inner = inner
        self.spread = spread

    def apply(self, x: Any, generator: Any = None) -> Any:
        spread = self.spread.to(device=x.device, dtype=x.dtype)
        return self.inner.apply(x * spread, generator) / spread

    def spec(self) -> str:
        return self.inner.spec()


class Clipped:
    """A noise model whose corrupted values are clipped to ``[low, high]``: an image saved with
    noise keeps its pixels in the image's range, so a denoiser learns the noise it will meet."""

    def __init__(self, inner: NoiseModel, low: float = 0.0, high: float = 1.0) -> None:
        self.inner = inner
        self.low = low
        self.high = high

    def apply(self, x: Any, generator: Any = None) -> Any:
        return self.inner.apply(x, generator).clamp(self.low, self.high)

    def spec(self) -> str:
        return self.inner.spec()
