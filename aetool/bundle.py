"""Saved models ("bundles"): a directory with manifest.json and weights.safetensors, no pickle.

Saving is atomic (a temporary sibling directory renamed into place). Loading verifies the format
version, the weights' SHA-256 recorded in the manifest, and that the variant is installed, and
refuses any pickle it finds, so a bundle never executes code when it is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from aetool._version import __version__
from aetool.data.output import atomic_directory
from aetool.errors import BundleError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib", ".ckpt")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(4)
    # protocol-2+ pickles start with 0x80; torch.save writes a zip archive (PK\x03\x04)
    return head[:1] == b"\x80" or head == b"PK\x03\x04"


def save_bundle(path: str | os.PathLike[str], model: Any, manifest: dict[str, Any]) -> Path:
    """Write ``model``'s weights and ``manifest`` (plus format metadata) to directory ``path``."""
    from safetensors.torch import save_file

    from aetool.plugins import get_registry

    registry = get_registry()
    variant = manifest["variant"]
    full = {
        "format": "aetool-bundle",
        "format_version": FORMAT_VERSION,
        "aetool_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "variant_distribution": registry.distribution_of_variant(variant)
        if variant in registry.variants else manifest.get("variant_distribution", "unknown"),
        **manifest,
    }
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}

    def write(tmp: Path) -> None:
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt"})
        full["weights_sha256"] = _sha256(tmp / WEIGHTS)
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=False) + "\n")

    atomic_directory(Path(path), write)
    return Path(path)


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of bundle ``path``, after checking it is a bundle aetool can read."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"{root}: not a bundle directory (train one with 'aetool fit' or 'aetool train')")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{root}: not an aetool bundle (no {MANIFEST} inside)")
    for item in root.iterdir():
        if item.is_file() and item.name != WEIGHTS and (
            item.suffix in PICKLE_SUFFIXES or _looks_like_pickle(item)
        ):
            raise BundleError(
                f"{item}: bundle contains a pickle or torch.save file; aetool never loads "
                "pickles (they can run code). Remove it or re-save the model with aetool"
            )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path}: damaged manifest ({exc}); re-save the bundle") from None
    if manifest.get("format") != "aetool-bundle":
        raise BundleError(f"{manifest_path}: not an aetool bundle manifest")
    if int(manifest.get("format_version", -1)) > FORMAT_VERSION:
        raise BundleError(
            f"{root}: bundle format {manifest.get('format_version')} is newer than this aetool "
            f"reads ({FORMAT_VERSION}); upgrade aetool"
        )
    return manifest


def read_bundle_bytes(path: str | os.PathLike[str]) -> tuple[dict[str, Any], bytes]:
    """The verified manifest and the raw weights of bundle ``path`` (for shipping to workers)."""
    root = Path(path)
    manifest = read_manifest(root)
    weights = root / WEIGHTS
    if not weights.is_file():
        raise BundleError(f"{weights}: missing weights file; the bundle is incomplete")
    data = weights.read_bytes()
    if data[:1] == b"\x80" or data[:4] == b"PK\x03\x04":
        raise BundleError(
            f"{weights}: is a pickle/torch.save file, not safetensors; aetool never loads pickles"
        )
    expected = manifest.get("weights_sha256")
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise BundleError(
            f"{weights}: does not match the checksum in {MANIFEST} (truncated or modified); "
            "re-save or re-download the bundle"
        )
    return manifest, data


def model_from_bundle_bytes(manifest: dict[str, Any], weights: bytes, device: str = "cpu",
                            where: str = "bundle") -> Any:
    """Build the variant named in ``manifest`` and load ``weights`` (safetensors bytes) into it."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    from aetool.plugins import get_registry

    registry = get_registry()
    name = manifest.get("variant", "")
    if name not in registry.variants:
        dist = manifest.get("variant_distribution", "unknown")
        raise BundleError(
            f"{where}: variant '{name}' is not installed; install the package that provides it "
            f"('{dist}', e.g. aetool plugins install {dist})"
        )
    variant = registry.variants[name]
    try:
        state = load_safetensors(weights)
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{where}: unreadable safetensors file ({exc})") from None
    config = variant.make_config(manifest.get("config", {}))
    model = variant.build(tuple(manifest["input_shape"]), config, manifest.get("n_classes"))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise BundleError(f"{where}: weights do not fit variant '{name}' ({first})") from None
    return model.to(device).eval()


def load_bundle(path: str | os.PathLike[str], device: str = "cpu") -> tuple[dict[str, Any], Any]:
    """Load a bundle: returns (manifest, model in eval mode). Nothing in it is executed."""
    manifest, weights = read_bundle_bytes(path)
    return manifest, model_from_bundle_bytes(manifest, weights, device, where=str(Path(path)))
