"""AutoencoderDetector behaviour where the main peer fails: tiny data, constant columns, seeds,
per-feature explanations, thresholds, probabilities."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from aetool.errors import SettingError
from aetool.estimators import AutoencoderDetector
from aetool.thresholds import anomaly_probability
from tests.conftest import low_rank_table

FAST = {"epochs": 10, "device": "cpu"}


def test_fits_on_ten_rows():
    x = low_rank_table(10, d=5)
    detector = AutoencoderDetector(**FAST).fit(x)
    assert np.isfinite(detector.score_samples(x)).all()
    assert detector.history_ and "val_loss" not in detector.history_[0]


def test_constant_column_does_not_make_scores_explode():
    x = low_rank_table(200, d=6)
    with_constant = np.column_stack([x, np.full(len(x), 3.0)])
    a = AutoencoderDetector(**FAST).fit(x).score_samples(x)
    with pytest.warns(UserWarning, match="dropped constant column"):
        detector = AutoencoderDetector(**FAST).fit(with_constant)
    b = detector.score_samples(with_constant)
    np.testing.assert_allclose(a, b, rtol=1e-5)
    shifted = with_constant.copy()
    shifted[:, -1] = 3.0 + 1e-9
    assert np.isfinite(detector.score_samples(shifted)).all()


def test_one_seed_one_result_and_different_seeds_differ():
    x = low_rank_table(150, d=6)
    first = AutoencoderDetector(random_state=4, **FAST).fit(x).score_samples(x)
    again = AutoencoderDetector(random_state=4, **FAST).fit(x).score_samples(x)
    other = AutoencoderDetector(random_state=5, **FAST).fit(x).score_samples(x)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_explanations_name_the_broken_feature():
    x = low_rank_table(300, d=6)
    frame = pd.DataFrame(x, columns=list("abcdef"))
    detector = AutoencoderDetector(epochs=40, batch_size=32, max_steps=0, device="cpu").fit(frame)
    odd = frame.head(5).copy()
    odd["d"] += 6 * frame["d"].std()
    explanations = detector.explain(odd, top_k=2)
    assert sum(items[0][0] == "d" for items in explanations) >= 4
    assert all(0 <= share <= 1 for items in explanations for _, share in items)


def test_threshold_contamination_and_probability():
    x = low_rank_table(400, d=6)
    detector = AutoencoderDetector(contamination=0.05, **FAST).fit(x)
    flagged = (detector.predict(x) == -1).mean()
    assert flagged == pytest.approx(0.05, abs=0.01)
    details = detector.anomaly_details(x)
    assert details["anomaly_probability"].min() >= 0 and details["anomaly_probability"].max() <= 1
    order = np.argsort(details["anomaly_score"])
    assert np.all(np.diff(details["anomaly_probability"][order]) >= -1e-12)
    proba = detector.predict_proba(x)  # PyOD's layout: (inlier, outlier)
    np.testing.assert_allclose(proba[:, 1], details["anomaly_probability"])
    np.testing.assert_allclose(proba.sum(1), 1.0)
    # the probability agrees with the flag on every row, and is 0.5 exactly at the threshold
    np.testing.assert_array_equal(proba[:, 1] > 0.5, detector.predict(x) == -1)
    at = anomaly_probability(np.array([detector.threshold_]), detector.threshold_,
                             detector.scorer_.train_quantiles)
    assert at[0] == 0.5
    median = np.quantile(details["anomaly_score"], 0.5)
    assert anomaly_probability(np.array([median]), detector.threshold_,
                               detector.scorer_.train_quantiles)[0] < 0.05
    # the rank has its own honest name: share of training rows scoring lower
    assert np.mean(details["score_percentile"] > 0.95) == pytest.approx(0.05, abs=0.02)
    fixed = AutoencoderDetector(threshold=1e9, **FAST).fit(x)
    assert (fixed.predict(x) == 1).all()


def test_contamination_auto_is_tukeys_fence_and_bad_values_fail_before_training(monkeypatch):
    x = low_rank_table(400, d=6)
    x[:8] += 6.0  # a few clear outliers
    detector = AutoencoderDetector(contamination="auto", **FAST).fit(x)
    train_scores = detector.anomaly_details(x)["anomaly_score"]
    q1, q3 = np.quantile(train_scores, [0.25, 0.75])
    assert detector.threshold_ == pytest.approx(q3 + 1.5 * (q3 - q1), rel=1e-4)
    assert (detector.predict(x[:8]) == -1).all()
    assert (detector.predict(x[8:]) == -1).mean() < 0.1
    monkeypatch.setattr(AutoencoderDetector, "_fit_model",
                        lambda *a, **k: pytest.fail("trained before checking contamination"))
    for bad in (0.7, 0.0, "most"):
        with pytest.raises(ValueError, match=r"contamination must be a share in \(0, 0.5\)"):
            AutoencoderDetector(contamination=bad, **FAST).fit(x)


def test_every_score_method_and_conditional_refusal():
    x = low_rank_table(300, d=6)
    for method in ("combined", "reconstruction", "latent"):
        scores = AutoencoderDetector(score_method=method, **FAST).fit(x).score_samples(x)
        assert np.isfinite(scores).all()
    with pytest.raises(Exception, match="conditional"):
        AutoencoderDetector(variant="cvae").fit(x)


def test_log_views_compress_tails_and_round_trip_through_json():
    """Numeric columns with more than two values get a log view; binary and text ones do not;
    the saved state encodes new rows exactly as the fitted one does."""
    from aetool.data.preprocess import TablePreprocessor

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"level": rng.lognormal(size=300), "flag": rng.integers(0, 2, 300),
                          "kind": rng.choice(["a", "b"], 300)})
    prep = TablePreprocessor.fit(frame, log_views=True)
    assert list(prep.log_views) == ["level"]
    assert prep.feature_names == ["level", "flag", "kind=a", "kind=b", "log(level)"]
    assert prep.feature_groups == ["level", "flag", "kind", "kind", "level"]
    matrix, _ = prep.transform(frame)
    np.testing.assert_allclose(matrix[:, -1].mean(), 0, atol=1e-5)
    # a value 1000 spreads out lands about log(1001) / (typical log view) away, not 1000
    stats = prep.numeric["level"]
    far = frame.head(1).assign(level=stats["fill"] + 1000 * stats["scale"])
    view = prep.log_views["level"]
    encoded = prep.transform(far)[0][0, -1]
    np.testing.assert_allclose(encoded * view["scale"] + view["mean"], np.log1p(1000), rtol=1e-5)
    again = TablePreprocessor.from_dict(prep.to_dict())
    np.testing.assert_array_equal(again.transform(frame)[0], matrix)
    assert TablePreprocessor.fit(frame).log_views == {}


def test_columns_near_float_limits_are_scaled_without_overflow_or_flattening():
    """1e307-sized values used to overflow when squared (a bare numpy warning); 1e-15-sized
    ones fell under an absolute 1e-12 spread floor and were flattened to a constant."""
    import warnings

    from aetool.data.preprocess import TablePreprocessor

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"huge": 1e307 * (1 + rng.random(200)), "tiny": 1e-15 * rng.normal(size=200),
                          "noise": 1.0 + 1e-13 * rng.integers(0, 2, 200)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prep = TablePreprocessor.fit(frame)
        matrix, _ = prep.transform(frame)
    np.testing.assert_allclose(matrix[:, :2].std(axis=0), 1.0, rtol=1e-4)
    assert prep.numeric["noise"]["scale"] == 1.0  # rounding-level differences are not blown up
    assert np.abs(matrix[:, 2]).max() < 1e-6


def test_detector_log_views_default_on_and_explanations_use_column_names():
    x = pd.DataFrame(low_rank_table(200, d=4), columns=["a", "b", "c", "d"])
    detector = AutoencoderDetector(**FAST).fit(x)
    assert detector.model_.input_shape == (8,)
    assert {name for row in detector.explain(x.head(5), top_k=4) for name, _ in row} <= set("abcd")
    plain = AutoencoderDetector(log_views=False, **FAST).fit(x)
    assert plain.model_.input_shape == (4,)


def test_table_detector_trains_the_plain_ae_with_the_detection_weight_penalty(tmp_path):
    from aetool.estimators import TABLE_DETECTION_DEFAULTS

    penalty = TABLE_DETECTION_DEFAULTS["ae"]["weight_penalty"]
    x = low_rank_table(120, d=5)
    detector = AutoencoderDetector(epochs=2, device="cpu").fit(x)
    assert detector.config_.weight_penalty == penalty == 1e-3
    assert detector.get_params()["variant_params"] is None  # a default, not a changed parameter
    own = AutoencoderDetector(epochs=2, device="cpu", variant_params={"weight_penalty": 0.0})
    assert own.fit(x).config_.weight_penalty == 0.0
    assert AutoencoderDetector(variant="dae", epochs=2).fit(x).config_.weight_penalty == 1e-5
    images = np.random.default_rng(0).random((40, 1, 8, 8)).astype(np.float32)
    on_images = AutoencoderDetector(variant="ae", epochs=2, device="cpu").fit(images)
    assert on_images.config_.weight_penalty == 1e-5  # measured on tables only
    detector.save(tmp_path / "b")
    assert AutoencoderDetector.load(tmp_path / "b").config_.weight_penalty == penalty
    from click.testing import CliRunner

    from aetool.cli import cli

    listing = CliRunner().invoke(cli, ["variants"]).stdout.splitlines()
    ae = listing.index(next(line for line in listing if line.startswith("ae ")))
    assert listing[ae + 3].strip() == ("as a table anomaly detector of up to 64 columns (wider: "
                                       "weight_penalty times 64 / columns): weight_penalty=0.001")
    rows = {r["name"]: r for r in json.loads(CliRunner().invoke(cli, ["variants", "--json"]).stdout)}
    assert rows["ae"]["table_detection_settings"] == {"weight_penalty": 1e-3}
    assert rows["ae"]["table_penalty_columns"] == 64
    assert "table_penalty_columns" not in rows["dae"]


def test_the_table_weight_penalty_falls_with_the_width_beyond_64_columns(tmp_path):
    """The penalty sums over weights that grow with the columns while the error is their mean:
    a fixed 1e-3 drowned wide low-rank tables (ROC-AUC 0.62-0.75 at 274-768 columns)."""
    rng = np.random.default_rng(0)
    for width, penalty in ((64, 1e-3), (128, 5e-4), (256, 2.5e-4)):
        x = rng.normal(size=(60, 3)) @ rng.normal(size=(3, width))
        detector = AutoencoderDetector(epochs=1, device="cpu").fit(x)
        assert detector.config_.weight_penalty == pytest.approx(penalty)
    detector.save(tmp_path / "wide")
    assert AutoencoderDetector.load(tmp_path / "wide").config_.weight_penalty == pytest.approx(2.5e-4)
    own = AutoencoderDetector(epochs=1, device="cpu", variant_params={"weight_penalty": 1e-3})
    assert own.fit(x).config_.weight_penalty == 1e-3  # a penalty the user names is kept


def test_a_wide_low_rank_table_finds_rows_off_its_subspace():
    """768 correlated columns, 5% of rows shifted off the subspace: the fixed 1e-3 penalty
    scored them near chance (0.62); the width rule finds them."""
    rng = np.random.default_rng(1)
    basis = rng.normal(size=(5, 768))
    x = rng.normal(size=(400, 5)) @ basis / np.sqrt(5) + 0.1 * rng.normal(size=(400, 768))
    x[:20] += 0.3 * rng.normal(size=(20, 768))
    scores = -AutoencoderDetector(random_state=0, device="cpu").fit(x).score_samples(x)
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.ones(20), np.zeros(380)]
    assert roc_auc_score(labels, scores) > 0.85


def test_values_beyond_float32_score_finite_and_are_explained():
    frame = pd.DataFrame(low_rank_table(200, d=4).astype(np.float64), columns=["x0", "x1", "x2", "x3"])
    detector = AutoencoderDetector(**FAST).fit(frame)
    odd = frame.head(3).copy()
    odd.loc[0, "x2"] = 1e300  # finite in float64, overflows float32 unless clipped
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        details = detector.anomaly_details(odd)
    assert np.isfinite(details["anomaly_score"]).all()
    assert details["anomaly_score"].argmax() == 0
    assert detector.explain(odd[:1], top_k=1)[0][0][0] == "x2"


def test_many_categories_keep_the_most_frequent_and_rare_ones_are_not_reported_as_unseen():
    from aetool.data.preprocess import MAX_CATEGORIES, DataWarning, TablePreprocessor

    rng = np.random.default_rng(0)
    users = [f"u{i}" for i in rng.zipf(1.5, 2000) % 400]
    frame = pd.DataFrame({"a": rng.normal(size=2000), "user": users})
    n_users = len(set(users))
    with pytest.warns(DataWarning, match=f"column 'user' has {n_users} categories; the 50 most"):
        prep = TablePreprocessor.fit(frame, source="t.csv")
    assert prep.folded == {"user": n_users - MAX_CATEGORIES}
    top = pd.Series(users).value_counts().index[:MAX_CATEGORIES]
    assert sorted(prep.categorical["user"]) == sorted(top)
    again = TablePreprocessor.from_dict(json.loads(json.dumps(prep.to_dict())))
    new = pd.DataFrame({"a": [0.0, 0.0], "user": ["never-seen", top[0]]})
    matrix, unseen = again.transform(new)
    assert unseen == {}  # a rare or new user shares the all-zero code, as in training
    assert matrix[0, 1:1 + MAX_CATEGORIES].sum() == 0 and matrix[1, 1:1 + MAX_CATEGORIES].sum() == 1


@pytest.mark.parametrize("name", ["satellite", "annthyroid"])
def test_code_core_ranks_real_anomalies_better_than_all_codes(name):
    """The ODDS protocol on one split (seed 0): fitted on contaminated training data, the code
    core lifts ROC-AUC clearly (0.72 -> 0.78 and 0.85 -> 0.90 when measured)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "odds" / f"{name}.npz"
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared ODDS data sets)")
    data = np.load(path)
    x_train, x_test, _, y_test = train_test_split(data["X"], data["y"].astype(int), test_size=0.4,
                                                  stratify=data["y"], random_state=0)
    roc = {core: roc_auc_score(y_test, -AutoencoderDetector(code_core=core, device="cpu")
                               .fit(x_train).score_samples(x_test)) for core in ("auto", 1.0)}
    assert roc["auto"] > roc[1.0] + 0.03, roc


