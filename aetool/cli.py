"""The ``aetool`` command line. Thin: it parses options and calls the tasks. Torch is imported
only inside commands that touch a model, so ``aetool --help`` and ``aetool plugins`` stay fast."""

from __future__ import annotations

import json
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from aetool._version import __version__
from aetool.errors import AetoolError

EXIT_BAD_INPUT = 2
SETTING_ALIASES = {"lr": "learning_rate", "seed": "random_state"}
ESTIMATOR_SETTINGS: dict[str, type] = {"epochs": int, "batch_size": int, "learning_rate": float,
                                        "max_steps": int, "patience": int, "random_state": int,
                                        "device": str}
DETECTOR_SETTINGS: dict[str, Any] = {"score_method": str, "trim": float, "log_views": bool,
                                       "code_core": float | str}
DENOISER_SETTINGS: dict[str, type] = {"min_steps": int}


def _show_warning(message: Any, category: type, filename: str, lineno: int,
                  file: Any = None, line: Any = None) -> None:
    click.echo(f"warning: {message}", err=True)


class AetoolGroup(click.Group):
    """Bad input of any kind, aetool's own user errors (``invoke``) and click's usage errors
    (``main``), ends in one ``error:`` line on stderr and exit code 2, never a traceback."""

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:  # bad option value, unknown option, missing argument
            where = f"; see '{exc.ctx.command_path} --help'" if exc.ctx else ""
            click.echo(f"error: {exc.format_message().rstrip('.')}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted; no output was written", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        warnings.showwarning = _show_warning
        try:
            return super().invoke(ctx)
        except AetoolError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except Terminated:
            click.echo("terminated; no output was written", err=True)
            ctx.exit(143)
        except KeyboardInterrupt:
            click.echo("interrupted; no output was written", err=True)
            ctx.exit(130)
        except OSError as exc:  # the file system refused (permissions, disk full, a lost mount)
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}; no output was written", err=True)
            ctx.exit(EXIT_BAD_INPUT)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every temporary output is removed on the way out."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def parse_settings(values: tuple[str, ...], variant: str,
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``--set key=value`` pairs -> estimator parameters (with ``variant_params`` inside);
    ``extra``: the estimator's own settings besides the shared ones (e.g. DETECTOR_SETTINGS)."""
    from aetool.plugins import get_variant
    from aetool.variants.base import coerce_value, config_from_dict

    own = {**ESTIMATOR_SETTINGS, **(extra or {})}
    params: dict[str, Any] = {}
    variant_values: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise AetoolError(f"--set expects key=value, got '{item}'")
        key = SETTING_ALIASES.get(key.strip(), key.strip())
        if key in own:
            try:
                params[key] = coerce_value(value.strip(), own[key], key)
            except ValueError as exc:
                raise AetoolError(f"--set: {exc}") from None
        else:
            variant_values[key] = value
    variant_cls = get_variant(variant)
    try:
        config = config_from_dict(variant_cls.Config, variant_values,
                                  owner=f"variant '{variant}' (other settings: "
                                        f"{', '.join(sorted(set(own) | {'lr', 'seed'}))})")
    except ValueError as exc:
        raise AetoolError(str(exc)) from None
    params["variant_params"] = {k: getattr(config, k) for k in variant_values}
    return params


