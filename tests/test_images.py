"""Image anomaly detection: folder layouts, corrupt and mixed files, heat maps, a one-class check."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from aetool.cli import cli
from aetool.data.images import read_image_folder, typical_size
from aetool.estimators import AutoencoderDetector
from tests.conftest import blob_images

FAST = ["--set", "epochs=25", "--set", "batch_size=16", "-q"]


def run(*args):
    return CliRunner().invoke(cli, list(args))


def save(image: np.ndarray, path, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(image)
    (picture.convert(mode) if mode else picture).save(path)


@pytest.fixture
def class_folder(tmp_path):
    """normal/ holds blob images (PNG, one JPEG); anomalous/ holds horizontal stripes."""
    rng = np.random.default_rng(0)
    for i, image in enumerate((blob_images(60, size=16) * 255).astype(np.uint8)):
        save(image[0], tmp_path / "data" / "normal" / f"n{i}.{'jpg' if i == 0 else 'png'}")
    for i in range(6):
        stripe = np.zeros((16, 16), np.uint8)
        stripe[rng.integers(0, 16), :] = 255
        save(stripe, tmp_path / "data" / "anomalous" / f"a{i}.bmp")
    return tmp_path / "data"


def test_class_folders_detect_with_maps_of_input_size(class_folder, tmp_path):
    save(np.zeros((24, 20), np.uint8), class_folder / "normal" / "bigger.tiff")
    out, maps = tmp_path / "out.csv", tmp_path / "maps"
    # the whole-image detector here (fit's choice at 16 px is the patch detector, whose
    # small-image path test_patch_detector.py covers): this test is about folders and maps
    result = run("detect", str(class_folder), "-o", str(out), "--normal-class", "normal",
                 "--maps", str(maps), "--image-detector", "whole", *FAST)
    assert result.exit_code == 0, result.output
    assert "different sizes; resizing all to the most common, 16 high and 16 wide" in result.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["path", "anomaly_score", "anomaly_probability", "is_anomaly"]
    truth = frame["path"].str.startswith("anomalous").astype(int)
    assert roc_auc_score(truth, frame["anomaly_score"]) > 0.9
    assert Image.open(maps / "normal" / "bigger_map.png").size == (20, 24)
    assert Image.open(maps / "anomalous" / "a0_map.png").size == (16, 16)
    assert len(list(maps.rglob("*_map.png"))) == len(frame)


def test_sizes_that_no_half_shares_go_to_their_median(tmp_path):
    """The most common size decides only when at least half the images share it; among many
    near-ties (photographs of parts cut to their own size) the median height and width do,
    so the choice does not hang on which few files happen to agree."""
    from collections import Counter

    assert typical_size(Counter({(20, 10): 3, (30, 12): 2})) == ((20, 10), "the most common")
    sizes = [(10, 30), (12, 31), (14, 33), (40, 60), (40, 60)]  # (height, width)
    for i, (h, w) in enumerate(sizes):
        save(np.full((h, w), 30 * i, np.uint8), tmp_path / "parts" / f"p{i}.png")
    with pytest.warns(UserWarning, match="4 different sizes") as caught:
        found = read_image_folder(tmp_path / "parts")
    assert "resizing all to their median, 14 high and 33 wide" in str(caught[0].message)
    assert found.images.shape == (5, 1, 14, 33)
    assert found.sizes == sizes  # each file's own size is kept for its map


def test_image_size_that_turns_the_images_is_warned_about(tmp_path):
    """--image-size is H,W: given as W,H for landscape images it would squash every image."""
    for i in range(3):
        save(np.full((8, 20), 40 * i, np.uint8), tmp_path / "wide" / f"w{i}.png")
    with pytest.warns(UserWarning, match=r"resized to 20 high and 8 wide \(--image-size is "
                                         r"height,width\), but the images are typically 8 "
                                         r"high and 20 wide, so each is squashed; fit with "
                                         r"--image-size 8,20"):
        turned = read_image_folder(tmp_path / "wide", (20, 8))
    assert turned.images.shape[2:] == (20, 8)  # done as asked, not second-guessed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image_folder(tmp_path / "wide", (8, 20)).images.shape[2:] == (8, 20)
        assert read_image_folder(tmp_path / "wide", (16, 16)).images.shape[2:] == (16, 16)


def test_fit_score_evaluate_on_images(class_folder, tmp_path):
    bundle, plots = tmp_path / "bundle", tmp_path / "plots"
    assert run("fit", str(class_folder), "-o", str(bundle), "--normal-class", "normal",
               *FAST).exit_code == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["variant"] == "conv" and manifest["preprocessing"]["kind"] == "image"
    maps = tmp_path / "maps"
    result = run("evaluate", str(bundle), str(class_folder), "--plots", str(plots),
                 "--maps", str(maps))
    assert result.exit_code == 0, result.output
    assert {p.name for p in plots.glob("*.png")} >= {"roc.png", "pr.png", "most_anomalous.png"}
    # one heat map per test image, beside its class as the input has it, as `score` writes them
    images = sorted(p.relative_to(class_folder) for p in class_folder.rglob("*") if p.is_file())
    assert sorted(p.relative_to(maps) for p in maps.rglob("*_map.png")) == sorted(
        p.with_name(p.stem + "_map.png") for p in images)
    scored = tmp_path / "s.csv"
    assert run("score", str(bundle), str(class_folder / "normal"), "-o", str(scored)).exit_code == 0
    assert len(pd.read_csv(scored)) == 60
    # one image file is scored as a folder holding only it: the same score as in its folder
    one = tmp_path / "one.csv"
    assert run("score", str(bundle), str(class_folder / "normal" / "n3.png"), "-o",
               str(one)).exit_code == 0
    row = pd.read_csv(one)
    assert list(row["path"]) == ["n3.png"]
    in_folder = pd.read_csv(scored).set_index("path").loc["n3.png", "anomaly_score"]
    assert row["anomaly_score"].iloc[0] == pytest.approx(in_folder, rel=1e-5)
    table = tmp_path / "t.csv"
    pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) ** 2}).to_csv(table, index=False)
    for command in ("score", "features"):
        wrong = run(command, str(bundle), str(table), "-o", str(tmp_path / "w.csv"))
        assert wrong.exit_code == 2 and not (tmp_path / "w.csv").exists()
        assert wrong.stderr.strip().splitlines()[-1] == (
            f"error: {table}: the model was trained on images and this is a table; use a model "
            "trained on a table")


def test_a_class_folder_named_as_normal_is_evaluated_without_being_named(class_folder, tmp_path):
    fitted = run("fit", str(class_folder), "-o", str(tmp_path / "m"), *FAST)
    assert fitted.exit_code == 0 and "taken as the normal class" not in fitted.stderr
    # fit does not evaluate; it says it learnt the other class as normal too
    assert "6 of them from class folders other than 'normal': anomalous (6)" in fitted.stderr
    result = run("evaluate", str(tmp_path / "m"), str(class_folder))
    assert result.exit_code == 0, result.output
    assert ("class folders anomalous, normal; 'normal' is taken as the normal class"
            in result.stderr)
    assert "anomalies=6" in result.stdout and "roc_auc=" in result.stdout
    (class_folder / "normal").rename(class_folder / "Good")
    detected = run("detect", str(class_folder), "-o", str(tmp_path / "o.csv"), *FAST)
    assert "'Good' is taken as the normal class" in detected.stderr
    assert "anomalies=6" in detected.stdout
    # industrial sets name them OK and NG (BTAD: ok, ko); crack photographs Negative, Positive
    for normal in ("OK", "Negative"):
        (class_folder / ("Good" if normal == "OK" else "OK")).rename(class_folder / normal)
        named = run("evaluate", str(tmp_path / "m"), str(class_folder))
        assert f"'{normal}' is taken as the normal class" in named.stderr
        assert "anomalies=6" in named.stdout
    told = run("evaluate", str(tmp_path / "m"), str(class_folder), "--normal-class", "NEGATIVE")
    assert told.exit_code == 0 and told.stdout == named.stdout  # a name in another case
    (class_folder / "Negative").rename(class_folder / "fine")  # no normal word: no evaluation
    plain = run("evaluate", str(tmp_path / "m"), str(class_folder))
    assert plain.exit_code == 2 and "evaluate needs --label-column" in plain.stderr


def test_flat_folder_and_mixed_modes(tmp_path):
    images = (blob_images(30, size=12) * 255).astype(np.uint8)
    for i, image in enumerate(images):
        save(image[0], tmp_path / "flat" / f"{i}.png", mode="RGB" if i % 3 == 0 else None)
    loaded = read_image_folder(tmp_path / "flat")
    assert loaded.images.shape == (30, 3, 12, 12) and set(loaded.classes) == {None}
    grey = read_image_folder(tmp_path / "flat", channels=1)
    assert grey.images.shape == (30, 1, 12, 12)
    result = run("detect", str(tmp_path / "flat"), "-o", str(tmp_path / "o.csv"), *FAST)
    assert result.exit_code == 0, result.output



def test_photographs_are_read_as_a_viewer_shows_them(tmp_path, monkeypatch):
    """A phone photograph stores its pixels on their side with an EXIF orientation: it is read
    turned upright, so its size, a folder of upright and stored-on-side photographs, and the
    heat maps written back all agree with what the user sees."""
    stored = np.zeros((20, 40, 3), np.uint8)  # 20 high, 40 wide as stored
    stored[:5, :10] = 255  # a bright corner, top left as stored
    picture = Image.fromarray(stored)
    exif = picture.getexif()
    exif[0x0112] = 6  # shown turned a quarter clockwise
    (tmp_path / "photos").mkdir()
    picture.save(tmp_path / "photos" / "side.jpg", exif=exif.tobytes(), quality=100)
    upright = np.ascontiguousarray(np.rot90(stored, k=-1))  # as a viewer shows it
    Image.fromarray(upright).save(tmp_path / "photos" / "upright.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one size: nothing to resize, nothing to warn about
        loaded = read_image_folder(tmp_path / "photos")
    assert loaded.images.shape == (2, 3, 40, 20)
    assert loaded.sizes == [(40, 20), (40, 20)]
    side, flat = (loaded.images[loaded.paths.index(name)].mean(axis=0)
                  for name in ("side.jpg", "upright.png"))
    assert side[:10, -5:].mean() > 200 and side[-10:, :5].mean() < 50  # corner now top right
    assert np.abs(side - flat).mean() < 5  # the same picture, up to JPEG's loss
    # read at a quarter of its size, a JPEG is decoded smaller (draft) and still turned upright
    big = np.kron(stored, np.ones((4, 4, 1), np.uint8))  # 80 high, 160 wide as stored
    picture = Image.fromarray(big)
    (tmp_path / "photos" / "upright.png").unlink()  # one photograph, of one size
    picture.save(tmp_path / "photos" / "side.jpg", exif=exif.tobytes(), quality=100)
    decoded = []  # the size each image is decoded at, before it is resized
    resize = Image.Image.resize
    monkeypatch.setattr(Image.Image, "resize",
                        lambda self, *a, **k: decoded.append(self.size) or resize(self, *a, **k))
    small = read_image_folder(tmp_path / "photos", image_size=(40, 20))
    assert decoded == []  # decoded at a quarter, just the size asked: nothing to resize
    assert small.images.shape == (1, 3, 40, 20) and small.sizes == [(160, 80)]
    assert np.abs(small.images[0].mean(axis=0) - side).mean() < 5

def test_corrupt_files_are_skipped_or_fatal_with_strict(class_folder, tmp_path):
    (class_folder / "normal" / "broken.png").write_bytes(b"not an image")
    result = run("detect", str(class_folder), "-o", str(tmp_path / "o.csv"), *FAST)
    assert result.exit_code == 0
    assert "1 unreadable image(s): normal/broken.png" in result.stderr
    strict = run("detect", str(class_folder), "-o", str(tmp_path / "s.csv"), "--strict", *FAST)
    assert strict.exit_code == 2 and "broken.png" in strict.stderr
    assert not (tmp_path / "s.csv").exists()


def test_hidden_files_and_folders_are_left_out_and_said(class_folder, tmp_path):
    """A folder copied from a Mac holds ._NAME.png resource forks (not images), a notebook's
    .ipynb_checkpoints copies: neither is part of the data."""
    (class_folder / "normal" / "._n1.png").write_bytes(b"\x00\x05\x16\x07Mac OS X")
    copies = class_folder / "anomalous" / ".ipynb_checkpoints"
    copies.mkdir()
    for i in range(3):
        (copies / f"a{i}.bmp").write_bytes((class_folder / "anomalous" / f"a{i}.bmp").read_bytes())
    out = tmp_path / "o.csv"
    result = run("detect", str(class_folder), "-o", str(out), "--image-detector", "whole", *FAST)
    assert result.exit_code == 0, result.output
    assert "left out 4 hidden image file(s)" in result.stderr
    assert "unreadable" not in result.stderr
    paths = set(pd.read_csv(out)["path"])
    assert len(paths) == 66 and not any("/." in p or p.startswith(".") for p in paths)


def test_symlinked_class_folders_are_read_and_a_link_cycle_ends(class_folder, tmp_path):
    """A test folder whose class folders link to the data elsewhere was 'no images found'."""
    linked = tmp_path / "linked"
    linked.mkdir()
    for name in ("normal", "anomalous"):
        (linked / name).symlink_to(class_folder / name, target_is_directory=True)
    (linked / "normal" / "again").symlink_to(linked, target_is_directory=True)  # a cycle
    out = tmp_path / "o.csv"
    result = run("detect", str(linked), "-o", str(out), "--image-detector", "whole", *FAST)
    assert result.exit_code == 0, result.output
    assert "anomalies=6" in result.stdout  # the normal class found through its link
    assert sorted(pd.read_csv(out)["path"]) == sorted(
        str(p.relative_to(class_folder)) for p in class_folder.rglob("*.*"))


def test_webp_is_read_and_photographs_in_formats_not_read_are_named(class_folder, tmp_path):
    """WebP (web and phone exports) was not looked for; HEIC (iPhone) cannot be decoded here:
    a folder of them said only 'no images found (looked for .png, ...)'."""
    import aetool

    picture = Image.open(class_folder / "normal" / "n3.png")
    picture.save(class_folder / "normal" / "web.webp", lossless=True)
    (class_folder / "normal" / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    with pytest.warns(UserWarning, match=r"1 photograph\(s\) in a format aetool does not read "
                                         r"\(\.heic, e\.g\. normal/IMG_0001\.HEIC\)"):
        found = aetool.read_images(class_folder)
    assert np.array_equal(found.images[found.paths.index("normal/web.webp")],
                          found.images[found.paths.index("normal/n3.png")])
    only = tmp_path / "iphone"
    only.mkdir()
    (only / "IMG_0002.heic").write_bytes(b"\x00")
    result = run("detect", str(only), "-o", str(tmp_path / "o.csv"))
    assert result.exit_code == 2 and "convert them to JPEG or PNG" in result.stderr


@pytest.mark.parametrize("option", ["--label-column", "--id-column", "--exclude", "--columns"])
def test_column_options_on_images_are_refused_not_ignored(option, class_folder, tmp_path):
    """`detect FOLDER --label-column y` ran as if the option were not there."""
    result = run("detect", str(class_folder), option, "y", "-o", str(tmp_path / "o.csv"))
    assert result.exit_code == 2 and not (tmp_path / "o.csv").exists()
    assert f"{option} is for tables, and these are images" in result.stderr


def test_read_images_gives_python_what_the_cli_reads(class_folder):
    import aetool

    found = aetool.read_images(class_folder)
    assert found.images.shape == (66, 1, 16, 16) and found.images.dtype == np.uint8
    assert found.paths[0] == "anomalous/a0.bmp" and found.classes[0] == "anomalous"
    one = aetool.read_images(class_folder / "normal" / "n3.png")
    assert one.paths == ["n3.png"] and one.classes == [None]
    assert np.array_equal(one.images[0], found.images[found.paths.index("normal/n3.png")])


def test_unknown_normal_class_and_empty_folder(class_folder, tmp_path):
    result = run("detect", str(class_folder), "-o", str(tmp_path / "o.csv"), "--normal-class",
                 "good", *FAST)
    assert result.exit_code == 2 and "no class 'good'" in result.stderr
    (tmp_path / "empty").mkdir()
    empty = run("detect", str(tmp_path / "empty"), "-o", str(tmp_path / "e.csv"), *FAST)
    assert empty.exit_code == 2 and "no images found" in empty.stderr


def test_npz_images_with_labels(tmp_path):
    images = (blob_images(50, size=12) * 255).astype(np.uint8)[:, 0]
    np.savez(tmp_path / "imgs.npz", X=images, y=np.zeros(50, dtype=int))
    result = run("detect", str(tmp_path / "imgs.npz"), "-o", str(tmp_path / "o.csv"), *FAST)
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "o.csv").columns[0] == "index"


def test_one_class_digits_zero_against_the_rest():
    digits = load_digits()
    images = digits.images.astype(np.float32)
    normal = images[digits.target == 0]
    detector = AutoencoderDetector(variant="conv", epochs=40, batch_size=32, max_steps=0,
                                   device="cpu").fit(normal[:120])
    scores = -detector.score_samples(images)
    assert roc_auc_score(digits.target != 0, scores) > 0.9


def test_mlp_variants_work_on_flattened_images():
    images = blob_images(60, size=10)
    detector = AutoencoderDetector(variant="ae", epochs=10, device="cpu").fit(images)
    assert detector.model_.input_shape == (1, 10, 10)
    assert detector.predict(images).shape == (60,)


def test_score_streams_an_image_folder_chunk_by_chunk(class_folder, tmp_path, monkeypatch):
    bundle = tmp_path / "bundle"
    assert run("fit", str(class_folder), "-o", str(bundle), "--normal-class", "normal",
               *FAST).exit_code == 0
    (class_folder / "normal" / "zz_broken.png").write_bytes(b"not an image")
    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    assert run("score", str(bundle), str(class_folder), "-o", str(whole), "--maps",
               str(tmp_path / "m1")).exit_code == 0
    decoded = []
    import aetool.data.images as image_io

    original = image_io.decode_images
    monkeypatch.setattr(image_io, "decode_images", lambda scan, start=0, stop=None: (
        decoded.append((start, stop)) or original(scan, start, stop)))
    monkeypatch.setattr("aetool.data.source.decode_images", image_io.decode_images)
    result = run("score", str(bundle), str(class_folder), "-o", str(chunked),
                 "--chunk-rows", "7", "--maps", str(tmp_path / "m2"))
    assert result.exit_code == 0, result.output
    assert "1 unreadable image(s): normal/zz_broken.png" in result.stderr
    assert decoded == [(start, start + 7) for start in range(0, 67, 7)]  # 66 + the broken one
    pd.testing.assert_frame_equal(pd.read_csv(whole), pd.read_csv(chunked))
    assert len(pd.read_csv(chunked)) == 66
    assert len(list((tmp_path / "m2").rglob("*_map.png"))) == 66


@pytest.mark.parametrize(("sides", "read_at"), [((300, 320), [256, 256]), ((80, 90), None)])
def test_a_folder_s_sizes_are_said_once_when_fit_peeks_at_them(tmp_path, sides, read_at):
    """fit and detect look at a folder's headers first (to read large photographs at the
    patch detector's size); what that look finds is said once: by the look when it sets the
    size (reading at a set size says nothing), else by the reading itself."""
    from aetool.data.source import TableSpec, load
    from aetool.tasks.detect import DetectorSettings, read_at_patch_size

    for i, side in enumerate((sides[0], sides[0], sides[1])):
        save(np.full((side, sides[0]), 40 * i, np.uint8), tmp_path / "f" / f"i{i}.png")
    spec = TableSpec()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        read_at_patch_size(str(tmp_path / "f"), spec, DetectorSettings())
        load(tmp_path / "f", spec)
    texts = [str(w.message) for w in said]
    assert sum("2 different sizes" in text for text in texts) == 1, texts
    assert spec.image_size == read_at
    assert sum("the size the patch detector works at" in text for text in texts) == \
        (read_at is not None)
