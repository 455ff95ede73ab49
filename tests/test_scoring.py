"""The score engine's code distribution: its robust core, the mixture (when it is fitted, what it
adds) and that both survive JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aetool.scoring import MIN_ROWS_PER_MIXTURE, Scorer, core_codes


def _two_mode_codes(n: int, d: int = 2, gap: float = 4.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(n, d))
    codes[: n // 2, 0] -= gap
    codes[n // 2:, 0] += gap
    return codes.astype(np.float32)


def test_mixture_flags_the_gap_between_two_modes_that_one_gaussian_misses():
    codes = _two_mode_codes(400)
    errors = np.ones((400, 3), np.float32)  # equal reconstruction: only the code matters
    scorer, _ = Scorer.fit(errors, codes)
    assert scorer.uses_mixture and len(scorer.mixture_means) == 2
    centre, mode = np.zeros((1, 2), np.float32), np.array([[4.0, 0.0]], np.float32)
    one = np.ones((1, 3), np.float32)
    # one Gaussian alone puts the empty centre nearer than a mode; with the mixture it is the
    # most anomalous place
    assert scorer._latent_raw(centre)[0] < scorer._latent_raw(mode)[0]
    assert scorer.score(one, centre)[0] > scorer.score(one, mode)[0] + 3.0
    mixture = scorer._mixture_raw(np.vstack([centre, mode]))
    assert mixture[0] - mixture[1] > 5.0  # -log density: 4²/2 = 8 nats apart


def test_mixture_needs_enough_rows_and_a_table():
    d = 4
    few = _two_mode_codes(MIN_ROWS_PER_MIXTURE * d - 1, d)
    scorer, _ = Scorer.fit(np.ones((few.shape[0], 3), np.float32), few)
    assert scorer.uses_latent and not scorer.uses_mixture
    enough = _two_mode_codes(MIN_ROWS_PER_MIXTURE * d, d)
    assert Scorer.fit(np.ones((enough.shape[0], 3), np.float32), enough)[0].uses_mixture
    images = np.ones((enough.shape[0], 1, 2, 2), np.float32)  # images keep one Gaussian
    assert not Scorer.fit(images, enough)[0].uses_mixture
    assert not Scorer.fit(np.ones((enough.shape[0], 3), np.float32), enough,
                          "reconstruction")[0].uses_mixture


def test_scorer_json_round_trip_and_bundles_saved_before_the_mixture():
    codes = _two_mode_codes(400)
    errors = np.random.default_rng(1).random((400, 3)).astype(np.float32)
    scorer, train_scores = Scorer.fit(errors, codes)
    loaded = Scorer.from_dict(json.loads(json.dumps(scorer.to_dict())))
    np.testing.assert_allclose(loaded.score(errors, codes), train_scores, rtol=1e-6)
    old = {k: v for k, v in scorer.to_dict().items() if not k.startswith("mixture")}
    legacy = Scorer.from_dict(old)  # a bundle written before the mixture existed
    assert not legacy.uses_mixture
    expected = scorer.combine(scorer._recon_raw(errors), scorer._latent_raw(codes))
    np.testing.assert_allclose(legacy.score(errors, codes), expected, rtol=1e-6)


def _contaminated_codes(n: int = 500, share: float = 0.2, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Normal codes around 0 plus a ``share`` of anomalies around (6, 6, 6): training data with
    anomalies in it, as unlabelled tables usually are."""
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(n, d))
    anomalous = np.zeros(n, bool)
    anomalous[: int(share * n)] = True
    codes[anomalous] += 6.0
    return codes.astype(np.float32), anomalous


def test_core_codes_leave_the_anomalies_out_and_all_codes_are_the_plain_fit():
    from sklearn.covariance import LedoitWolf

    codes, anomalous = _contaminated_codes()
    fit, core = core_codes(codes, share=0.6, steps=2)
    assert len(core) == 300 and not anomalous[core].any() and np.all(np.diff(core) > 0)
    assert np.abs(fit.location_).max() < 0.2  # the normal codes' centre, not pulled to 6
    plain = LedoitWolf().fit(codes.astype(np.float64))
    assert plain.location_.min() > 1.0  # fitted on all codes the centre moves by 20% of 6
    everything, rows = core_codes(codes, share=1.0)
    np.testing.assert_array_equal(rows, np.arange(len(codes)))
    np.testing.assert_allclose(everything.precision_, plain.precision_)


def test_core_share_makes_training_anomalies_stand_out_in_code_space():
    codes, anomalous = _contaminated_codes()
    errors = np.ones((len(codes), 4), np.float32)  # equal reconstruction: only the code matters
    gaps = {}
    for share in (1.0, 0.6):
        scorer, _ = Scorer.fit(errors, codes, core_share=share)
        latent = scorer._latent_raw(codes)
        gaps[share] = latent[anomalous].min() / np.median(latent[~anomalous])
    # stretched by the anomalies, one Gaussian of all codes puts them within 3 typical distances
    assert gaps[1.0] < 3.0 and gaps[0.6] > 2 * gaps[1.0]


