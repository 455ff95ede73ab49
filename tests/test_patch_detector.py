"""The patch detector for local image defects: patch geometry, the local nearest-code search,
finding and localising pasted defects, saving, and how ``aetool fit`` chooses it."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from aetool import load_detector
from aetool.cli import cli
from aetool.data.images import working_shape
from aetool.defaults import (
    PATCH_DETECTOR_MIN_SIDE,
    PATCH_SIZE_RULE,
    TEXTURE_FROM_IMAGES,
    image_detector_for,
)
from aetool.errors import BundleError, DataError, SettingError
from aetool.estimators import AutoencoderDetector, PatchDetector, patch_detector, patch_scorer
from aetool.estimators.patch_scorer import auto_texture_power, residual_weight
from aetool.estimators.saved import SavedDetector
from aetool.patches import (
    ORIENTATION_FREE_BELOW,
    PLACE_FREE_BELOW,
    PatchGrid,
    edge_sigma,
    local_nearest,
    own_spread,
    place_cost,
    position_spread,
    resized,
    standardise,
    top_mean,
    turn_cost,
    turned_copies,
    whole_nearest,
    whole_thumbnails,
    with_edges,
)
from aetool.scoring import codes_and_residuals, reconstructions, run_batches
from aetool.tasks.catalog import patch_description
from aetool.tasks.score import load_for_scoring
from aetool.thresholds import contamination_threshold
from tests.conftest import blob_images

FAST = {"epochs": 4, "batch_size": 64, "device": "cpu"}


def textures(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Striped surfaces with a random phase, exposure and noise: normal images (N, 1, H, W)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 6 * np.pi, size)
    out = np.empty((n, 1, size, size), np.float32)
    for i in range(n):
        wave = np.sin(x[None, :] + rng.uniform(0, 0.4)) * np.cos(x[:, None] / 3)
        out[i, 0] = rng.uniform(0.4, 0.6) + 0.2 * wave + rng.normal(0, 0.02, (size, size))
    return np.clip(out, 0, 1)


def random_surfaces(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Smoothed random noise: normal images (N, 1, H, W) of which no two share a pattern."""
    from scipy.ndimage import gaussian_filter

    noise = gaussian_filter(np.random.default_rng(seed).normal(size=(n, 1, size, size)),
                            (0, 0, 2, 2))
    return (0.5 + 0.5 * noise / noise.std()).clip(0, 1).astype(np.float32)


