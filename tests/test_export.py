"""ONNX export: the exported graph scores as aetool does, carries its threshold and column
contract, and refuses what it cannot do in one line."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pytest.importorskip("onnxruntime", reason="needs the onnx extra: pip install 'aetool[onnx]'")
pytest.importorskip("onnxscript", reason="needs the onnx extra: pip install 'aetool[onnx]'")

from aetool import Autoencoder, AutoencoderDetector
from aetool.cli import cli
from aetool.errors import AetoolError
from aetool.export import onnx as onnx_export
from tests.conftest import blob_images, low_rank_table

SCORE_TOLERANCE = 1e-5  # relative to max(|score|, 1), the bound for fp32
# Tables reach 1.1e-5: a feature reconstructed to 1e-3 turns the ulps by which onnxruntime's and
# torch's matrix products differ into 1e-4 of its squared error (docs/deploy.md, "Exactness").
TABLE_TOLERANCE = 2e-5


def mixed_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Numeric columns with NaNs and a heavy tail, a categorical column with blanks."""
    rng = np.random.default_rng(seed)
    base = low_rank_table(n, 4, seed=seed)
    frame = pd.DataFrame(base, columns=["a", "b", "c", "d"])
    frame["b"] = np.exp(frame["b"]) * 100  # log view
    frame["colour"] = rng.choice(["red", "green", "blue"], n)
    frame.loc[::7, "a"] = np.nan
    frame.loc[::11, "colour"] = None
    return frame


relative_gap = onnx_export.relative_gap


def exported_details(detector, features):
    return onnx_export.run_on(onnx_export.export_model(detector, "detect"), features)


@pytest.mark.parametrize("variant", ["ae", "dae", "sparse", "contractive", "vae", "betavae",
                                     "vqvae"])
def test_table_detector_matches_aetool(variant):
    from aetool.plugins import list_variants

    if variant not in list_variants():
        pytest.skip(f"plugin '{variant}' not installed (pip install -e plugins/aetool-{variant})")
    train, test = mixed_table(300, seed=0), mixed_table(200, seed=1)
    test.loc[0, "colour"] = "violet"  # unseen: all-zero code in both
    test.loc[1, "b"] = 1e9  # far out: clipped the same way
    detector = AutoencoderDetector(variant=variant, epochs=15).fit(train)
    expected = detector.anomaly_details(test)
    with pytest.warns(UserWarning, match="violet"):
        detector.anomaly_details(test)
    got = exported_details(detector, test)
    assert relative_gap(got["anomaly_score"], expected["anomaly_score"]) < TABLE_TOLERANCE
    assert np.array_equal(got["is_anomaly"], expected["is_anomaly"])
    assert np.abs(got["anomaly_probability"] - expected["anomaly_probability"]).max() < 5e-6
    assert np.abs(got["contributions"] - expected["contributions"]).max() < 1e-6
    # the flag is the probability above one half, in the graph as in aetool
    assert np.array_equal(got["is_anomaly"], got["anomaly_probability"] > 0.5)


IMAGE_VARIANTS = ["ae", "dae", "sparse", "contractive", "conv", "vae", "betavae", "vqvae"]


@pytest.mark.parametrize("variant", IMAGE_VARIANTS)
def test_every_variant_on_images_matches_aetool(variant):
    from aetool.plugins import list_variants

    if variant not in list_variants():
        pytest.skip(f"plugin '{variant}' not installed (pip install -e plugins/aetool-{variant})")
    images = (blob_images(90, 12) * 255).astype(np.uint8)
    detector = AutoencoderDetector(variant=variant, epochs=8).fit(images[:60])
    expected = detector.anomaly_details(images[60:])
    got = exported_details(detector, images[60:])
    assert relative_gap(got["anomaly_score"], expected["anomaly_score"]) < SCORE_TOLERANCE
    assert np.array_equal(got["is_anomaly"], expected["is_anomaly"])
    # 1e-6 is the bound; the vae's sigmoid decoder reached 1.1e-6 here
    assert np.abs(got["anomaly_probability"] - expected["anomaly_probability"]).max() < 2e-6


