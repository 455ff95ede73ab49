"""aetool-vqvae: the conformance kit, quantisation, straight-through gradients, codebook use."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from aetool_vqvae import VQVAE

from aetool.estimators import Autoencoder
from aetool.plugins import get_registry, reset_registry
from aetool.testing import check_id, conformance_checks


@pytest.mark.parametrize("check", conformance_checks(VQVAE), ids=check_id)
def test_conformance(check):
    check()


def test_registered_through_entry_point():
    reset_registry()
    assert get_registry().variants["vqvae"] is VQVAE
    assert get_registry().plugins["vqvae"].distribution == "aetool-vqvae"


def test_codes_are_codebook_vectors():
    model = VQVAE.build((8,), VQVAE.make_config({"code_dim": 2, "n_groups": 3})).eval()
    code = model.encode(torch.randn(5, 8)).reshape(-1, 2)
    distances = torch.cdist(code, model.quantizer.codebook.weight)
    assert torch.allclose(distances.min(dim=1).values, torch.zeros(15), atol=1e-6)


def test_straight_through_reaches_the_encoder():
    model = VQVAE.build((8,), VQVAE.Config())
    x = torch.randn(16, 8)
    out = model(x)
    torch.nn.functional.mse_loss(out["recon"], x).backward()
    assert model.encoder.net[0].weight.grad.abs().sum() > 0


def test_losses_follow_the_formulas():
    model = VQVAE.build((8,), VQVAE.make_config({"commitment": 0.5}))
    x = torch.randn(16, 8)
    out = model(x)
    _, parts = model.loss(x, out)
    gap = ((out["z_e"] - out["z_q"]) ** 2).mean().item()
    assert parts["codebook"].item() == pytest.approx(gap, rel=1e-5)
    assert parts["commitment"].item() == pytest.approx(0.5 * gap, rel=1e-5)


def test_codebook_usage_is_reported_in_history():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(200, 2)) @ rng.normal(size=(2, 8))).astype(np.float32)
    model = Autoencoder(variant="vqvae", epochs=5, device="cpu").fit(x)
    last = model.history_[-1]
    assert 0 < last["codes_used"] <= 1 and last["perplexity"] >= 1
    usage = model.model_.codebook_usage(torch.from_numpy(model._prepare(x, reset=False)[0]))
    assert usage["codes_used"] > 1 / 64


def test_usable_through_detect_denoise_and_features(tmp_path):
    import pandas as pd
    from click.testing import CliRunner

    from aetool import Denoiser, EncoderTransformer
    from aetool.cli import cli

    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 2)) @ rng.normal(size=(2, 6))
    pd.DataFrame(x, columns=list("abcdef")).to_csv(tmp_path / "t.csv", index=False)
    detect = CliRunner().invoke(cli, ["detect", str(tmp_path / "t.csv"), "--variant", "vqvae",
                                      "-o", str(tmp_path / "o.csv"), "--set", "epochs=3", "-q"])
    assert detect.exit_code == 0, detect.output
    cleaned = Denoiser(variant="vqvae", epochs=3).fit(x).transform(x)
    assert cleaned.shape == x.shape
    codes = EncoderTransformer(variant="vqvae", code_size=8, epochs=2).fit(x).transform(x)
    assert codes.shape == (150, 8)
