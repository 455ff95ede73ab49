"""Denoising: noise models, the Denoiser transformer, pipelines, and the denoise commands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from aetool import Denoiser
from aetool.cli import cli
from aetool.errors import AetoolError
from aetool.estimators import AutoencoderDetector
from aetool.noise import parse_noise
from tests.conftest import blob_images, low_rank_table

FAST = {"epochs": 25, "batch_size": 32, "device": "cpu"}


def noisy_table(n=300, sigma=0.4, seed=1):
    """Clean low-rank rows and a copy with Gaussian noise of ``sigma`` feature std-devs."""
    clean = low_rank_table(n, d=8)
    noise = np.random.default_rng(seed).normal(size=clean.shape) * sigma * clean.std(axis=0)
    return clean, (clean + noise).astype(np.float32)


def test_noise_models_are_seeded_and_parsed():
    x = torch.rand(50, 20)
    for spec in ("gaussian:0.2", "masking:0.3", "salt_pepper:0.1", "sp:0.1"):
        model = parse_noise(spec)
        a = model.apply(x, torch.Generator().manual_seed(0))
        b = model.apply(x, torch.Generator().manual_seed(0))
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="must be in"):
        parse_noise("masking:1.5")
    with pytest.raises(Exception, match="unknown noise model 'pink'"):
        parse_noise("pink:0.1")


def test_clipped_noise_stays_in_the_pixel_range_with_the_cut_off_mean():
    """Gaussian noise clipped to [0, 1], as a saved noisy image is: on black pixels the noisy
    values are max(0, N(0, s^2)), whose mean is s / sqrt(2 pi)."""
    from aetool.noise import Clipped

    noise = Clipped(parse_noise("gaussian:0.3"))
    black = noise.apply(torch.zeros(200_000), torch.Generator().manual_seed(0))
    assert float(black.min()) == 0.0 and float(black.max()) <= 1.0
    assert abs(float(black.mean()) - 0.3 / np.sqrt(2 * np.pi)) < 0.002
    assert noise.spec() == "gaussian:0.3"


def test_image_denoisers_learn_clipped_noise_tables_do_not():
    """``clip_noise`` clips an image denoiser's corrupted training images to [0, 1]; tables
    have no pixel range, so their noise is never clipped."""
    from aetool.noise import Clipped, GaussianNoise

    images = blob_images(20, size=8)
    fast = {"epochs": 1, "max_steps": 1, "min_steps": 0, "selection": "off", "device": "cpu"}
    assert isinstance(Denoiser(clip_noise=True, **fast).fit(images).model_.noise, Clipped)
    assert isinstance(Denoiser(clip_noise=False, **fast).fit(images).model_.noise,
                      GaussianNoise)
    table = Denoiser(clip_noise=True, **fast).fit(low_rank_table(40, 4))
    assert isinstance(table.model_.noise, GaussianNoise)


@pytest.mark.parametrize("variant", ["dae", "contractive"])
def test_denoiser_reduces_error_in_original_units(variant):
    clean, noisy = noisy_table()
    frame = pd.DataFrame(noisy * 10 + 100, columns=[f"c{i}" for i in range(8)])
    frame["name"] = "row"
    numeric = frame.drop(columns="name")
    denoiser = Denoiser(variant=variant, noise="gaussian:0.4", **FAST).fit(
        pd.DataFrame(clean * 10 + 100, columns=numeric.columns))
    out = denoiser.transform(numeric)
    assert list(out.columns) == list(numeric.columns)
    before = np.mean((numeric.to_numpy() - (clean * 10 + 100)) ** 2)
    after = np.mean((out.to_numpy() - (clean * 10 + 100)) ** 2)
    assert after < 0.6 * before


def test_noise_in_data_units_matches_noise_of_one_size_on_every_column(tmp_path):
    """Columns of very different spread with the same sensor noise on each (0.3 in their own
    unit): trained with noise_units='data', the DAE removes most of it; the same level in
    standard deviations mismatches the noise on every column and does far worse."""
    rng = np.random.default_rng(0)
    clean = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 6))  # spreads 0.26 to 1.48
    noisy = clean + rng.normal(scale=0.3, size=clean.shape)
    errors = {}
    for units in ("std", "data"):
        denoiser = Denoiser(noise="gaussian:0.3", noise_units=units, device="cpu").fit(clean)
        errors[units] = np.mean((denoiser.transform(noisy) - clean) ** 2)
    before = np.mean((noisy - clean) ** 2)
    assert errors["data"] < 0.5 * before
    assert errors["data"] < 0.5 * errors["std"]
    denoiser.save(tmp_path / "d")
    assert Denoiser.load(tmp_path / "d").noise_units == "data"
    with pytest.raises(AetoolError, match="noise_units='data' is for tables"):
        Denoiser(noise_units="data", **FAST).fit(blob_images(20, size=8))


def test_min_steps_stretches_epochs_and_patience_on_small_tables():
    from aetool.training import TrainConfig, stretched_epochs

    assert stretched_epochs(TrainConfig(epochs=30, patience=5, min_steps=500), 4) == (125, 21)
    assert stretched_epochs(TrainConfig(epochs=30, patience=5, min_steps=500), 20) == (30, 5)
    assert stretched_epochs(TrainConfig(epochs=30, patience=5), 1) == (30, 5)
    clean, _ = noisy_table(n=200)
    short = Denoiser(epochs=2, batch_size=32, min_steps=0, device="cpu").fit(clean)
    long = Denoiser(epochs=2, batch_size=32, min_steps=100, device="cpu").fit(clean)
    assert len(short.history_) == 2
    assert len(long.history_) == 17  # 6 steps an epoch: 2 epochs stretched by 100 / 12


def test_denoiser_on_images_keeps_shape_and_dtype():
    clean = (blob_images(96, size=12) * 255).astype(np.uint8)
    noisy = np.clip(clean + np.random.default_rng(0).normal(scale=60, size=clean.shape), 0,
                    255).astype(np.uint8)
    denoiser = Denoiser(noise="gaussian:0.25", **FAST).fit(clean)
    out = denoiser.transform(noisy)
    assert out.shape == noisy.shape and out.dtype == np.uint8
    assert np.mean((out.astype(float) - clean) ** 2) < np.mean((noisy.astype(float) - clean) ** 2)
    assert denoiser.config_.backbone == "auto"  # convolutional on images


def test_denoiser_in_a_pipeline_before_a_detector():
    _, noisy = noisy_table(200)
    pipe = make_pipeline(Denoiser(**FAST), AutoencoderDetector(epochs=5, device="cpu"))
    pipe.fit(noisy)
    assert set(np.unique(pipe.predict(noisy))) <= {-1, 1}


def test_denoiser_in_a_pipeline_before_a_classifier():
    clean, noisy = noisy_table(240)
    labels = (clean[:, 0] > np.median(clean[:, 0])).astype(int)
    pipe = make_pipeline(Denoiser(**FAST), LogisticRegression(max_iter=500))
    score = cross_val_score(pipe, noisy, labels, cv=3).mean()
    assert score > 0.85


def test_variant_without_denoising_capability_is_refused():
    with pytest.raises(Exception, match="cannot denoise"):
        Denoiser(variant="vae").fit(low_rank_table(40))


def test_denoise_commands_on_a_table(tmp_path):
    clean, noisy = noisy_table(200)
    columns = [f"c{i}" for i in range(8)]
    for name, values in (("clean", clean), ("noisy", noisy)):
        frame = pd.DataFrame(values, columns=columns)
        frame.insert(0, "id", [f"k{i}" for i in range(len(frame))])
        frame["note"] = "keep me"
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    bundle, out = tmp_path / "dn", tmp_path / "out.csv"
    fit = CliRunner().invoke(cli, ["denoise", "fit", str(tmp_path / "clean.csv"), "-o",
                                   str(bundle), "--noise", "gaussian:0.4", "--set", "epochs=25",
                                   "--set", "batch_size=32", "-q"])
    assert fit.exit_code == 0, fit.output
    result = CliRunner().invoke(cli, ["denoise", "apply", str(bundle), str(tmp_path / "noisy.csv"),
                                      "-o", str(out), "--reference", str(tmp_path / "clean.csv")])
    assert result.exit_code == 0, result.output
    cleaned = pd.read_csv(out)
    original = pd.read_csv(tmp_path / "noisy.csv")
    assert list(cleaned.columns) == list(original.columns)
    assert (cleaned["id"] == original["id"]).all() and (cleaned["note"] == "keep me").all()
    lines = {line.split()[0]: line for line in result.output.splitlines() if "PSNR" in line}
    psnr = {k: float(v.split("PSNR")[1].split()[0]) for k, v in lines.items()}
    assert psnr["denoised"] > psnr["noisy"] + 2
    # rows in another order, or fewer of them, are paired with their clean rows by the id
    # column: the figures of the whole table in its own order; without an id (or with an id
    # the reference lacks) refused before anything is written
    shuffled = original.sample(frac=1.0, random_state=0)
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    shuffled.iloc[:150].to_csv(tmp_path / "fewer.csv", index=False)

    def apply(noisy, target, *extra):
        return CliRunner().invoke(cli, ["denoise", "apply", str(bundle), str(tmp_path / noisy),
                                        "-o", str(tmp_path / target), "--reference",
                                        str(tmp_path / "clean.csv"), *extra])

    by_id = apply("shuffled.csv", "s-out.csv", "--id-column", "id")
    assert by_id.exit_code == 0, by_id.output
    assert [line for line in by_id.output.splitlines() if "PSNR" in line] == list(lines.values())
    assert apply("fewer.csv", "f-out.csv", "--id-column", "id").exit_code == 0
    unpaired = apply("fewer.csv", "u-out.csv")
    assert unpaired.exit_code == 2 and not (tmp_path / "u-out.csv").exists()
    assert ("reference has 200 rows, the noisy data 150; they must match row for row or pair "
            "them by an --id-column both tables have") in unpaired.stderr
    shuffled.assign(id=lambda f: f["id"].str.replace("k1", "x1")).to_csv(
        tmp_path / "renamed.csv", index=False)
    stray = apply("renamed.csv", "r-out.csv", "--id-column", "id")
    assert stray.exit_code == 2 and not (tmp_path / "r-out.csv").exists()
    assert "no clean row for 111 of the 200 noisy rows (e.g. id 'x1" in stray.stderr


def test_denoised_table_keeps_its_delimiter_and_decimal_mark(tmp_path):
    """A semicolon table with decimal commas comes back so (a spreadsheet set to that locale
    opens the output as it opened the input); a space-separated table without a header comes
    back space-separated without one; a .tsv output is tab-separated whatever the input."""
    _, noisy = noisy_table(120)
    frame = pd.DataFrame(noisy, columns=[f"c{i}" for i in range(8)])
    frame.to_csv(tmp_path / "semi.csv", sep=";", decimal=",", index=False)
    np.savetxt(tmp_path / "spaced.txt", noisy, fmt="%.5f")
    for name in ("semi.csv", "spaced.txt"):
        bundle = tmp_path / f"dn-{name}"
        fit = CliRunner().invoke(cli, ["denoise", "fit", str(tmp_path / name), "-o", str(bundle),
                                       "--set", "epochs=2", "-q"])
        assert fit.exit_code == 0, fit.output
        for out in ("out.csv", "out.tsv"):
            target = tmp_path / f"{name}-{out}"
            done = CliRunner().invoke(cli, ["denoise", "apply", str(bundle), str(tmp_path / name),
                                            "-o", str(target)])
            assert done.exit_code == 0, done.output
    semi = (tmp_path / "semi.csv-out.csv").read_text().splitlines()
    assert semi[0] == ";".join(frame.columns) and "," in semi[1] and "." not in semi[1]
    assert len(semi[1].split(";")) == 8
    written = pd.read_csv(tmp_path / "semi.csv-out.csv", sep=";", decimal=",")
    assert written.shape == frame.shape and np.isfinite(written.to_numpy()).all()
    spaced = (tmp_path / "spaced.txt-out.csv").read_text().splitlines()
    assert len(spaced) == 120 and len(spaced[0].split(" ")) == 8
    assert np.loadtxt(tmp_path / "spaced.txt-out.csv").shape == (120, 8)
    for name in ("semi.csv", "spaced.txt"):
        tabbed = (tmp_path / f"{name}-out.tsv").read_text().splitlines()
        assert all(len(line.split("\t")) == 8 for line in tabbed)
        assert "," not in tabbed[-1]


def test_denoise_commands_on_an_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    clean = (blob_images(48, size=12) * 255).astype(np.uint8)
    for folder, images in (("clean", clean), ("noisy", np.clip(clean + rng.normal(
            scale=50, size=clean.shape), 0, 255).astype(np.uint8))):
        for i, image in enumerate(images):
            (tmp_path / folder / "sub").mkdir(parents=True, exist_ok=True)
            suffix = ".png" if i % 2 else ".bmp"
            Image.fromarray(image[0]).save(tmp_path / folder / "sub" / f"img{i}{suffix}")
    bundle, out = tmp_path / "dn", tmp_path / "out"
    assert CliRunner().invoke(cli, ["denoise", "fit", str(tmp_path / "clean"), "-o", str(bundle),
                                    "--set", "epochs=30", "--set", "batch_size=16",
                                    "-q"]).exit_code == 0
    result = CliRunner().invoke(cli, ["denoise", "apply", str(bundle), str(tmp_path / "noisy"),
                                      "-o", str(out), "--reference", str(tmp_path / "clean")])
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    given = sorted(p.relative_to(tmp_path / "noisy").as_posix()
                   for p in (tmp_path / "noisy").rglob("*") if p.is_file())
    assert written == given
    assert "SSIM" in result.output and "the size the denoiser was fitted at" not in result.stderr
    # a few of the noisy images, flat, against the whole clean folder: matched by file name,
    # the same figures as those images' own pairs; an image without a reference is refused
    # before anything is written
    few = tmp_path / "few"
    few.mkdir()
    pair = tmp_path / "pair"
    (pair / "sub").mkdir(parents=True)
    for name in ("img7.png", "img2.bmp"):
        (few / name).write_bytes((tmp_path / "noisy" / "sub" / name).read_bytes())
        (pair / "sub" / name).write_bytes((tmp_path / "clean" / "sub" / name).read_bytes())

    def report(noisy, reference, target):
        done = CliRunner().invoke(cli, ["denoise", "apply", str(bundle), str(noisy), "-o",
                                        str(tmp_path / target), "--reference", str(reference)])
        assert done.exit_code == 0, done.output
        return [line for line in done.output.splitlines() if "PSNR" in line]

    assert report(few, tmp_path / "clean", "few-out") == report(few, pair, "pair-out")
    (few / "stray.png").write_bytes((few / "img7.png").read_bytes())
    refused = CliRunner().invoke(cli, ["denoise", "apply", str(bundle), str(few), "-o",
                                       str(tmp_path / "stray-out"), "--reference",
                                       str(tmp_path / "clean")])
    assert refused.exit_code == 2
    assert "no clean reference for 1 of the 3 noisy images (e.g. stray.png)" in refused.stderr
    assert not (tmp_path / "stray-out").exists()
    # a larger photograph is denoised at the denoiser's size and comes back at its own
    (tmp_path / "large").mkdir()
    large = np.kron(clean[0, 0], np.ones((2, 3), np.uint8))  # 24 high, 36 wide
    noisy_large = np.clip(large + rng.normal(scale=50, size=large.shape), 0, 255)
    Image.fromarray(noisy_large.astype(np.uint8)).save(tmp_path / "large" / "big.png")
    grown = CliRunner().invoke(cli, ["denoise", "apply", str(bundle), str(tmp_path / "large"),
                                     "-o", str(tmp_path / "large-out")])
    assert grown.exit_code == 0, grown.output
    assert "1 image(s) are not 12x12, the size the denoiser was fitted at" in grown.stderr
    back = np.asarray(Image.open(tmp_path / "large-out" / "big.png"), dtype=float)
    assert back.shape == (24, 36)
    assert np.abs(back - large).mean() < np.abs(noisy_large - large).mean()  # still cleaner
    again = CliRunner().invoke(cli, ["denoise", "apply", str(bundle), str(tmp_path / "noisy"),
                                     "-o", str(out)])
    assert again.exit_code == 2 and "not empty" in again.stderr
    # one image file: written to the image file named, as it came out of its folder; a folder
    # is not written to a name that reads as one image, and the input is never the output
    one = tmp_path / "noisy" / "sub" / "img7.png"
    single = CliRunner().invoke(cli, ["denoise", "apply", str(bundle), str(one), "-o",
                                      str(tmp_path / "img7-clean.png")])
    assert single.exit_code == 0, single.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "img7-clean.png")),
                          np.asarray(Image.open(out / "sub" / "img7.png")))
    inside = CliRunner().invoke(cli, ["denoise", "apply", str(bundle), str(tmp_path / "noisy"),
                                      "-o", str(tmp_path / "noisy" / "clean")])
    assert inside.exit_code == 2 and "is inside the input folder" in inside.stderr
    assert not (tmp_path / "noisy" / "clean").exists()  # read as input the next time
    as_file = CliRunner().invoke(cli, ["denoise", "apply", str(bundle), str(tmp_path / "noisy"),
                                       "-o", str(tmp_path / "all.png")])
    assert as_file.exit_code == 2 and "names an image file, but" in as_file.stderr
    assert not (tmp_path / "all.png").exists()
    before = one.read_bytes()
    onto_input = CliRunner().invoke(cli, ["denoise", "apply", str(bundle), str(one), "-o",
                                          str(one)])
    assert onto_input.exit_code == 2 and "never overwrites its input" in onto_input.stderr
    assert one.read_bytes() == before
    pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0)}).to_csv(tmp_path / "t.csv",
                                                                       index=False)
    wrong = CliRunner().invoke(cli, ["denoise", "apply", str(bundle), str(tmp_path / "t.csv"),
                                     "-o", str(tmp_path / "t-clean.csv")])
    assert wrong.exit_code == 2 and not (tmp_path / "t-clean.csv").exists()
    assert "t.csv: the model was trained on images and this is a table" in wrong.stderr


def test_denoise_bad_input(tmp_path):
    result = CliRunner().invoke(cli, ["denoise", "fit", str(tmp_path / "missing.csv"), "-o",
                                      str(tmp_path / "b")])
    assert result.exit_code == 2 and "missing.csv: file not found" in result.stderr
    bad_noise = CliRunner().invoke(cli, ["denoise", "fit", str(tmp_path / "x.csv"), "-o",
                                         str(tmp_path / "b"), "--noise", "masking:2"])
    assert bad_noise.exit_code == 2 and "must be in [0, 1]" in bad_noise.stderr
    for level in ("inf", "nan"):  # trained, then blamed the learning rate for a NaN loss
        endless = CliRunner().invoke(cli, ["denoise", "fit", str(tmp_path / "x.csv"), "-o",
                                           str(tmp_path / "b"), "--noise", f"gaussian:{level}"])
        assert endless.exit_code == 2 and "must be a finite number >= 0" in endless.stderr
    (tmp_path / "folder").mkdir()
    not_bundle = CliRunner().invoke(cli, ["denoise", "apply", str(tmp_path / "folder"),
                                          str(tmp_path / "x.csv"), "-o", str(tmp_path / "o.csv")])
    assert not_bundle.exit_code == 2 and "not an aetool bundle" in not_bundle.stderr
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "b").exists()


def test_image_denoising_defaults_apply_to_images_only_and_yield_to_the_user(monkeypatch):
    """Settings in aetool.defaults.IMAGE_DENOISING_DEFAULTS apply to images only, the user's
    win, and `aetool variants` shows them (the table is empty until a candidate wins on two
    image sets: bench/denoise_defaults.py)."""
    import aetool.defaults
    from aetool.tasks.catalog import variant_rows

    chosen = {"dae": {"activation": "relu", "code_size": 48}}
    monkeypatch.setattr(aetool.defaults, "IMAGE_DENOISING_DEFAULTS", chosen)
    images = blob_images(40, 12)
    on_images = Denoiser(variant="dae", epochs=1, max_steps=2).fit(images)
    assert on_images.config_.activation == "relu" and on_images.config_.code_size == 48
    assert on_images.config_.backbone == "auto"
    on_table = Denoiser(variant="dae", epochs=1, max_steps=2).fit(low_rank_table(60, 6))
    assert on_table.config_.activation == "tanh" and on_table.config_.code_size == 0
    mine = Denoiser(variant="dae", epochs=1, max_steps=2,
                    variant_params={"code_size": 64}).fit(images)
    assert mine.config_.code_size == 64 and mine.config_.activation == "relu"
    assert {row["name"]: row for row in variant_rows()}["dae"]["image_denoising_settings"] \
        == chosen["dae"]


# -- choosing image settings by validation PSNR (issue 19) ------------------------------------

CHOOSE_FAST = {"epochs": 1, "batch_size": 64, "min_steps": 0, "device": "cpu"}


def test_image_denoiser_keeps_the_candidate_with_the_best_validation_psnr(tmp_path):
    from aetool.defaults import IMAGE_DENOISING_CANDIDATES
    from aetool.estimators.denoiser import psnr

    images = blob_images(220, size=8)
    denoiser = Denoiser(noise="gaussian:0.3", **CHOOSE_FAST).fit(images)
    choice = denoiser.choice_
    measured = choice["validation_psnr_db"]
    assert list(measured) == list(IMAGE_DENOISING_CANDIDATES["dae"])
    assert choice["chosen"] == max(measured, key=measured.get)
    for key, value in IMAGE_DENOISING_CANDIDATES["dae"][choice["chosen"]].items():
        assert getattr(denoiser.config_, key) == value
    # the model kept is the chosen one: the same held-out images give the recorded PSNR
    held = choice["validation_images"]
    assert held == 22
    order = np.random.default_rng(0).permutation(len(images))
    clean = images[np.sort(order[:held])]
    noisy = parse_noise("gaussian:0.3").apply(torch.from_numpy(clean),
                                              torch.Generator().manual_seed(0)).clamp(0, 1)
    assert psnr(clean, denoiser.transform(noisy.numpy())) == \
        pytest.approx(measured[choice["chosen"]], abs=1e-3)
    denoiser.save(tmp_path / "bundle")
    assert Denoiser.load(tmp_path / "bundle").choice_ == choice


@pytest.mark.parametrize(("params", "count", "reason"), [
    ({"selection": "off"}, 220, None),
    ({"variant_params": {"activation": "relu"}}, 220, "variant_params sets activation"),
    ({}, 150, "150 images, fewer than 200"),
])
def test_no_choice_when_off_chosen_by_the_user_or_too_few_images(params, count, reason):
    denoiser = Denoiser(noise="gaussian:0.3", **CHOOSE_FAST, **params).fit(
        blob_images(count, size=8))
    if reason is None:
        assert denoiser.choice_ is None
    else:
        assert denoiser.choice_ == {"chosen": None, "why": f"no choice: {reason}"}


def test_denoise_fit_says_what_it_chose(tmp_path):
    for i, image in enumerate((blob_images(210, size=8) * 255).astype(np.uint8)):
        (tmp_path / "clean").mkdir(exist_ok=True)
        Image.fromarray(image[0]).save(tmp_path / "clean" / f"{i:03d}.png")
    common = [str(tmp_path / "clean"), "--set", "epochs=1", "--set", "min_steps=0", "-q"]
    chosen = CliRunner().invoke(cli, ["denoise", "fit", *common, "-o", str(tmp_path / "a")])
    assert chosen.exit_code == 0, chosen.output
    assert "by PSNR on 21 held-out clean images with gaussian:0.3: default" in chosen.output
    plain = CliRunner().invoke(cli, ["denoise", "fit", *common, "-o", str(tmp_path / "b"),
                                     "--selection", "off"])
    assert plain.exit_code == 0 and "chose" not in plain.output
    listed = CliRunner().invoke(cli, ["variants"])
    assert "image denoiser chosen by validation PSNR among: default (own); relu " \
           "(activation=relu); relu + code 512 (activation=relu, code_size=512)" in listed.output


def test_tiles_cut_and_blended_back_leave_an_image_as_it_was():
    """Overlapping tiles weighted by a Hann window put an image back exactly (any size, any
    channels, any step between tiles); random tiles are seeded and lie inside their images."""
    from aetool.tiles import blended, random_tiles

    images = np.random.default_rng(0).random((3, 2, 70, 45)).astype(np.float32)
    assert np.abs(blended(images, 32, lambda tiles: tiles) - images).max() < 1e-5
    for step in (8, 5):  # a tile every quarter side, and a step that does not divide it
        assert np.abs(blended(images, 32, lambda tiles: tiles, step=step) - images).max() < 1e-5
    halved = blended(images, 16, lambda tiles: tiles * 0.5)
    assert np.allclose(halved, images * 0.5, atol=1e-5)
    tiles = random_tiles(images, 16, 50, seed=3)
    assert tiles.shape == (50, 2, 16, 16)
    assert np.array_equal(tiles, random_tiles(images, 16, 50, seed=3))
    first = tiles[0]
    assert any(np.array_equal(first, image[:, i:i + 16, j:j + 16]) for image in images
               for i in range(55) for j in range(30))


def test_a_large_image_is_blended_in_bands_of_tiles_with_the_same_pixels(monkeypatch):
    """An image with more tiles than TILES_AT_ONCE is cut and cleaned in bands of tile rows,
    never more tiles at a time than that (memory), and comes out as if cleaned at once."""
    from aetool import tiles

    images = np.random.default_rng(1).random((2, 3, 90, 120)).astype(np.float32)
    bent = lambda part: np.tanh(2 * part - 0.5)  # noqa: E731  any per-pixel change
    at_once = tiles.blended(images, 16, bent, step=4)
    sizes = []
    monkeypatch.setattr(tiles, "TILES_AT_ONCE", 100)  # a row of tiles is 29 here

    def counted(part: np.ndarray) -> np.ndarray:
        sizes.append(len(part))
        return bent(part)

    banded = tiles.blended(images, 16, counted, step=4)
    assert max(sizes) <= 100 and len(sizes) > 2 * 3  # several bands per image
    assert sum(sizes) == 2 * 22 * 29  # every tile cleaned once: 22 rows of 29 per image
    assert np.abs(banded - at_once).max() < 1e-5
    assert np.abs(banded - bent(images)).max() < 1e-5  # a per-pixel change blends back exact


def stripe_images(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Grey images of soft diagonal stripes at random phases, in [0, 1]."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([0.5 + 0.35 * np.sin((rows + cols) / 3.0 + phase)
                     for phase in rng.uniform(0, 6.3, n)])[:, None].astype(np.float32)


def test_a_tile_denoiser_learns_tiles_and_cleans_images_of_any_size(monkeypatch, tmp_path):
    """Images of 128 px and more are learnt as random tiles (DENOISE_TILES of DENOISE_TILE
    px), so the model's input is a tile, and cleaned tile by tile at any size; the side is
    kept in the bundle; smaller images and tile=None are learnt whole."""
    from aetool import defaults

    monkeypatch.setattr(defaults, "DENOISE_TILES", 600)
    clean = stripe_images(40, 128, 136)
    rng = np.random.default_rng(1)
    noisy = np.clip(clean + rng.normal(scale=0.2, size=clean.shape), 0, 1).astype(np.float32)
    denoiser = Denoiser(noise="gaussian:0.2", epochs=15, min_steps=0, selection="off",
                        device="cpu").fit(clean)
    assert denoiser.tile_ == defaults.DENOISE_TILE == 32
    assert tuple(denoiser.model_.input_shape) == (1, 32, 32)
    out = denoiser.transform(noisy)
    assert out.shape == noisy.shape
    assert np.mean((out - clean) ** 2) < 0.6 * np.mean((noisy - clean) ** 2)
    wider = np.clip(stripe_images(2, 90, 150, seed=2) +
                    rng.normal(scale=0.2, size=(2, 1, 90, 150)), 0, 1).astype(np.float32)
    assert denoiser.transform(wider).shape == wider.shape  # not bound to the fitted size
    with pytest.raises(AetoolError, match="sides of at least 32 pixels"):
        denoiser.transform(noisy[:, :, :20])
    denoiser.save(tmp_path / "tiles")
    loaded = Denoiser.load(tmp_path / "tiles")
    assert loaded.tile_ == 32
    assert np.allclose(loaded.transform(noisy), out, atol=1e-5)
    whole = Denoiser(noise="gaussian:0.2", epochs=1, min_steps=0, selection="off", tile=None,
                     device="cpu").fit(clean)
    assert whole.tile_ is None and tuple(whole.model_.input_shape) == (1, 128, 136)
    denoiser.tile_ = 32  # a tile every quarter side, but every half on an image too large
    assert denoiser._blend_step((280, 300)) == 8
    monkeypatch.setattr("aetool.defaults.DENOISE_TILES_PER_IMAGE", 1000)
    assert denoiser._blend_step((280, 300)) == 16 and denoiser._blend_step((200, 200)) == 8
    assert Denoiser(tile="auto")._tile_side((1, 127, 200)) is None
    assert Denoiser(tile="auto")._tile_side((3, 128, 200)) == 32
    assert Denoiser(tile=16)._tile_side((3, 20, 30)) == 16
    for bad in (4, 21, "big", True, 2.5):
        with pytest.raises(AetoolError, match="tile must be 'auto', none or a whole number"):
            Denoiser(tile=bad)._tile_side((1, 20, 30))


def test_a_bundle_saved_before_tiles_denoises_whole_images(tmp_path):
    """A denoiser bundle without the tile field (saved before tiles) loads as a whole-image
    denoiser and gives what it gave."""
    import json

    clean = stripe_images(30, 16, 16)
    denoiser = Denoiser(noise="gaussian:0.2", epochs=2, min_steps=0, selection="off",
                        device="cpu").fit(clean)
    assert denoiser.tile_ is None
    denoiser.save(tmp_path / "old")
    manifest_path = tmp_path / "old" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["denoise"]["tile"]
    manifest_path.write_text(json.dumps(manifest))
    loaded = Denoiser.load(tmp_path / "old")
    assert loaded.tile_ is None
    assert np.allclose(loaded.transform(clean), denoiser.transform(clean), atol=1e-6)


def test_denoise_fit_says_it_learnt_tiles(monkeypatch, tmp_path):
    from aetool import defaults

    monkeypatch.setattr(defaults, "DENOISE_TILES", 300)
    monkeypatch.setattr("aetool.cli.DENOISE_TILES", 300)
    folder = tmp_path / "clean"
    folder.mkdir()
    for i, image in enumerate(stripe_images(6, 128, 128)):
        Image.fromarray((image[0] * 255).astype(np.uint8)).save(folder / f"{i}.png")
    done = CliRunner().invoke(cli, ["denoise", "fit", str(folder), "-o", str(tmp_path / "dn"),
                                    "--set", "epochs=1", "--set", "min_steps=0", "-q"])
    assert done.exit_code == 0, done.output
    assert "learnt from 300 random 32x32 tiles of the images; cleans an image tile by tile" \
        in done.output
    import json

    def saved_clip(bundle):
        return json.loads((bundle / "manifest.json").read_text())["params"]["clip_noise"]

    assert saved_clip(tmp_path / "dn") is True  # images learn clipped noise unless told
    drawn = CliRunner().invoke(cli, ["denoise", "fit", str(folder), "-o", str(tmp_path / "d2"),
                                     "--set", "epochs=1", "--set", "min_steps=0",
                                     "--set", "clip_noise=false", "-q"])
    assert drawn.exit_code == 0 and saved_clip(tmp_path / "d2") is False
    bad = CliRunner().invoke(cli, ["denoise", "fit", str(folder), "-o", str(tmp_path / "b"),
                                   "--set", "tile=500", "-q"])
    assert bad.exit_code != 0 and "tile must be" in bad.output + bad.stderr
    assert "Traceback" not in bad.output and not (tmp_path / "b").exists()
