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
