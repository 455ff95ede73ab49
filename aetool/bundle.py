"""Saved models ("bundles"): a directory with manifest.json and weights.safetensors, no pickle.

Saving is atomic (a temporary sibling directory renamed into place) and replaces only an existing
bundle. Loading validates the manifest against a JSON schema, verifies the weights' SHA-256
(required), checks that the variant named in the manifest is the one the weights were saved for,
compares declared tensor shapes with the safetensors header before allocating anything, and
refuses any pickle it finds, so a bundle never executes code when it is loaded.

torch and safetensors are imported only in the functions that touch weights, so reading a
manifest (``aetool info``, ``aetool variants``) stays fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickletools
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aetool._version import __version__
from aetool.bundle_schema import validate_manifest
from aetool.data.output import atomic_directory, check_output_folder
from aetool.errors import AetoolError, BundleError
from aetool.plugins import get_registry

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


PICKLE_SCAN_BYTES = 16 << 20  # protocol-0/1 pickles are text-like: parse at most this much


def _has_pickle_magic(head: bytes) -> bool:
    """Protocol-2+ pickles start with 0x80; torch.save writes a zip archive (PK\\x03\\x04)."""
    return head[:1] == b"\x80" or head[:4] == b"PK\x03\x04"


def _looks_like_pickle(path: Path) -> bool:
    """Protocol-2+ pickles start with 0x80 and torch.save writes a zip archive (PK\\x03\\x04);
    protocol 0 and 1 have no magic, so the file counts as a pickle when its start parses as a
    pickle opcode stream that reaches STOP."""
    with open(path, "rb") as handle:
        head = handle.read(PICKLE_SCAN_BYTES)
    if _has_pickle_magic(head):
        return True
    try:
        for opcode, _, _ in pickletools.genops(head):
            if opcode.name == "STOP":
                return True
    except Exception:  # not a pickle: genops raises ValueError and others on foreign bytes
        return False
    return False


def is_bundle_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a folder holding an aetool manifest: the only kind of folder that
    saving may replace."""
    manifest = Path(path) / MANIFEST
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("format") == "aetool-bundle"
    except (OSError, ValueError, AttributeError):
        return False


def check_bundle_output(path: str | os.PathLike[str], inputs: tuple[str, ...] = (),
                        force: bool = False) -> None:
    """Before training: ``path`` may be new, an empty folder or an existing bundle (a file only
    with ``force``), must not hold an input, and its folder must be writable."""
    check_output_folder(path, inputs, is_bundle_dir, force)


EXTRA_PREFIX = "extra."  # tensors that are not the model's weights (a detector's code bank)