def with_defects(images: np.ndarray, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A bright 5x5 spot pasted at a random place of each image; returns images and masks."""
    rng = np.random.default_rng(seed)
    out, masks = images.copy(), np.zeros(images.shape, bool)
    for i in range(len(out)):
        r, c = rng.integers(2, images.shape[-1] - 7, size=2)
        out[i, :, r:r + 5, c:c + 5] = 1.0
        masks[i, :, r:r + 5, c:c + 5] = True
    return out, masks


def saved_before(detector: PatchDetector, bundle, setting: str) -> PatchDetector:
    """``detector`` saved to ``bundle`` and loaded back as a bundle written before its scorer
    kept ``setting``, which it then lacks."""
    detector.save(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["detector"]["scorer"][setting]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    return PatchDetector.load(bundle)


def test_the_patch_grid_covers_every_pixel_and_pastes_back():
    grid = PatchGrid.for_image(30, 45)
    assert grid.size == 7 and grid.rows[-1] + 7 == 30 and grid.cols[-1] + 7 == 45
    assert all(b - a <= 3 for a, b in zip(grid.rows, grid.rows[1:]))  # half-overlapping
    images = torch.rand(2, 3, 30, 45)
    patches = grid.cut(images)
    assert patches.shape == (2, grid.count, 3 * 7 * 7)
    assert torch.allclose(grid.paste(patches, (3, 30, 45)), images, atol=1e-6)
    per_patch = torch.arange(grid.count, dtype=torch.float32)[None].repeat(2, 1)
    assert grid.paste(per_patch, (3, 30, 45)).shape == (2, 1, 30, 45)
    assert grid.neighbours(0, 1) == [0, 1, len(grid.cols), len(grid.cols) + 1]
    assert grid.neighbours(5, None) == list(range(grid.count))
    with pytest.raises(ValueError, match="patch_size must be between 1"):
        PatchGrid.for_image(30, 45, size=31)


def test_patch_size_rule_a_tenth_at_least_7_px_placed_an_eighth_16_anywhere_or_a_quarter():
    """PATCH_SIZE_RULE: placed patches a tenth of the side, never below 7 px unless a quarter
    of the side is less (small images keep the quarter); patches searched anywhere an eighth,
    never below 16 px unless a quarter of the side is less."""
    placed, anywhere = PATCH_SIZE_RULE["placed"], PATCH_SIZE_RULE["anywhere"]
    sides = (12, 16, 28, 32, 64, 128, 150)
    assert [PatchGrid.for_image(s, s, parts=placed[0], smallest=placed[1]).size
            for s in sides] == [4, 4, 7, 7, 7, 12, 15]
    assert [PatchGrid.for_image(s, s, parts=anywhere[0], smallest=anywhere[1]).size
            for s in (*sides, 96, 256)] == [4, 4, 7, 8, 16, 16, 18, 16, 32]
    assert PatchGrid.for_image(240, 96, parts=placed[0], smallest=placed[1]).size == 9


def test_whole_image_thumbnails_and_their_nearest_training_thumbnail():
    images = torch.rand(2, 3, 30, 45)
    thumbs = whole_thumbnails(images)  # shorter side 7 px, aspect kept
    assert torch.equal(thumbs, resized(images, working_shape(30, 45, 7)).flatten(1))
    assert thumbs.shape == (2, 3 * 7 * 10)
    rng = torch.Generator().manual_seed(0)
    bank, queries = torch.randn(12, 5, generator=rng), torch.randn(4, 5, generator=rng)
    brute = torch.cdist(queries, bank).min(dim=1).values
    assert torch.allclose(whole_nearest(queries, bank), brute, rtol=1e-4)
    owners = torch.arange(6).repeat(2)  # two copies of six images: each skips both of its own
    own = whole_nearest(bank[:6], bank, owners)
    mine = owners[None, :] == torch.arange(6)[:, None]
    expected = torch.cdist(bank[:6], bank).masked_fill(mine, float("inf")).min(dim=1).values
    assert torch.allclose(own, expected, rtol=1e-4)
    assert (own > 0).all()  # never its own thumbnail, nor its copy's


def test_local_nearest_matches_a_brute_force_search():
    grid = PatchGrid.for_image(16, 16, size=4)
    rng = torch.Generator().manual_seed(0)
    bank = torch.randn(5, grid.count, 3, generator=rng)
    queries = torch.randn(4, grid.count, 3, generator=rng)
    for reach in (0, 1, None):
        entries = torch.empty(4, grid.count, dtype=torch.long)
        found = local_nearest(queries, bank, grid, reach, budget=7, entries=entries)  # tiny chunks
        for i in range(4):
            for j in range(grid.count):
                near = grid.neighbours(j, reach)
                pool = bank[:, near].reshape(-1, 3)
                assert found[i, j] == pytest.approx(
                    float((pool - queries[i, j]).norm(dim=1).min()), abs=1e-4)
                own = bank[int(entries[i, j]), near]  # the entry named holds the nearest code
                assert found[i, j] == pytest.approx(
                    float((own - queries[i, j]).norm(dim=1).min()), abs=1e-4)
    three = local_nearest(queries, bank, grid, 1, neighbours=3)  # the mean of the 3 nearest
    pool = bank[:, grid.neighbours(7, 1)].reshape(-1, 3)
    assert three[2, 7] == pytest.approx(
        float((pool - queries[2, 7]).norm(dim=1).sort().values[:3].mean()), abs=1e-4)
    own = local_nearest(bank, bank, grid, 1, owners=torch.arange(5))
    assert (own > 0).all()  # an image's own patches are not its neighbours
    owners = torch.arange(5).repeat(2)  # two copies of five images: each skips both of its own
    copies = torch.cat([bank, bank.flip(1) + 0.1])
    for reach, budget in ((None, 50), (None, 1 << 20), (1, 7)):  # chunks across images, or not
        entries = torch.empty(5, grid.count, dtype=torch.long)
        found = local_nearest(bank, copies, grid, reach, owners=owners, budget=budget,
                              entries=entries)
        assert (entries % 5 != torch.arange(5)[:, None]).all()
        for i, j in ((0, 0), (2, 7), (4, grid.count - 1)):
            others = copies[owners != i][:, grid.neighbours(j, reach)].reshape(-1, 3)
            assert found[i, j] == pytest.approx(
                float((others - bank[i, j]).norm(dim=1).min()), abs=1e-4)
    assert (local_nearest(bank, bank, grid, 1) < 5e-3).all()  # itself, up to rounding
    assert top_mean(torch.tensor([[1.0, 5.0, 3.0]]), 2).item() == 4.0
    flat, mean, spread = standardise(torch.rand(3, 1, 8, 8) * 0.2 + 0.5)
    assert torch.allclose(flat.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(flat * spread + mean, flat * spread + mean)


@pytest.fixture(scope="module")
def fitted():
    return PatchDetector(**FAST).fit(textures(40))


def test_pasted_defects_are_found_and_localised(fitted):
    normal = textures(30, seed=5)
    defective, masks = with_defects(textures(30, seed=6))
    test = np.concatenate([normal, defective])
    truth = np.r_[np.zeros(30), np.ones(30)]
    details = fitted.anomaly_details(test)
    assert roc_auc_score(truth, details["anomaly_score"]) > 0.95
    maps = details["errors"][30:, 0]
    hottest = np.stack(np.divmod(maps.reshape(30, -1).argmax(axis=1), 32), axis=1)
    centres = np.array([np.argwhere(mask[0]).mean(axis=0) for mask in masks])
    off = np.abs(hottest - centres).max(axis=1)
    size = fitted.scorer_.grid.size  # maps resolve a defect to about a patch
    assert (off < size).mean() > 0.9  # the map points at the spot, not at the stripes
    pixel_auc = roc_auc_score(masks[:, 0].ravel(), maps.ravel())
    assert pixel_auc > 0.9
    flagged = details["anomaly_probability"] > 0.5
    assert (flagged == details["is_anomaly"]).all()
    assert (fitted.predict(test) == np.where(details["is_anomaly"], -1, 1)).all()
    assert details["anomaly_score"][:30].mean() < fitted.threshold_ < \
        details["anomaly_score"][30:].mean()


def test_the_edge_channel_marks_a_thin_line_and_is_smoothed_by_the_image_size():
    """with_edges adds one standardised channel, the smoothed gradient magnitude of the image's
    channels averaged: on a flat image with a faint one-pixel line it peaks beside the line."""
    images = torch.full((2, 3, 32, 32), 0.5)
    images[:, :, :, 15] = 0.45  # a faint dark crack, one pixel wide, in every channel
    flat = standardise(images)[0]
    out = with_edges(flat, sigma=1.0)
    assert out.shape == (2, 4, 32, 32) and torch.equal(out[:, :3], flat)
    edges = out[:, 3]
    assert edges.mean().abs() < 1e-5 and edges.std() == pytest.approx(1, abs=1e-3)
    columns = edges.mean(dim=1)  # (N, W): mean over the rows
    assert set(columns.argmax(dim=1).tolist()) <= {14, 16}  # the line's two flanks
    assert (columns[:, :10] < columns[:, 14:17].max(dim=1, keepdim=True).values / 10).all()
    assert edge_sigma(64, 64) == 1.0 and edge_sigma(128, 200) == 2.0
    assert edge_sigma(32, 32) == 1.0  # never below a pixel


def test_auto_trains_conv_on_few_patches_and_ae_on_many(monkeypatch):
    """variant "auto" (the default): conv below CONV_PATCHES_BELOW training patches, where
    its shared weights learn few patches better, else the faster ae; a named variant is kept."""
    images = textures(20)  # 20 images of 49 patches
    few = PatchDetector(**FAST).fit(images)
    assert few.variant_name_ == "conv" and few.get_params()["variant"] == "auto"
    monkeypatch.setattr(patch_detector, "CONV_PATCHES_BELOW", 20 * 49)
    many = PatchDetector(**FAST).fit(images)
    assert many.variant_name_ == "ae" and many.config_.hidden == [256]
    assert many.config_.code_size == few.config_.code_size == 16
    assert PatchDetector(variant="conv", **FAST).fit(images).variant_name_ == "conv"


def test_fully_connected_patch_bundles_from_before_the_conv_default_still_score(tmp_path):
    """Bundles fitted before the conv default hold an ``ae`` that takes each patch flat; they
    load and score as they did (the same weights take a patch as a small image today)."""
    flat = PatchDetector(variant="ae", **FAST).fit(textures(30))
    assert list(flat.model_.input_shape) == [2, 7, 7] and flat.variant_name_ == "ae"
    flat.save(tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    manifest["input_shape"] = [2 * 7 * 7]  # as the older bundles wrote it
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    older = load_detector(tmp_path / "b")
    assert list(older.model_.input_shape) == [98]
    test = with_defects(textures(10, seed=3))[0]
    assert np.allclose(older.score_samples(test), flat.score_samples(test), atol=1e-5)
    assert older.image_reconstructions(test).shape == test.shape


def test_without_edges_the_patches_are_the_intensities_alone(fitted, tmp_path):
    plain = PatchDetector(edges=False, **FAST).fit(textures(40))
    assert plain.scorer_.edge_sigma is None
    assert list(plain.model_.input_shape) == [1, 7, 7]
    test = with_defects(textures(20, seed=3))[0]
    plain.save(tmp_path / "p")  # and an intensity-only bundle loads as one
    assert np.array_equal(load_detector(tmp_path / "p").score_samples(test),
                          plain.score_samples(test))
    recon = fitted.image_reconstructions(test)  # the edge channel is not an image channel
    assert recon.shape == test.shape
    assert np.abs(recon - test).mean() < np.abs(test - test.mean()).mean()


def test_scoring_cuts_and_encodes_a_few_images_at_a_time_with_the_same_results(fitted,
                                                                                monkeypatch):
    """A folder chunk's patches at once hold each pixel about four times over; the detector
    cuts and encodes at most PATCH_VALUES_AT_ONCE patch values at a time, and the scores,
    maps and thumbnails are those of all images at once."""
    test = with_defects(textures(7, seed=4))[0]
    whole = fitted.anomaly_details(test)
    cuts, cut = [], PatchGrid.cut
    monkeypatch.setattr(PatchGrid, "cut", lambda grid, images: (
        cuts.append(len(images)), cut(grid, images))[1])
    per_image = fitted.scorer_.grid.count * 2 * fitted.scorer_.grid.size ** 2  # with edges
    monkeypatch.setattr(patch_detector, "PATCH_VALUES_AT_ONCE", 3 * per_image)
    taken = fitted.anomaly_details(test)
    assert cuts == [3, 3, 1]
    for key in ("anomaly_score", "errors"):
        assert np.allclose(taken[key], whole[key], rtol=1e-5, atol=1e-6)


def test_the_detector_pools_the_whole_image_thumbnail_with_the_patches(fitted, tmp_path):
    assert fitted.whole_image == "auto" and fitted.whole_bank_ is not None  # the default
    grid, scorer = fitted.scorer_.grid, fitted.scorer_
    assert scorer.whole_side == 7 and fitted.whole_bank_.shape == (40, 7 * 7)
    assert fitted.bank_.shape[1] == grid.count  # codes of the patches only
    assert len(scorer.position_scale) == len(scorer.position_level) == grid.count + 1
    test = textures(6, seed=5)
    matrix = fitted._prepare(test, False)[0]
    codes, thumbs = fitted._image_views(matrix)
    distances, entries = fitted._search(codes, thumbs=thumbs)
    assert distances.shape == (6, grid.count + 1) and entries.shape == (6, grid.count)
    own = whole_thumbnails(standardise(torch.from_numpy(matrix))[0])
    assert torch.allclose(thumbs, own)
    expected = whole_nearest(own, fitted.whole_bank_) / scorer.position_scale[-1]
    assert torch.allclose(distances[:, -1], expected, rtol=1e-4)  # in the patches' units
    assert np.allclose(-fitted.score_samples(test), fitted._image_scores(distances, entries))
    worst = distances[:, :grid.count].topk(8, dim=1).values.mean(dim=1)  # top_k 8
    texture = fitted.levels_[entries].median(dim=1).values ** scorer.texture_power
    weighted = (0.75 * worst + 0.25 * distances[:, -1]) / texture  # whole_weight 0.25
    assert scorer.top_k == 8 and scorer.whole_weight == 0.25
    assert np.allclose(-fitted.score_samples(test), weighted.numpy(), rtol=1e-5)
    loud = distances.clone()
    loud[:, -1] = 1e3
    assert np.all(fitted._image_scores(loud, entries) > -fitted.score_samples(test))  # pooled
    details = fitted.anomaly_details(test)
    assert details["errors"].shape == (6, 1, 32, 32)  # the maps hold the patches only
    fitted.save(tmp_path / "b")
    again = load_detector(tmp_path / "b")
    assert torch.equal(again.whole_bank_, fitted.whole_bank_)
    assert np.array_equal(again.score_samples(test), fitted.score_samples(test))
    info = CliRunner().invoke(cli, ["info", str(tmp_path / "b")]).output
    assert "the whole image's thumbnail (7 px on its shorter side) weighs 25% beside the " \
           "worst patches" in info
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    del manifest["detector"]["scorer"]["whole_weight"]  # a bundle of before the weight
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    older = load_detector(tmp_path / "b")
    one_of_nine = (worst * 8 + distances[:, -1]) / 9 / texture  # the thumbnail one of k + 1
    assert np.allclose(-older.score_samples(test), one_of_nine.numpy(), rtol=1e-5)
    manifest["detector"]["scorer"]["grid"]["whole"] = True  # the earlier, encoded form
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"earlier form of whole_image.*fit it again"):
        load_detector(tmp_path / "b")


def test_the_whole_image_needs_scaled_distances():
    few = PatchDetector(whole_image=True, **FAST)
    with pytest.warns(UserWarning, match="too few"):
        few.fit(textures(6))
    assert few.scorer_.whole_side is None and few.whole_bank_ is None
    unscaled = PatchDetector(whole_image=True, scale_positions=False, **FAST)
    with pytest.warns(UserWarning, match="whole_image is left out"):
        unscaled.fit(textures(20))
    assert unscaled.whole_bank_ is None
    assert unscaled.scorer_.columns == unscaled.scorer_.grid.count
    with warnings.catch_warnings():  # the default leaves it out without a word
        warnings.simplefilter("error")
        quiet = PatchDetector(scale_positions=False, **FAST).fit(textures(20))
    assert quiet.whole_bank_ is None
    with pytest.raises(SettingError, match="whole_image must be true, false or auto"):
        PatchDetector(whole_image="maybe", **FAST).fit(textures(20))


def test_training_images_are_scored_without_their_own_patches(fitted):
    quantiles = np.asarray(fitted.scorer_.train_quantiles)
    assert quantiles[500] > 0  # leave-one-image-out: never a zero distance to itself
    # Calibration on surfaces whose every image differs, as real ones do (the striped textures
    # vary by a phase and an exposure only, too few ways for a nearest-neighbour threshold to
    # carry over: from 0.03 to 0.16 with the noise level, with or without the edge channel)
    larger = PatchDetector(**FAST).fit(random_surfaces(150))
    unseen = -larger.score_samples(random_surfaces(400, seed=9))  # more normal images
    assert np.mean(unseen > larger.threshold_) == pytest.approx(0.1, abs=0.05)  # contamination
    # the default code of 16 and the patch's reconstruction error
    assert fitted.bank_.shape == (40, fitted.scorer_.grid.count, 17)
    # each patch: its 7x7 intensities and the 7x7 of the edge channel
    assert list(fitted.model_.input_shape) == [2, 7, 7]


def busy_left(n: int, seed: int) -> np.ndarray:
    """Plain grey images whose left half is always noisy (as an edge or a texture would be)."""
    rng = np.random.default_rng(seed)
    out = 0.5 + rng.normal(0, 0.02, (n, 1, 32, 32))
    out[:, :, :, :16] += rng.normal(0, 0.15, (n, 1, 32, 16))
    return np.clip(out, 0, 1).astype(np.float32)


def test_distances_are_scaled_by_how_much_normal_patches_vary_at_each_place():
    """A faint spot on the quiet half is found although the busy half's normal patches lie
    farther from their neighbours than the spot does; unscaled, the busy half drowns it."""
    rng = np.random.default_rng(3)
    defective = busy_left(30, 2)
    for image in defective:
        r, c = rng.integers(4, 24), rng.integers(18, 26)
        image[:, r:r + 4, c:c + 4] += 0.15
    test, truth = np.concatenate([busy_left(30, 1), defective]), np.r_[np.zeros(30), np.ones(30)]
    # intensities alone, to see the scaling by itself (the edge channel finds this spot
    # unscaled too: ROC-AUC 0.98)
    scaled = PatchDetector(edges=False, **FAST).fit(busy_left(60, 0))
    raw = PatchDetector(edges=False, scale_positions=False, **FAST).fit(busy_left(60, 0))
    assert raw.scorer_.position_scale is None
    assert roc_auc_score(truth, -scaled.score_samples(test)) > 0.95
    assert roc_auc_score(truth, -raw.score_samples(test)) < 0.7
    grid = scaled.scorer_.grid  # the placed patches, row by row (the whole image's last)
    scale = np.asarray(scaled.scorer_.position_scale[:grid.count]).reshape(len(grid.rows), -1)
    assert scale[:, 0].mean() > 3 * scale[:, -1].mean()  # the busy columns vary more


def test_maps_start_from_the_normal_level_of_each_place():
    """A normal image's map is near 0 everywhere, the busy half included (each place's
    median normal distance is taken off), where the distances themselves sit far above 0;
    a faint spot on the quiet half is the brightest place of its map."""
    detector = PatchDetector(**{**FAST, "epochs": 10}).fit(busy_left(60, 0))
    level = np.asarray(detector.scorer_.position_level)
    assert level.shape == (detector.scorer_.columns,) and (level > 0).all()
    normal = detector.anomaly_details(busy_left(30, 1))["errors"][:, 0]
    assert (normal >= 0).all() and normal.mean() < 0.1 * level.mean()
    assert normal[..., :16].mean() < 2 * normal[..., 16:].mean() + 0.1  # busy half stays dark
    spotted = busy_left(1, 2)
    spotted[:, :, 20:24, 22:26] += 0.3
    spot_map = detector.anomaly_details(spotted)["errors"][0, 0]
    row, col = np.unravel_index(spot_map.argmax(), spot_map.shape)
    assert abs(row - 22) < 8 and abs(col - 24) < 8
    detector.scorer_.position_level = None  # an older bundle: the distances themselves
    raw = detector.anomaly_details(busy_left(30, 1))["errors"][:, 0]
    assert raw.mean() > 0.5 * level.mean()


def test_position_spread_leaves_each_training_image_out_of_its_own_scale():
    distances = torch.tensor([[1.0, 0.0], [2.0, 0.0], [4.0, 0.0], [9.0, 0.0]])
    assert position_spread(distances) is None  # fewer than 10 images: too noisy to divide by
    spread, left_out = position_spread(distances, min_images=3)
    assert spread[0] == pytest.approx(float(distances[:, 0].std()))
    for i in range(4):
        others = torch.cat([distances[:i, 0], distances[i + 1:, 0]])
        assert left_out[i, 0] == pytest.approx(float(others.std()), rel=1e-5)
    assert spread[1] == pytest.approx(0.01 * float(spread[0]) / 2)  # 1% of the mean spread
    assert position_spread(distances[:2], min_images=2) is None  # no left-out spread of 2
    with pytest.warns(UserWarning, match="5 training images are too few .* left unscaled"):
        few = PatchDetector(**FAST).fit(textures(5))
    assert few.scorer_.position_scale is None  # the setting says why it did nothing


def test_a_saved_patch_detector_scores_the_same_when_loaded(fitted, tmp_path):
    test = with_defects(textures(10, seed=3))[0]
    fitted.save(tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["detector"]["kind"] == "patches"
    assert manifest["extra_tensors"] == {"patch_bank": [40, fitted.scorer_.grid.count, 17],
                                         "patch_levels": [40], "whole_thumbnails": [40, 49]}
    for loaded in (load_detector(tmp_path / "b"), load_for_scoring(str(tmp_path / "b")),
                   PatchDetector.load(tmp_path / "b")):
        assert isinstance(loaded, PatchDetector)
        assert np.array_equal(loaded.score_samples(test), fitted.score_samples(test))
    for loader in (AutoencoderDetector.load, SavedDetector.load):
        with pytest.raises(BundleError, match="holds a patch detector; load it with"):
            loader(tmp_path / "b")
    older = json.loads(json.dumps(manifest))  # bundles from before the level and the scaling
    assert older["detector"]["scorer"]["edge_sigma"] == 1.0  # 32 px: at least one pixel
    del older["detector"]["scorer"]["position_level"]  # from before the maps' normal level
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(older))
    assert load_detector(tmp_path / "b").scorer_.position_level is None
    assert np.array_equal(load_detector(tmp_path / "b").score_samples(test),
                          fitted.score_samples(test))  # the level moves the maps only
    del older["detector"]["scorer"]["position_scale"]
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(older))
    assert load_detector(tmp_path / "b").scorer_.position_scale is None
    manifest["detector"]["scorer"]["position_level"] = [1.0, 2.0]
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="position_level has 2 values"):
        load_detector(tmp_path / "b")
    manifest["detector"]["scorer"]["position_level"] = fitted.scorer_.position_level
    manifest["detector"]["scorer"]["position_scale"] = [1.0]
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="position_scale has 1 values"):
        load_detector(tmp_path / "b")
    manifest["detector"]["scorer"]["position_scale"] = fitted.scorer_.position_scale
    manifest["detector"]["scorer"]["edge_sigma"] = None  # the model expects the edge channel
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=re.escape("takes inputs of shape [2, 7, 7], but the "
                                                    "patches are 1 channel(s) of 7x7 px")):
        load_detector(tmp_path / "b")
    manifest["detector"]["scorer"]["edge_sigma"] = 1.0
    manifest["extra_tensors"]["patch_bank"] = [41, fitted.scorer_.grid.count, 16]
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="extra tensor 'patch_bank' is"):
        load_detector(tmp_path / "b")


def test_large_images_are_scaled_down_before_patching_and_maps_come_back_full_size(tmp_path):
    """Above max_short_side the patches are cut from a smaller copy (aspect kept), so cost does
    not grow with the square of a photograph's side; maps keep the input size."""
    big = torch.nn.functional.interpolate(torch.from_numpy(textures(30, size=32)),
                                          size=(96, 64), mode="bilinear").numpy()
    detector = PatchDetector(max_short_side=32, **FAST).fit(big)
    assert detector.scorer_.work_shape == (48, 32)
    assert detector.scorer_.reach == 1  # aligned: a tenth of the working side, at least 7 px
    assert detector.scorer_.grid.size == 7 and detector.model_.input_shape == (2, 7, 7)
    assert detector.scorer_.edge_sigma == 1.0  # smoothed at the working size, not 72x48
    defective, masks = with_defects(big[:10], seed=4)
    test = np.concatenate([big[:10] + 0.0, defective])
    details = detector.anomaly_details(test)
    assert details["errors"].shape == (20, 1, 96, 64)
    hottest = np.stack(np.divmod(details["errors"][10:, 0].reshape(10, -1).argmax(axis=1), 64),
                       axis=1)
    centres = np.array([np.argwhere(mask[0]).mean(axis=0) for mask in masks])
    assert (np.abs(hottest - centres).max(axis=1) < 2 * 8).mean() >= 0.8  # within 16 px
    assert roc_auc_score(np.r_[np.zeros(10), np.ones(10)], details["anomaly_score"]) > 0.9
    assert detector.image_reconstructions(test[:2]).shape == (2, 1, 96, 64)
    detector.save(tmp_path / "b")
    loaded = load_detector(tmp_path / "b")
    assert loaded.scorer_.work_shape == (48, 32)
    assert np.array_equal(loaded.score_samples(test), detector.score_samples(test))
    native = PatchDetector(max_short_side=None, **FAST).fit(big[:6])
    assert native.scorer_.work_shape is None and native.scorer_.grid.size == 7
    assert PatchDetector(**FAST).fit(big[:6]).scorer_.work_shape is None  # 64 <= 256


