"""What is installed and what a bundle holds: the rows behind ``aetool variants``, ``aetool
plugins`` and ``aetool info``. Torch-free, so these commands stay fast."""

from __future__ import annotations

from typing import Any

from aetool import defaults
from aetool.bundle import read_manifest
from aetool.plugins import get_registry

# (key in a variant row, what ``aetool variants`` calls it, the aetool.defaults table by name,
# looked up when the rows are made)
TASK_SETTINGS: list[tuple[str, str, str]] = [
    ("table_detection_settings", f"as a table anomaly detector of up to "
     f"{defaults.TABLE_PENALTY_COLUMNS} columns (wider: weight_penalty times "
     f"{defaults.TABLE_PENALTY_COLUMNS} / columns)", "TABLE_DETECTION_DEFAULTS"),
    ("categorical_table_detection_settings", "as a detector of tables whose columns are at "
     f"least {defaults.CATEGORICAL_TABLE_SHARE:.0%} one-hot codes (scored by reconstruction "
     f"error alone, up to {defaults.CATEGORICAL_STEP_BUDGET} steps)",
     "CATEGORICAL_TABLE_DETECTION_DEFAULTS"),
    ("patch_detection_settings", "in the image patch detector (fit on images >= "
     f"{defaults.PATCH_DETECTOR_MIN_SIDE} px)", "PATCH_DETECTION_DEFAULTS"),
    ("image_feature_settings", "trained on images (train, features)",
     "IMAGE_FEATURE_DEFAULTS"),
    ("image_generation_settings", "trained on images (train, sample)",
     "IMAGE_GENERATION_DEFAULTS"),
    ("image_training_steps", "trained on images at the default epochs (train, features)",
     "IMAGE_TRAINING_STEPS"),
    ("image_denoising_settings", "as an image denoiser", "IMAGE_DENOISING_DEFAULTS"),
]


def variant_rows() -> list[dict[str, Any]]:
    """Each installed variant: name, summary, capabilities, settings with defaults, the plugin
    and package it came from, and the settings that differ by task and data kind
    (TASK_SETTINGS)."""
    registry = get_registry()
    rows = []
    for name in sorted(registry.variants):
        info = registry.variants[name].describe()
        owner = registry.plugins[registry.variant_owner[name]]
        info["plugin"] = owner.name
        info["package"] = owner.distribution
        for key, _, table in TASK_SETTINGS:
            info[key] = getattr(defaults, table).get(name, {})
        if info["table_detection_settings"]:  # the width they hold to (table_detection_defaults)
            info["table_penalty_columns"] = defaults.TABLE_PENALTY_COLUMNS
        if "image" in info["capabilities"]:  # image folders given no --image-size
            info["image_training_size"] = {
                "max_short_side": defaults.WHOLE_IMAGE_MAX_SHORT_SIDE}
        info["image_denoising_candidates"] = defaults.IMAGE_DENOISING_CANDIDATES.get(name, {})
        if "denoising" in info["capabilities"]:
            info["image_denoising_tiles"] = {"side": defaults.DENOISE_TILE,
                                             "min_side": defaults.DENOISE_TILE_MIN_SIDE,
                                             "tiles": defaults.DENOISE_TILES,
                                             "starts_per_side": defaults.DENOISE_TILE_STARTS}
        rows.append(info)
    return rows


def plugin_rows(show_all: bool) -> list[Any]:
    """Installed plugins (the built-in ones too with ``show_all``), with what each provides
    and any error met while loading it."""
    return [p for p in get_registry().plugins.values() if show_all or not p.builtin]


def bundle_manifest(bundle: str) -> dict[str, Any]:
    """The validated manifest of ``bundle`` (nothing is built or loaded)."""
    return read_manifest(bundle)


def input_lines(manifest: dict[str, Any]) -> list[str]:
    """What data a bundle expects: its feature columns and the fit-time id and label columns,
    so a user preparing a file to score knows what it needs."""
    lines = []
    names = manifest.get("feature_names_in") or []
    if names:
        more = f", ... and {len(names) - 6} more" if len(names) > 6 else ""
        lines.append(f"columns:     {len(names)} ({', '.join(names[:6])}{more})")
    unused = (manifest.get("preprocessing") or {}).get("dropped") or []
    if unused:  # constant, or left out as no model can use them: may be absent when scoring
        more = f", ... and {len(unused) - 6} more" if len(unused) > 6 else ""
        lines.append(f"not used:    {len(unused)} ({', '.join(unused[:6])}{more}; constant or "
                     f"unusable, may be absent when scoring)")
    table = manifest.get("table") or {}
    roles = [f"{role} {table[key]}" for role, key in (("id", "id_column"),
                                                     ("label", "label_column"),
                                                     ("normal class", "normal_class"))
             if table.get(key)]
    if roles:
        lines.append(f"also read:   {', '.join(roles)}")
    taken = table.get("source_images")
    if taken:  # what score compares a folder with
        from aetool.data.acquisition import file_kind

        height, width = taken["size"]
        lines.append(f"images:      trained on files typically {height}x{width}, mostly "
                     f"{file_kind(taken)}")
    return lines


