"""A cheaper tanh for reduced-precision, compiled inference.

Under ``torch.compile`` with bf16 or fp16, the exact (vectorised libm) tanh is the most expensive
step of a small model on CPU, costlier than the matrix products. A (7, 6) Padé approximant,
clamped where it meets ±1, is off by less than 1e-4: twenty times finer than bf16's rounding step
near 0.5, so the scores do not change beyond what the precision itself does. fp32 never uses it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

CLAMP = 4.97  # where the approximant reaches 1 - 1e-4; tanh is flat beyond


def rational_tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) to within 1e-4, from multiplications and one division."""
    # in fp32 whatever the input: bf16 would round the coefficients (17325 -> 17280); compiled,
    # the arithmetic runs in fp32 registers anyway, so this costs nothing
    z = x.float().clamp(-CLAMP, CLAMP)
    z2 = z * z
    numerator = z * (135135.0 + z2 * (17325.0 + z2 * (378.0 + z2)))
    denominator = 135135.0 + z2 * (62370.0 + z2 * (3150.0 + 28.0 * z2))
    return (numerator / denominator).to(x.dtype)


class RationalTanh(nn.Module):
    """Drop-in for ``nn.Tanh`` computing :func:`rational_tanh`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rational_tanh(x)


def with_rational_tanh(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ``nn.Tanh`` modules compute :func:`rational_tanh`."""
    clone = copy.deepcopy(model)
    for parent in list(clone.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Tanh:
                setattr(parent, name, RationalTanh())
    return clone
