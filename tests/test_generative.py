"""Generative variants (issue #24): likelihoods, a label the CVAE cannot ignore, settings that
mean what they say, sampling to arrays, and the importance-weighted log-likelihood."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from aetool import Autoencoder, AutoencoderDetector
from aetool.cli import cli
from aetool.models.vae import CVAE, VAE, LabelledConvDecoder, LabelledMLPDecoder
from aetool.variants.cvae import CVAEConfig
from aetool.variants.vae import VAEConfig
from tests.conftest import blob_images, low_rank_table


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_epochs_mean_what_they_say():
    x = low_rank_table(2000, d=6)
    model = Autoencoder(epochs=7, patience=0, batch_size=32, device="cpu").fit(x)
    assert len(model.history_) == 7 and model.stop_reason_ is None
    capped = Autoencoder(epochs=7, patience=0, batch_size=32, max_steps=100, device="cpu").fit(x)
    assert len(capped.history_) == 2
    assert "max_steps=100" in capped.stop_reason_
    detector = AutoencoderDetector(batch_size=32, patience=0, device="cpu").fit(x)
    assert len(detector.history_) < 60 and "max_steps=300" in detector.stop_reason_


def test_small_image_sets_train_the_detectors_step_budget_not_just_60_epochs():
    """60 default epochs of 40 images are 60 optimiser steps; the image detector trains its
    300-step budget instead (one-class 8x8 digits, about 90 images: 0.987 -> 0.997). Tables,
    large image sets and any epochs or max_steps the user sets are left as they are."""
    images = np.random.default_rng(0).random((40, 1, 8, 8)).astype(np.float32)
    detector = AutoencoderDetector(variant="conv", patience=0, device="cpu").fit(images)
    assert len(detector.history_) == 300  # one step an epoch: the budget, not 60

    def shaped(rows: int, image: bool = True) -> np.ndarray:
        return np.zeros((rows, 1, 2, 2) if image else (rows, 4), np.float32)

    default = AutoencoderDetector(device="cpu")
    assert default._train_config(shaped(40)).epochs == 300
    assert default._train_config(shaped(40, image=False)).epochs == 60  # tables: ODDS-measured
    assert default._train_config(shaped(1000)).epochs == 60    # 8 steps an epoch: 480
    assert default._train_config(shaped(100)).max_steps == 300
    assert AutoencoderDetector(epochs=20)._train_config(shaped(40)).epochs == 20
    assert AutoencoderDetector(max_steps=100)._train_config(shaped(40)).epochs == 60


def test_early_stop_and_caps_are_printed_with_their_reason(tmp_path):
    data = tmp_path / "x.npy"
    np.save(data, low_rank_table(400, d=6))
    result = run("train", data, "-o", tmp_path / "m", "--set", "epochs=200", "--set",
                 "patience=1", "--set", "lr=0.05", "-q")
    assert result.exit_code == 0, result.output
    assert "note: stopped at epoch" in result.output
    assert "no validation improvement for 1 epochs" in result.output
    info = run("info", tmp_path / "m")
    assert "stopped:     stopped at epoch" in info.output
    # without -q, training says it once (on stderr), not a second time in the summary
    result = run("train", data, "-o", tmp_path / "m2", "--set", "epochs=200", "--set",
                 "patience=1", "--set", "lr=0.05")
    assert result.exit_code == 0 and result.stdout.count("note: stopped at epoch") == 0
    assert result.stderr.count("note: stopped at epoch") == 1


@pytest.mark.parametrize("shape,expected", [((1, 8, 8), "bernoulli"), ((6,), "gaussian")])
def test_likelihood_follows_the_data(shape, expected):
    model = VAE(shape, VAEConfig(code_size=2))
    assert model.likelihood == expected
    with pytest.raises(ValueError, match="bernoulli"):
        VAE((6,), VAEConfig(likelihood="bernoulli"))
    learnt = VAE(shape, VAEConfig(likelihood="gaussian_learned", sigma=0.2))
    assert "log_sigma" in dict(learnt.named_parameters())


def test_bernoulli_reconstructions_are_probabilities_and_the_loss_is_in_nats():
    images = torch.from_numpy(blob_images(16, 8))
    model = VAE((1, 8, 8), VAEConfig(code_size=2))
    out = model(images)
    recon = out["recon"].detach()
    assert float(recon.min()) >= 0 and float(recon.max()) <= 1
    _total, parts = model.loss(images, out)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        out["raw"], images, reduction="sum") / len(images)
    assert float(parts["reconstruction"].detach()) == pytest.approx(float(expected.detach()),
                                                             rel=1e-5)


def test_the_cvae_decoder_can_see_the_label_at_every_layer():
    mlp = CVAE((6,), CVAEConfig(hidden=[16, 8], code_size=2, label_layers="all"), n_classes=3)
    assert isinstance(mlp.decoder, LabelledMLPDecoder)
    assert all(layer.in_features in (2 + 3, 8 + 3, 16 + 3) for layer in mlp.decoder.layers)
    conv = CVAE((1, 8, 8), CVAEConfig(code_size=2, label_layers="all"), n_classes=3)
    assert isinstance(conv.decoder, LabelledConvDecoder)
    z = torch.zeros(3, 2)
    outputs = conv.decode(z, torch.tensor([0, 1, 2]))
    assert not torch.allclose(outputs[0], outputs[1])
    default = CVAE((1, 8, 8), CVAEConfig(code_size=2), n_classes=3)  # label at the input
    assert not isinstance(default.decoder, LabelledConvDecoder)
    outputs = default.decode(z, torch.tensor([0, 1, 2]))
    assert not torch.allclose(outputs[0], outputs[1])  # the label still changes the image


def test_kl_warmup_and_free_bits():
    model = VAE((6,), VAEConfig(code_size=2, kl_warmup=10))
    model.train()
    x = torch.from_numpy(low_rank_table(8, d=6))
    first = float(model.regularizers(x, model(x))["kl"].detach())
    assert first == 0.0  # step 0 of the warm-up
    model.train_steps = 5
    assert model.kl_weight() == pytest.approx(0.5)
    model.eval()
    assert model.kl_weight() == 1.0  # validation sees the full ELBO
    free = VAE((6,), VAEConfig(code_size=2, free_bits=5.0))
    out = free(x)
    assert float(free.regularizers(x, out)["kl"].detach()) >= 10.0 - 1e-6  # 2 units x 5 nats


def test_importance_weighted_likelihood_is_at_least_the_elbo():
    images = blob_images(200, 8)
    model = Autoencoder(variant="vae", epochs=3, device="cpu").fit(images)
    matrix = torch.from_numpy(images[:16])
    torch.manual_seed(0)
    iwae = model.model_.log_likelihood(matrix, k=200)
    elbo = torch.stack([model.model_.log_likelihood(matrix, k=1) for _ in range(200)]).mean(0)
    assert (iwae >= elbo - 0.5).all()
    assert np.isfinite(model.validation_nll_) and model.validation_nll_ > 0


def test_sample_writes_arrays_takes_class_names_positions_and_temperature(tmp_path):
    images = (blob_images(120, 8) * 255).astype(np.uint8)
    data = tmp_path / "shapes.npz"
    np.savez(data, X=images[:, 0], y=np.repeat(np.array(["dot", "ring", "bar"]), 40))
    bundle = tmp_path / "cvae"
    assert run("train", data, "--variant", "cvae", "-o", bundle, "--set", "epochs=2",
               "-q").exit_code == 0
    out = tmp_path / "s.npz"
    result = run("sample", bundle, "-n", "6", "--label", "ring", "-o", out)
    assert result.exit_code == 0, result.output
    with np.load(out) as saved:
        assert saved["X"].shape == (6, 1, 8, 8) and list(saved["y"]) == ["ring"] * 6
        assert saved["X"].min() >= 0 and saved["X"].max() <= 1
    assert run("sample", bundle, "-n", "4", "--label", "1", "-o", tmp_path / "b.npz").exit_code == 0
    with np.load(tmp_path / "b.npz") as saved:
        assert list(saved["y"]) == ["dot"] * 4  # position 1 of the sorted classes bar, dot, ring
    cold = run("sample", bundle, "-n", "4", "--temperature", "0.01", "-o", tmp_path / "c.npy")
    assert cold.exit_code == 0
    assert np.load(tmp_path / "c.npy").shape == (4, 1, 8, 8)
    for hot in ("inf", "nan", "0"):  # inf drew samples of infinities
        refused = run("sample", bundle, "-n", "2", "--temperature", hot, "-o", tmp_path / "h.npy")
        assert refused.exit_code == 2 and "temperature must be a finite number > 0" in refused.stderr
    assert not (tmp_path / "h.npy").exists()
    wrong = run("sample", bundle, "-n", "2", "--label", "star", "-o", tmp_path / "d.npy")
    assert wrong.exit_code == 2 and "not one of the model's classes" in wrong.stderr
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["training"]["validation_nll"] > 0
    assert "NLL:" in run("info", bundle).output


def test_samples_come_from_the_prior_fitted_to_the_training_codes(tmp_path):
    images = blob_images(300, 8)
    model = Autoencoder(variant="vae", epochs=2, device="cpu").fit(images)
    prior = model.code_prior_
    assert len(prior["weights"]) == 3  # one component per 100 training rows, at most 20
    assert abs(sum(prior["weights"]) - 1) < 1e-6
    fitted = model.sample(8, seed=1)
    standard = model.sample(8, seed=1, prior="standard")
    assert fitted.shape == standard.shape == (8, 1, 8, 8)
    assert not np.allclose(fitted, standard)
    model.save(tmp_path / "vae")
    again = Autoencoder.load(tmp_path / "vae")
    np.testing.assert_allclose(again.sample(8, seed=1), fitted, atol=1e-6)
    with pytest.raises(Exception, match="prior must be"):
        model.sample(2, prior="uniform")


def test_a_vae_bundle_from_before_the_likelihood_setting_loads_as_it_was_trained(tmp_path):
    images = blob_images(120, 8)
    model = Autoencoder(variant="vae", epochs=1, device="cpu",
                        variant_params={"likelihood": "gaussian"}).fit(images)
    model.save(tmp_path / "old")
    path = tmp_path / "old" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["config"]["likelihood"]  # what a bundle written before this setting holds
    for key in ("kl_warmup", "free_bits"):
        del manifest["config"][key]
    path.write_text(json.dumps(manifest))
    again = Autoencoder.load(tmp_path / "old")
    assert again.model_.likelihood == "gaussian"
    np.testing.assert_allclose(again.transform(images[:4]), model.transform(images[:4]), atol=1e-6)


def test_early_stopping_waits_for_the_kl_warmup():
    images = blob_images(200, 8)
    model = Autoencoder(variant="vae", epochs=12, patience=1, batch_size=32, device="cpu",
                        variant_params={"kl_warmup": 10_000}).fit(images)
    assert len(model.history_) == 12  # the warm-up outlasts training: no early stop


def test_the_likelihood_estimate_repeats_and_leaves_the_random_state_alone():
    images = blob_images(200, 8)
    model = Autoencoder(variant="vae", epochs=1, device="cpu").fit(images)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = model.log_likelihood(images[:8], k=10)
    assert torch.equal(torch.rand(3), expected_next)
    np.testing.assert_array_equal(first, model.log_likelihood(images[:8], k=10))


def test_an_image_vae_keeps_free_bits_unless_told_and_tables_and_the_cvae_do_not():
    """aetool.defaults.IMAGE_GENERATION_DEFAULTS: 0.5 free bits for the unconditional VAE on
    images (bench/generative.py), under the user's settings; shown by `aetool variants`."""
    from aetool.defaults import IMAGE_GENERATION_DEFAULTS
    from aetool.tasks.catalog import variant_rows

    images = blob_images(40, 8)
    quick = {"epochs": 1, "patience": 0, "device": "cpu"}
    floor = IMAGE_GENERATION_DEFAULTS["vae"]["free_bits"]
    assert floor == 0.5
    assert Autoencoder(variant="vae", **quick).fit(images).config_.free_bits == floor
    told = Autoencoder(variant="vae", variant_params={"free_bits": 0.0}, **quick).fit(images)
    assert told.config_.free_bits == 0.0
    table = Autoencoder(variant="vae", **quick).fit(low_rank_table(64, d=6))
    assert table.config_.free_bits == 0.0
    labels = np.arange(40) % 2
    assert Autoencoder(variant="cvae", **quick).fit(images, labels).config_.free_bits == 0.0
    detector = AutoencoderDetector(variant="vae", **quick).fit(images)
    assert detector.config_.free_bits == 0.0  # detection keeps the variant's default
    rows = {row["name"]: row for row in variant_rows()}
    assert rows["vae"]["image_generation_settings"] == {"free_bits": floor}
    assert rows["cvae"]["image_generation_settings"] == {}
    assert "trained on images (train, sample): free_bits=0.5" in run("variants").output