def patch_summary(manifest: dict[str, Any]) -> str:
    """One line on a patch detector bundle (:func:`patch_description` of its manifest)."""
    return patch_description(manifest["detector"]["scorer"], manifest["variant"],
                             manifest["preprocessing"]["shape"])


def patch_description(scorer: dict[str, Any], variant: str, shape: Any) -> str:
    """What a patch detector does, from its scorer's state (``PatchScorer.to_dict``): the
    patches and their codes, the search, the pooling and each choice it made, with the cost
    that decided it. ``fit`` says it of the detector it trained, ``info`` of a bundle."""
    grid = scorer["grid"]
    image = "x".join(str(v) for v in shape)
    work = scorer.get("work_shape")
    if work is not None:
        image += f" (scaled to {work[0]}x{work[1]})"
    reach = scorer.get("reach")
    near = "anywhere" if reach is None else f"within {reach} grid step(s)"
    clauses = [f"{variant} codes of {len(grid['rows']) * len(grid['cols'])} patches of "
               f"{grid['size']}x{grid['size']} px of {image} images, nearest training code "
               f"{near}, mean of the {scorer['top_k']} worst"]
    copies, cost = scorer.get("copies", 1), scorer.get("turn_cost")
    turns = (f"each training image learnt in {copies} turned and mirrored copies"
             if copies > 1 else "no turned copies" if cost is not None else None)
    if turns is not None and cost is not None:  # measured by turns="auto": say why
        turns += (f" (turn cost {cost:.2f}: the parts lie in "
                  f"{'any' if copies > 1 else 'one'} orientation)")
    clauses.append(turns)
    place = scorer.get("place_cost")
    if place is not None:  # measured by reach / scale_positions "auto": say what it found
        kind = "not aligned, each patch searched anywhere" if reach is None else "aligned"
        clauses.append(f"place cost {place:.2f} (the images are {kind})")
    if scorer.get("edge_sigma") is not None:
        clauses.append(f"patches carry an edge channel (smoothed at {scorer['edge_sigma']:g} "
                       "px)")
    if scorer.get("residual_weight") is not None:
        share = scorer.get("residual_share") or 1.0
        drawn = "" if share >= 1 else f", of its worst-drawn {share:.0%}"
        if scorer.get("residual_channels") is not None:
            drawn += " of the image's channels (not the edge channel)"
        floor = scorer.get("residual_floor")
        if floor is not None:
            level = "lowest" if floor == 0 else f"{floor:.0%} quantile"
            drawn += (f", floored at the training patches' {level} "
                      + ("overall" if reach is None else "at its place"))
        clauses.append(f"each code carries its patch's reconstruction error{drawn} (weight "
                       f"{scorer['residual_weight']:.3g})")
    if scorer.get("position_scale") is not None:
        clauses.append("distances in units of each position's normal spread")
    if scorer.get("position_level") is not None:
        clauses.append("maps show how far a patch lies beyond its position's normal level")
    if scorer.get("texture_power") is not None:
        clauses.append("scores divided by the texture of the training images matched, to the "
                       f"power {scorer['texture_power']:g}")
    if scorer.get("whole_side") is not None:
        weight = scorer.get("whole_weight")
        counts = ("counts in the mean with the worst patches" if weight is None else
                  f"weighs {weight:.0%} beside the worst patches")
        clauses.append(f"the whole image's thumbnail ({scorer['whole_side']} px on its shorter "
                       f"side) {counts}")
    return "; ".join(c for c in clauses if c)


def score_summary(manifest: dict[str, Any]) -> str:
    """What a table or whole-image detector's score is made of, and why when it is not what
    ``score_method`` asked for ('auto': the reconstruction error on a mostly categorical table)."""
    scorer = manifest["detector"]["scorer"]
    method = scorer["method"]
    code = "code distance" + (" and code density" if scorer.get("mixture_means") else "")
    text = {"combined": f"reconstruction error and {code} (robust z-scores summed)",
            "reconstruction": "reconstruction error alone",
            "latent": f"{code} alone"}.get(method, method)
    asked = (manifest.get("params") or {}).get("score_method", "auto")
    table = manifest.get("preprocessing") or {}
    share = defaults.one_hot_share(len(table.get("numeric") or {}),
                                   (len(c) for c in (table.get("categorical") or {}).values()))
    if asked == "auto" and method == "reconstruction" and defaults.mostly_categorical(share):
        text += " (most columns are categorical; score_method=auto)"
    elif asked not in ("auto", method) or (asked == "auto" and method != "combined"):
        text += f" ({asked} asked: too few rows per code unit, or codes that do not vary)"
    return text
