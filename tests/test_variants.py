"""Every built-in variant: shapes, learning, deterministic reconstruction."""

from __future__ import annotations

import pytest
import torch

from aetool.plugins import list_variants
from aetool.training import TrainConfig, fit_variant, train_model
from tests.conftest import blob_images, low_rank_table

FAST = TrainConfig(epochs=15, batch_size=32, lr=3e-3, patience=0, val_fraction=0.0)
BUILTINS = ["ae", "dae", "sparse", "contractive", "conv", "vae", "cvae"]


def shapes_for(name: str) -> list[tuple[int, ...]]:
    return [(1, 12, 12), (3, 9, 13)] if name == "conv" else [(8,), (1, 12, 12), (3, 9, 13)]


def test_all_seven_builtins_registered():
    assert set(BUILTINS) <= set(list_variants())


@pytest.mark.parametrize("name", BUILTINS)
def test_builds_and_shapes(name):
    variant = list_variants()[name]
    for shape in shapes_for(name):
        model = variant.build(shape, variant.Config(), n_classes=3).eval()
        x = torch.rand(5, *shape)
        y = torch.tensor([0, 1, 2, 0, 1])
        code = model.encode(x, y)
        assert code.shape == (5, model.code_size)
        assert model.decode(code, y).shape == x.shape
        out = model(x, y)
        total, parts = model.loss(x, out, y)
        assert torch.isclose(total, torch.stack(list(parts.values())).sum())
        assert "reconstruction" in parts


@pytest.mark.parametrize("name", BUILTINS)
def test_training_lowers_loss_on_structured_data(name):
    variant = list_variants()[name]
    if name == "conv":
        x = torch.from_numpy(blob_images(64))
    else:
        x = torch.from_numpy(low_rank_table(128))
    y = torch.arange(x.shape[0]) % 2
    torch.manual_seed(0)
    model = variant.build(tuple(x.shape[1:]), variant.Config(), n_classes=2)
    model.eval()
    before = model.loss(x, model(x, y), y)[0].item()
    train_model(model, x, y, FAST, quiet=True)
    after = model.loss(x, model(x, y), y)[0].item()
    assert after < 0.7 * before, (before, after)


@pytest.mark.parametrize("name", BUILTINS)
def test_reconstruct_is_deterministic_in_eval_mode(name):
    variant = list_variants()[name]
    shape = (1, 12, 12) if name == "conv" else (8,)
    model = variant.build(shape, variant.Config(), n_classes=2).eval()
    x = torch.rand(6, *shape)
    y = torch.tensor([0, 1] * 3)
    assert torch.equal(model.reconstruct(x, y), model.reconstruct(x, y))


def test_conv_handles_odd_sizes_and_rgb():
    variant = list_variants()["conv"]
    model = variant.build((3, 17, 23), variant.Config())
    x = torch.rand(2, 3, 17, 23)
    assert model.reconstruct(x).shape == x.shape


def test_conv_refuses_tables():
    variant = list_variants()["conv"]
    with pytest.raises(ValueError, match="conv needs image inputs"):
        variant.build((8,), variant.Config())


def test_same_seed_gives_identical_weights():
    variant = list_variants()["ae"]
    x = torch.from_numpy(low_rank_table(96))
    cfg = TrainConfig(epochs=3, batch_size=16, seed=7)
    first, _ = fit_variant(variant, variant.Config(), x, train_config=cfg, quiet=True)
    second, _ = fit_variant(variant, variant.Config(), x, train_config=cfg, quiet=True)
    other, _ = fit_variant(variant, variant.Config(), x,
                           train_config=TrainConfig(epochs=3, batch_size=16, seed=8), quiet=True)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key])
    assert any(not torch.equal(v, other.state_dict()[k]) for k, v in first.state_dict().items())


def test_setting_values_are_coerced_to_the_declared_type_trying_each_of_a_union():
    from aetool.variants.base import coerce_value

    assert coerce_value("0.8", float | str, "code_core") == 0.8
    assert coerce_value("auto", float | str, "code_core") == "auto"
    assert coerce_value("none", int | None, "k") is None
    assert coerce_value("3", int | None, "k") == 3
    assert coerce_value("32,64", list[int], "hidden") == [32, 64]
    with pytest.raises(ValueError, match="setting 'k' expects int, got 'x'"):
        coerce_value("x", int | None, "k")
