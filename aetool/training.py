"""One trainer for every variant: AdamW, early stopping on a validation split, gradient clipping,
NaN detection, seeded bit-for-bit repeatable CPU training, progress bar and loss history."""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from aetool.bundle import meta_model
from aetool.data.images import CONV_ACTIVATION_BYTES_PER_PIXEL, MEMORY_SHARE, available_memory
from aetool.data.preprocess import source_name
from aetool.device import resolve_device
from aetool.errors import DataError, SettingError, TrainingError

# Bytes each weight takes while it trains: itself, its gradient and AdamW's two moments.
TRAINING_BYTES_PER_WEIGHT = 16
# Bytes of activations (and their gradients) per value of a vector row in a batch.
ACTIVATION_BYTES_PER_VALUE = 16


@dataclasses.dataclass
class TrainConfig:
    """Training settings shared by all variants (set with ``--set key=value`` like variant ones).

    ``max_steps`` caps the number of optimiser steps (0: no cap), so large tables do not cost
    more than they teach. ``min_steps`` does the opposite for small ones: epochs and patience
    are stretched by the same factor until the epochs make at least that many steps.
    ``val_fraction`` of the rows (at least 8 of them, else none) is held out for early stopping
    with ``patience`` epochs; the best weights are restored.
    """

    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    patience: int = 8
    clip_grad: float = 5.0
    max_steps: int = 0
    min_steps: int = 0
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        """Refuse settings the loop cannot run with, naming them (before any data is touched)."""
        at_least = {"epochs": 1, "batch_size": 1, "patience": 0, "max_steps": 0, "min_steps": 0}
        for name, low in at_least.items():
            if int(getattr(self, name)) < low:
                raise SettingError(f"setting '{name}' must be at least {low}, "
                                   f"got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise SettingError(f"setting 'learning_rate' must be a number > 0, got {self.lr}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise SettingError(f"setting 'val_fraction' must be in [0, 1), got {self.val_fraction}")
        for name in ("weight_decay", "clip_grad"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise SettingError(f"setting '{name}' must be a number >= 0, "
                                   f"got {getattr(self, name)}")


@dataclasses.dataclass
class TrainResult:
    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool
    steps: int
    stop_reason: str | None = None  # why training ran other than the epochs asked for
    val_index: torch.Tensor | None = None  # the rows held out for early stopping


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generator (weight init, VAE sampling) and return a data generator."""
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def progress(total: int, quiet: bool, desc: str = "training", unit: str = "epoch") -> Any:
    """A progress bar on a terminal (none when ``quiet`` or not on one), gone when done."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False,
                disable=quiet or not sys.stderr.isatty())


def train_model(
    model: Any,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    config: TrainConfig | None = None,
    generator: torch.Generator | None = None,
    quiet: bool = False,
) -> TrainResult:
    """Train ``model`` in place on ``x`` (and labels ``y`` for conditional variants)."""
    cfg = config or TrainConfig()
    device = resolve_device(cfg.device)
    model.to(device)
    gen = generator or seed_everything(cfg.seed)
    n = x.shape[0]
    if n < 1:
        raise TrainingError("no rows to train on")
    order = torch.randperm(n, generator=gen)
    n_val = round(n * cfg.val_fraction) if cfg.val_fraction > 0 else 0
    if n_val < 8 or n - n_val < 8:
        n_val = 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    batch_size = max(1, min(cfg.batch_size, len(train_idx)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    history: list[dict[str, float]] = []
    best_loss, best_epoch, best_state = math.inf, 0, None
    bad_epochs, steps, stopped = 0, 0, False
    noise_gen = torch.Generator(device=device)
    noise_gen.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
    epochs, patience = stretched_epochs(cfg, math.ceil(len(train_idx) / batch_size))
    stretch = None if epochs == cfg.epochs else (
        f"trained up to {epochs} epochs instead of {cfg.epochs}: min_steps={cfg.min_steps} "
        "optimiser steps on a small data set")
    reason = stretch
    watched = "validation" if n_val else "training"
    bar = progress(epochs, quiet)
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=gen)]
        sums: dict[str, float] = {}
        seen = 0
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            xb = x[idx].to(device)
            yb = y[idx].to(device) if y is not None else None
            out = model(model.corrupt(xb, noise_gen), yb)
            total, parts = model.loss(xb, out, yb)
            if not torch.isfinite(total):
                bar.close()
                raise TrainingError(
                    f"training loss became {float(total.detach())} at epoch {epoch}; lower the learning "
                    f"rate (--set lr={cfg.lr / 10:g}) or check the data for extreme values"
                )
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if cfg.clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            optimizer.step()
            steps += 1
            seen += len(idx)
            sums["loss"] = sums.get("loss", 0.0) + float(total.detach()) * len(idx)
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) * len(idx)
            for name, value in model.metrics(out).items():
                sums[name] = sums.get(name, 0.0) + float(value) * len(idx)
            if cfg.max_steps and steps >= cfg.max_steps:
                break
        record = {"epoch": float(epoch), **{k: v / seen for k, v in sums.items()}}
        monitored = record["loss"]
        if n_val:
            record["val_loss"] = monitored = evaluate_loss(model, x[val_idx], y[val_idx] if
                                                           y is not None else None, batch_size)
        history.append(record)
        if epoch == 1 and stretch and not quiet:
            _note_long_stretch(time.perf_counter() - started, epochs, cfg,
                               math.ceil(len(train_idx) / batch_size))
        bar.update(1)
        bar.set_postfix(loss=f"{monitored:.4g}")
        if best_state is None or monitored < best_loss - 1e-7 * abs(best_loss):
            best_loss, best_epoch, bad_epochs = monitored, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        elif not warming_up(model):  # a KL warm-up makes the full objective worse at first
            bad_epochs += 1
            if patience and bad_epochs >= patience:
                stopped = True
                reason = (f"stopped at epoch {epoch} of {epochs}: no {watched} improvement for "
                          f"{patience} epochs (kept epoch {best_epoch})"
                          + (f"; {stretch}" if stretch else ""))
                break
        if cfg.max_steps and steps >= cfg.max_steps:
            if epoch < epochs:
                reason = (f"stopped at epoch {epoch} of {epochs}: max_steps={cfg.max_steps} "
                          "optimiser steps reached (--set max_steps=0 lifts the cap)")
            break
    bar.close()
    if reason and not quiet:
        print(f"note: {reason}", file=sys.stderr)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(history, best_epoch, stopped, steps, reason, val_idx if n_val else None)