def prototype_table(seed: int = 0, rows: int = 1500, columns: int = 8, levels: int = 8):
    """Categorical columns that are fixed functions of two hidden factors; 5% of rows have 3
    columns at random levels (bench/categorical_tables.py's 'prototypes')."""
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, levels, size=(rows, 2))
    maps = rng.integers(0, levels, size=(columns, levels, levels))
    codes = np.stack([maps[j][factors[:, 0], factors[:, 1]] for j in range(columns)], axis=1)
    labels = np.zeros(rows, dtype=int)
    odd = rng.choice(rows, rows // 20, replace=False)
    labels[odd] = 1
    for row in odd:
        codes[row, rng.choice(columns, 3, replace=False)] = rng.integers(0, levels, size=3)
    return pd.DataFrame({f"c{j}": [f"v{v}" for v in codes[:, j]] for j in range(columns)}), labels


def test_a_categorical_table_is_scored_by_its_reconstruction_with_a_light_penalty(tmp_path):
    """The combined score and the 1e-3 penalty were chosen on all-numeric tables; on a
    categorical table with structure they scored the rows that break it at chance."""
    from sklearn.metrics import roc_auc_score

    frame, labels = prototype_table()
    detector = AutoencoderDetector(random_state=0, device="cpu").fit(frame)
    assert detector.get_params()["score_method"] == "auto"
    assert detector.preprocessor_.categorical_share == 1.0
    assert detector.scorer_.method == "reconstruction"
    assert detector.config_.weight_penalty == 1e-5
    assert detector._train_config().max_steps == 1500  # patterns take longer to learn
    assert roc_auc_score(labels, -detector.score_samples(frame)) > 0.85
    before = AutoencoderDetector(random_state=0, device="cpu", score_method="combined",
                                 variant_params={"weight_penalty": 1e-3}).fit(frame)
    assert before.scorer_.method == "combined"  # a method the user names is kept
    assert roc_auc_score(labels, -before.score_samples(frame)) < 0.75
    detector.save(tmp_path / "cat")
    loaded = AutoencoderDetector.load(tmp_path / "cat")
    assert loaded.scorer_.method == "reconstruction"
    np.testing.assert_allclose(loaded.score_samples(frame), detector.score_samples(frame),
                               rtol=1e-5)


def test_a_mostly_numeric_table_keeps_the_combined_score():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(low_rank_table(200, d=6), columns=[f"x{i}" for i in range(6)])
    frame["kind"] = rng.choice(["a", "b", "c"], size=200)  # 3 codes of 9 columns: a third
    detector = AutoencoderDetector(epochs=2, device="cpu").fit(frame)
    assert detector.preprocessor_.categorical_share == pytest.approx(1 / 3)
    assert detector.scorer_.method == "combined"
    assert detector.config_.weight_penalty == 1e-3
    assert AutoencoderDetector(device="cpu").fit(frame)._train_config().max_steps == 300
    with pytest.raises(SettingError, match="score_method must be one of auto, combined"):
        AutoencoderDetector(score_method="mean", epochs=1).fit(frame)
