"""The JSON schema of a bundle's manifest.json, checked before anything is built from it, so an
edited or damaged manifest is a one-line error naming the field, never a traceback."""

from __future__ import annotations

from typing import Any

DISTRIBUTION_NAME = r"^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$"  # PEP 508 names
SHA256 = r"^[0-9a-f]{64}$"
MAX_INPUT_DIM = 1 << 24  # no feature count or image side comes near this

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["format", "format_version", "task", "variant", "config", "input_shape",
                 "weights_sha256", "preprocessing", "n_features_in"],
    "properties": {
        "format": {"const": "aetool-bundle"},
        "format_version": {"type": "integer", "minimum": 1},
        "task": {"enum": ["detect", "autoencoder", "denoise"]},
        "variant": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
        "variant_distribution": {"type": "string", "pattern": DISTRIBUTION_NAME},
        "config": {"type": "object"},
        "input_shape": {"type": "array", "minItems": 1, "maxItems": 4,
                        "items": {"type": "integer", "minimum": 1, "maximum": MAX_INPUT_DIM}},
        "n_classes": {"type": ["integer", "null"], "minimum": 1},
        "n_features_in": {"type": "integer", "minimum": 1},
        "weights_sha256": {"type": "string", "pattern": SHA256},
        "preprocessing": {"type": "object"},
        "feature_names_in": {"type": "array", "items": {"type": "string"}},
        "params": {"type": "object"},
        "history": {"type": "array", "items": {"type": "object"}},
        "classes": {"type": "array"},
        "table": {"type": ["object", "null"]},
        "code_prior": {
            "type": ["object", "null"],
            "required": ["weights", "means", "covariances"],
            "properties": {"weights": {"type": "array", "items": {"type": "number"}},
                           "means": {"type": "array", "items": {"type": "array"}},
                           "covariances": {"type": "array", "items": {"type": "array"}}},
        },
        "detector": {
            "type": "object",
            "required": ["scorer", "threshold"],
            "properties": {"scorer": {"type": "object"}, "threshold": {"type": "number"},
                           "kind": {"enum": ["whole", "patches"]}},
        },
        "extra_tensors": {
            "type": "object",
            "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$"},
            "additionalProperties": {
                "type": "array", "maxItems": 4,
                "items": {"type": "integer", "minimum": 0, "maximum": MAX_INPUT_DIM}},
        },
    },
    "allOf": [{"if": {"properties": {"task": {"const": "detect"}}},
               "then": {"required": ["detector"]}},
              {"if": {"properties": {"task": {"const": "denoise"}}},
               "then": {"required": ["denoise"], "properties": {"denoise": {"type": "object"}}}}],
}


def validate_manifest(manifest: Any) -> str | None:
    """None when ``manifest`` fits the schema, else one line naming the first bad field."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(MANIFEST_SCHEMA)
    error = next(iter(sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "top level"
    message = error.message if len(error.message) <= 120 else error.message[:117] + "..."
    return f"field '{where}': {message}"