def save_bundle(path: str | os.PathLike[str], model: Any, manifest: dict[str, Any],
                force: bool = False, extras: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s weights and ``manifest`` (plus format metadata) to directory ``path``,
    replacing only an existing bundle (or, with ``force``, a file), never another folder.
    ``extras``: named tensors kept beside the weights in the same checked file (the manifest
    declares their shapes)."""
    from safetensors.torch import save_file  # torch only where weights are touched

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
    for name, tensor in (extras or {}).items():
        state[EXTRA_PREFIX + name] = tensor.detach().cpu().contiguous()
    if extras:
        full["extra_tensors"] = {name: list(t.shape) for name, t in extras.items()}

    def write(tmp: Path) -> None:
        save_file(state, str(tmp / WEIGHTS),
                  metadata=_weights_metadata(variant, manifest["input_shape"]))
        full["weights_sha256"] = _sha256(tmp / WEIGHTS)
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=False) + "\n")

    atomic_directory(Path(path), write, replaceable=is_bundle_dir, force=force)
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
    if not isinstance(manifest, dict) or manifest.get("format") != "aetool-bundle":
        raise BundleError(f"{manifest_path}: not an aetool bundle manifest")
    version = manifest.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise BundleError(
            f"{root}: bundle format {version} is newer than this aetool reads "
            f"({FORMAT_VERSION}); upgrade aetool"
        )
    problem = validate_manifest(manifest)
    if problem:
        raise BundleError(f"{manifest_path}: invalid manifest, {problem}; re-save the bundle "
                          "with aetool")
    return manifest


def read_bundle_bytes(path: str | os.PathLike[str]) -> tuple[dict[str, Any], bytes]:
    """The verified manifest and the raw weights of bundle ``path`` (for shipping to workers)."""
    root = Path(path)
    manifest = read_manifest(root)
    weights = root / WEIGHTS
    if not weights.is_file():
        raise BundleError(f"{weights}: missing weights file; the bundle is incomplete")
    data = weights.read_bytes()
    if _has_pickle_magic(data):
        raise BundleError(
            f"{weights}: is a pickle/torch.save file, not safetensors; aetool never loads pickles"
        )
    expected = manifest["weights_sha256"]  # required by the schema
    if hashlib.sha256(data).hexdigest() != expected:
        raise BundleError(
            f"{weights}: does not match the checksum in {MANIFEST} (truncated or modified); "
            "re-save or re-download the bundle"
        )
    return manifest, data


def model_from_bundle_bytes(manifest: dict[str, Any], weights: bytes, device: str = "cpu",
                            where: str = "bundle") -> Any:
    """Build the variant named in ``manifest`` and load ``weights`` (safetensors bytes) into it."""
    return model_and_extras(manifest, weights, device, where)[0]


def _split_extras(tensors: dict[str, Any], manifest: dict[str, Any], where: str
                  ) -> dict[str, Any]:
    """Take the extra tensors out of ``tensors`` (header entries or loaded tensors), checking
    them against the shapes the manifest declares."""
    declared = manifest.get("extra_tensors") or {}
    found = {k[len(EXTRA_PREFIX):]: tensors.pop(k) for k in list(tensors)
             if k.startswith(EXTRA_PREFIX)}
    for name, shape in declared.items():
        value = found.get(name)
        got = None if value is None else list(value["shape"] if isinstance(value, dict)
                                              else value.shape)
        if got != list(shape):
            raise BundleError(f"{where}: extra tensor '{name}' is {got or 'missing'} in the "
                              f"weights, the manifest declares {shape}; re-save the bundle")
    unknown = sorted(set(found) - set(declared))
    if unknown:
        raise BundleError(f"{where}: unexpected tensor '{EXTRA_PREFIX}{unknown[0]}' in the "
                          "weights; re-save the bundle")
    return found


def model_and_extras(manifest: dict[str, Any], weights: bytes, device: str = "cpu",
                     where: str = "bundle") -> tuple[Any, dict[str, Any]]:
    """:func:`model_from_bundle_bytes` and the bundle's extra tensors (name -> tensor)."""
    from safetensors import SafetensorError  # torch only where weights are touched
    from safetensors.torch import load as load_safetensors

    registry = get_registry()
    name = manifest.get("variant", "")
    if name not in registry.variants:
        dist = manifest.get("variant_distribution", "unknown")
        raise BundleError(
            f"{where}: variant '{name}' is not installed; install the package that provides it "
            f"('{dist}', e.g. aetool plugins install {dist})"
        )
    variant = registry.variants[name]
    header = _safetensors_header(weights, where)
    saved_for = _saved_for(header)
    if saved_for is not None and saved_for != name:
        raise BundleError(f"{where}: the manifest names variant '{name}' but the weights were "
                          f"saved for '{saved_for}'; the manifest was edited, re-save the bundle")
    try:
        config = variant.config_from_bundle(manifest.get("config", {}))
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{where}: settings in the manifest do not fit variant '{name}' "
                          f"({exc})") from None
    shape = tuple(manifest["input_shape"])
    _split_extras(header, manifest, where)
    skeleton = meta_model(variant, shape, config, manifest.get("n_classes"))
    if skeleton is not None:
        _compare_shapes(skeleton, header, name, where)
    try:
        state = load_safetensors(weights)
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{where}: unreadable safetensors file ({exc})") from None
    extras = {k: v.to(device) for k, v in _split_extras(state, manifest, where).items()}
    model = _build(variant, shape, config, manifest.get("n_classes"), where)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise BundleError(f"{where}: weights do not fit variant '{name}' ({first})") from None
    return model.to(device).eval(), extras


