"""Torch modules behind the variants (imported only when a model is built)."""