def test_turns_learn_every_orientation_and_still_score_training_images_as_unseen(tmp_path):
    """turns=True: the bank holds the 8 turned and mirrored copies (4 for non-square images);
    a training image's copies are not its neighbours; turned normal images look normal."""
    train = textures(30)
    turned = PatchDetector(turns=True, **FAST).fit(train)
    assert turned.bank_.shape[0] == 8 * 30 and turned.scorer_.copies == 8
    assert turned.levels_ is None  # turned, below TEXTURE_FROM_IMAGES: no texture division
    assert np.asarray(turned.scorer_.train_quantiles)[500] > 0  # own copies left out
    plain = PatchDetector(**FAST).fit(train)
    sideways = np.ascontiguousarray(np.rot90(textures(20, seed=7), 1, axes=(2, 3)))
    assert (-turned.score_samples(sideways)).mean() < (-plain.score_samples(sideways)).mean()
    wide = np.concatenate([train, train], axis=3)  # 32 x 64
    assert PatchDetector(turns=True, **FAST).fit(wide[:10]).bank_.shape[0] == 4 * 10
    turned.save(tmp_path / "b")
    assert load_detector(tmp_path / "b").scorer_.copies == 8
    result = CliRunner().invoke(cli, ["info", str(tmp_path / "b")])
    assert "each training image learnt in 8 turned and mirrored copies" in result.output


