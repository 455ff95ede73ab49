"""Tolerant plugin loading: broken plugins warn, name their package, and the CLI carries on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from aetool.cli import cli
from aetool.errors import PluginError
from aetool.plugins import PluginWarning, get_registry, reset_registry
from tests import fakeplugins

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def install(tmp_path, monkeypatch, dist, module, code):
    fakeplugins.make_plugin(tmp_path / "site", dist, module, code)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reset_registry()


@pytest.mark.parametrize("code,dist,expected", [
    (fakeplugins.IMPORT_ERROR, "aetool-broken",
     "plugin 'broken_mod' from package 'aetool-broken' failed to import: ModuleNotFoundError"),
    (fakeplugins.BAD_SIGNATURE, "aetool-badsig",
     "plugin 'badsig_mod' from package 'aetool-badsig' was not loaded: PluginValidationError"),
    (fakeplugins.DUPLICATE_AE, "aetool-dupe",
     "duplicate aetool name 'ae': provided by plugin 'ae' (package 'aetool') and by plugin "
     "'dupe_mod' (package 'aetool-dupe')"),
    (fakeplugins.SYS_EXIT, "aetool-quitter",
     "plugin 'quitter_mod' from package 'aetool-quitter' failed to import: SystemExit: 3"),
    (fakeplugins.CONFIG_NOT_A_DATACLASS, "aetool-loose",
     "plugin 'loose_mod' from package 'aetool-loose' registered variant 'loose' whose Config "
     "is not a dataclass"),
])
def test_broken_plugin_warns_and_variants_still_work(tmp_path, monkeypatch, code, dist, expected):
    module = dist.split("-")[1] + "_mod"
    install(tmp_path, monkeypatch, dist, module, code)
    with pytest.warns(PluginWarning) as caught:
        registry = get_registry()
    assert any(expected in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert registry.variants["ae"].summary.startswith("plain autoencoder")
    result = CliRunner().invoke(cli, ["variants", "--json"])
    assert result.exit_code == 0
    assert {"ae", "vae", "cvae"} <= {row["name"] for row in json.loads(result.stdout)}
    listing = CliRunner().invoke(cli, ["plugins", "--json"])
    assert listing.exit_code == 0
    entry = next(p for p in json.loads(listing.stdout) if p["distribution"] == dist)
    assert entry["errors"] and expected in entry["errors"][0]


def test_strict_mode_makes_plugin_problems_fatal(tmp_path, monkeypatch):
    install(tmp_path, monkeypatch, "aetool-broken", "broken_mod", fakeplugins.IMPORT_ERROR)
    monkeypatch.setenv("AETOOL_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="aetool-broken"):
        get_registry()
    result = CliRunner().invoke(cli, ["variants"])
    assert result.exit_code == 2 and "aetool-broken" in result.stderr


def test_good_plugin_is_listed_with_package_and_version(tmp_path, monkeypatch):
    install(tmp_path, monkeypatch, "aetool-tiny", "tiny_mod", fakeplugins.GOOD)
    registry = get_registry()
    assert "tiny" in registry.variants
    info = registry.plugins["tiny_mod"]
    assert (info.distribution, info.version, info.variants) == ("aetool-tiny", "0.1", ["tiny"])
    assert info.hooks == ["register_variants"]


def test_load_plugins_filter_and_blocking(tmp_path, monkeypatch):
    install(tmp_path, monkeypatch, "aetool-tiny", "tiny_mod", fakeplugins.GOOD)
    monkeypatch.setenv("AETOOL_LOAD_PLUGINS", "")
    reset_registry()
    assert "tiny" not in get_registry().variants
    monkeypatch.setenv("AETOOL_LOAD_PLUGINS", "aetool-tiny")
    reset_registry()
    assert "tiny" in get_registry().variants
    monkeypatch.delenv("AETOOL_LOAD_PLUGINS")
    monkeypatch.setenv("AETOOL_BLOCK_PLUGINS", "sparse,tiny_mod")
    reset_registry()
    names = set(get_registry().variants)
    assert "sparse" not in names and "tiny" not in names and "ae" in names


def test_cli_help_and_plugins_do_not_import_torch(tmp_path):
    fakeplugins.make_plugin(tmp_path, "aetool-broken", "broken_mod", fakeplugins.IMPORT_ERROR)
    code = ("import sys; from aetool.cli import cli\n"
            "for args in (['--help'], ['plugins'], ['variants']):\n"
            "    try:\n        cli(args)\n    except SystemExit:\n        pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path, check=True)
    assert out.stdout.strip().endswith("NO-TORCH")
    assert "aetool-broken" in out.stderr and "Traceback" not in out.stderr