LONG_STRETCH_S = 300.0  # a stretched training projected longer than this says so up front


def _note_long_stretch(epoch_s: float, epochs: int, cfg: TrainConfig,
                       steps_per_epoch: int) -> None:
    """After the first epoch, when ``min_steps`` stretched the epochs and the whole run looks
    long at this speed (large images, few of them: 100 photographs at 256 px take about 3 s a
    step on 2 CPU cores), say so while the user can still stop it, and how to shorten it."""
    projected = epoch_s * epochs
    if projected < LONG_STRETCH_S:
        return
    from tqdm.auto import tqdm

    steps = "step" if steps_per_epoch == 1 else "steps"
    tqdm.write(f"note: min_steps={cfg.min_steps} stretches training to up to {epochs} epochs "
               f"instead of {cfg.epochs} ({steps_per_epoch} optimiser {steps} an epoch): about "
               f"{projected / 60:.0f} minutes at this speed, less if early stopping ends it; "
               f"--set min_steps=0 trains {cfg.epochs} epochs (about "
               f"{epoch_s * cfg.epochs / 60:.1f} minutes), a smaller --image-size is faster too",
               file=sys.stderr)


def warming_up(model: Any) -> bool:
    """Whether ``model`` is still in a warm-up (e.g. a VAE's KL weight still rising), during
    which early stopping does not count epochs without improvement."""
    check = getattr(model, "warming_up", None)
    return bool(check()) if callable(check) else False