@click.group(cls=AetoolGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aetool")
def cli() -> None:
    """Autoencoders for real data: anomaly scores, denoising and features."""


# -- plugins and variants ------------------------------------------------------------------------
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def variants(as_json: bool) -> None:
    """List installed autoencoder variants with their settings and defaults."""
    from aetool.estimators import TABLE_DETECTION_DEFAULTS
    from aetool.plugins import get_registry

    registry = get_registry()
    rows = []
    for name in sorted(registry.variants):
        info = registry.variants[name].describe()
        owner = registry.plugins[registry.variant_owner[name]]
        info["plugin"] = owner.name
        info["package"] = owner.distribution
        info["table_detection_settings"] = TABLE_DETECTION_DEFAULTS.get(name, {})
        rows.append(info)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']:<12} {row['summary']}")
        click.echo(f"{'':<12} plugin: {row['plugin']} ({row['package']}); "
                   f"capabilities: {', '.join(row['capabilities'])}")
        settings = ", ".join(f"{k}={v}" for k, v in row["config"].items())
        click.echo(f"{'':<12} settings: {settings}")
        if row["table_detection_settings"]:
            changed = ", ".join(f"{k}={v}" for k, v in row["table_detection_settings"].items())
            click.echo(f"{'':<12} as a table anomaly detector: {changed}")


@cli.group(cls=AetoolGroup, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool, show_all: bool) -> None:
    """List installed plugins (built-ins with --all), or manage them with a sub-command."""
    if ctx.invoked_subcommand is not None:
        return
    from aetool.plugins import get_registry

    infos = [p for p in get_registry().plugins.values() if show_all or not p.builtin]
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in infos], indent=2))
        return
    if not infos:
        click.echo("no third-party plugins installed (aetool plugins --all shows the built-ins)")
    for info in infos:
        status = "error: " + "; ".join(info.errors) if info.errors else "ok"
        provided = ", ".join(info.variants + info.noise_models) or "-"
        click.echo(f"{info.name:<14} {info.distribution} {info.version:<8} provides: {provided} "
                   f"[{status}]")


@plugins.command("install")
@click.argument("target")
@click.option("--editable", "-e", is_flag=True, help="Install a local path in editable mode.")
def plugins_install(target: str, editable: bool) -> None:
    """Install a plugin package (a name on the package index or a local path) with pip."""
    from aetool.tasks.plugin_admin import pip_install

    pip_install(target, editable)


@plugins.command("uninstall")
@click.argument("name")
def plugins_uninstall(name: str) -> None:
    """Uninstall a plugin package with pip."""
    from aetool.tasks.plugin_admin import pip_uninstall

    pip_uninstall(name)


@plugins.command("new")
@click.argument("name")
@click.option("--directory", "-d", type=click.Path(file_okay=False), default=".",
              help="Where to create the package folder.")
def plugins_new(name: str, directory: str) -> None:
    """Scaffold a ready-to-install variant plugin package named NAME."""
    from aetool.tasks.plugin_admin import scaffold_plugin

    path = scaffold_plugin(name, Path(directory))
    click.echo(f"created {path}; install it with: aetool plugins install -e {path}")


# -- generic training --------------------------------------------------------------------------
@cli.command()
@click.argument("data", type=click.Path(dir_okay=True))
@click.option("--variant", "-v", default="ae", show_default=True, help="Variant name.")
@click.option("--output", "-o", required=True, type=click.Path(), help="Bundle directory.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Variant or training setting (repeatable), e.g. --set epochs=30.")
@click.option("--label-column", help="CSV column with class labels (conditional variants).")
@click.option("--columns", help="Comma-separated feature columns (default: all others).")
@click.option("--exclude", help="Comma-separated columns to leave out.")
@click.option("--id-column", help="Column that names rows; left out of training.")
@click.option("--force", is_flag=True,
              help="Replace an existing file at --output (an existing bundle is always "
                   "replaced; any other folder never is).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train(data: str, variant: str, output: str, settings: tuple[str, ...],
          label_column: str | None, columns: str | None, exclude: str | None,
          id_column: str | None, force: bool, quiet: bool) -> None:
    """Train a variant on a numeric CSV/Parquet table or a .npy/.npz array and save a bundle."""
    from aetool.bundle import check_bundle_output
    from aetool.estimators import Autoencoder
    from aetool.tasks.train import load_training_data

    check_bundle_output(output, (data,), force)

    params = parse_settings(settings, variant)
    left_out = [*(_split(exclude) if exclude else []), *([id_column] if id_column else [])]
    x, y = load_training_data(data, label_column, _split(columns) if columns else None, left_out)
    model = Autoencoder(variant=variant, verbose=not quiet, **params).fit(x, y)
    model.save(output, force=force)
    last = model.history_[-1]
    click.echo(f"trained {model.variant_name_} for {len(model.history_)} epochs "
               f"(loss {last.get('val_loss', last['loss']):.4g}); saved {output}")