@pytest.mark.parametrize("variant", ["ae", "dae", "sparse", "contractive"])
def test_images_train_the_convolutional_backbone_unless_told(variant):
    """aetool.defaults.IMAGE_FEATURE_DEFAULTS (bench/features_defaults.py): on images `train`
    and the feature extractor use conv where the variant has it; tables and the user's
    setting keep theirs."""
    from aetool.estimators import EncoderTransformer

    images = blob_images(24, 8)
    quick = {"epochs": 1, "patience": 0, "device": "cpu"}
    config = Autoencoder(variant=variant, **quick).fit(images).config_
    assert config.backbone == "conv"
    assert config.activation == ("tanh" if variant == "contractive" else "relu")
    assert EncoderTransformer(variant=variant, code_size=4, **quick).fit(
        images).config_.backbone == "conv"
    told = Autoencoder(variant=variant, variant_params={"backbone": "mlp"}, **quick)
    assert told.fit(images).config_.backbone == "mlp"
    on_table = Autoencoder(variant=variant, **quick).fit(low_rank_table(32, d=6)).config_
    assert (on_table.backbone, on_table.activation) == ("mlp", "tanh")
    if variant == "ae":  # no L2 penalty on images; tables keep the variant's 1e-5
        assert (config.weight_penalty, on_table.weight_penalty) == (0.0, 1e-5)
    said = "backbone=conv" + ("" if variant == "contractive" else ", activation=relu") + (
        ", weight_penalty=0.0" if variant == "ae" else "")
    assert f"trained on images (train, features): {said}\n" in run("variants").output


