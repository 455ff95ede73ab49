"""The worked examples in docs/ run as written: `$ aetool ...` lines and Python blocks."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from aetool.cli import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(page: Path) -> list[tuple[str, str]]:
    return FENCE.findall(page.read_text())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_examples_run(page, tmp_path, monkeypatch):
    (tmp_path / "datasets").symlink_to(ROOT / "datasets")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for kind, body in blocks(page):
        if kind == "console":
            for line in body.splitlines():
                if not line.startswith("$ aetool "):
                    continue
                result = CliRunner().invoke(cli, shlex.split(line[len("$ aetool "):]))
                assert result.exit_code == 0, f"{page.name}: {line}\n{result.output}"
        elif kind == "python":
            exec(compile(body, f"{page.name}:python", "exec"), namespace)


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in PAGES:
        assert page.name in nav, f"{page.name} missing from mkdocs.yml nav"


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text().splitlines()
    fence = readme.index("```bash")
    main_job, tests = readme[fence + 1], readme[fence + 2]
    assert main_job.startswith("pip install -e . && aetool detect datasets/")
    assert "python -m pytest" in tests
    assert tests in (ROOT / ".ci" / "run").read_text()
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


LAYOUT = {".ci", ".gitignore", "README.md", "pyproject.toml", "mkdocs.yml",
          "aetool", "plugins", "datasets", "tests", "docs", "bench"}


def test_the_repository_top_level_holds_only_the_documented_layout():
    """A scratch file committed by mistake (it happened once: a one-line CSV) is caught here."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no tracked files to check")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    stray = {name.split("/")[0] for name in tracked} - LAYOUT
    assert not stray, f"tracked at the top level but not part of the layout: {sorted(stray)}"


COMMAND_SPAN = re.compile(r"`(aetool [^`\n]+)`")


def _documented_commands(page: Path) -> list[str]:
    """Every `aetool ...` written in a page: console lines and inline code spans."""
    text = page.read_text()
    lines = [line[2:] for kind, body in blocks(page) if kind in ("console", "text")
             for line in body.splitlines() if line.startswith("$ aetool ")]
    return lines + COMMAND_SPAN.findall(text)


def _command_and_options(words: list[str]) -> tuple[str, set[str]]:
    import click

    command: click.Command = cli
    path = ["aetool"]
    for word in words[1:]:
        if isinstance(command, click.Group) and word in command.commands:
            command = command.commands[word]
            path.append(word)
        else:
            break
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    return " ".join(path), options | {"--help", "-h"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_documented_options_exist(page):
    """An option the docs show for a command must be one that command's --help lists."""
    for line in _documented_commands(page):
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        command, options = _command_and_options(words)
        for word in words:
            if word.startswith("--") and len(word) > 2:
                assert word.split("=")[0] in options, f"{page.name}: {command} has no {word}"
