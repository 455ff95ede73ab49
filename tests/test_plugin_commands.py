"""`aetool plugins new|install|uninstall` and the --all listing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from aetool.cli import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_plugins_all_lists_builtins_with_hooks():
    result = CliRunner().invoke(cli, ["plugins", "--all", "--json"])
    assert result.exit_code == 0
    builtin = {p["name"]: p for p in json.loads(result.stdout) if p["builtin"]}
    assert builtin["vae"]["variants"] == ["vae"] and builtin["vae"]["hooks"] == ["register_variants"]
    assert builtin["noise"]["noise_models"] == ["gaussian", "masking", "salt_pepper"]
    plain = CliRunner().invoke(cli, ["plugins", "--json"])
    assert all(not p["builtin"] for p in json.loads(plain.stdout))


def test_scaffolded_plugin_installs_and_passes_the_kit(tmp_path):
    result = CliRunner().invoke(cli, ["plugins", "new", "myvar", "-d", str(tmp_path)])
    assert result.exit_code == 0, result.output
    package = tmp_path / "aetool-myvar"
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(package)], check=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), ROOT])}
    listed = subprocess.run([sys.executable, "-m", "aetool.cli", "variants", "--json"],
                            capture_output=True, text=True, env=env, check=True)
    entry = next(v for v in json.loads(listed.stdout) if v["name"] == "myvar")
    assert entry["package"] == "aetool-myvar"
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(package / "tests")], capture_output=True, text=True, env=env,
                           cwd=tmp_path)
    assert tests.returncode == 0, tests.stdout[-2000:]
    assert "9 passed" in tests.stdout  # the kit, export included


def test_new_refuses_bad_names_and_existing_folders(tmp_path):
    bad = CliRunner().invoke(cli, ["plugins", "new", "Bad-Name", "-d", str(tmp_path)])
    assert bad.exit_code == 2 and "must be lower case" in bad.stderr
    CliRunner().invoke(cli, ["plugins", "new", "ok", "-d", str(tmp_path)])
    again = CliRunner().invoke(cli, ["plugins", "new", "ok", "-d", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_install_reports_pip_failure_in_one_line(tmp_path):
    (tmp_path / "notapkg").mkdir()
    result = CliRunner().invoke(cli, ["plugins", "install", str(tmp_path / "notapkg")])
    assert result.exit_code == 2 and "not a Python package" in result.stderr
    refused = CliRunner().invoke(cli, ["plugins", "uninstall", "aetool"])
    assert refused.exit_code == 2 and "refusing" in refused.stderr
