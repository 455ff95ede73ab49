"""Every built-in variant passes the conformance kit that plugin authors use."""

from __future__ import annotations

import dataclasses

import pytest

from aetool.plugins import list_variants
from aetool.testing import ConformanceError, check_config_round_trip, check_id, conformance_checks
from aetool.variants.ae import PlainAutoencoder

BUILTINS = ["ae", "dae", "sparse", "contractive", "conv", "vae", "cvae"]


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_passes_kit(name, subtests=None):
    variant = list_variants()[name]
    for check in conformance_checks(variant):
        check()


def test_kit_catches_a_config_that_breaks_in_json():
    @dataclasses.dataclass
    class BadConfig:
        shape: tuple = (1, 2)

    class Bad(PlainAutoencoder):
        name = "bad"
        Config = BadConfig

    with pytest.raises(ConformanceError, match="changes through JSON"):
        check_config_round_trip(Bad)


def test_check_ids_name_the_checks():
    names = [check_id(c) for c in conformance_checks(list_variants()["ae"])]
    assert names[0] == "check_declaration" and "check_bundle_round_trip" in names
