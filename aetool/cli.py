"""The ``aetool`` command line. Thin: each command turns its options into one call of a task in
:mod:`aetool.tasks` and prints what comes back.

Tasks are imported by :func:`task`, the one lazy import of aetool: the tasks load torch,
scikit-learn and pandas, so importing them at the top would make ``aetool --help`` and
``aetool plugins`` wait seconds for libraries they never use.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from aetool.data.output import to_stdout  # stdlib only: the CLI stays fast
from aetool.defaults import DENOISE_TILES, PATCH_DETECTOR_MIN_SIDE, WHOLE_IMAGE_MAX_SHORT_SIDE
from aetool.errors import AetoolError

EXIT_BAD_INPUT = 2


def task(name: str) -> ModuleType:
    """The task module ``aetool.tasks.NAME``, imported when a command runs (see above)."""
    return importlib.import_module(f"aetool.tasks.{name}")


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


# -- option sets, declared once ------------------------------------------------------------------
def _options(*options: Any) -> Any:
    """A decorator applying ``options`` in the order written."""
    def apply(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func
    return apply


QUIET = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
FORCE = click.option("--force", is_flag=True,
                     help="Replace an existing file at --output (an existing bundle is always "
                          "replaced; any other folder never is).")
SETTINGS = click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                        help="Variant or training setting (repeatable), e.g. --set epochs=30.")
COLUMNS = click.option("--columns", help="Comma-separated feature columns (default: all others).")
EXCLUDE = click.option("--exclude", help="Comma-separated columns to leave out.")
STRICT = click.option("--strict", is_flag=True, help="Images: unreadable files are an error.")


class ContaminationType(click.ParamType):
    """A share in (0, 0.5) or 'auto', checked before any data is read."""

    name = "share|auto"

    def convert(self, value: Any, param: Any, ctx: Any) -> float | str:
        try:
            return task("settings").contamination(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class ScoreType(click.ParamType):
    """A finite anomaly score (a threshold): 'nan' flags nothing and 'inf' nothing ever."""

    name = "score"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            return task("settings").threshold(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


IMAGE_SIZE_HELP = ("Images: resize to H,W (default: the most common size, or the median when "
                   "no size is shared by half the images")
WHOLE_IMAGE_SIZE = click.option(
    "--image-size", help=f"{IMAGE_SIZE_HELP}, scaled down to a shorter side of "
    f"{WHOLE_IMAGE_MAX_SHORT_SIDE} px).")

table_options = _options(
    COLUMNS, EXCLUDE,
    click.option("--id-column", help="Column carried to the output as the row id."),
    click.option("--label-column", help="Label column used only for evaluation: 0/1, or "
                                        "name the normal value with --normal-class."),
    click.option("--image-size", help=f"{IMAGE_SIZE_HELP})."),
    click.option("--normal-class", help="The class folder (images), npz label or value of "
                                        "the label column (tables) that is normal; the "
                                        "others count as anomalies in evaluation."),
    STRICT,
)

detector_options = _options(
    click.option("--variant", "-v", default=None,
                 help="Variant name [default: ae for tables, conv for whole images, conv "
                      "or ae for image patches by how many there are]."),
    click.option("--image-detector", type=click.Choice(["auto", "patches", "whole"]),
                 default="auto", show_default=True,
                 help="Images: patches (local defects: each patch's code against the training "
                      "patches near it) or whole (one model of the whole image); auto: patches "
                      f"when the shorter side is at least {PATCH_DETECTOR_MIN_SIDE} pixels."),
    click.option("--contamination", default="0.1", show_default=True, type=ContaminationType(),
                 help="Expected share of anomalies, in (0, 0.5); sets the threshold. "
                      "auto: Tukey's fence on training scores, for an unknown share."),
    click.option("--threshold", type=ScoreType(), help="Fixed anomaly-score threshold instead."),
    click.option("--threshold-from", type=click.Path(),
                 help="Labelled validation file: pick the best-F1 threshold on it."),
    SETTINGS,
    click.option("--device", default="auto", show_default=True,
                 help="auto, cpu, cuda, cuda:N or mps."),
    QUIET,
)

inference_options = _options(
    click.option("--device", default="auto", show_default=True,
                 help="auto, cpu, cuda, cuda:N or mps."),
    click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32",
                 show_default=True, help="Autocast precision for the model."),
    click.option("--batch-size", default="auto", show_default=True,
                 help="Rows per batch, or auto (4096 on CPU, 65536 on GPU)."),
    click.option("--compile", "compile_model", is_flag=True,
                 help="torch.compile the model (pays off only on long runs)."),
)

moved_threshold_options = _options(
    click.option("--threshold", type=ScoreType(),
                 help="Flag scores above this instead of the saved threshold."),
    click.option("--contamination", type=ContaminationType(),
                 help="Flag this share of the training rows' score range instead: the threshold "
                      "is recomputed from the saved training scores, no retraining."),
)


def _inference(device: str, precision: str, batch_size: str, compile_model: bool) -> Any:
    return task("settings").inference(device, precision, batch_size, compile_model)


def _print_metrics(result: dict[str, float], output: str | None = None) -> None:
    _say("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in result.items()), output)


def _say(text: str, output: str | None = None) -> None:
    """A line for the user: on standard error when the command writes its table to standard
    output (``-o -``), so a pipe gets the table alone."""
    click.echo(text, err=output is not None and to_stdout(output))


@click.group(cls=AetoolGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aetool", prog_name="aetool")
def cli() -> None:
    """Autoencoders for real data: anomaly scores, denoising and features."""


# -- plugins and variants ------------------------------------------------------------------------
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def variants(as_json: bool) -> None:
    """List installed autoencoder variants with their settings and defaults."""
    rows = task("catalog").variant_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']:<12} {row['summary']}")
        click.echo(f"{'':<12} plugin: {row['plugin']} ({row['package']}); "
                   f"capabilities: {', '.join(row['capabilities'])}")
        settings = ", ".join(f"{k}={v}" for k, v in row["config"].items())
        click.echo(f"{'':<12} settings: {settings}")
        for key, label, _ in task("catalog").TASK_SETTINGS:
            if row[key]:
                changed = ", ".join(f"{k}={v}" for k, v in row[key].items())
                click.echo(f"{'':<12} {label}: {changed}")
        if row.get("image_training_size"):
            side = row["image_training_size"]["max_short_side"]
            click.echo(f"{'':<12} trained on an image folder (train, evaluate-features): "
                       f"larger images read with a shorter side of {side} px unless "
                       "--image-size")
        if row["image_denoising_candidates"]:
            shown = "; ".join(f"{name} ({', '.join(f'{k}={v}' for k, v in s.items()) or 'own'})"
                              for name, s in row["image_denoising_candidates"].items())
            click.echo(f"{'':<12} image denoiser chosen by validation PSNR among: {shown}")
        if row.get("image_denoising_tiles"):
            tiles = row["image_denoising_tiles"]
            click.echo(f"{'':<12} as an image denoiser on images >= {tiles['min_side']} px: "
                       f"learns {tiles['tiles']:,} random {tiles['side']}x{tiles['side']} "
                       "tiles, cleans tile by tile")


@cli.group(cls=AetoolGroup, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool, show_all: bool) -> None:
    """List installed plugins (built-ins with --all), or manage them with a sub-command."""
    if ctx.invoked_subcommand is not None:
        return
    infos = task("catalog").plugin_rows(show_all)
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
    task("plugin_admin").pip_install(target, editable)


@plugins.command("uninstall")
@click.argument("name")
def plugins_uninstall(name: str) -> None:
    """Uninstall a plugin package with pip."""
    task("plugin_admin").pip_uninstall(name)


@plugins.command("new")
@click.argument("name")
@click.option("--directory", "-d", type=click.Path(file_okay=False), default=".",
              help="Where to create the package folder.")
def plugins_new(name: str, directory: str) -> None:
    """Scaffold a ready-to-install variant plugin package named NAME."""
    path = task("plugin_admin").scaffold_plugin(name, Path(directory))
    click.echo(f"created {path}; install it with: aetool plugins install -e {path}")


# -- generic training --------------------------------------------------------------------------
@cli.command()
@click.argument("data", type=click.Path(dir_okay=True))
@click.option("--variant", "-v", default="ae", show_default=True, help="Variant name.")
@click.option("--output", "-o", required=True, type=click.Path(), help="Bundle directory.")
@SETTINGS
@click.option("--label-column", help="CSV column with class labels (conditional variants).")
@COLUMNS
@EXCLUDE
@click.option("--id-column", help="Column that names rows; left out of training.")
@WHOLE_IMAGE_SIZE
@FORCE
@QUIET
def train(data: str, variant: str, output: str, settings: tuple[str, ...],
          label_column: str | None, columns: str | None, exclude: str | None,
          id_column: str | None, image_size: str | None, force: bool, quiet: bool) -> None:
    """Train a variant on a numeric table, an image folder or a .npy/.npz array; save a bundle."""
    spec = task("settings").table_spec(columns, exclude, id_column, label_column, image_size)
    model = task("train").run_train(data, output, variant, settings, spec, force, quiet)
    last = model.history_[-1]
    click.echo(f"trained {model.variant_name_} for {len(model.history_)} epochs "
               f"(loss {last.get('val_loss', last['loss']):.4g}); saved {output}")
    if model.stop_reason_ and quiet:  # else training has said it already, on stderr
        click.echo(f"note: {model.stop_reason_}")
    if getattr(model, "validation_nll_", None) is not None:
        click.echo(f"held-out NLL: {model.validation_nll_:.2f} nats per sample "
                   f"(importance-weighted, k={model.NLL_SAMPLES})")


@cli.command()
@click.argument("bundle", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest as JSON.")
def info(bundle: str, as_json: bool) -> None:
    """Describe a saved bundle: variant, settings, input, training history."""
    catalog = task("catalog")
    manifest = catalog.bundle_manifest(bundle)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    history = manifest.get("history", [])
    last = history[-1] if history else {}
    click.echo(f"bundle:      {bundle}")
    click.echo(f"task:        {manifest.get('task')}")
    click.echo(f"variant:     {manifest['variant']} (from {manifest.get('variant_distribution')})")
    click.echo(f"input shape: {tuple(manifest['input_shape'])}")
    for line in catalog.input_lines(manifest):
        click.echo(line)
    click.echo(f"settings:    {', '.join(f'{k}={v}' for k, v in manifest['config'].items())}")
    click.echo(f"trained:     {len(history)} epochs, final loss "
               f"{last.get('val_loss', last.get('loss', float('nan'))):.4g}")
    click.echo(f"aetool:      {manifest.get('aetool_version')} on {manifest.get('created')}")
    training = manifest.get("training") or {}
    if training.get("stop_reason"):
        click.echo(f"stopped:     {training['stop_reason']}")
    if training.get("validation_nll") is not None:
        click.echo(f"NLL:         {training['validation_nll']:.2f} nats per sample on held-out "
                   "training rows (importance-weighted, k=100)")
    if "detector" in manifest:
        if manifest["detector"].get("kind") == "patches":
            click.echo(f"detector:    {catalog.patch_summary(manifest)}")
        elif (manifest["detector"].get("scorer") or {}).get("method"):
            click.echo(f"score:       {catalog.score_summary(manifest)}")
        click.echo(f"threshold:   {manifest['detector']['threshold']:.4g}")


@cli.command()
@click.argument("bundle", type=click.Path())
@click.option("-n", "count", default=64, show_default=True, type=click.IntRange(min=1),
              help="Number of samples.")
@click.option("--label", help="Class to sample (conditional variants): a class name or value "
                               "as trained, or its position among the classes.")
@click.option("--seed", default=0, show_default=True)
@click.option("--temperature", default=1.0, show_default=True, type=float,
              help="Scale of the prior's standard deviation (below 1: typical samples).")
@click.option("--prior", type=click.Choice(["fitted", "standard"]), default="fitted",
              show_default=True,
              help="fitted: codes from the mixture fitted to the training codes; standard: "
                   "N(0, I).")
@click.option("--output", "-o", required=True, type=click.Path(),
              help="PNG file (a grid), or .npy / .npz arrays (npz: X and, with classes, y).")
def sample(bundle: str, count: int, label: str | None, seed: int, temperature: float,
           prior: str, output: str) -> None:
    """Draw samples from a generative bundle (vae, cvae) as an image grid or arrays."""
    task("train").run_sample(bundle, count, output, label=label, seed=seed,
                             temperature=temperature, prior=prior)
    click.echo(f"wrote {count} samples to {output}")


# -- detection ---------------------------------------------------------------------------------
def _detector_inputs(shared: dict[str, Any]) -> tuple[Any, Any]:
    """The table spec and the detector settings from the options ``table_options`` and
    ``detector_options`` add to a command."""
    spec = task("settings").table_spec(
        shared["columns"], shared["exclude"], shared["id_column"], shared["label_column"],
        shared["image_size"], shared["normal_class"], shared["strict"])
    options = task("detect").DetectorSettings(
        shared["variant"], shared["contamination"], shared["threshold"],
        shared["threshold_from"], shared["settings"], shared["device"], shared["quiet"],
        shared["image_detector"])
    return spec, options


def _patch_description(detector: Any) -> str | None:
    """What a patch detector does (as ``info`` says it), None for the whole-image and table
    detectors."""
    scorer = getattr(detector, "scorer_", None)
    if getattr(scorer, "grid", None) is None:
        return None
    return task("catalog").patch_description(scorer.to_dict(), detector.variant_name_,
                                             detector.preprocessor_.shape)


def _said_choices(detector: Any, threshold_from: str | None, output: str | None = None
                    ) -> None:
    """Say the choices a fit made that the user did not name: the threshold from labelled
    data, and the score 'auto' picks on a mostly categorical table."""
    if threshold_from:
        _say(f"threshold {detector.threshold_:.4g}: the best F1 on {threshold_from}", output)
    from aetool.defaults import mostly_categorical

    share = getattr(getattr(detector, "preprocessor_", None), "categorical_share", 0.0)
    if getattr(detector, "score_method", None) == "auto" and mostly_categorical(share) and \
            detector.scorer_.method == "reconstruction":
        _say(f"note: {share:.0%} of the encoded columns are categorical codes: scored by "
             "reconstruction error alone (--set score_method=combined for the combined score)",
             output)


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
def detect(data: str, output: str, save_model: str | None, force: bool, top_features: int,
           maps: str | None, plots: str | None, **shared: Any) -> None:
    """Fit a detector on DATA (table, image folder or array) and score it in one step."""
    spec, options = _detector_inputs(shared)
    detector, result = task("detect").run_detect(data, output, spec, options, top_features,
                                                 maps, plots, save_model, force)
    _said_choices(detector, options.threshold_from, output)
    _say(f"scored {result.rows} rows, {result.flagged} flagged as anomalies; wrote {output}",
         output)
    if result.metrics is not None:
        _print_metrics(result.metrics, output)
    if plots:
        _say(f"figures in {plots}", output)


@cli.command()
@click.argument("data", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(), help="Bundle directory.")
@click.option("--sample-rows", type=click.IntRange(min=2),
              help="Tables: train on a uniform random sample of this many rows, read chunk by "
                   "chunk (for files larger than memory).")
@FORCE
@table_options
@detector_options
def fit(data: str, output: str, sample_rows: int | None, force: bool, **shared: Any) -> None:
    """Train a detector on DATA (table, image folder or array) and save it as a bundle."""
    spec, options = _detector_inputs(shared)
    detector = task("detect").run_fit(data, output, spec, options, sample_rows, force)
    _said_choices(detector, options.threshold_from)
    patches = _patch_description(detector)
    click.echo(f"saved detector ({'patches' if patches else detector.variant_name_}, "
               f"threshold {detector.threshold_:.4g}) to {output}")
    if patches:
        click.echo(f"  {patches}")


@cli.command()
@click.argument("bundle", type=click.Path())
@click.argument("data", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(),
              help="Output CSV or Parquet (a folder with --engine dask; - for a CSV to "
                   "standard output).")
@click.option("--top-features", default=3, show_default=True, type=click.IntRange(min=0),
              help="Explanations per row (0: none, fastest).")
@click.option("--maps", type=click.Path(file_okay=False), help="Images: folder for heat maps.")
@inference_options
@click.option("--chunk-rows", type=click.IntRange(min=1),
              help="Rows read per chunk when streaming a table; images per chunk in a "
                   "folder (default 512).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local",
              show_default=True, help="dask: score a folder or glob of parts on a cluster.")
@click.option("--scheduler", help="Dask scheduler address (default: a local cluster).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1),
              help="Local Dask cluster size.")
@moved_threshold_options
@QUIET
def score(bundle: str, data: str, output: str, top_features: int, maps: str | None,
          device: str, precision: str, batch_size: str, compile_model: bool,
          chunk_rows: int | None, engine: str, scheduler: str | None, workers: int,
          threshold: float | None, contamination: float | str | None, quiet: bool) -> None:
    """Score DATA (a table, an image folder or one image, an array) with a saved detector
    bundle; tables are streamed chunk by chunk."""
    # torch's OpenMP threads share the cores with the stream's reader, encoder and writer
    # threads; spinning between operations they burnt a third more CPU (bench/score_e2e.py)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    inference = _inference(device, precision, batch_size, compile_model)
    scoring = task("score")
    if engine == "dask":
        rows, parts, flagged, said = scoring.run_score_dask(
            bundle, data, output, inference, scheduler, top_features, workers,
            threshold=threshold, contamination=contamination)
        for message in said:
            click.echo(f"warning: {message}", err=True)
        click.echo(f"scored {rows} rows in {parts} parts, {flagged} flagged as anomalies; "
                   f"wrote {output}")
        return
    rows, flagged = scoring.run_score(bundle, data, output, inference, top_features, maps,
                                      chunk_rows, threshold, contamination, progress=not quiet)
    _say(f"scored {rows} rows, {flagged} flagged as anomalies; wrote {output}", output)


@cli.command()
@click.argument("bundle", type=click.Path())
@click.argument("data", type=click.Path())
@click.option("--label-column", help="Column with the truth, 0/1 or named with --normal-class "
                                     "(default: the one used in fit).")
@click.option("--normal-class", help="The normal class folder or npz label (default: the one "
                                    "used in fit), or the label column's normal value.")
@click.option("--plots", type=click.Path(file_okay=False), help="Folder for ROC/PR/histogram PNGs.")
@click.option("--masks", type=click.Path(file_okay=False),
              help="Images: folder of defect masks (CLASS/NAME_mask.png as in MVTec AD, or "
                   "CLASS/NAME.png); adds the heat maps' pixel ROC-AUC.")
@click.option("--maps", type=click.Path(file_okay=False),
              help="Images: folder for each test image's heat map.")
@click.option("--chunk-rows", type=click.IntRange(min=1),
              help="Rows read per chunk of a table; images per chunk of a folder (default "
                   "512).")
@moved_threshold_options
@QUIET
def evaluate(bundle: str, data: str, label_column: str | None, normal_class: str | None,
             plots: str | None, masks: str | None, maps: str | None, chunk_rows: int | None,
             threshold: float | None, contamination: float | str | None, quiet: bool) -> None:
    """Evaluate a saved detector on labelled DATA: ROC-AUC, PR-AUC, F1-max, F1, precision@n
    (and pixel ROC-AUC with --masks, each image's heat map with --maps); tables and image
    folders are read a chunk at a time."""
    _print_metrics(task("detect").run_evaluate(bundle, data, label_column, normal_class, plots,
                                               threshold, contamination, masks, maps,
                                               chunk_rows, progress=not quiet))
    if plots:
        click.echo(f"figures in {plots}")
    if maps:
        click.echo(f"heat maps in {maps}")


@cli.command()
@click.argument("bundle", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="The ONNX file to write.")
@click.option("--check", "check_data", type=click.Path(),
              help="Score this data with aetool and with the exported model; print the "
                   "largest differences.")
@click.option("--label-column", help="--check on a conditional model: the class column.")
def export(bundle: str, output: str, check_data: str | None, label_column: str | None) -> None:
    """Export a detector or autoencoder BUNDLE to ONNX: preprocessing, model, score, threshold
    and column contract in one graph (needs pip install 'aetool[onnx]')."""
    result = task("export").run_export(bundle, output, check_data, label_column)
    click.echo(f"wrote {result.path} ({result.size / 1e6:.2f} MB, {result.task}); inputs: "
               f"{', '.join(result.inputs)}")
    if check_data:
        click.echo(f"checked on {result.rows_checked} rows of {check_data} (onnxruntime vs "
                   "aetool):")
        for diff in result.differences:
            click.echo(f"  {diff.output:<20} max abs {diff.absolute:.3g}  max rel "
                       f"{diff.relative:.3g}")
        if result.flag_mismatches is not None:
            click.echo(f"  {'is_anomaly':<20} {result.flag_mismatches} rows differ")


# -- denoising ---------------------------------------------------------------------------------
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
@click.option("--selection", type=click.Choice(["auto", "off"]), default="auto",
              show_default=True,
              help="Images: train the variant's candidate settings and keep the best by PSNR "
                   "on held-out clean images (auto), or train its own settings only (off).")
@STRICT
@SETTINGS
@FORCE
@QUIET
def denoise_fit(clean: str, output: str, variant: str, noise: str, noise_units: str,
                columns: str | None, exclude: str | None, id_column: str | None,
                image_size: str | None, selection: str, strict: bool,
                settings: tuple[str, ...], force: bool, quiet: bool) -> None:
    """Train a denoiser on CLEAN data (or on noisy data when no clean data exists)."""
    spec = task("settings").table_spec(columns, exclude, id_column, None, image_size,
                                       None, strict)
    denoiser = task("denoise").run_denoise_fit(clean, output, variant, noise, noise_units,
                                               settings, spec, force, quiet, selection)
    choice = getattr(denoiser, "choice_", None)
    if choice and choice.get("chosen"):
        measured = ", ".join(f"{name} {db:.2f} dB"
                             for name, db in choice["validation_psnr_db"].items())
        click.echo(f"chose '{choice['chosen']}' by PSNR on {choice['validation_images']} "
                   f"held-out clean images with {noise}: {measured}")
    elif choice:
        click.echo(choice["why"])
    tile = getattr(denoiser, "tile_", None)
    if tile:
        click.echo(f"learnt from {DENOISE_TILES:,} random {tile}x{tile} tiles of the images; "
                   "cleans an image tile by tile, at any size (--set tile=none learns whole "
                   "images)")
    units = " in data units" if noise_units == "data" else ""
    click.echo(f"saved denoiser ({denoiser.variant_name_}, noise {noise}{units}) to {output}")


@denoise.command("apply")
@click.argument("bundle", type=click.Path())
@click.argument("noisy", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(),
              help="CSV/Parquet for tables, a new folder for images (or an image file for "
                   "one image), .npy for arrays.")
@click.option("--reference", type=click.Path(), help="Clean data: print MSE, PSNR and SSIM.")
@STRICT
@click.option("--id-column", help="Tables: column passed through untouched (checked to be one "
                                  "the denoiser does not clean).")
@click.option("--exclude", help="Tables: comma-separated columns to keep untouched (checked "
                                "likewise); columns the denoiser was not trained on always are.")
@click.option("--columns", help="Tables: clean only these of the trained columns (default: "
                                "all of them); the others are written back as they came.")
@inference_options
def denoise_apply(bundle: str, noisy: str, output: str, reference: str | None, strict: bool,
                  id_column: str | None, exclude: str | None, columns: str | None, device: str,
                  precision: str, batch_size: str, compile_model: bool) -> None:
    """Denoise NOISY (a table, an image folder or one image, an array) with a saved
    denoiser; columns, order, names and formats are kept."""
    settings = task("settings")
    keep = [*settings.split(exclude), *([id_column] if id_column else [])]
    report = task("denoise").run_denoise_apply(
        bundle, noisy, output, _inference(device, precision, batch_size, compile_model),
        reference, strict, keep, settings.split(columns) or None, id_column)
    _say(f"wrote {output}", output)
    for name, values in (report or {}).items():
        _say(f"{name:<9} " + "  ".join(f"{k.upper()} {v:.4g}" for k, v in values.items()),
             output)


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
    """Write the encoder codes of DATA (a table, an image folder or one image, an array; for
    VAEs the means) as features."""
    rows = task("features").run_export(
        bundle, data, output, _inference(device, precision, batch_size, compile_model), logvar,
        label_column, id_column)
    _say(f"wrote features of {rows} rows to {output}", output)


@cli.command("evaluate-features")
@click.argument("data", type=click.Path())
@click.option("--label-column", help="Class column (tables); .npz files use their 'y'.")
@click.option("--id-column", help="Column to leave out of the features.")
@COLUMNS
@EXCLUDE
@click.option("--variants", default="ae,sparse,contractive,dae,vae", show_default=True)
@click.option("--classifiers", default="logreg,svm,rf,knn", show_default=True)
@click.option("--code-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--cv", "folds", default=5, show_default=True, type=click.IntRange(min=2))
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Autoencoder epochs per fold, trained as given [default: 30, which a small "
                   "image set stretches to at least 2,000 optimiser steps].")
@click.option("--output", "-o", default="features-evaluation.csv", show_default=True,
              type=click.Path(), help="CSV table; the bar chart goes beside it as PNG.")
@WHOLE_IMAGE_SIZE
@QUIET
def evaluate_features_command(data: str, label_column: str | None, id_column: str | None,
                              columns: str | None, exclude: str | None, variants: str,
                              classifiers: str, code_size: int, folds: int,
                              epochs: int | None, output: str, image_size: str | None,
                              quiet: bool) -> None:
    """Cross-validate variants as feature extractors for classifiers, next to raw and PCA."""
    settings = task("settings")
    spec = settings.table_spec(columns, exclude, id_column, label_column, image_size)
    table, chart = task("features").run_evaluate_features(
        data, output, spec, settings.split(variants), settings.split(classifiers), code_size,
        folds, epochs, progress=not quiet)
    for row in table.itertuples():
        click.echo(f"{row.method:<14} {row.classifier:<7} accuracy {row.accuracy_mean:.3f} "
                   f"± {row.accuracy_std:.3f}   macro-F1 {row.macro_f1_mean:.3f} "
                   f"± {row.macro_f1_std:.3f}")
    click.echo(f"wrote {output} and {chart}")


def main() -> None:
    """Console-script entry point. SIGTERM (``kill``, a batch scheduler) ends a run the way
    Ctrl-C does: partial outputs are removed."""
    signal.signal(signal.SIGTERM, _raise_terminated)
    cli(prog_name="aetool")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