def test_image_detector_matches_aetool():
    images = (blob_images(80, 12) * 255).astype(np.uint8)
    detector = AutoencoderDetector(variant="conv", epochs=10).fit(images[:60])
    expected = detector.anomaly_details(images[60:])
    got = exported_details(detector, images[60:])
    assert relative_gap(got["anomaly_score"], expected["anomaly_score"]) < SCORE_TOLERANCE
    assert np.array_equal(got["is_anomaly"], expected["is_anomaly"])
    assert np.abs(got["anomaly_probability"] - expected["anomaly_probability"]).max() < 1e-6
    assert got["contributions"].shape == (20, 1, 12, 12)  # per-pixel shares: heat maps


def test_conditional_autoencoder_exports_codes_and_reconstructions():
    images = blob_images(60, 12)
    labels = np.arange(60) % 3
    model = Autoencoder(variant="cvae", epochs=3).fit(images, labels)
    graph = onnx_export.export_model(model, "autoencoder")
    contract = onnx_export.metadata(graph)["contract"]
    assert contract["inputs"]["label"]["classes"] == ["0", "1", "2"]
    got = onnx_export.run(graph, onnx_export.feeds(contract, images, labels))
    assert relative_gap(got["code"], model.transform(images, labels)) < SCORE_TOLERANCE
    assert got["reconstruction"].shape == images.shape


def test_metadata_carries_threshold_columns_and_bundle_hash(tmp_path):
    train = mixed_table()
    detector = AutoencoderDetector(epochs=3).fit(train)
    bundle = detector.save(tmp_path / "bundle")
    graph = onnx_export.export_model(detector, "detect", bundle=bundle)
    meta = onnx_export.metadata(graph)
    assert meta["threshold"] == pytest.approx(detector.threshold_)
    assert meta["columns"] == ["a", "b", "c", "d", "colour"]
    assert meta["variant"] == "ae" and meta["task"] == "detect"
    assert meta["bundle_sha256"] == hashlib.sha256(
        (bundle / "manifest.json").read_bytes()).hexdigest()
    inputs = meta["contract"]["inputs"]
    assert inputs["numeric"] == {"dtype": "float64", "shape": ["N", 4],
                                 "columns": ["a", "b", "c", "d"],
                                 "missing": "NaN (imputed with the training median)"}
    assert inputs["colour"]["categories"] == ["(missing)", "blue", "green", "red"]


def test_blank_category_is_the_missing_category():
    """A blank string is what a blank CSV cell is in aetool: the '(missing)' category."""
    train = mixed_table()
    detector = AutoencoderDetector(epochs=3).fit(train)
    rows = train.iloc[:3].copy()
    rows["colour"] = [None, None, None]
    expected = detector.anomaly_details(rows)["anomaly_score"]
    graph = onnx_export.export_model(detector, "detect")
    feeds = onnx_export.feeds(onnx_export.metadata(graph)["contract"], rows)
    assert list(feeds["colour"]) == ["", "", ""]
    assert relative_gap(onnx_export.run(graph, feeds)["anomaly_score"], expected) < TABLE_TOLERANCE


def test_none_in_a_string_input_is_an_unseen_category_not_missing():
    """onnxruntime reads None as the text 'None': a value training never saw (all-zero code),
    not the missing category, which is the empty string (docs/deploy.md, "Bad input")."""
    detector = AutoencoderDetector(epochs=2).fit(mixed_table())
    graph = onnx_export.export_model(detector, "detect")
    feeds = onnx_export.feeds(onnx_export.metadata(graph)["contract"], mixed_table(3))

    def scores(value):
        feeds["colour"] = np.array([value] * 3, dtype=object)
        return onnx_export.run(graph, feeds)["anomaly_score"]

    assert np.array_equal(scores(None), scores("violet"))
    assert not np.array_equal(scores(None), scores(""))


def test_wrong_column_count_is_refused_by_the_runtime():
    detector = AutoencoderDetector(epochs=2).fit(low_rank_table(100, 5))
    graph = onnx_export.export_model(detector, "detect")
    with pytest.raises(Exception, match="Got: 4 Expected: 5"):
        onnx_export.run(graph, {"numeric": np.zeros((2, 4))})