def test_min_steps_stretches_the_epochs_of_a_small_image_set():
    """``min_steps`` (bench/features_defaults.py --min-steps): 24 images make one optimiser step
    an epoch, so 10 steps take 10 epochs, and the reason says why the epochs were not 2."""
    images = blob_images(24, 8)
    model = Autoencoder(epochs=2, patience=0, min_steps=10, device="cpu").fit(images)
    assert len(model.history_) == 10
    assert model.stop_reason_ == ("trained up to 10 epochs instead of 2: min_steps=10 "
                                  "optimiser steps on a small data set")
    assert len(Autoencoder(epochs=2, patience=0, min_steps=0, device="cpu").fit(
        images).history_) == 2
    from aetool.defaults import image_min_steps

    assert [image_min_steps(name) for name in ("ae", "dae", "sparse", "contractive", "vae")] == [
        2000, 2000, 2000, 2000, 0]


def test_a_long_stretched_training_says_so_after_its_first_epoch(monkeypatch, capsys):
    """When ``min_steps`` stretches the epochs and the run looks long at the first epoch's
    speed, a note says how long and how to shorten it, before the wait; not when quiet, not
    when the run is short, not when nothing was stretched."""
    from aetool import training

    images = blob_images(24, 8)
    monkeypatch.setattr(training, "LONG_STRETCH_S", 0.0)
    Autoencoder(epochs=2, patience=0, min_steps=10, device="cpu", verbose=True).fit(images)
    err = capsys.readouterr().err
    assert "note: min_steps=10 stretches training to up to 10 epochs instead of 2 (1 optimiser " \
           "step an epoch): about" in err
    assert "--set min_steps=0 trains 2 epochs" in err
    Autoencoder(epochs=2, patience=0, min_steps=10, device="cpu").fit(images)  # quiet
    Autoencoder(epochs=2, patience=0, min_steps=0, device="cpu", verbose=True).fit(images)
    assert "stretches" not in capsys.readouterr().err
    monkeypatch.setattr(training, "LONG_STRETCH_S", 1e9)
    Autoencoder(epochs=2, patience=0, min_steps=10, device="cpu", verbose=True).fit(images)
    assert "stretches" not in capsys.readouterr().err