def parts(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Photographs of one part, always the same way up: stripes with a dark bar across the
    top third and a bright corner, exposure and noise varying."""
    images = textures(n, size, seed)
    images[:, :, size // 4:size // 3, :] *= 0.3
    images[:, :, -size // 4:, -size // 4:] = np.clip(images[:, :, -size // 4:, -size // 4:]
                                                     + 0.3, 0, 1)
    return images


def turned_at_random(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each image turned by a random number of quarter turns and maybe mirrored."""
    rng = np.random.default_rng(seed)
    out = [np.rot90(image, int(rng.integers(4)), axes=(1, 2)) for image in images]
    return np.ascontiguousarray([o[:, :, ::-1] if rng.random() < 0.5 else o for o in out])


def test_turn_cost_tells_aligned_parts_from_parts_lying_any_way_up(tmp_path, monkeypatch):
    """Turning an aligned part's photograph moves it far from the others; turning one from a
    set that already lies any way up does not. ``turns="auto"`` (the default) learns turned
    copies only then, and says why in the bundle; its autoencoder learns from the originals
    alone (they show every orientation), while ``turns=True`` trains on every copy."""
    trained_rows = []
    fit_model = PatchDetector._fit_model

    def counting(self, matrix, *args, **kwargs):
        trained_rows.append(len(matrix))
        return fit_model(self, matrix, *args, **kwargs)

    monkeypatch.setattr(PatchDetector, "_fit_model", counting)
    aligned, loose = parts(40), turned_at_random(parts(40))
    aligned_cost = turn_cost(torch.from_numpy(aligned))
    loose_cost = turn_cost(torch.from_numpy(loose))
    assert aligned_cost > 1.5 * ORIENTATION_FREE_BELOW and loose_cost < ORIENTATION_FREE_BELOW
    assert turn_cost(torch.from_numpy(aligned[:1])) == float("inf")  # nothing to compare with
    assert turn_cost(torch.from_numpy(aligned[:1]).repeat(5, 1, 1, 1)) == float("inf")
    fixed = PatchDetector(**FAST).fit(aligned)
    assert fixed.scorer_.copies == 1 and fixed.scorer_.turn_cost == pytest.approx(aligned_cost)
    # (patch codes alone: the whole image's thumbnail is not learnt, it scores originals as new)
    cut_sizes, cut = [], PatchGrid.cut
    monkeypatch.setattr(PatchGrid, "cut", lambda grid, images: (
        cut_sizes.append(len(images)), cut(grid, images))[1])
    learnt = PatchDetector(whole_image=False, **FAST).fit(loose)
    monkeypatch.setattr(PatchGrid, "cut", cut)
    assert learnt.scorer_.copies == 8 and learnt.bank_.shape[0] == 8 * 40
    assert max(cut_sizes) == 40  # never every copy's patches at once
    assert trained_rows[-1] == 40 * learnt.scorer_.grid.count  # the originals' patches
    # The copies' codes are cut and encoded a copy at a time (all copies' patches at once can
    # take gigabytes); the bank is the one that encoding every copy at once gives.
    every_copy = turned_copies(learnt.scorer_.patch_input(learnt._prepare(loose, False)[0]))
    assert torch.allclose(learnt.bank_, learnt._patch_codes(learnt.scorer_.grid.cut(every_copy)),
                          atol=1e-5)
    # The threshold comes from the turned copies, which the autoencoder never saw, as it never
    # sees a new image (7 each: every turn but the original), not from the originals it learnt.
    copies = learnt._image_scores(*learnt._unseen_copy_search(40))
    assert len(copies) == 7 * 40
    assert learnt.threshold_ == pytest.approx(contamination_threshold(copies, 0.1))
    monkeypatch.setattr(patch_detector, "UNSEEN_SCORES", 80)  # many images: fewer copies each
    assert len(learnt._image_scores(*learnt._unseen_copy_search(40))) == 2 * 40
    assert PatchDetector(turns=True, **FAST).fit(loose).scorer_.copies == 8
    assert trained_rows[-1] == 8 * 40 * learnt.scorer_.grid.count  # every copy's patches
    assert PatchDetector(turns=False, **FAST).fit(loose).scorer_.turn_cost is None
    learnt.save(tmp_path / "b")
    assert load_detector(tmp_path / "b").scorer_.turn_cost == pytest.approx(loose_cost)
    info = CliRunner().invoke(cli, ["info", str(tmp_path / "b")]).output
    assert (f"each training image learnt in 8 turned and mirrored copies (turn cost "
            f"{loose_cost:.2f}: the parts lie in any orientation)") in info


def test_fit_refuses_a_bad_patch_setting_before_reading_the_folder(tmp_path):
    """max_short_side=0 chose the size the folder is read at (0x0) before the detector checked
    it, and the whole-image detector then refused the setting as unknown to it."""
    for i, image in enumerate(textures(6)):
        Image.fromarray((image[0] * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
    for setting, message in (("max_short_side=0", "max_short_side must be at least 8"),
                             ("top_k=0", "top_k must be at least 1")):
        result = CliRunner().invoke(cli, ["fit", str(tmp_path), "-o", str(tmp_path / "m"),
                                          "--set", setting])
        assert result.exit_code == 2 and message in result.stderr
        assert not (tmp_path / "m").exists()


def test_bad_settings_fail_before_training():
    images = textures(6)
    with pytest.raises(SettingError, match="variant 'cvae' cannot learn patches"):
        PatchDetector(variant="cvae", **FAST).fit(images)
    with pytest.raises(SettingError, match="top_k must be at least 1"):
        PatchDetector(top_k=0, **FAST).fit(images)
    for weight in (0, 1, True, "half"):
        with pytest.raises(SettingError, match="whole_weight must be above 0 and below 1"):
            PatchDetector(whole_weight=weight, **FAST).fit(images)
    with pytest.raises(SettingError, match="patch_size must be between 1"):
        PatchDetector(patch_size=40, **FAST).fit(images)
    with pytest.raises(SettingError, match="max_short_side must be at least 8"):
        PatchDetector(max_short_side=2, **FAST).fit(images)
    with pytest.raises(SettingError, match="turns must be true, false or auto, got 'maybe'"):
        PatchDetector(turns="maybe", **FAST).fit(images)


def test_the_size_rule_picks_patches_from_12_pixels_and_whole_for_the_smallest_images():
    assert PATCH_DETECTOR_MIN_SIDE == 12  # docs/images.md and bench/detector_cut.py say so
    assert image_detector_for(PATCH_DETECTOR_MIN_SIDE, 300) == "patches"
    assert image_detector_for(28, 28) == "patches"
    assert image_detector_for(8, 8) == image_detector_for(11, 40) == "whole"
    assert image_detector_for(8, 8, "patches") == "patches"
    assert image_detector_for(28, 28, "whole") == "whole"
    with pytest.raises(ValueError, match="image detector must be one of"):
        image_detector_for(28, 28, "both")


def _folder_of(root, images: np.ndarray, name: str = "{}"):
    """(N, 1, H, W) images in [0, 1] as PNG files ``name`` (formatted with the index)."""
    root.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray((image[0] * 255).astype(np.uint8)).save(
            root / f"{name.format(i) if '{' in name else name}.png")
    return root


def _folder(root, size: int, n: int = 24):
    return _folder_of(root, textures(n, size=size))


def test_small_images_get_the_patch_detector_which_finds_a_local_mark(tmp_path):
    """From 12 px `aetool fit` trains the patch detector: among 16-pixel images of one square,
    those with a small checkered mark (a texture no normal image has) score highest, and their
    maps come out at the images' size."""
    rng = np.random.default_rng(0)
    marked = blob_images(6, size=16, seed=1)
    for image in marked:
        row, col = rng.integers(0, 12, size=2)
        image[0, row:row + 4, col:col + 4] = np.indices((4, 4)).sum(0) % 2
    data = tmp_path / "data"
    _folder_of(data / "normal", blob_images(60, size=16), "n{}")
    _folder_of(data / "marked", marked, "m{}")
    fast = ["--set", "epochs=4", "--set", "batch_size=64", "-q"]
    fitted = CliRunner().invoke(cli, ["fit", str(data / "normal"), "-o", str(tmp_path / "b"),
                                      *fast])
    assert fitted.exit_code == 0, fitted.output
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["detector"]["kind"] == "patches"
    scored, maps = tmp_path / "s.csv", tmp_path / "maps"
    result = CliRunner().invoke(cli, ["score", str(tmp_path / "b"), str(data), "-o",
                                      str(scored), "--maps", str(maps)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(scored)
    assert roc_auc_score(frame["path"].str.startswith("marked"), frame["anomaly_score"]) > 0.95
    assert Image.open(maps / "marked" / "m0_map.png").size == (16, 16)


def test_scores_do_not_depend_on_how_many_images_are_scored_at_once():
    """Plain backgrounds give equal patch codes, whose distance must come out 0 in any batch:
    in float32 the search's rounding depended on the number of images scored together, and
    a folder scored in chunks (score --chunk-rows) scored up to 0.2 differently."""
    images = blob_images(40, size=16)
    detector = PatchDetector(**FAST).fit(images[:34])
    together = detector.score_samples(images)
    one_by_one = np.concatenate([detector.score_samples(images[i:i + 1]) for i in range(40)])
    in_sevens = np.concatenate([detector.score_samples(images[i:i + 7])
                                for i in range(0, 40, 7)])
    np.testing.assert_array_equal(together, one_by_one)
    np.testing.assert_array_equal(together, in_sevens)
    codes = torch.zeros(3, PatchGrid.for_image(16, 16).count, 8)
    codes[:, :, 0] = 1e3  # large equal codes: the product form's rounding would show most
    bank = codes[:1].repeat(5, 1, 1)
    assert local_nearest(codes, bank, PatchGrid.for_image(16, 16), 1).abs().max() == 0


def test_fit_on_a_folder_of_photographs_trains_the_patch_detector(tmp_path):
    folder = _folder(tmp_path / "cells", 64)
    fast = ["--set", "epochs=2", "--set", "batch_size=256", "-q"]
    result = CliRunner().invoke(cli, ["fit", str(folder), "-o", str(tmp_path / "b"), *fast])
    assert result.exit_code == 0, result.output
    said = result.output.splitlines()
    assert said[0].startswith("saved detector (patches, threshold ")
    assert said[1].startswith("  conv codes of 400 patches of 7x7 px of 1x64x64 images, "
                              "nearest training code within 1 grid step(s), mean of the 8 worst")
    for clause in ("patches carry an edge channel (smoothed at 1 px)",
                   "distances in units of each position's normal spread",
                   "scores divided by the texture of the training images matched, to the "
                   "power 0.25",
                   "the whole image's thumbnail (7 px on its shorter side) weighs 25% beside "
                   "the worst patches"):
        assert f"; {clause}" in said[1]
    info = CliRunner().invoke(cli, ["info", str(tmp_path / "b")])
    assert f"detector:    {said[1].strip()}" in info.output  # fit and info say it alike
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["detector"]["kind"] == "patches" and manifest["config"]["code_size"] == 16
    scored = tmp_path / "s.csv"
    result = CliRunner().invoke(cli, ["score", str(tmp_path / "b"), str(folder), "-o",
                                      str(scored), "--maps", str(tmp_path / "maps")])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(scored)) == 24 and len(list((tmp_path / "maps").glob("*.png"))) == 24
    whole = CliRunner().invoke(cli, ["fit", str(folder), "-o", str(tmp_path / "w"),
                                     "--image-detector", "whole", *fast])
    assert whole.exit_code == 0, whole.output
    assert json.loads((tmp_path / "w" / "manifest.json").read_text())["variant"] == "conv"
    wrong = CliRunner().invoke(cli, ["fit", str(folder), "-o", str(tmp_path / "c"),
                                     "--variant", "cvae", "--image-detector", "patches", *fast])
    assert wrong.exit_code == 2 and not (tmp_path / "c").exists()
    assert wrong.stderr.strip().splitlines()[-1].startswith(
        "error: variant 'cvae' cannot learn patches")
    table = tmp_path / "t.csv"
    pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) ** 2}).to_csv(table, index=False)
    on_table = CliRunner().invoke(cli, ["fit", str(table), "-o", str(tmp_path / "t"),
                                        "--image-detector", "patches", *fast])
    assert on_table.exit_code == 2
    assert "--image-detector is for images" in on_table.stderr


def test_fit_reads_large_photographs_at_the_size_the_patch_detector_works_at(tmp_path):
    """Without --image-size, a folder the patch detector learns is read at its working size
    (shorter side max_short_side, aspect kept), not in full, and says so; maps still come
    back at each file's own size. --image-size and the whole-image detector read as told."""
    folder = _folder_of(tmp_path / "photos", textures(12, size=48)[:, :, :, :40])  # 48x40
    fast = ["--set", "epochs=1", "--set", "batch_size=256"]
    side = ["--set", "max_short_side=16"]

    def fitted(*extra: str) -> tuple[list[int], str]:
        out = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
        result = CliRunner().invoke(cli, ["fit", str(folder), "-o", str(out), *fast, *extra])
        assert result.exit_code == 0, result.output
        manifest = json.loads((out / "manifest.json").read_text())
        return manifest["table"]["image_size"], result.stderr

    size, said = fitted(*side)
    assert size == [19, 16]  # 48x40 with the shorter side brought to 16
    assert "images of 48x40 are read at 19x16, the size the patch detector works at " \
           "(shorter side 16)" in said
    assert fitted(*side, "--image-size", "24,20")[0] == [24, 20]
    assert fitted("--image-detector", "whole")[0] == [48, 40]
    size, said = fitted("--set", "max_short_side=none")
    assert size == [48, 40] and "read at" not in said
    maps = tmp_path / "maps"
    result = CliRunner().invoke(cli, ["detect", str(folder), "-o", str(tmp_path / "s.csv"),
                                      "--maps", str(maps), *fast, *side])
    assert result.exit_code == 0, result.output
    assert {Image.open(path).size for path in maps.glob("*.png")} == {(40, 48)}


def test_the_threshold_search_of_a_turned_set_shows_progress(monkeypatch):
    """After training, a set learnt turned spends most of its fit scoring unseen turned copies
    for the threshold; on a terminal a bar counts them (none when quiet)."""
    import io
    import sys

    images = turned_at_random(parts(24, 64))
    for verbose, expected in ((True, True), (False, False)):
        terminal = io.StringIO()
        terminal.isatty = lambda: True
        monkeypatch.setattr(sys, "stderr", terminal)
        detector = PatchDetector(verbose=verbose, epochs=2, batch_size=256).fit(images)
        assert detector.scorer_.copies == 8
        shown = terminal.getvalue().replace("\r", "\n")
        # 24 images, 7 turned copies each: 168 scores towards UNSEEN_SCORES
        assert ("threshold from turned copies: 100%" in shown and "168/168" in shown) is expected


def _refuses_a_switch(folder, tmp_path, fast: list[str], name: str) -> None:
    """`fit --set NAME=maybe` (a true/false/auto setting) fails in one line, writing nothing."""
    bad = CliRunner().invoke(cli, ["fit", str(folder), "-o", str(tmp_path / "x"), *fast,
                                   "--set", f"{name}=maybe"])
    assert bad.exit_code == 2 and not (tmp_path / "x").exists()
    assert bad.stderr.strip().splitlines() == [
        f"error: {name} must be true, false or auto, got 'maybe'"]


def test_fit_says_when_it_learns_turned_copies_and_takes_turns_as_a_setting(tmp_path):
    folder = _folder_of(tmp_path / "loose", turned_at_random(parts(24, 64)))
    fast = ["--set", "epochs=2", "--set", "batch_size=256"]
    result = CliRunner().invoke(cli, ["fit", str(folder), "-o", str(tmp_path / "b"), *fast])
    assert result.exit_code == 0, result.output
    assert re.search(r"each training image learnt in 8 turned and mirrored copies \(turn cost "
                     r"[01]\.\d\d: the parts lie in any orientation\)", result.output)
    off = CliRunner().invoke(cli, ["fit", str(folder), "-o", str(tmp_path / "f"), *fast,
                                   "--set", "turns=false"])
    assert off.exit_code == 0 and "turned and mirrored" not in off.output
    _refuses_a_switch(folder, tmp_path, fast, "turns")


def test_evaluate_with_masks_reports_the_pixel_roc_auc(tmp_path):
    normal = textures(8, size=64, seed=5)
    defective, masks = with_defects(textures(8, size=64, seed=6))
    for split, images in (("normal", normal), ("crack", defective)):
        _folder_of(tmp_path / "test" / split, images)
    for i, mask in enumerate(masks):  # MVTec AD's names; one defect image has no mask
        if i:
            _folder_of(tmp_path / "gt" / "crack", mask[None].astype(np.float32), f"{i}_mask")
    train = _folder(tmp_path / "train", 64)
    fast = ["--set", "epochs=2", "--set", "batch_size=256", "-q"]
    assert CliRunner().invoke(cli, ["fit", str(train), "-o", str(tmp_path / "b"),
                                    *fast]).exit_code == 0
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "b"), str(tmp_path / "test"),
                                      "--normal-class", "normal", "--masks",
                                      str(tmp_path / "gt")])
    assert result.exit_code == 0, result.output
    assert "no mask for 1 anomalous image(s) (e.g. crack/0.png)" in result.stderr
    values = dict(item.split("=") for item in result.stdout.split())
    assert values["pixel_images"] == "15" and float(values["pixel_roc_auc"]) > 0.8
    missing = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "b"), str(tmp_path / "test"),
                                       "--normal-class", "normal", "--masks",
                                       str(tmp_path / "none")])
    assert missing.exit_code == 2 and "mask folder not found" in missing.stderr


