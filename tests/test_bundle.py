"""Saved models: bit-for-bit round trip, and refusal of pickles, damage and unknown variants."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from aetool.bundle import load_bundle, read_manifest
from aetool.errors import BundleError
from aetool.estimators import Autoencoder, AutoencoderDetector
from tests.conftest import low_rank_table

FAST = {"epochs": 3, "max_steps": 20}


@pytest.fixture
def saved(tmp_path):
    x = low_rank_table(80)
    model = Autoencoder(variant="ae", **FAST).fit(x)
    path = model.save(tmp_path / "bundle")
    return model, path, x


def test_round_trip_reproduces_reconstructions_bit_for_bit(saved):
    model, path, x = saved
    manifest, loaded = load_bundle(path)
    tensor = torch.from_numpy(model._prepare(x, reset=False)[0])
    assert torch.equal(model.model_.reconstruct(tensor), loaded.reconstruct(tensor))
    assert manifest["variant"] == "ae" and manifest["variant_distribution"] == "aetool"
    assert manifest["format_version"] == 1 and manifest["history"]
    assert set(p.name for p in path.iterdir()) == {"manifest.json", "weights.safetensors"}


def test_detector_round_trip_gives_identical_scores(tmp_path):
    x = low_rank_table(120)
    detector = AutoencoderDetector(**FAST).fit(x)
    detector.save(tmp_path / "det")
    loaded = AutoencoderDetector.load(tmp_path / "det")
    np.testing.assert_array_equal(detector.score_samples(x), loaded.score_samples(x))
    np.testing.assert_array_equal(detector.predict(x), loaded.predict(x))


def test_bundle_with_a_pickle_is_refused(saved, tmp_path):
    _, path, _ = saved
    (path / "extra.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(BundleError, match="pickle"):
        load_bundle(path)


def test_weights_replaced_by_a_pickle_are_refused(saved):
    _, path, _ = saved
    (path / "weights.safetensors").write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    with pytest.raises(BundleError, match="pickle"):
        load_bundle(path)


def test_torch_save_file_is_refused(saved):
    _, path, _ = saved
    torch.save({"w": torch.zeros(2)}, path / "model.pt")
    with pytest.raises(BundleError, match="pickle"):
        load_bundle(path)


def test_truncated_weights_are_refused(saved):
    _, path, _ = saved
    weights = path / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(BundleError, match="truncated or modified"):
        load_bundle(path)


def test_truncated_weights_without_checksum_are_refused(saved):
    """A manifest without its checksum is refused before the weights are read (bundles written
    by aetool always carry one, so deleting it must not switch verification off)."""
    _, path, _ = saved
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["weights_sha256"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    weights = path / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(BundleError, match="weights_sha256"):
        load_bundle(path)


def test_unknown_variant_names_variant_and_package(saved):
    _, path, _ = saved
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["variant"] = "fancy"
    manifest["variant_distribution"] = "aetool-fancy"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"variant 'fancy' is not installed.*aetool-fancy"):
        load_bundle(path)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not a bundle directory"):
        read_manifest(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        read_manifest(tmp_path / "empty")
    (tmp_path / "empty" / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="damaged manifest"):
        read_manifest(tmp_path / "empty")


def test_saving_is_atomic_and_replaces_old_bundle(saved, monkeypatch):
    model, path, _ = saved
    before = (path / "manifest.json").read_text()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", explode)
    with pytest.raises(RuntimeError):
        model.save(path)
    assert (path / "manifest.json").read_text() == before
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_outputs_get_the_usual_permissions_not_tempfiles_owner_only(saved, tmp_path):
    """Atomic writes go through tempfile, whose 0o600 files and 0o700 folders used to survive
    the rename: a table or bundle another user of the machine could not read."""
    import os
    import stat

    from aetool.data.output import atomic_output

    model, _, _ = saved
    umask = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "scores.csv") as handle:
            handle.write("a\n1\n")
        model.save(tmp_path / "bundle")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "scores.csv").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "bundle").stat().st_mode) == 0o755
    for name in ("manifest.json", "weights.safetensors"):  # safetensors writes 0o600 itself
        assert stat.S_IMODE((tmp_path / "bundle" / name).stat().st_mode) == 0o644