@pytest.mark.parametrize("value", [0.4, 1.5, "most"])
def test_code_core_outside_its_range_is_refused_before_training(value):
    from aetool.errors import SettingError
    from aetool.estimators import AutoencoderDetector

    with pytest.raises(SettingError, match="code_core must be 'auto' or a share"):
        AutoencoderDetector(code_core=value, epochs=1).fit(np.zeros((10, 3)))


def test_code_core_auto_is_the_core_on_tables_and_all_codes_on_images():
    from aetool.estimators import AutoencoderDetector
    from aetool.scoring import CORE_SHARE

    assert AutoencoderDetector()._core_share(table=True) == CORE_SHARE < 1.0
    assert AutoencoderDetector()._core_share(table=False) == 1.0
    assert AutoencoderDetector(code_core=0.8)._core_share(table=False) == 0.8


def test_codes_that_do_not_vary_fall_back_to_the_reconstruction_error():
    """A network whose every code is the same (it happened: a categorical table of 300 one-hot
    columns under the 1e-3 penalty) made the combined score crash in a Cholesky factorisation."""
    rng = np.random.default_rng(0)
    errors = rng.random((400, 5)).astype(np.float32)
    codes = np.full((400, 4), 0.2, dtype=np.float32)
    for method in ("combined", "latent"):
        with pytest.warns(UserWarning, match="training codes do not vary"):
            scorer, scores = Scorer.fit(errors, codes, method)
        assert scorer.method == "reconstruction" and not scorer.uses_latent
        assert np.isfinite(scores).all()
        np.testing.assert_allclose(scorer.score(errors, codes), scores, rtol=1e-6)


def _errors_with_badly_drawn_rows(n: int = 200, bad: int = 10) -> np.ndarray:
    """Squared errors of four features, (a, b=x, b=y, c); the first ``bad`` rows, anomalies the
    model could not draw, have a hundred times the usual error in ``a``."""
    errors = np.random.default_rng(2).uniform(0.5, 1.5, (n, 4)).astype(np.float32)
    errors[:bad, 0] *= 100.0
    return errors


def test_explanations_measure_a_column_against_its_level_without_the_worst_drawn_rows():
    errors = _errors_with_badly_drawn_rows()
    codes = np.random.default_rng(3).normal(size=(200, 2)).astype(np.float32)
    scorer, _ = Scorer.fit(errors, codes, groups=["a", "b", "b", "c"])
    scale = np.asarray(scorer.share_scale)
    # the ten anomalies would make a's mean level about six times its usual one
    assert scorer.feature_error_mean[0] > 5.0 and scale[0] == pytest.approx(1.0, abs=0.1)
    # a one-hot column's features share its column's level: the sum of both features' errors
    assert scale[1] == scale[2] == pytest.approx(2.0, abs=0.15)
    row = np.array([[5.0, 1.0, 1.0, 1.0]], np.float32)  # five times a's usual error
    shares = scorer.contributions(row)[0]
    assert shares[0] == pytest.approx(5.0 / (5.0 + 0.5 + 0.5 + 1.0), rel=0.1)
    assert shares.sum() == pytest.approx(1.0)
    # measured against its mean, inflated by the anomalies, a's share would come last
    before = row[0] / np.asarray(scorer.feature_error_mean)
    assert before[0] < before[3]
    # the score itself still weighs each feature by its mean training error
    assert scorer._recon_raw(row)[0] == pytest.approx(
        float(np.mean(row[0] / np.asarray(scorer.feature_error_mean))), rel=1e-5)


def test_bundles_saved_before_the_column_levels_explain_as_they_did():
    errors = _errors_with_badly_drawn_rows()
    codes = np.random.default_rng(3).normal(size=(200, 2)).astype(np.float32)
    scorer, _ = Scorer.fit(errors, codes, groups=["a", "b", "b", "c"])
    state = {k: v for k, v in scorer.to_dict().items() if k != "share_scale"}
    legacy = Scorer.from_dict(json.loads(json.dumps(state)))
    weighted = errors / np.asarray(scorer.feature_error_mean)
    np.testing.assert_allclose(legacy.contributions(errors),
                               weighted / weighted.sum(axis=1, keepdims=True), rtol=1e-5)
    images = Scorer.fit(errors.reshape(200, 1, 2, 2), codes)[0]  # images: plain pixel shares
    assert images.share_scale == [] and images.contributions(errors[:1])[0] == pytest.approx(
        errors[0] / errors[0].sum(), rel=1e-5)