def test_evaluate_streams_a_folder_with_the_same_metrics_maps_and_figure(fitted, tmp_path,
                                                                         monkeypatch):
    """``evaluate`` on a folder scores a chunk of images at a time (so a test folder of any
    size fits in memory), with the metrics, pixel metrics, heat maps and most anomalous
    images it gives when every image is scored at once."""
    import aetool.tasks.scores_table as scores_table
    from aetool.data.source import TableSpec
    from aetool.tasks.detect import evaluate_table, load_table
    from aetool.tasks.evaluation import RunningTop, evaluate_image_folder

    defective, masks = with_defects(textures(9, seed=6))
    _folder_of(tmp_path / "test" / "normal", textures(8, seed=5))
    _folder_of(tmp_path / "test" / "crack", defective)
    for i, mask in enumerate(masks):
        _folder_of(tmp_path / "gt" / "crack", mask[None].astype(np.float32), f"{i}_mask")
    spec = TableSpec(normal_class="normal")
    whole = load_table(str(tmp_path / "test"), spec, need_labels=True, for_scoring=True)
    at_once = evaluate_table(fitted, whole, tmp_path / "plots1", masks=tmp_path / "gt",
                             maps=tmp_path / "maps1")
    seen = []
    scored = scores_table.details_for
    monkeypatch.setattr(scores_table, "details_for",
                        lambda d, chunk, **k: seen.append(len(chunk.features)) or
                        scored(d, chunk, **k))
    streamed = evaluate_image_folder(fitted, str(tmp_path / "test"), spec, tmp_path / "plots2",
                                     tmp_path / "gt", tmp_path / "maps2", chunk_rows=4,
                                     progress=False)
    assert seen == [4, 4, 4, 4, 1]  # never more than a chunk of images decoded and scored
    assert streamed == pytest.approx(at_once, abs=1e-6)
    assert streamed["pixel_images"] == 17 and streamed["rows"] == 17
    assert sorted(p.name for p in (tmp_path / "plots2").iterdir()) == sorted(
        p.name for p in (tmp_path / "plots1").iterdir())
    assert len(list((tmp_path / "maps2").rglob("*_map.png"))) == 17
    # the running top keeps what sorting every score would: the same images, in order
    details = fitted.anomaly_details(whole.features, explain=True)
    top = RunningTop(5)
    for start in range(0, 17, 4):
        part = slice(start, start + 4)
        top.add(details["anomaly_score"][part], ids=whole.ids.iloc[part],
                errors=details["errors"][part])
    best = np.argsort(-details["anomaly_score"], kind="stable")[:5]
    assert list(top.kept["ids"]) == list(whole.ids.iloc[best])
    assert np.array_equal(top.kept["errors"], details["errors"][best])


def test_images_it_was_fitted_on_are_scored_without_themselves(tmp_path):
    """The bank holds the training images' own patch codes: scored as new images they find
    themselves and all score 0. ``training_details``, ``fit_predict`` and ``aetool detect``
    (fit and score one folder) score each without its own patches, so the defective images
    among them stand out and the share flagged follows the contamination."""
    defective, _ = with_defects(textures(4, seed=7))
    images = np.concatenate([textures(36, seed=5), defective])
    truth = np.r_[np.zeros(36), np.ones(4)]
    detector = PatchDetector(**FAST).fit(images)
    with pytest.warns(UserWarning, match="match a training image exactly .anomaly score 0."):
        assert detector.score_samples(images).max() == 0  # as new: each finds itself
    own = detector.training_details()
    assert own["anomaly_score"].min() > 0 and roc_auc_score(truth, own["anomaly_score"]) > 0.95
    assert own["errors"].shape == (40, 1, 32, 32)
    np.testing.assert_array_equal(detector.fit_predict(images), np.where(
        PatchDetector(**FAST).fit(images).training_details()["is_anomaly"], -1, 1))
    assert 0.05 <= (detector.fit_predict(images) == -1).mean() <= 0.15  # contamination 0.1
    detector.save(tmp_path / "b")
    with pytest.raises(NotFittedError, match="fitted in this session"):
        PatchDetector.load(tmp_path / "b").training_details()
    _folder_of(tmp_path / "all" / "normal", images[:36])
    _folder_of(tmp_path / "all" / "spot", images[36:])
    result = CliRunner().invoke(cli, ["detect", str(tmp_path / "all"), "-o",
                                      str(tmp_path / "s.csv"), "--set", "epochs=4", "-q",
                                      "--maps", str(tmp_path / "maps")])
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(tmp_path / "s.csv")
    spots = scores["path"].str.startswith("spot")
    assert roc_auc_score(spots, scores["anomaly_score"]) > 0.95
    assert 1 <= scores["is_anomaly"].sum() <= 8
    assert len(list((tmp_path / "maps").rglob("*_map.png"))) == 40


