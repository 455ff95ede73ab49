"""aetool-betavae: the conformance kit, the β weighting and capacity annealing."""

from __future__ import annotations

import pytest
import torch
from aetool_betavae import BetaVAE

from aetool.nn import gaussian_kl
from aetool.plugins import get_registry, reset_registry
from aetool.testing import check_id, conformance_checks


@pytest.mark.parametrize("check", conformance_checks(BetaVAE), ids=check_id)
def test_conformance(check):
    check()


def test_registered_through_entry_point():
    reset_registry()
    registry = get_registry()
    assert registry.variants["betavae"] is BetaVAE
    assert registry.plugins["betavae"].distribution == "aetool-betavae"


def test_kl_is_weighted_by_beta():
    model = BetaVAE.build((6,), BetaVAE.make_config({"beta": 3.0})).eval()
    x = torch.randn(8, 6)
    out = model(x)
    _, parts = model.loss(x, out)
    expected = 3.0 * gaussian_kl(out["mu"], out["logvar"]).mean()
    assert parts["kl"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_capacity_grows_linearly_then_holds():
    model = BetaVAE.build((6,), BetaVAE.make_config({"capacity_max": 5.0,
                                                     "capacity_steps": 10}))
    model.train()
    x = torch.randn(4, 6)
    capacities = []
    for _ in range(15):
        model.loss(x, model(x))
        capacities.append(model.capacity())
    assert capacities[4] == pytest.approx(2.5) and capacities[-1] == pytest.approx(5.0)
    out = model(x)
    _, parts = model.loss(x, out)
    kl = gaussian_kl(out["mu"], out["logvar"]).mean()
    assert parts["kl"].item() == pytest.approx(100 * abs(kl.item() - 5.0), rel=1e-5)


def test_usable_through_detect_features_and_sample(tmp_path):
    import numpy as np
    import pandas as pd
    from click.testing import CliRunner

    from aetool import EncoderTransformer
    from aetool.cli import cli

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2)) @ rng.normal(size=(2, 6))
    pd.DataFrame(x, columns=list("abcdef")).to_csv(tmp_path / "t.csv", index=False)
    runner = CliRunner()
    detect = runner.invoke(cli, ["detect", str(tmp_path / "t.csv"), "--variant", "betavae", "-o",
                                 str(tmp_path / "o.csv"), "--set", "epochs=3", "-q"])
    assert detect.exit_code == 0, detect.output
    assert len(pd.read_csv(tmp_path / "o.csv")) == 120
    codes = EncoderTransformer(variant="betavae", code_size=3, epochs=2).fit(x).transform(x)
    assert codes.shape == (120, 3)
    images = (rng.random((40, 8, 8)) * 255).astype(np.uint8)
    np.savez(tmp_path / "img.npz", X=images)
    train = runner.invoke(cli, ["train", str(tmp_path / "img.npz"), "--variant", "betavae",
                                "-o", str(tmp_path / "b"), "--set", "epochs=2", "-q"])
    assert train.exit_code == 0, train.output
    sample = runner.invoke(cli, ["sample", str(tmp_path / "b"), "-n", "4", "-o",
                                 str(tmp_path / "s.png")])
    assert sample.exit_code == 0 and (tmp_path / "s.png").stat().st_size > 0
