"""Where and how a model runs: device resolution, the precision -> dtype map and the automatic
batch size, shared by the trainer and the score engine, and the typed ``Inference`` settings
that are built once at the edge (CLI or estimator) and handed down unchanged."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from aetool.errors import AetoolError, TrainingError

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16,
                                             "fp16": torch.float16}
AUTO_BATCH_CPU = 4096
AUTO_BATCH_GPU = 65536


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU; anything else is passed to torch."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TrainingError(f"unknown device '{name}'; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise TrainingError(f"device '{name}': no CUDA GPU is visible here; use --device "
                                "auto (GPU when there is one) or cpu")
        if device.index is not None and device.index >= count:
            raise TrainingError(f"device '{name}': only {count} CUDA GPU(s) here, "
                                f"cuda:0 to cuda:{count - 1}")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None)
                                     and torch.backends.mps.is_available()):
        raise TrainingError(f"device '{name}': Apple MPS is not available here; use --device "
                            "auto or cpu")
    return device


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision name (None: plain fp32)."""
    return PRECISIONS[precision]


def auto_batch_size(device: torch.device) -> int:
    """Rows per scoring batch when the user says 'auto': small enough for a CPU's caches, large
    enough to keep a GPU busy."""
    return AUTO_BATCH_CPU if device.type == "cpu" else AUTO_BATCH_GPU


@dataclass(frozen=True)
class Inference:
    """How a trained model is run: device, autocast precision, batch size ('auto' or rows) and
    ``torch.compile``. Checked once, when it is made; :meth:`resolved` fixes 'auto' values."""

    device: str = "auto"
    precision: str = "fp32"
    batch_size: int | str = "auto"
    compile_model: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise AetoolError(f"precision must be fp32, bf16 or fp16, got '{self.precision}'")
        size = self.batch_size
        if size != "auto" and (isinstance(size, bool) or not _positive_int(size)):
            raise AetoolError(f"batch size must be a positive number or auto, got {size}")

    @classmethod
    def from_options(cls, device: str = "auto", precision: str = "fp32",
                     batch_size: str | int = "auto", compile_model: bool = False) -> Inference:
        """From command-line text: ``batch_size`` is a number or 'auto'."""
        if batch_size != "auto" and not str(batch_size).isdigit():
            raise AetoolError(f"--batch-size expects a number or auto, got '{batch_size}'")
        return cls(device, precision, batch_size if batch_size == "auto" else int(batch_size),
                   bool(compile_model))

    def resolved(self) -> Inference:
        """The same settings with the batch size fixed for the device ('auto' resolved)."""
        if self.batch_size != "auto":
            return replace(self, batch_size=int(self.batch_size))
        return replace(self, batch_size=auto_batch_size(resolve_device(self.device)))

    def run_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`aetool.scoring.run_batches`."""
        settings = self.resolved()
        return {"device": settings.device, "precision": settings.precision,
                "batch_size": settings.batch_size, "compile_model": settings.compile_model}


def _positive_int(value: Any) -> bool:
    try:
        return int(value) >= 1 and int(value) == value
    except (TypeError, ValueError):
        return False