def test_evaluate_refuses_a_folder_of_one_class_before_scoring(fitted, tmp_path):
    fitted.save(tmp_path / "b")
    _folder_of(tmp_path / "test" / "normal", textures(3, seed=5))
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "b"), str(tmp_path / "test"),
                                      "--normal-class", "normal"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'test'}: every image is in the normal class 'normal'; evaluation "
        "needs images of another class (the anomalies) too")


def test_info_describes_a_patch_bundle_and_export_refuses_it(fitted, tmp_path):
    fitted.save(tmp_path / "b")
    info = CliRunner().invoke(cli, ["info", str(tmp_path / "b")])
    assert info.exit_code == 0
    assert (f"detector:    {fitted.variant_name_} codes of 100 patches of 7x7 px of 1x32x32 "
            "images, nearest training code within 1 grid step(s), mean of the 8 worst; no "
            "turned copies (turn cost "
            f"{fitted.scorer_.turn_cost:.2f}: the parts lie in one orientation); place cost "
            f"{fitted.scorer_.place_cost:.2f} (the images are aligned); patches carry "
            "an edge channel (smoothed at 1 px); each code carries its patch's reconstruction "
            "error, of its worst-drawn 10% of the image's channels (not the edge channel), "
            "floored at the training patches' 50% quantile at its place "
            f"(weight {fitted.scorer_.residual_weight:.3g}); "
            "distances in units of each "
            "position's normal spread; maps show how far a patch lies beyond its position's "
            "normal level") in info.output
    export = CliRunner().invoke(cli, ["export", str(tmp_path / "b"), "-o",
                                      str(tmp_path / "m.onnx")])
    assert export.exit_code == 2 and not (tmp_path / "m.onnx").exists()
    assert "holds a patch detector, which does not export to ONNX" in export.stderr
    with pytest.raises(DataError, match="PatchDetector needs images"):
        fitted.score_samples(np.zeros((3, 5)))


def test_the_patch_loader_refuses_a_whole_image_bundle_naming_the_right_loader(tmp_path):
    AutoencoderDetector(epochs=1, device="cpu").fit(textures(8)).save(tmp_path / "w")
    with pytest.raises(BundleError, match=re.escape(
            "not a patch detector bundle; load it with aetool.load_detector or "
            "aetool.AutoencoderDetector.load")):
        PatchDetector.load(tmp_path / "w")
    assert isinstance(load_for_scoring(str(tmp_path / "w")), SavedDetector)


def cells(n: int, seed: int, grain: float = 0.02, size: int = 32) -> np.ndarray:
    """Surfaces that repeat across the image, as a solar cell's fingers do (stripes of 4 px, a
    random phase and exposure), with fine grain, or coarse with ``grain`` 0.12 (ELPV's
    polycrystalline cells): a grainy image's patches lie far even from its own others."""
    rng = np.random.default_rng(seed)
    x = np.arange(size)
    out = np.empty((n, 1, size, size), np.float32)
    for i in range(n):
        wave = np.sin(2 * np.pi * x / 4 + rng.uniform(0, 2 * np.pi))[None, :]
        out[i, 0] = rng.uniform(0.4, 0.6) + 0.15 * wave + rng.normal(0, grain, (size, size))
    return np.clip(out, 0, 1).astype(np.float32)


def test_grainy_normal_images_do_not_outscore_faint_defects_on_plain_ones():
    """Two kinds of normal surface, plain and grainy (ELPV's mono- and polycrystalline
    cells): by distance alone a grainy normal image looks worse than a plain one with a faint
    spot; divided by the texture of the training images it matched, it does not."""
    train = np.concatenate([cells(20, seed=0), cells(20, seed=1, grain=0.12)])
    plain = cells(20, seed=6)
    spots = plain.copy()
    rng = np.random.default_rng(1)
    for image in spots:
        r, c = rng.integers(2, 25, size=2)
        image[:, r:r + 4, c:c + 4] = np.clip(image[:, r:r + 4, c:c + 4] + 0.15, 0, 1)
    test = np.concatenate([cells(20, seed=5, grain=0.12), spots])
    truth = np.r_[np.zeros(20), np.ones(20)]
    # these stripes repeat across the image (place cost about 1: not aligned); the test pins
    # the place-bound search and the patch size its figures were measured with
    bound = {"reach": 1, "scale_positions": True, "patch_size": 8}
    off = PatchDetector(texture_power=0, **bound, **FAST).fit(train)
    assert off.scorer_.texture_power is None and off.levels_ is None
    assert roc_auc_score(truth, -off.score_samples(test)) < 0.65
    on = PatchDetector(texture_power=0.5, **bound, **FAST).fit(train)
    assert roc_auc_score(truth, -on.score_samples(test)) > 0.9
    # the grainy training images have the higher texture levels
    assert on.levels_[20:].median() > 2 * on.levels_[:20].median()


def test_auto_texture_power_follows_the_documented_rule():
    few, many = TEXTURE_FROM_IMAGES - 1, TEXTURE_FROM_IMAGES
    assert [auto_texture_power(n, turned=False) for n in (few, many)] == [0.25, 0.5]
    assert [auto_texture_power(n, turned=True) for n in (few, many)] == [0.0, 0.25]


def test_own_spread_is_the_median_distance_to_the_nearest_other_patch_of_the_same_image():
    codes = torch.randn(7, 5, 3)
    expected = [np.median([min(float(torch.dist(image[i], image[j])) for j in range(5) if j != i)
                           for i in range(5)]) for image in codes]
    # a small budget splits the images into several steps: same answer
    for budget in (1 << 24, 30):
        assert own_spread(codes, budget=budget).numpy() == pytest.approx(expected, rel=1e-5)
    assert torch.isinf(own_spread(torch.randn(2, 1, 3))).all()  # one patch: no neighbour


def test_texture_division_is_the_documented_formula_and_survives_saving(tmp_path, monkeypatch):
    monkeypatch.setattr(patch_scorer, "TEXTURE_FROM_IMAGES", 40)
    fitted = PatchDetector(whole_image=False, **FAST).fit(textures(40))  # the patches alone
    assert fitted.scorer_.texture_power == 0.5 and fitted.levels_.shape == (40,)
    assert torch.equal(fitted.levels_, own_spread(fitted.bank_[:40]))  # no level near 0 here
    test = with_defects(textures(10, seed=3))[0]
    distances, entries = fitted._search(fitted._image_codes(fitted._prepare(test, False)[0]))
    texture = fitted.levels_[entries % 40].median(dim=1).values
    expected = top_mean(distances, 8) / texture ** 0.5  # top_k 8
    assert -fitted.score_samples(test) == pytest.approx(expected.double().numpy(), rel=1e-5)
    # the training scores are divided the same way, so the threshold keeps its meaning
    own, matched = fitted._training_search(40)
    train = top_mean(own, 8) / fitted.levels_[matched % 40].median(dim=1).values ** 0.5
    assert fitted.threshold_ == pytest.approx(contamination_threshold(train.numpy(), 0.1))
    fitted.save(tmp_path / "b")
    for loaded in (load_detector(tmp_path / "b"), load_for_scoring(str(tmp_path / "b"))):
        assert torch.equal(loaded.levels_, fitted.levels_)
        assert loaded.score_samples(test) == pytest.approx(fitted.score_samples(test))
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["extra_tensors"]["patch_levels"] == [40]
    info = CliRunner().invoke(cli, ["info", str(tmp_path / "b")]).output
    assert "scores divided by the texture of the training images matched, to the power 0.5" in info
    with pytest.raises(SettingError, match="texture_power must be auto, 0 \\(off\\) or more"):
        PatchDetector(texture_power=-1, **FAST).fit(textures(5))


