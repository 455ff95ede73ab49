"""Sizes a model picks for itself; torch-free, so the plugin API can offer them without torch."""

from __future__ import annotations


def auto_code_size(input_shape: tuple[int, ...]) -> int:
    """A bottleneck narrower than the input: 32 for images, else about half the width (1-32)."""
    if len(input_shape) == 3:
        return 32
    n_inputs = int(input_shape[0]) if input_shape else 1
    return int(max(1, min(32, n_inputs // 2 if n_inputs >= 4 else n_inputs - 1)))


__all__ = ["auto_code_size"]
