"""How a fitted estimator runs its model when scoring (device, precision, batch size, compile):
shared by the scikit-learn estimators and the scikit-learn-free :class:`SavedDetector`."""

from __future__ import annotations

from typing import Any

from aetool.device import Inference


class InferenceSettings:
    """``set_inference`` and the settings it stores; ``device`` is the training (or loading)
    device that scoring falls back to."""

    device: str = "auto"

    def set_inference(self, device: str = "auto", precision: str = "fp32",
                      batch_size: int | str = "auto", compile_model: bool = False,
                      inference: Inference | None = None) -> Any:
        """How scoring runs: device, precision (fp32, bf16 or fp16 autocast), batch size
        ('auto': 4096 rows on CPU, 65536 on GPUs) and ``torch.compile`` (pays only for long
        runs: see docs/scale.md), or one :class:`aetool.device.Inference` with all four.
        Learned state and the constructor's ``device`` (used for training) are untouched."""
        settings = inference or Inference(device, precision, batch_size, compile_model)
        self.inference_ = settings.resolved()
        return self

    def inference_settings(self) -> Inference:
        """The settings scoring runs with: those of :meth:`set_inference`, else the training
        device with batches of 4,096 rows in fp32."""
        return getattr(self, "inference_", None) or Inference(self.device, batch_size=4096)

    def _inference(self) -> dict[str, Any]:
        """How :func:`aetool.scoring.run_batches` runs the model (see :meth:`set_inference`)."""
        return self.inference_settings().run_options()
