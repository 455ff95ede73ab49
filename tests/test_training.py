"""The trainer: NaN stops with a clear error, early stopping restores the best weights, history."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from aetool.cli import cli
from aetool.errors import TrainingError
from aetool.plugins import get_variant
from aetool.training import TrainConfig, train_model
from tests.conftest import low_rank_table


def test_nan_loss_stops_with_a_clear_error():
    variant = get_variant("ae")
    model = variant.build((4,), variant.Config())
    x = torch.ones(32, 4)
    x[3, 1] = float("nan")
    with pytest.raises(TrainingError, match=r"training loss became nan at epoch 1.*lower the learning"):
        train_model(model, x, config=TrainConfig(epochs=2, batch_size=64), quiet=True)


def test_early_stopping_restores_the_best_weights():
    variant = get_variant("ae")
    x = torch.from_numpy(low_rank_table(200, d=6))
    torch.manual_seed(0)
    model = variant.build((6,), variant.Config())
    result = train_model(model, x, config=TrainConfig(epochs=200, lr=0.5, patience=3,
                                                      batch_size=32), quiet=True)
    assert result.stopped_early and len(result.history) < 200
    best = min(h["val_loss"] for h in result.history)
    assert result.history[result.best_epoch - 1]["val_loss"] == best
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(200, generator=gen)
    val = x[order[:20]]
    with torch.no_grad():
        now = model.loss(val, model(val))[0].item()
    assert now == pytest.approx(best, rel=1e-5)


def test_history_records_named_parts_and_cli_reports_bad_settings(tmp_path):
    variant = get_variant("vae")
    model = variant.build((6,), variant.Config())
    result = train_model(model, torch.from_numpy(low_rank_table(128, d=6)),
                         config=TrainConfig(epochs=2), quiet=True)
    assert {"loss", "reconstruction", "kl", "val_loss"} <= set(result.history[0])
    np.save(tmp_path / "x.npy", low_rank_table(40, d=4))
    bad = CliRunner().invoke(cli, ["train", str(tmp_path / "x.npy"), "-o", str(tmp_path / "b"),
                                   "--set", "widht=3"])
    assert bad.exit_code == 2 and "unknown setting(s) widht" in bad.stderr
    assert not (tmp_path / "b").exists()


def test_asking_for_a_device_that_is_not_there_is_a_one_line_error(monkeypatch):
    import torch

    from aetool.device import resolve_device
    from aetool.errors import TrainingError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name, message in (("cuda", "no CUDA GPU is visible here"),
                          ("cuda:1", "no CUDA GPU is visible here"),
                          ("tpu", "unknown device 'tpu'")):
        with pytest.raises(TrainingError, match=message):
            resolve_device(name)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(TrainingError, match=r"only 2 CUDA GPU\(s\) here, cuda:0 to cuda:1"):
        resolve_device("cuda:2")
    assert resolve_device("cpu") == torch.device("cpu")