def test_image_training_steps_apply_at_the_default_epochs_only(monkeypatch):
    """The rule (aetool.defaults.IMAGE_TRAINING_STEPS) stretches the default epochs on images;
    epochs the user chose, tables and variants outside the rule train as told."""
    from aetool import defaults
    from aetool.estimators import EncoderTransformer
    from aetool.tasks.catalog import variant_rows

    monkeypatch.setattr(defaults, "IMAGE_TRAINING_STEPS", {"ae": {"min_steps": 70}})
    images = blob_images(24, 8)
    assert len(Autoencoder(patience=0, device="cpu").fit(images).history_) == 70
    assert len(EncoderTransformer(code_size=4, patience=0, device="cpu").fit(
        images).history_) == 70  # its default epochs are 30
    assert len(Autoencoder(epochs=3, patience=0, device="cpu").fit(images).history_) == 3
    assert len(Autoencoder(variant="dae", patience=0, device="cpu").fit(images).history_) == 60
    table = low_rank_table(24, d=6)
    assert len(Autoencoder(patience=0, device="cpu").fit(table).history_) == 60
    rows = {row["name"]: row for row in variant_rows()}
    assert rows["ae"]["image_training_steps"] == {"min_steps": 70}
    assert ("trained on images at the default epochs (train, features): min_steps=70"
            in run("variants").output)