def rolled(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each image moved round by a random offset: the same parts at any position."""
    rng = np.random.default_rng(seed)
    h, w = images.shape[2:]
    return np.stack([np.roll(x, (rng.integers(h), rng.integers(w)), (1, 2)) for x in images])


def test_place_cost_tells_aligned_images_from_images_with_parts_anywhere():
    """Each part of an aligned image matches the others far worse half the image away than
    at its own place; crops of a surface, or parts moved anywhere, match as well either way."""
    aligned = parts(40)
    assert place_cost(torch.from_numpy(aligned)) > 1.5 * PLACE_FREE_BELOW
    assert place_cost(torch.from_numpy(busy_left(40, 0))) > PLACE_FREE_BELOW  # plain places count
    for loose in (rolled(aligned), random_surfaces(40)):
        assert place_cost(torch.from_numpy(loose)) == pytest.approx(1.0, abs=0.1)
    assert place_cost(torch.from_numpy(aligned[:1])) == float("inf")  # nothing to compare with


def test_unaligned_images_are_searched_anywhere_and_unscaled_by_default(tmp_path):
    """reach and scale_positions "auto" (the defaults): within a grid step and scaled by each
    place's normal spread for aligned images; anywhere and unscaled (the whole image's
    thumbnail left out, it needs the scaling) when the place cost says the images are not
    aligned. The cost is kept in the bundle; a value given is used as given."""
    aligned = PatchDetector(**FAST).fit(parts(30))
    assert aligned.scorer_.reach == 1 and aligned.scorer_.position_scale is not None
    assert aligned.scorer_.place_cost > PLACE_FREE_BELOW
    assert aligned.scorer_.grid.size == 7  # placed: a tenth of 32 px, at least 7
    loose = PatchDetector(**FAST).fit(random_surfaces(30))
    assert loose.scorer_.place_cost < PLACE_FREE_BELOW
    assert loose.scorer_.reach is None and loose.scorer_.position_scale is None
    assert loose.scorer_.grid.size == 8  # searched anywhere: a quarter of 32 px
    assert loose.scorer_.whole_side is None and loose.whole_bank_ is None
    # anywhere: a test patch finds its nearest training code at any place
    codes = loose._image_codes(loose._prepare(random_surfaces(4, seed=3), reset=False)[0])
    nearest = torch.cdist(codes.flatten(0, 1), loose.bank_.flatten(0, 1)).min(1).values
    assert np.allclose(loose._distances(codes).flatten(), nearest, atol=1e-4)
    loose.save(tmp_path / "b")
    again = PatchDetector.load(tmp_path / "b")
    assert again.scorer_.reach is None
    assert again.scorer_.place_cost == pytest.approx(loose.scorer_.place_cost)
    pinned = PatchDetector(reach=1, scale_positions=True, **FAST).fit(random_surfaces(30))
    assert pinned.scorer_.reach == 1 and pinned.scorer_.position_scale is not None
    assert pinned.scorer_.place_cost is None  # not measured: nothing was left to decide
    half = PatchDetector(reach=2, **FAST).fit(random_surfaces(30))  # scaling still "auto"
    assert half.scorer_.reach == 2 and half.scorer_.position_scale is None
    with pytest.raises(SettingError, match="reach must be auto, 0 or more grid steps"):
        PatchDetector(reach="far", **FAST).fit(random_surfaces(12))
    with pytest.raises(SettingError, match="scale_positions must be true, false or auto"):
        PatchDetector(scale_positions="maybe", **FAST).fit(random_surfaces(12))


def test_fit_says_when_it_searches_anywhere_and_info_shows_the_place_cost(tmp_path):
    folder = _folder_of(tmp_path / "loose", random_surfaces(24, 64))
    fast = ["--set", "epochs=2", "--set", "batch_size=256"]
    result = CliRunner().invoke(cli, ["fit", str(folder), "-o", str(tmp_path / "b"), *fast])
    assert result.exit_code == 0, result.output
    info = CliRunner().invoke(cli, ["info", str(tmp_path / "b")])
    for said in (result.output, info.output):  # fit says it as info does
        assert "nearest training code anywhere" in said
        assert re.search(r"place cost [01]\.\d\d \(the images are not aligned, each patch "
                         r"searched anywhere\)", said)
        assert re.search(r"each code carries its patch's reconstruction error, of its "
                         r"worst-drawn 10% of the image.s channels \(not the edge channel\), "
                         r"floored at the training patches. 50% quantile overall "
                         r"\(weight \d", said)
    pinned = CliRunner().invoke(cli, ["fit", str(folder), "-o", str(tmp_path / "p"), *fast,
                                      "--set", "reach=1", "--set", "scale_positions=true",
                                      "--set", "residual=false"])
    assert pinned.exit_code == 0 and "anywhere" not in pinned.output
    assert "reconstruction error" not in pinned.output
    for switch in ("scale_positions", "residual"):
        _refuses_a_switch(folder, tmp_path, fast, switch)


def test_a_small_colour_stain_on_aligned_parts_is_found_through_the_reconstruction_error():
    """Why the reconstruction error is on for aligned images too: a 3x3 green stain on colour
    parts moves the 16 code numbers little, but the decoder cannot draw it (the synthetic
    striped surface of bench/synthetic_photos.py: 0.57 -> 0.75 ROC-AUC)."""
    from sklearn.metrics import roc_auc_score

    def colour(images: np.ndarray) -> np.ndarray:
        return np.concatenate([images, images * 0.8, images * 0.55], axis=1)

    rng = np.random.default_rng(1)
    stained = colour(parts(30, seed=20))
    for image in stained:
        r, c = rng.integers(2, 26, size=2)
        image[:, r:r + 3, c:c + 3] = (image[:, r:r + 3, c:c + 3] * 0.5
                                      + np.array([0.08, 0.35, 0.15])[:, None, None])
    test = np.concatenate([colour(parts(30, seed=10)), stained])
    truth = np.r_[np.zeros(30), np.ones(30)]
    found = {}
    for residual in (True, False):
        detector = PatchDetector(residual=residual, **FAST).fit(colour(parts(60)))
        assert detector.scorer_.reach == 1  # aligned: each patch near its place
        found[residual] = roc_auc_score(truth, -detector.score_samples(test))
    assert found[True] > 0.99 and found[True] - found[False] > 0.05


def test_residual_weight_gives_the_error_a_code_coordinates_spread():
    codes = torch.tensor([[0.0, 0.0], [2.0, 4.0], [4.0, 8.0]])  # coordinate spreads 2 and 4
    errors = torch.tensor([1.0, 1.5, 2.0])  # spread 0.5
    assert residual_weight(codes, errors) == pytest.approx(3.0 / 0.5)
    assert residual_weight(codes, torch.full((3,), 0.7)) == 0.0  # a constant adds nothing
    assert residual_weight(codes[:1], errors[:1]) == 0.0  # one patch: no spread to match


def test_codes_carry_their_patch_reconstruction_error(tmp_path):
    """residual True (the default): each patch's code carries one more coordinate, the patch's
    reconstruction error (here its root-mean-square error, residual_share=1), weighted to
    vary over the training patches as a code coordinate does on average, searched anywhere
    (images that are not aligned) or near its place (aligned ones); "auto", the earlier
    default, means the same; False leaves it out."""
    surfaces = random_surfaces(30)
    loose = PatchDetector(residual_share=1.0, residual_floor=None, **FAST).fit(surfaces)
    weight = loose.scorer_.residual_weight
    assert loose.scorer_.reach is None and weight > 0
    count = loose.scorer_.grid.count
    bank = loose.bank_.flatten(0, 1)  # copy by copy: the originals' patches first
    assert bank.shape[1] == 17
    assert float(bank[:, -1].std()) == pytest.approx(float(bank[:, :-1].std(0).mean()), rel=1e-3)
    rows = loose._model_rows(loose.scorer_.grid.cut(loose.scorer_.patch_input(
        loose._prepare(surfaces, reset=False)[0])))
    drawn = run_batches(loose.model_, rows, reconstructions)["recon"]
    own = loose.scorer_.residual_values()  # the image's channel, not the edge channel
    assert own == loose.scorer_.grid.size ** 2
    errors = np.sqrt(((drawn - rows) ** 2).reshape(len(rows), -1)[:, :own].mean(axis=1))
    assert np.allclose(bank[:30 * count, -1] / weight, errors, rtol=1e-4, atol=1e-6)
    test = with_defects(random_surfaces(6, seed=4))[0]
    loose.save(tmp_path / "b")
    again = PatchDetector.load(tmp_path / "b")
    assert again.scorer_.residual_weight == pytest.approx(weight)
    assert np.allclose(again.score_samples(test), loose.score_samples(test), atol=1e-5)
    aligned = PatchDetector(**FAST).fit(parts(30))
    assert aligned.scorer_.reach == 1 and aligned.bank_.shape[2] == 17
    assert aligned.scorer_.residual_weight > 0
    earlier = PatchDetector(residual="auto", **FAST).fit(parts(30))
    assert earlier.scorer_.residual_weight == pytest.approx(aligned.scorer_.residual_weight)
    assert PatchDetector(residual=False, **FAST).fit(parts(30)).bank_.shape[2] == 16
    assert PatchDetector(residual=False, **FAST).fit(surfaces).bank_.shape[2] == 16
    with pytest.raises(SettingError, match="residual must be true, false or auto"):
        PatchDetector(residual="maybe", **FAST).fit(surfaces[:12])


def test_the_residual_can_be_the_error_of_each_patch_s_worst_drawn_values(tmp_path):
    """residual_share q: a patch's error is the root of the mean of its q worst squared
    errors (a thin scratch is not averaged away by the patch's well-drawn values); 1 is the
    RMS error, a tenth the default. The share is kept in the bundle, so a loaded detector
    scores alike."""
    x, drawn = torch.zeros(1, 8), torch.tensor([[0.0, 0, 0, 0, 0, 0, 0, 2.0]])
    assert float(codes_and_residuals(x, x, drawn)["residuals"][0]) == pytest.approx(
        np.sqrt(4 / 8))
    assert float(codes_and_residuals(x, x, drawn, worst_share=0.125)["residuals"][0]) == 2.0
    assert float(codes_and_residuals(x, x, drawn, worst_share=0.25)["residuals"][0]) == (
        pytest.approx(np.sqrt(2)))
    images = parts(30)
    assert PatchDetector().residual_share == 0.1  # the default: the worst-drawn tenth
    worst = PatchDetector(residual_floor=None, **FAST).fit(images)  # the error as drawn
    assert worst.scorer_.residual_share == pytest.approx(0.1)
    rows = worst._model_rows(worst.scorer_.grid.cut(worst.scorer_.patch_input(
        worst._prepare(images, reset=False)[0])))
    errors = (run_batches(worst.model_, rows, reconstructions)["recon"] - rows) ** 2
    errors = errors.reshape(len(rows), -1)[:, :worst.scorer_.residual_values()]
    errors = np.sort(errors, axis=1)[:, ::-1]
    top = round(errors.shape[1] * 0.1)
    expected = np.sqrt(errors[:, :top].mean(axis=1)) * worst.scorer_.residual_weight
    count = worst.scorer_.grid.count
    assert np.allclose(worst.bank_.flatten(0, 1)[:30 * count, -1], expected, rtol=1e-4,
                       atol=1e-6)
    worst.save(tmp_path / "w")
    again = PatchDetector.load(tmp_path / "w")
    assert again.scorer_.residual_share == pytest.approx(0.1)
    test = with_defects(parts(6, seed=4))[0]
    assert np.allclose(again.score_samples(test), worst.score_samples(test), atol=1e-5)
    assert PatchDetector(residual=False, **FAST).fit(images).scorer_.residual_share is None
    for bad in (0, 1.5, "half", True):
        with pytest.raises(SettingError, match="residual_share must be above 0 and at most 1"):
            PatchDetector(residual_share=bad, **FAST).fit(images[:12])


def test_the_residual_is_taken_over_the_image_s_channels_not_the_edge_channel(tmp_path):
    """residual_edges false (the default): a patch's reconstruction error counts the image's
    own channels only (the edge channel, which the decoder draws worst on every grain, is left
    out), true counts every channel; kept in the bundle, and a bundle written before the
    setting (no residual_channels) counts every channel, as it was fitted."""
    x = torch.zeros(1, 2 * 4)  # one patch of 2 channels of 2x2: image channel, edge channel
    drawn = torch.tensor([[0.0, 0, 0, 1, 3, 3, 3, 3]])
    assert float(codes_and_residuals(x, x, drawn, values=4)["residuals"][0]) == 0.5
    assert float(codes_and_residuals(x, x, drawn)["residuals"][0]) == pytest.approx(
        np.sqrt(37 / 8))
    grey = parts(30)
    colour_images = np.concatenate([grey, grey * 0.8, grey * 0.55], axis=1)
    own = PatchDetector(**FAST).fit(colour_images)
    assert own.scorer_.residual_channels == 3
    assert own.scorer_.residual_values() == 3 * own.scorer_.grid.size ** 2
    every = PatchDetector(residual_edges=True, **FAST).fit(colour_images)
    assert every.scorer_.residual_channels is None and every.scorer_.residual_values() is None
    assert torch.equal(own.bank_[..., :-1], every.bank_[..., :-1])  # the same codes
    assert not torch.allclose(own.bank_[..., -1], every.bank_[..., -1])
    assert PatchDetector(edges=False, **FAST).fit(parts(30)).scorer_.residual_channels is None
    test = with_defects(parts(6, seed=4))[0]
    test = np.concatenate([test, test * 0.8, test * 0.55], axis=1)
    own.save(tmp_path / "own")
    again = PatchDetector.load(tmp_path / "own")
    assert again.scorer_.residual_channels == 3
    assert np.allclose(again.score_samples(test), own.score_samples(test), atol=1e-5)
    older = saved_before(every, tmp_path / "every", "residual_channels")
    assert older.scorer_.residual_channels is None
    assert np.allclose(older.score_samples(test), every.score_samples(test), atol=1e-5)
    with pytest.raises(SettingError, match="residual_edges must be true or false"):
        PatchDetector(residual_edges="auto", **FAST).fit(parts(12))


def test_a_patch_s_error_is_floored_at_a_quantile_of_the_training_patches(tmp_path):
    """residual_floor q: the bank's error coordinate is raised to the q quantile of the
    training patches' (per grid position; overall where patches are searched anywhere), and a
    scored patch's to the bank's lowest, the same level; the median by default. 0 leaves the
    bank as it is, so the threshold is that of no floor, and searched anywhere no distance
    grows: a plain frame, drawn better than any training patch, scores as less abnormal than
    unfloored. Kept in the bundle; a bundle written before the setting scores unfloored."""
    assert PatchDetector().residual_floor == 0.5
    surfaces = random_surfaces(30)
    floored = PatchDetector(residual_floor=0, **FAST).fit(surfaces)
    plain = PatchDetector(residual_floor=None, **FAST).fit(surfaces)
    assert floored.scorer_.reach is None and floored.scorer_.residual_floor == 0.0
    assert plain.scorer_.residual_floor is None
    assert torch.equal(floored.bank_, plain.bank_)  # the lowest floors nothing of the bank
    assert plain.threshold_ == pytest.approx(floored.threshold_)
    test = np.concatenate([with_defects(random_surfaces(6, seed=4))[0],
                           np.full((2, 1, 32, 32), 0.4, np.float32)])
    matrix = floored._prepare(test, reset=False)[0]
    codes, drawn = floored._image_codes(matrix), plain._image_codes(matrix)
    lowest = float(plain.bank_[..., -1].min())
    assert torch.equal(codes[..., :-1], drawn[..., :-1])
    assert torch.equal(codes[..., -1], drawn[..., -1].clamp_min(lowest))
    assert float(drawn[6:, :, -1].max()) < lowest  # the plain frames are drawn too well
    scores, unfloored = floored.score_samples(test), plain.score_samples(test)
    assert np.all(scores >= unfloored - 1e-5)  # lower = more abnormal
    assert np.all(scores[6:] > unfloored[6:])

    images = parts(30)  # aligned: searched near its place, each place floored on its own
    median = PatchDetector(**FAST).fit(images)
    as_drawn = PatchDetector(residual_floor=None, **FAST).fit(images)
    assert median.scorer_.reach == 1 and median.scorer_.residual_floor == 0.5
    level = torch.quantile(as_drawn.bank_[..., -1], 0.5, dim=0)
    assert torch.allclose(median.bank_[..., -1], torch.maximum(as_drawn.bank_[..., -1], level))
    assert torch.equal(median.bank_[..., :-1], as_drawn.bank_[..., :-1])
    test_images = median._prepare(parts(4, seed=6), reset=False)[0]
    assert torch.allclose(median._image_codes(test_images)[..., -1], torch.maximum(
        as_drawn._image_codes(test_images)[..., -1], level))
    assert "floored at the training patches' 50% quantile at its place" in \
        patch_description(median.scorer_.to_dict(), "ae", (1, 32, 32))
    assert PatchDetector(residual=False, **FAST).fit(images).scorer_.residual_floor is None

    median.save(tmp_path / "median")
    again = PatchDetector.load(tmp_path / "median")
    assert again.scorer_.residual_floor == 0.5
    assert np.allclose(again.score_samples(parts(4, seed=6)),
                       median.score_samples(parts(4, seed=6)), atol=1e-5)
    older = saved_before(floored, tmp_path / "older", "residual_floor")
    assert older.scorer_.residual_floor is None
    assert np.allclose(older.score_samples(test), unfloored, atol=1e-5)
    for bad in (1, -0.1, "half", True):
        with pytest.raises(SettingError, match="residual_floor must be at least 0 and below 1"):
            PatchDetector(residual_floor=bad, **FAST).fit(images[:12])


def test_masks_are_found_under_the_common_naming_conventions(tmp_path):
    """MVTec AD's NAME_mask.png, DAGM's NAME_label.PNG, KolektorSDD2's NAME_GT.png and a mask
    of the image's own name are each found; another file's mask is not taken."""
    from aetool.tasks.masks import mask_path

    names = {"a": "a_mask.png", "b": "b_label.PNG", "c": "c_GT.png", "d": "d.bmp",
             "e": "e_gt.tif"}
    (tmp_path / "crack").mkdir()
    for name in [*names.values(), "f1_mask.png"]:
        (tmp_path / "crack" / name).write_bytes(b"x")
    for stem, expected in names.items():
        assert mask_path(tmp_path, f"crack/{stem}.png") == tmp_path / "crack" / expected
    assert mask_path(tmp_path, "crack/f.png") is None  # f1_mask.png belongs to f1
    assert mask_path(tmp_path, "hole/a.png") is None


def test_a_jpeg_mask_is_read_without_its_compression_halo(tmp_path):
    """A JPEG mask's faint compression values round the defect are not defect pixels; a PNG
    mask's every non-zero value is (0/1 masks, class indices)."""
    from PIL import Image

    from aetool.tasks.masks import read_mask

    square = np.zeros((64, 64), np.uint8)
    square[20:40, 20:40] = 255
    Image.fromarray(square).save(tmp_path / "m.jpg", quality=75)
    assert (np.asarray(Image.open(tmp_path / "m.jpg")) > 0).sum() > 400  # the halo is there
    assert read_mask(tmp_path / "m.jpg", (64, 64)).sum() == 400
    Image.fromarray((square > 0).astype(np.uint8)).save(tmp_path / "m.png")  # a 0/1 mask
    assert read_mask(tmp_path / "m.png", (64, 64)).sum() == 400


def test_scoring_images_taken_otherwise_than_the_training_ones_warns(tmp_path):
    """A detector keeps how its training images were taken (typical size, JPEG or not); a
    folder of JPEGs, or of another resolution, gets a warning naming the difference, a folder
    like the training one none, and a bundle saved before this was kept none."""
    import json

    train = _folder(tmp_path / "train", 64)
    bundle = tmp_path / "b"
    fast = ["--set", "epochs=2", "--set", "batch_size=256", "-q"]
    assert CliRunner().invoke(cli, ["fit", str(train), "-o", str(bundle), *fast]).exit_code == 0
    kept = json.loads((bundle / "manifest.json").read_text())["table"]["source_images"]
    assert kept == {"size": [64, 64], "jpeg_share": 0.0}
    info = CliRunner().invoke(cli, ["info", str(bundle)]).output
    assert "images:      trained on files typically 64x64, mostly lossless" in info
    images = textures(4, size=64, seed=9)
    like = _folder_of(tmp_path / "like", images)
    larger = _folder_of(tmp_path / "larger", textures(4, size=96, seed=9))
    jpegs = tmp_path / "jpegs"
    jpegs.mkdir()
    for i, image in enumerate(images):
        Image.fromarray((image[0] * 255).astype(np.uint8)).save(jpegs / f"{i}.jpg", quality=75)

    def warning(folder):
        result = CliRunner().invoke(cli, ["score", str(bundle), str(folder), "-o",
                                          str(tmp_path / f"{folder.name}.csv"), "-q"])
        assert result.exit_code == 0, result.output
        return [line for line in result.stderr.splitlines() if "not taken like" in line]

    assert warning(like) == []
    assert "they are typically 96x96 pixels, the training images 64x64" in warning(larger)[0]
    assert "mostly JPEG/WebP files, the training images mostly lossless" in warning(jpegs)[0]
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["table"]["source_images"]  # as saved before
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert warning(jpegs) == []


def test_fit_on_a_folder_laid_out_for_evaluation_says_it_learns_the_defects_too(tmp_path):
    """`fit` learns every image of its folder as normal; a folder with a good/ class beside
    defect classes gets a warning naming how many images of which class were learnt and the
    folder to fit instead; a folder of good/ alone none."""
    data = tmp_path / "test"
    _folder_of(data / "good", textures(12, size=32, seed=3))
    _folder_of(data / "crack", textures(5, size=32, seed=4))
    fast = ["--set", "epochs=1", "--set", "batch_size=256", "-q"]
    result = CliRunner().invoke(cli, ["fit", str(data), "-o", str(tmp_path / "b"), *fast])
    assert result.exit_code == 0, result.output
    assert (f"fit learns every image here as normal, 5 of them from class folders other than "
            f"'good': crack (5); to learn normal images only, fit {data / 'good'}"
            ) in result.stderr
    alone = CliRunner().invoke(cli, ["fit", str(data / "good"), "-o", str(tmp_path / "c"),
                                     *fast])
    assert alone.exit_code == 0 and "learns every image" not in alone.stderr