@torch.no_grad()
def evaluate_loss(model: Any, x: torch.Tensor, y: torch.Tensor | None, batch_size: int) -> float:
    """Mean total loss of ``model`` in eval mode (no corruption, no sampling)."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size].to(device)
        yb = y[start:start + batch_size].to(device) if y is not None else None
        loss, _ = model.loss(xb, model(xb, yb), yb)
        total += float(loss) * xb.shape[0]
        count += xb.shape[0]
    return total / max(count, 1)


def stretched_epochs(cfg: TrainConfig, steps_per_epoch: int) -> tuple[int, int]:
    """(epochs, patience) after ``min_steps``: both scaled up together when the epochs would
    make fewer optimiser steps than that, so early stopping waits as long in steps."""
    if not cfg.min_steps or cfg.epochs * steps_per_epoch >= cfg.min_steps:
        return cfg.epochs, cfg.patience
    epochs = math.ceil(cfg.min_steps / max(1, steps_per_epoch))
    return epochs, math.ceil(cfg.patience * epochs / cfg.epochs)


def fit_variant(
    variant: type,
    config: Any,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    n_classes: int | None = None,
    train_config: TrainConfig | None = None,
    quiet: bool = False,
    adapt: Callable[[Any], None] | None = None,
) -> tuple[Any, TrainResult]:
    """Seed, build ``variant`` for ``x``'s shape and train it: the one entry point every task uses.
    ``adapt`` sees the built model before training (e.g. to set the noise in the data's units)."""
    cfg = train_config or TrainConfig()
    check_model_memory(variant, tuple(x.shape[1:]), config, n_classes,
                       min(cfg.batch_size, len(x)), cfg.device)
    generator = seed_everything(cfg.seed)
    try:
        model = variant.build(tuple(x.shape[1:]), config, n_classes)
    except ValueError as exc:  # a setting the network cannot take, e.g. an unknown activation
        raise SettingError(f"variant '{variant.name}': {exc}") from None
    if adapt is not None:
        adapt(model)
    result = train_model(model, x, y, cfg, generator, quiet=quiet)
    return model, result


def model_weights(variant: type, shape: tuple[int, ...], config: Any,
                  n_classes: int | None) -> int | None:
    """How many weights ``variant`` holds for inputs of ``shape``, counted on the meta device
    (nothing allocated); None when it cannot be built there (it is then built as usual)."""
    model = meta_model(variant, shape, config, n_classes)
    return None if model is None else sum(p.numel() for p in model.parameters())


def training_bytes(weights: int, shape: tuple[int, ...], batch: int) -> int:
    """Memory (bytes) to train a model of ``weights`` on batches of ``batch`` rows of
    ``shape``: the weights with their gradients and optimiser moments, and one batch's
    activations (a conv model's feature maps per pixel of an image)."""
    if len(shape) == 3:
        per_row = shape[1] * shape[2] * CONV_ACTIVATION_BYTES_PER_PIXEL
    else:
        per_row = math.prod(shape) * ACTIVATION_BYTES_PER_VALUE
    return weights * TRAINING_BYTES_PER_WEIGHT + batch * per_row


def _free_bytes(device: str) -> int | None:
    """Memory free for training on ``device``: the GPU's free memory, else the machine's."""
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(resolved)[0])
        except (RuntimeError, AssertionError):  # a driver that cannot say: not checked
            return None
    return available_memory()


def check_model_memory(variant: type, shape: tuple[int, ...], config: Any,
                       n_classes: int | None, batch: int, device: str = "auto") -> None:
    """Refuse, before anything is allocated, a model too large to train in the memory free
    (a conv model of 12-megapixel photographs holds billions of weights: killed for memory,
    without a word), and say what would fit."""
    have, weights = _free_bytes(device), model_weights(variant, shape, config, n_classes)
    if have is None or weights is None:
        return
    need = training_bytes(weights, shape, batch)
    if need <= MEMORY_SHARE * have:
        return
    advice = "use fewer columns or a smaller hidden / code_size"
    if len(shape) == 3:
        fits = _largest_fitting(variant, shape, config, n_classes, batch, MEMORY_SHARE * have)
        advice = ("shrink the images with --image-size" +
                  (f" (at most about {fits[0]},{fits[1]} here)" if fits else ""))
    described = "x".join(str(n) for n in shape)
    raise DataError(
        f"{source_name('the data')}: the {variant.name} model of {described} inputs would hold "
        f"{weights / 1e6:,.0f} million weights and need about {_bytes_text(need)} to train, "
        f"more than the {_bytes_text(MEMORY_SHARE * have)} it may take here; {advice}")


def _bytes_text(size: float) -> str:
    """``size`` bytes as GiB (one decimal) from 1 GiB, else MiB."""
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"


def _largest_fitting(variant: type, shape: tuple[int, ...], config: Any, n_classes: int | None,
                     batch: int, budget: float) -> tuple[int, int] | None:
    """The largest (height, width) among ``shape``'s halvings (aspect kept) whose model
    trains within ``budget`` bytes; None if even 8 px on the shorter side does not."""
    channels, height, width = shape
    while min(height, width) > 8:
        height, width = math.ceil(height / 2), math.ceil(width / 2)
        weights = model_weights(variant, (channels, height, width), config, n_classes)
        if weights is None:
            return None
        if training_bytes(weights, (channels, height, width), batch) <= budget:
            return height, width
    return None