def test_epochs_given_train_as_told_even_at_the_default(tmp_path, monkeypatch):
    """``epochs=N`` trains N epochs even where N is the default's number: the step rules that
    apply only at the default epochs (min_steps None, the detector's step budget) stay off once
    the user gives a number, in Python as on the command line (`--set epochs=60`), unless the
    user sets them too; the Denoiser's own minimum (not such a rule) stays."""
    from aetool import Denoiser, PatchDetector, defaults
    from aetool.estimators import EncoderTransformer

    monkeypatch.setattr(defaults, "IMAGE_TRAINING_STEPS", {"ae": {"min_steps": 70}})
    images = np.zeros((24, 1, 8, 8), np.float32)
    told = Autoencoder(epochs=60)._train_config(images)
    assert (told.epochs, told.min_steps) == (60, 0)
    assert Autoencoder()._train_config(images).min_steps == 70
    assert Autoencoder(epochs=60, min_steps=9)._train_config(images).min_steps == 9
    assert EncoderTransformer(epochs=30)._train_config(images).min_steps == 0
    assert EncoderTransformer()._train_config(images).epochs == 30
    capped = AutoencoderDetector(epochs=60)._train_config(images)
    assert (capped.epochs, capped.max_steps) == (60, 0)
    assert AutoencoderDetector()._train_config(images).max_steps == 300
    assert Denoiser(epochs=5)._train_config(images).min_steps == 500
    assert PatchDetector()._train_config(images).epochs == 20
    path = tmp_path / "images.npz"
    np.savez(path, X=blob_images(24, 8)[:, 0])
    result = run("train", path, "--set", "epochs=60", "--set", "code_size=4", "--set",
                 "patience=0", "-o", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert "trained ae for 60 epochs" in result.output and "instead of" not in result.output
    result = run("train", path, "--set", "code_size=4", "--set", "patience=0",
                 "-o", tmp_path / "m2")
    assert "trained ae for 70 epochs" in result.output
