"""Encoder and decoder building blocks: fully connected for vectors, convolutional for images."""

from __future__ import annotations

import math
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
}


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation '{name}'; choose one of {', '.join(sorted(ACTIVATIONS))}"
        ) from None


def mlp(sizes: list[int], act: str, final: str | None = None) -> nn.Sequential:
    """Linear layers with ``act`` between them and optional ``final`` activation at the end."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation(act))
    if final:
        layers.append(activation(final))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Flattens any input and maps it to ``out_features`` through the hidden widths."""

    def __init__(self, input_shape: tuple[int, ...], hidden: list[int], out_features: int,
                 act: str, extra_inputs: int = 0, final: str | None = None) -> None:
        super().__init__()
        n_in = math.prod(input_shape) + extra_inputs
        self.net = mlp([n_in, *hidden, out_features], act, final)

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        h = x.flatten(1)
        if extra is not None:
            h = torch.cat([h, extra], dim=1)
        return self.net(h)


class MLPDecoder(nn.Module):
    """Maps a code back to ``output_shape`` through the hidden widths in reverse."""

    def __init__(self, output_shape: tuple[int, ...], hidden: list[int], in_features: int,
                 act: str) -> None:
        super().__init__()
        self.output_shape = tuple(output_shape)
        self.net = mlp([in_features, *reversed(hidden), math.prod(output_shape)], act)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.output_shape)


def _padded(size: int, depth: int) -> int:
    step = 2**depth
    return int(math.ceil(size / step) * step)


class ConvEncoder(nn.Module):
    """Strided convolutions, then a linear layer to ``out_features``; any (C, H, W) size works
    because inputs are padded to a multiple of 2**depth first."""

    def __init__(self, input_shape: tuple[int, ...], channels: list[int], out_features: int,
                 act: str, extra_inputs: int = 0) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"a convolutional model needs (C, H, W) inputs, got shape {input_shape}")
        c, h, w = input_shape
        depth = len(channels)
        self.pad_h, self.pad_w = _padded(h, depth) - h, _padded(w, depth) - w
        layers: list[nn.Module] = []
        c_in = c + extra_inputs
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), activation(act)]
            c_in = c_out
        self.conv = nn.Sequential(*layers)
        self.grid = (channels[-1], _padded(h, depth) // 2**depth, _padded(w, depth) // 2**depth)
        self.fc = nn.Linear(math.prod(self.grid), out_features)

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        if self.pad_h or self.pad_w:
            x = F.pad(x, (0, self.pad_w, 0, self.pad_h), mode="replicate")
        if extra is not None:
            planes = extra[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            x = torch.cat([x, planes], dim=1)
        return self.fc(self.conv(x).flatten(1))


class ConvDecoder(nn.Module):
    """A linear layer to a small grid, then transposed convolutions, cropped to (C, H, W)."""

    def __init__(self, output_shape: tuple[int, ...], channels: list[int], in_features: int,
                 act: str) -> None:
        super().__init__()
        c, h, w = output_shape
        depth = len(channels)
        self.output_shape = tuple(output_shape)
        self.grid = (channels[-1], _padded(h, depth) // 2**depth, _padded(w, depth) // 2**depth)
        self.fc = nn.Sequential(nn.Linear(in_features, math.prod(self.grid)), activation(act))
        layers: list[nn.Module] = []
        rev = list(reversed(channels))
        for i, c_in in enumerate(rev):
            c_out = rev[i + 1] if i + 1 < len(rev) else c
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i + 1 < len(rev):
                layers.append(activation(act))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], *self.grid)
        out = self.deconv(h)
        _, height, width = self.output_shape
        return out[:, :, :height, :width]


def make_encoder(input_shape: tuple[int, ...], backbone: str, hidden: list[int],
                 channels: list[int], out_features: int, act: str,
                 extra_inputs: int = 0) -> nn.Module:
    """The encoder for ``backbone`` ('mlp', 'conv', or 'auto': conv for images, else mlp)."""
    if resolve_backbone(backbone, input_shape) == "conv":
        return ConvEncoder(input_shape, channels, out_features, act, extra_inputs)
    return MLPEncoder(input_shape, hidden, out_features, act, extra_inputs)


def make_decoder(output_shape: tuple[int, ...], backbone: str, hidden: list[int],
                 channels: list[int], in_features: int, act: str) -> nn.Module:
    if resolve_backbone(backbone, output_shape) == "conv":
        return ConvDecoder(output_shape, channels, in_features, act)
    return MLPDecoder(output_shape, hidden, in_features, act)


def resolve_backbone(backbone: str, input_shape: tuple[int, ...]) -> str:
    if backbone == "auto":
        return "conv" if len(input_shape) == 3 else "mlp"
    if backbone not in ("mlp", "conv"):
        raise ValueError(f"backbone must be 'mlp', 'conv' or 'auto', got '{backbone}'")
    return backbone