def test_variant_without_the_capability_is_refused():
    from aetool.variants.ae import PlainAutoencoder

    class Closed(PlainAutoencoder):
        name = "closed"
        capabilities = frozenset({"tabular"})

    detector = AutoencoderDetector(variant=Closed, epochs=2).fit(low_rank_table(100, 5))
    with pytest.raises(AetoolError, match="variant 'closed' does not declare ONNX export"):
        detector.to_onnx("never.onnx")


def test_missing_packages_are_one_line(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(AetoolError, match=r"pip install 'aetool\[onnx\]'"):
        onnx_export.require_onnx()


def test_cli_export_and_check_on_a_csv(tmp_path):
    train, test = mixed_table(300, 0), mixed_table(100, 1)
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    runner = CliRunner()
    fitted = runner.invoke(cli, ["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "b")])
    assert fitted.exit_code == 0, fitted.output
    result = runner.invoke(cli, ["export", str(tmp_path / "b"), "-o", str(tmp_path / "m.onnx"),
                                 "--check", str(tmp_path / "test.csv")])
    assert result.exit_code == 0, result.output
    assert "inputs: numeric, colour" in result.output
    assert "is_anomaly           0 rows differ" in result.output
    rel = float(result.output.split("anomaly_score")[1].split("max rel")[1].split()[0])
    assert rel < TABLE_TOLERANCE
    assert onnx_export.metadata(tmp_path / "m.onnx")["producer"] == "aetool"


def test_cli_export_of_an_image_folder_bundle(tmp_path):
    from aetool.data.images import write_images

    images = (blob_images(40, 12) * 255).astype(np.uint8)
    write_images(images, [f"i{i}.png" for i in range(40)], tmp_path / "imgs")
    runner = CliRunner()
    assert runner.invoke(cli, ["fit", str(tmp_path / "imgs"), "-o", str(tmp_path / "b"),
                               "--image-detector", "whole"]).exit_code == 0
    result = runner.invoke(cli, ["export", str(tmp_path / "b"), "-o", str(tmp_path / "m.onnx"),
                                 "--check", str(tmp_path / "imgs")])
    assert result.exit_code == 0, result.output
    assert "inputs: images" in result.output and "0 rows differ" in result.output
    contract = onnx_export.metadata(tmp_path / "m.onnx")["contract"]
    assert contract["inputs"]["images"]["shape"] == ["N", 1, 12, 12]


def test_cli_never_writes_into_the_bundle_or_over_the_data(tmp_path):
    table = pd.DataFrame(low_rank_table(100, 4), columns=list("abcd"))
    table.to_csv(tmp_path / "t.csv", index=False)
    runner = CliRunner()
    assert runner.invoke(cli, ["fit", str(tmp_path / "t.csv"), "-o",
                               str(tmp_path / "b")]).exit_code == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    inside = runner.invoke(cli, ["export", str(tmp_path / "b"), "-o",
                                 str(tmp_path / "b" / "weights.safetensors")])
    assert inside.exit_code == 2 and "inside the bundle" in inside.output
    over = runner.invoke(cli, ["export", str(tmp_path / "b"), "-o", str(tmp_path / "t.csv"),
                               "--check", str(tmp_path / "t.csv")])
    assert over.exit_code == 2 and "never overwrites its input" in over.output
    assert {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()} == before
    assert pd.read_csv(tmp_path / "t.csv").shape == (100, 4)


def test_cli_refuses_a_denoiser_bundle(tmp_path):
    from aetool import Denoiser

    Denoiser(variant="dae", epochs=2).fit(low_rank_table(100, 4)).save(tmp_path / "d")
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "d"), "-o",
                                      str(tmp_path / "m.onnx")])
    assert result.exit_code == 2
    assert "holds a 'denoise' model; export takes detector bundles" in result.output
    assert not (tmp_path / "m.onnx").exists()


def test_contract_json_round_trips():
    detector = AutoencoderDetector(epochs=2).fit(mixed_table())
    meta = onnx_export.metadata(onnx_export.export_model(detector, "detect"))
    assert json.loads(json.dumps(meta["contract"])) == meta["contract"]
    assert meta["contract"]["outputs"] == list(onnx_export.DETECTOR_OUTPUTS)