@cli.command()
@click.argument("bundle", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest as JSON.")
def info(bundle: str, as_json: bool) -> None:
    """Describe a saved bundle: variant, settings, input, training history."""
    from aetool.bundle import read_manifest

    manifest = read_manifest(bundle)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    history = manifest.get("history", [])
    last = history[-1] if history else {}
    click.echo(f"bundle:      {bundle}")
    click.echo(f"task:        {manifest.get('task')}")
    click.echo(f"variant:     {manifest['variant']} (from {manifest.get('variant_distribution')})")
    click.echo(f"input shape: {tuple(manifest['input_shape'])}")
    for line in _input_lines(manifest):
        click.echo(line)
    click.echo(f"settings:    {', '.join(f'{k}={v}' for k, v in manifest['config'].items())}")
    click.echo(f"trained:     {len(history)} epochs, final loss "
               f"{last.get('val_loss', last.get('loss', float('nan'))):.4g}")
    click.echo(f"aetool:      {manifest.get('aetool_version')} on {manifest.get('created')}")
    if "detector" in manifest:
        click.echo(f"threshold:   {manifest['detector']['threshold']:.4g}")


def _input_lines(manifest: dict[str, Any]) -> list[str]:
    """What data a bundle expects: its feature columns and the fit-time id and label columns,
    so a user preparing a file to score knows what it needs."""
    lines = []
    names = manifest.get("feature_names_in") or []
    if names:
        more = f", ... and {len(names) - 6} more" if len(names) > 6 else ""
        lines.append(f"columns:     {len(names)} ({', '.join(names[:6])}{more})")
    table = manifest.get("table") or {}
    roles = [f"{role} {table[key]}" for role, key in (("id", "id_column"),
                                                     ("label", "label_column"))
             if table.get(key)]
    if roles:
        lines.append(f"also read:   {', '.join(roles)}")
    return lines


@cli.command()
@click.argument("bundle", type=click.Path())
@click.option("-n", "count", default=64, show_default=True, type=click.IntRange(min=1),
              help="Number of samples.")
@click.option("--label", help="Class to sample (conditional variants).")
@click.option("--seed", default=0, show_default=True)
@click.option("--output", "-o", required=True, type=click.Path(), help="PNG file.")
def sample(bundle: str, count: int, label: str | None, seed: int, output: str) -> None:
    """Draw samples from a generative bundle (vae, cvae) and write them as an image grid."""
    from aetool.data.output import check_output_file
    from aetool.tasks.train import sample_grid

    check_output_file(output, (bundle,))
    if count < 1:
        raise AetoolError(f"-n must be at least 1, got {count}")
    sample_grid(bundle, count, output, label=label, seed=seed)
    click.echo(f"wrote {count} samples to {output}")


# -- detection ---------------------------------------------------------------------------------
def table_options(func: Any) -> Any:
    """Options that say which columns are features, ids and labels, or how to read images."""
    options = [
        click.option("--columns", help="Comma-separated feature columns (default: all others)."),
        click.option("--exclude", help="Comma-separated columns to leave out."),
        click.option("--id-column", help="Column carried to the output as the row id."),
        click.option("--label-column", help="0/1 column used only for evaluation."),
        click.option("--image-size", help="Images: resize to H,W (default: most common size)."),
        click.option("--normal-class", help="Images: the class folder (or npz label) that is "
                                            "normal; the others count as anomalies in evaluation."),
        click.option("--strict", is_flag=True, help="Images: unreadable files are an error."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class ContaminationType(click.ParamType):
    """A share in (0, 0.5) or 'auto', checked before any data is read."""

    name = "share|auto"

    def convert(self, value: Any, param: Any, ctx: Any) -> float | str:
        from aetool.thresholds import check_contamination

        try:
            return check_contamination(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def detector_options(func: Any) -> Any:
    options = [
        click.option("--variant", "-v", default=None,
                     help="Variant name [default: conv for images, ae for tables]."),
        click.option("--contamination", default="0.1", show_default=True,
                     type=ContaminationType(),
                     help="Expected share of anomalies, in (0, 0.5); sets the threshold. "
                          "auto: Tukey's fence on training scores, for an unknown share."),
        click.option("--threshold", type=float, help="Fixed anomaly-score threshold instead."),
        click.option("--threshold-from", type=click.Path(),
                     help="Labelled validation file: pick the best-F1 threshold on it."),
        click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                     help="Variant or training setting (repeatable)."),
        click.option("--device", default="auto", show_default=True,
                     help="auto, cpu, cuda, cuda:N or mps."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def inference_options(func: Any) -> Any:
    """--device, --precision, --batch-size and --compile: how a saved model is run."""
    options = [
        click.option("--device", default="auto", show_default=True,
                     help="auto, cpu, cuda, cuda:N or mps."),
        click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32",
                     show_default=True, help="Autocast precision for the model."),
        click.option("--batch-size", default="auto", show_default=True,
                     help="Rows per batch, or auto (4096 on CPU, 65536 on GPU)."),
        click.option("--compile", "compile_model", is_flag=True,
                     help="torch.compile the model (pays off only on long runs)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _inference(device: str, precision: str, batch_size: str,
               compile_model: bool) -> dict[str, Any]:
    if batch_size != "auto" and not batch_size.isdigit():
        raise AetoolError(f"--batch-size expects a number or auto, got '{batch_size}'")
    return {"device": device, "precision": precision, "compile_model": compile_model,
            "batch_size": batch_size if batch_size == "auto" else int(batch_size)}


def _inputs(*paths: str | None) -> tuple[str, ...]:
    """The input files of a command that its outputs must never overwrite."""
    return tuple(p for p in paths if p)


def _split(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _spec(columns: str | None = None, exclude: str | None = None, id_column: str | None = None,
          label_column: str | None = None, image_size: str | None = None,
          normal_class: str | None = None, strict: bool = False) -> Any:
    from aetool.tasks.detect import TableSpec

    size = _image_size(image_size)
    return TableSpec(columns=_split(columns) if columns else None,
                     exclude=_split(exclude) if exclude else [],
                     id_column=id_column, label_column=label_column,
                     image_size=list(size) if size else None, normal_class=normal_class,
                     strict=strict)


def _fit_loaded(table: Any, spec: Any, variant: str | None, contamination: float | str,
                threshold: float | None, threshold_from: str | None,
                settings: tuple[str, ...], device: str, quiet: bool) -> Any:
    from aetool.tasks.detect import fit_detector

    variant = variant or ("conv" if table.is_images else "ae")
    params = parse_settings(settings, variant, DETECTOR_SETTINGS)
    params.update(variant=variant, contamination=contamination, threshold=threshold,
                  verbose=not quiet)
    params.setdefault("device", device)
    detector = fit_detector(table, spec, params, threshold_from)
    if threshold_from:
        click.echo(f"threshold {detector.threshold_:.4g}: the best F1 on {threshold_from}")
    return detector


def _print_metrics(result: dict[str, float]) -> None:
    click.echo("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in result.items()))


@cli.command()
@click.argument("data", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(), help="Output CSV or Parquet.")
@click.option("--save-model", type=click.Path(), help="Also save the trained bundle here.")
@click.option("--force", is_flag=True,
              help="Replace an existing file at --save-model (an existing bundle is always "
                   "replaced; any other folder never is).")
@click.option("--top-features", default=3, show_default=True, type=click.IntRange(min=0),
              help="Explanations per row (0: none, fastest).")
@click.option("--maps", type=click.Path(file_okay=False), help="Images: folder for heat maps.")
@click.option("--plots", type=click.Path(file_okay=False),
              help="Folder for figures: score histogram, most anomalous rows or images, and "
                   "with labels ROC and PR curves.")
@table_options
@detector_options
def detect(data: str, output: str, save_model: str | None, top_features: int, maps: str | None,
           plots: str | None, columns: str | None, exclude: str | None, id_column: str | None,
           label_column: str | None, image_size: str | None, normal_class: str | None,
           strict: bool, variant: str | None, contamination: float | str, threshold: float | None,
           threshold_from: str | None, settings: tuple[str, ...], device: str,
           quiet: bool, force: bool) -> None:
    """Fit a detector on DATA (table, image folder or array) and score it in one step."""
    from aetool.bundle import check_bundle_output
    from aetool.data.output import check_output_file, table_output_kind
    from aetool.tasks.detect import (
        evaluate_table,
        evaluation_problem,
        load_table,
        scored_with_details,
        write_figures,
        write_scores,
    )

    table_output_kind(output)  # a bad output name fails now, not after training
    inputs = _inputs(data, threshold_from)
    check_output_file(output, inputs)
    if save_model:
        check_bundle_output(save_model, inputs, force)
    spec = _spec(columns, exclude, id_column, label_column, image_size, normal_class, strict)
    table = load_table(data, spec, need_labels=True)  # detect evaluates when it can
    problem = evaluation_problem(table)
    if problem:  # said before training; the scores are still written
        warnings.warn(problem, UserWarning, stacklevel=1)
    detector = _fit_loaded(table, spec, variant, contamination, threshold, threshold_from,
                           settings, device, quiet)
    frame, details = scored_with_details(detector, table, top_features, maps,
                                         explain=bool(plots))
    write_scores(frame, output)
    if save_model:
        detector.save(save_model, force=force)
    n_flagged = int(frame["is_anomaly"].sum())
    click.echo(f"scored {len(table.features)} rows, {n_flagged} flagged as anomalies; "
               f"wrote {output}")
    if table.labels is not None and not problem:
        _print_metrics(evaluate_table(detector, table, plots, details))
    elif plots:
        write_figures(detector, table, details, plots)
    if plots:
        click.echo(f"figures in {plots}")


@cli.command()
@click.argument("data", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(), help="Bundle directory.")
@click.option("--sample-rows", type=click.IntRange(min=2),
              help="Tables: train on a uniform random sample of this many rows, read chunk by "
                   "chunk (for files larger than memory).")
@click.option("--force", is_flag=True,
              help="Replace an existing file at --output (an existing bundle is always "
                   "replaced; any other folder never is).")
@table_options
@detector_options
def fit(data: str, output: str, sample_rows: int | None, force: bool, columns: str | None,
        exclude: str | None, id_column: str | None, label_column: str | None,
        image_size: str | None, normal_class: str | None, strict: bool, variant: str | None,
        contamination: float | str, threshold: float | None, threshold_from: str | None,
        settings: tuple[str, ...], device: str, quiet: bool) -> None:
    """Train a detector on DATA (table, image folder or array) and save it as a bundle."""
    from aetool.bundle import check_bundle_output
    from aetool.tasks.detect import is_image_input, load_table, split_frame

    check_bundle_output(output, _inputs(data, threshold_from), force)
    spec = _spec(columns, exclude, id_column, label_column, image_size, normal_class, strict)
    if sample_rows is None:
        table = load_table(data, spec)
    else:
        from aetool.data.tables import ARRAY_SUFFIXES, sample_table

        if is_image_input(data) or Path(data).suffix.lower() in ARRAY_SUFFIXES:
            raise AetoolError(f"{data}: --sample-rows is for CSV and Parquet tables")
        table = split_frame(sample_table(data, sample_rows), spec, data)
    detector = _fit_loaded(table, spec, variant, contamination, threshold, threshold_from,
                           settings, device, quiet)
    detector.save(output, force=force)
    click.echo(f"saved detector ({detector.variant_name_}, threshold "
               f"{detector.threshold_:.4g}) to {output}")


@cli.command()
@click.argument("bundle", type=click.Path())
@click.argument("data", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(),
              help="Output CSV or Parquet (a folder with --engine dask).")
@click.option("--top-features", default=3, show_default=True, type=click.IntRange(min=0),
              help="Explanations per row (0: none, fastest).")
@click.option("--maps", type=click.Path(file_okay=False), help="Images: folder for heat maps.")
@inference_options
@click.option("--chunk-rows", type=click.IntRange(min=1),
              help="Rows read per chunk when streaming a table.")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local",
              show_default=True, help="dask: score a folder or glob of parts on a cluster.")
@click.option("--scheduler", help="Dask scheduler address (default: a local cluster).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1),
              help="Local Dask cluster size.")
@click.option("--threshold", type=float,
              help="Flag scores above this instead of the saved threshold.")
@click.option("--contamination", type=ContaminationType(),
              help="Flag this share of the training rows' score range instead: the threshold "
                   "is recomputed from the saved training scores, no retraining.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def score(bundle: str, data: str, output: str, top_features: int, maps: str | None,
          device: str, precision: str, batch_size: str, compile_model: bool,
          chunk_rows: int | None, engine: str, scheduler: str | None, workers: int,
          threshold: float | None, contamination: float | str | None, quiet: bool) -> None:
    """Score DATA with a saved detector bundle; tables are streamed chunk by chunk."""
    from aetool.tasks.detect import (
        is_image_input,
        load_detector,
        load_table,
        score_table,
        write_scores,
    )

    inference = _inference(device, precision, batch_size, compile_model)
    if engine == "dask":
        from aetool.distributed import score_with_dask

        done = score_with_dask(bundle, data, output, scheduler, inference, top_features,
                               workers, threshold=threshold, contamination=contamination)
        for message in dict.fromkeys(m for *_, said in done for m in said):
            click.echo(f"warning: {message}", err=True)
        click.echo(f"scored {sum(part[1] for part in done)} rows in {len(done)} parts, "
                   f"{sum(part[2] for part in done)} flagged as anomalies; wrote {output}")
        return
    from aetool.data.output import check_output_file, table_output_kind

    table_output_kind(output)
    check_output_file(output, (data,))
    detector, spec = load_detector(bundle)
    detector.set_inference(**inference)
    detector.set_threshold(threshold, contamination)
    if is_image_input(data):
        table = load_table(data, spec)
        frame = score_table(detector, table, top_features, maps)
        write_scores(frame, output)
        rows, flagged = len(frame), int(frame["is_anomaly"].sum())
    else:
        if maps:
            raise AetoolError(f"{data}: --maps needs images (a folder or an image array)")
        from aetool.tasks.stream import stream_score

        rows, flagged = stream_score(detector, data, output, spec, top_features, chunk_rows,
                                     progress=not quiet)
    click.echo(f"scored {rows} rows, {flagged} flagged as anomalies; wrote {output}")


@cli.command()
@click.argument("bundle", type=click.Path())
@click.argument("data", type=click.Path())
@click.option("--label-column", help="0/1 column with the truth (default: the one used in fit).")
@click.option("--normal-class", help="Images: the normal class (default: the one used in fit).")
@click.option("--plots", type=click.Path(file_okay=False), help="Folder for ROC/PR/histogram PNGs.")
@click.option("--threshold", type=float,
              help="Flag scores above this instead of the saved threshold.")
@click.option("--contamination", type=ContaminationType(),
              help="Flag this share of the training rows' score range instead: the threshold "
                   "is recomputed from the saved training scores, no retraining.")
def evaluate(bundle: str, data: str, label_column: str | None, normal_class: str | None,
             plots: str | None, threshold: float | None,
             contamination: float | str | None) -> None:
    """Evaluate a saved detector on labelled DATA: ROC-AUC, PR-AUC, F1, precision@n."""
    from aetool.tasks.detect import evaluate_table, load_detector, load_table

    detector, spec = load_detector(bundle)
    detector.set_threshold(threshold, contamination)
    spec.label_column = label_column or spec.label_column
    spec.normal_class = normal_class or spec.normal_class
    table = load_table(data, spec, need_labels=True, for_scoring=True)
    if table.labels is None:
        raise AetoolError("evaluate needs --label-column (a 0/1 column) or, for images, "
                          "--normal-class")
    _print_metrics(evaluate_table(detector, table, plots))
    if plots:
        click.echo(f"figures in {plots}")


# -- denoising ---------------------------------------------------------------------------------
def _image_size(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    parts = value.lower().replace("x", ",").split(",")
    try:
        sizes = [int(p) for p in parts if p]
    except ValueError:
        raise AetoolError(f"--image-size expects H,W or a single size, got '{value}'") from None
    return (sizes[0], sizes[-1])


@cli.group(cls=AetoolGroup)
def denoise() -> None:
    """Remove noise from tables, image folders or arrays with a denoising autoencoder."""


@denoise.command("fit")
@click.argument("clean", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(), help="Bundle directory.")
@click.option("--variant", "-v", default="dae", show_default=True)
@click.option("--noise", default="gaussian:0.3", show_default=True,
              help="Training corruption NAME:LEVEL (gaussian, masking, salt_pepper).")
@click.option("--noise-units", type=click.Choice(["std", "data"]), default="std",
              show_default=True,
              help="Tables: noise levels in standard deviations of each column, or in each "
                   "column's own unit.")
@click.option("--columns", help="Comma-separated columns to clean (default: numeric ones).")
@click.option("--exclude", help="Comma-separated columns to leave untouched.")
@click.option("--id-column", help="Column that names rows; passed through untouched.")
@click.option("--image-size", help="Resize images to H,W.")
@click.option("--strict", is_flag=True, help="Unreadable images are an error.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE")
@click.option("--force", is_flag=True,
              help="Replace an existing file at --output (an existing bundle is always "
                   "replaced; any other folder never is).")
@click.option("--quiet", "-q", is_flag=True)
def denoise_fit(clean: str, output: str, variant: str, noise: str, noise_units: str,
                columns: str | None, exclude: str | None, id_column: str | None,
                image_size: str | None, strict: bool, settings: tuple[str, ...], force: bool,
                quiet: bool) -> None:
    """Train a denoiser on CLEAN data (or on noisy data when no clean data exists)."""
    from aetool.bundle import check_bundle_output
    from aetool.noise import parse_noise
    from aetool.tasks.denoise import fit_denoiser

    check_bundle_output(output, (clean,), force)

    try:
        parse_noise(noise)
    except ValueError as exc:
        raise AetoolError(str(exc)) from None
    params = parse_settings(settings, variant, DENOISER_SETTINGS)
    params.update(variant=variant, noise=noise, noise_units=noise_units, verbose=not quiet)
    left_out = [*(_split(exclude) if exclude else []), *([id_column] if id_column else [])]
    denoiser = fit_denoiser(clean, params, _split(columns) if columns else None, left_out,
                            _image_size(image_size), strict)
    denoiser.save(output, force=force)
    units = " in data units" if noise_units == "data" else ""
    click.echo(f"saved denoiser ({denoiser.variant_name_}, noise {noise}{units}) to {output}")


@denoise.command("apply")
@click.argument("bundle", type=click.Path())
@click.argument("noisy", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(),
              help="CSV/Parquet for tables, a new folder for images, .npy for arrays.")
@click.option("--reference", type=click.Path(), help="Clean data: print MSE, PSNR and SSIM.")
@click.option("--strict", is_flag=True, help="Unreadable images are an error.")
@click.option("--id-column", help="Tables: column passed through untouched (checked to be one "
                                  "the denoiser does not clean).")
@click.option("--exclude", help="Tables: comma-separated columns to keep untouched (checked "
                                "likewise); columns the denoiser was not trained on always are.")
@inference_options
def denoise_apply(bundle: str, noisy: str, output: str, reference: str | None, strict: bool,
                  id_column: str | None, exclude: str | None, device: str, precision: str,
                  batch_size: str, compile_model: bool) -> None:
    """Denoise NOISY with a saved denoiser; columns, order, names and formats are kept."""
    from aetool.denoise import Denoiser
    from aetool.tasks.denoise import apply_denoiser, check_denoise_output, reference_report

    check_denoise_output(noisy, output, _inputs(noisy, reference))
    denoiser = Denoiser.load(bundle).set_inference(
        **_inference(device, precision, batch_size, compile_model))
    keep = [*(_split(exclude) if exclude else []), *([id_column] if id_column else [])]
    loaded = apply_denoiser(denoiser, noisy, output, strict, keep)
    click.echo(f"wrote {output}")
    if reference:
        report = reference_report(reference, loaded, loaded.model_input, denoiser.columns_)
        for name, values in report.items():
            click.echo(f"{name:<9} " + "  ".join(f"{k.upper()} {v:.4g}" for k, v in values.items()))


# -- features ----------------------------------------------------------------------------------
@cli.command()
@click.argument("bundle", type=click.Path())
@click.argument("data", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(),
              help="CSV, Parquet (.parquet) or NumPy (.npy) file.")
@click.option("--logvar", is_flag=True, help="Add a VAE's log-variances after the means.")
@click.option("--id-column", help="Column carried to the output.")
@click.option("--label-column", help="Column carried to the output (not used by the model).")
@inference_options
def features(bundle: str, data: str, output: str, logvar: bool, id_column: str | None,
             label_column: str | None, device: str, precision: str, batch_size: str,
             compile_model: bool) -> None:
    """Write the encoder codes of DATA (for VAEs the means) as features."""
    from aetool.data.output import check_output_file
    from aetool.tasks.features import export_features

    check_output_file(output, (data,))
    inference = _inference(device, precision, batch_size, compile_model)
    rows = export_features(bundle, data, output, logvar, label_column, id_column, inference)
    click.echo(f"wrote features of {rows} rows to {output}")


@cli.command("evaluate-features")
@click.argument("data", type=click.Path())
@click.option("--label-column", help="Class column (tables); .npz files use their 'y'.")
@click.option("--id-column", help="Column to leave out of the features.")
@click.option("--columns", help="Comma-separated feature columns (default: all others).")
@click.option("--exclude", help="Comma-separated columns to leave out.")
@click.option("--variants", default="ae,sparse,contractive,dae,vae", show_default=True)
@click.option("--classifiers", default="logreg,svm,rf,knn", show_default=True)
@click.option("--code-size", default=32, show_default=True)
@click.option("--cv", "folds", default=5, show_default=True)
@click.option("--epochs", default=30, show_default=True, help="Autoencoder epochs per fold.")
@click.option("--output", "-o", default="features-evaluation.csv", show_default=True,
              type=click.Path(), help="CSV table; the bar chart goes beside it as PNG.")
@click.option("--quiet", "-q", is_flag=True)
def evaluate_features_command(data: str, label_column: str | None, id_column: str | None,
                              columns: str | None, exclude: str | None, variants: str,
                              classifiers: str, code_size: int, folds: int, epochs: int,
                              output: str, quiet: bool) -> None:
    """Cross-validate variants as feature extractors for classifiers, next to raw and PCA."""
    from aetool.data.output import check_output_file, write_table
    from aetool.tasks.features import accuracy_chart, evaluate_features, load_labelled

    check_output_file(output, (data,))
    check_output_file(Path(output).with_suffix(".png"), (data,))
    from aetool.data.preprocess import data_source

    loaded = load_labelled(data, label_column, id_column,
                           tuple(_split(exclude)) if exclude else (),
                           _split(columns) if columns else None)
    with data_source(loaded.source):
        table = evaluate_features(loaded, _split(variants), _split(classifiers), code_size,
                                  folds, {"epochs": epochs}, progress=not quiet)
    for row in table.itertuples():
        click.echo(f"{row.method:<14} {row.classifier:<7} accuracy {row.accuracy_mean:.3f} "
                   f"± {row.accuracy_std:.3f}   macro-F1 {row.macro_f1_mean:.3f} "
                   f"± {row.macro_f1_std:.3f}")
    write_table(table, output)
    chart = accuracy_chart(table, Path(output).with_suffix(".png"))
    click.echo(f"wrote {output} and {chart}")


def main() -> None:
    """Console-script entry point. SIGTERM (``kill``, a batch scheduler) ends a run the way
    Ctrl-C does: partial outputs are removed."""
    signal.signal(signal.SIGTERM, _raise_terminated)
    cli(prog_name="aetool")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
