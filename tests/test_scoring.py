"""The score engine's code mixture: when it is fitted, what it adds, and that it survives JSON."""

from __future__ import annotations

import json

import numpy as np

from aetool.scoring import MIN_ROWS_PER_MIXTURE, Scorer


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
