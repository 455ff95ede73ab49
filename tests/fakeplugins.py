"""Build fake installed distributions on a temporary sys.path entry (a dist-info folder with an
entry point in group 'aetool' plus the module), as pip would leave them."""

from __future__ import annotations

import textwrap
from pathlib import Path


def make_plugin(root: Path, dist: str, module: str, code: str, entry_name: str | None = None,
                version: str = "0.1") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(code))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[aetool]\n{entry_name or module} = {module}\n")
    return root


IMPORT_ERROR = """
import not_a_real_module_xyz
"""

BAD_SIGNATURE = """
from aetool.hookspecs import hookimpl

@hookimpl
def register_variants(register, something_else):
    pass
"""

DUPLICATE_AE = """
from aetool.hookspecs import hookimpl
from aetool.variants.ae import PlainAutoencoder

class Impostor(PlainAutoencoder):
    name = "ae"
    summary = "an impostor"

@hookimpl
def register_variants(register):
    register(Impostor)
"""

GOOD = """
from aetool.hookspecs import hookimpl
from aetool.variants.ae import PlainAutoencoder

class Tiny(PlainAutoencoder):
    name = "tiny"
    summary = "a tiny test variant"

@hookimpl
def register_variants(register):
    register(Tiny)
"""

SYS_EXIT = """
import sys

sys.exit(3)
"""

CONFIG_NOT_A_DATACLASS = """
from aetool.hookspecs import hookimpl
from aetool.variants.ae import PlainAutoencoder

class Loose(PlainAutoencoder):
    name = "loose"
    summary = "a variant whose Config is a plain class"

    class Config:
        code_size = 4

@hookimpl
def register_variants(register):
    register(Loose)
"""
