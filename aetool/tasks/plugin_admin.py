"""Installing, removing and scaffolding plugin packages (pip in the same interpreter)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from aetool.errors import AetoolError, PluginError
from aetool.plugins import get_registry

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


def _pip(args: list[str]) -> str:
    """Run pip in this interpreter; returns what it printed (stdout and stderr)."""
    command = [sys.executable, "-m", "pip", *args]
    print("running: " + " ".join(command), file=sys.stderr)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise PluginError(f"pip {args[0]} failed: {lines[-1] if lines else 'no output'}")
    said = f"{result.stdout}\n{result.stderr}"
    if "not installed" not in said.lower():
        print(result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "done")
    return said


DISTRIBUTION_NAME = re.compile(r"^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$")


def _requirement(target: str) -> str:
    """``target`` as a PEP 508 requirement (name, optional extras and version), refusing
    anything pip would read as an option, a URL or a file of further requirements."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(target)
    except InvalidRequirement:
        requirement = None
    if target.startswith("-") or requirement is None or requirement.url:
        raise AetoolError(f"'{target}': not a package name or requirement (like aetool-betavae "
                          "or aetool-betavae>=0.1) nor a local folder; pip options are not "
                          "passed on")
    return str(requirement)


def pip_install(target: str, editable: bool = False) -> None:
    """``pip install`` a plugin by requirement or local folder into this interpreter; the
    target follows ``--`` so pip never reads it as an option."""
    path = Path(target)
    if path.exists():
        if not (path / "pyproject.toml").is_file() and not (path / "setup.py").is_file():
            raise AetoolError(f"{path}: not a Python package (no pyproject.toml)")
        _pip(["install", *(["-e"] if editable else []), "--", str(path.resolve())])
    elif editable:
        raise AetoolError(f"{target}: --editable needs a local folder")
    else:
        _pip(["install", "--", _requirement(target)])


def distribution_for(name: str) -> str:
    """The distribution to uninstall for ``name``: a plugin or variant name as ``aetool
    plugins`` lists it maps to the package that provides it; anything else must itself be a
    valid distribution name."""
    registry = get_registry()
    info = registry.plugins.get(name)
    if info is None and name in registry.variant_owner:
        info = registry.plugins[registry.variant_owner[name]]
    if info is not None and not info.builtin:
        return info.distribution
    if not DISTRIBUTION_NAME.match(name):
        raise AetoolError(f"'{name}': not a package name; give the plugin's name as 'aetool "
                          "plugins' lists it, or its package name (no versions or options)")
    return name


def pip_uninstall(name: str) -> None:
    """``pip uninstall`` a plugin package; the core package cannot be removed this way, and
    pip saying it removed nothing is an error, not 'done'."""
    distribution = distribution_for(name)
    if re.sub(r"[-_.]+", "-", distribution).lower() == "aetool":
        raise AetoolError("refusing to uninstall aetool itself; use pip directly")
    output = _pip(["uninstall", "-y", "--", distribution])
    if "not installed" in output.lower() or "skipping" in output.lower():
        raise PluginError(f"'{distribution}' is not installed, nothing was removed; "
                          "'aetool plugins' lists the installed plugins")


def scaffold_plugin(name: str, directory: Path) -> Path:
    """Create ``aetool-NAME/``: pyproject with the entry point, a variant, README and tests that
    run the conformance kit; it installs and passes as created."""
    if not NAME_PATTERN.match(name):
        raise AetoolError(f"plugin name '{name}' must be lower case letters, digits and _ "
                          "(it becomes the variant name)")
    root = Path(directory) / f"aetool-{name}"
    if root.exists():
        raise AetoolError(f"{root}: already exists; choose another name or folder")
    module = f"aetool_{name}"
    class_name = "".join(part.capitalize() for part in name.split("_")) + "Variant"
    files = {
        "pyproject.toml": f'''
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "aetool-{name}"
            version = "0.1.0"
            description = "The '{name}' autoencoder variant for aetool."
            readme = "README.md"
            requires-python = ">=3.10"
            dependencies = ["aetool>=0.1"]

            [project.optional-dependencies]
            test = ["pytest"]

            [project.entry-points.aetool]
            {name} = "{module}"

            [tool.setuptools]
            packages = ["{module}"]
        ''',
        f"{module}/__init__.py": f'''
            """The '{name}' variant: start from a plain autoencoder and make it your own."""

            from __future__ import annotations

            import dataclasses
            from typing import Any

            from aetool.api import EXPORTABLE, IMAGE, TABULAR, NetConfig, Variant, hookimpl


            @dataclasses.dataclass
            class {class_name}Config(NetConfig):
                """Hyper-parameters (JSON types, each with a default)."""

                weight_penalty: float = 1e-5


            class {class_name}(Variant):
                name = "{name}"
                summary = "the {name} autoencoder (scaffolded; describe it in one line)"
                capabilities = frozenset({{TABULAR, IMAGE, EXPORTABLE}})
                Config = {class_name}Config

                @classmethod
                def build(cls, input_shape: tuple[int, ...], config: Any,
                          n_classes: int | None = None) -> Any:
                    from aetool.nn import PlainAE  # torch is imported only here

                    return PlainAE(input_shape, config, n_classes)


            @hookimpl
            def register_variants(register: Any) -> None:
                register({class_name})
        ''',
        "README.md": f'''
            # aetool-{name}

            The `{name}` autoencoder variant for aetool.

                aetool plugins install -e .      # then: aetool variants
                python -m pytest tests           # runs aetool's conformance kit
        ''',
        f"tests/test_{name}.py": f'''
            """The '{name}' variant passes aetool's conformance kit."""

            import pytest

            from aetool.testing import check_id, conformance_checks
            from {module} import {class_name}


            @pytest.mark.parametrize("check", conformance_checks({class_name}), ids=check_id)
            def test_conformance(check):
                check()
        ''',
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root