def _weights_metadata(variant: str, input_shape: list[int]) -> dict[str, str]:
    """What the weights were saved for, inside the safetensors header (so the checksum covers
    it). One key: safetensors writes several keys in no fixed order, and same-seed saves must
    stay byte-identical."""
    return {"aetool": json.dumps({"variant": variant, "input_shape": list(input_shape)},
                                 sort_keys=True)}


def _saved_for(header: dict[str, Any]) -> str | None:
    """The variant named in the weights' own metadata (None for weights without it)."""
    try:
        return json.loads(header.get("__metadata__", {}).get("aetool", "{}")).get("variant")
    except (ValueError, AttributeError):
        return None


def _safetensors_header(weights: bytes, where: str) -> dict[str, Any]:
    """The JSON header of a safetensors file: tensor names, dtypes and shapes, and metadata,
    read without touching the tensors."""
    try:
        (length,) = struct.unpack("<Q", weights[:8])
        if length > len(weights) - 8:
            raise ValueError("header longer than the file")
        header = json.loads(weights[8:8 + length])
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
    except (struct.error, ValueError) as exc:
        raise BundleError(f"{where}: unreadable safetensors file ({exc})") from None
    return header


def meta_model(variant: type, shape: tuple[int, ...], config: Any,
               n_classes: int | None) -> Any:
    """The variant's model for ``shape`` on PyTorch's ``meta`` device, which allocates no
    memory: its tensors' shapes without their values. None when the variant cannot be built
    there (a plugin's build may raise anything); the real build then reports any problem."""
    import torch

    try:
        with torch.device("meta"):
            return variant.build(shape, config, n_classes)
    except Exception:
        return None


def _build(variant: type, shape: tuple[int, ...], config: Any, n_classes: int | None,
           where: str) -> Any:
    """The variant's model for ``shape``, or a one-line error saying why it cannot be built."""
    try:
        return variant.build(shape, config, n_classes)
    except Exception as exc:  # a plugin's build may raise anything for a shape it cannot take
        raise BundleError(f"{where}: variant '{variant.name}' cannot be built for input shape "
                          f"{list(shape)} ({type(exc).__name__}: {exc})") from None


def _compare_shapes(skeleton: Any, header: dict[str, Any], name: str, where: str) -> None:
    """Declared tensors (from the manifest's settings) against the safetensors header, so an
    edited manifest is refused before a model of its size is allocated."""
    declared = {k: list(v.shape) for k, v in skeleton.state_dict().items()}
    stored = {k: v.get("shape") for k, v in header.items()
              if k != "__metadata__" and isinstance(v, dict)}
    for key, shape in declared.items():
        if stored.get(key) != shape:
            found = stored.get(key, "missing")
            raise BundleError(f"{where}: weights do not fit variant '{name}' with the manifest's "
                              f"settings ('{key}' is {found} in the weights, the settings "
                              f"need {shape}); the manifest was edited, re-save the bundle")
    extra = sorted(set(stored) - set(declared))
    if extra:
        raise BundleError(f"{where}: weights do not fit variant '{name}' (unexpected tensor "
                          f"'{extra[0]}')")


@contextlib.contextmanager
def manifest_errors(where: str) -> Iterator[None]:
    """Turn a manifest value that passed the schema but cannot be used (a scorer state of the
    wrong length, a preprocessing field of the wrong kind) into a one-line BundleError."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        if isinstance(exc, AetoolError):
            raise
        raise BundleError(f"{where}: invalid manifest ({type(exc).__name__}: {exc}); re-save "
                          "the bundle with aetool") from None


def load_bundle(path: str | os.PathLike[str], device: str = "cpu") -> tuple[dict[str, Any], Any]:
    """Load a bundle: returns (manifest, model in eval mode). Nothing in it is executed."""
    manifest, model, _ = load_bundle_parts(path, device)
    return manifest, model


def load_bundle_parts(path: str | os.PathLike[str], device: str = "cpu"
                      ) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """:func:`load_bundle` and the bundle's extra tensors (a detector's code bank)."""
    manifest, weights = read_bundle_bytes(path)
    model, extras = model_and_extras(manifest, weights, device, where=str(Path(path)))
    return manifest, model, extras
