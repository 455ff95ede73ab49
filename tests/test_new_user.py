"""What a new user meets (issue #25): ids kept intact by denoising, probabilities that agree
with the flags, dates refused, honest messages, and thresholds that move without retraining."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from aetool.cli import cli
from tests.conftest import low_rank_table

FAST = ["--set", "epochs=3", "--set", "batch_size=32", "-q"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def table_csv(tmp_path):
    x = low_rank_table(200, d=5)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    frame.insert(0, "pixel_id", np.arange(102000, 102200))
    frame["label"] = 0
    frame.loc[:9, "f2"] += 8.0
    frame.loc[:9, "label"] = 1
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


def test_denoising_keeps_an_id_column_and_every_dtype(table_csv, tmp_path):
    bundle, out = tmp_path / "den", tmp_path / "clean.csv"
    result = run("denoise", "fit", table_csv, "--id-column", "pixel_id", "--exclude", "label",
                 "-o", bundle, *FAST)
    assert result.exit_code == 0, result.output
    result = run("denoise", "apply", bundle, table_csv, "-o", out, "--id-column", "pixel_id",
                 "--reference", table_csv)
    assert result.exit_code == 0, result.output
    before, after = pd.read_csv(table_csv), pd.read_csv(out)
    pd.testing.assert_series_equal(before["pixel_id"], after["pixel_id"])
    pd.testing.assert_series_equal(before["label"], after["label"])
    assert list(after.dtypes) == list(before.dtypes)
    assert "pixel_id" not in result.output  # the report covers the cleaned columns only


def test_an_id_like_integer_column_is_warned_about(table_csv, tmp_path):
    result = run("denoise", "fit", table_csv, "--exclude", "label", "-o", tmp_path / "d", *FAST)
    assert result.exit_code == 0
    assert "column 'pixel_id' looks like an identifier" in result.stderr
    one = run("denoise", "apply", tmp_path / "d", table_csv, "-o", tmp_path / "o.csv",
              "--id-column", "pixel_id")
    assert one.exit_code == 2 and "trained to clean" in one.stderr


def test_probability_agrees_with_the_flag_and_is_half_at_the_threshold(table_csv, tmp_path):
    out = tmp_path / "s.csv"
    result = run("detect", table_csv, "--id-column", "pixel_id", "--label-column", "label",
                 "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert ((frame["anomaly_probability"] > 0.5) == frame["is_anomaly"]).all()
    order = frame["anomaly_score"].argsort()
    assert (np.diff(frame["anomaly_probability"].to_numpy()[order]) >= -1e-12).all()
    assert frame["anomaly_probability"].median() < 0.2


@pytest.mark.parametrize("dates", [
    [f"2024-03-{d:02d}" for d in range(1, 29)],
    [f"{d:02d}/03/2024" for d in range(1, 29)],
    [f"2024-03-{d:02d} 12:{d:02d}" for d in range(1, 29)],
])
def test_date_text_columns_are_refused_as_dates(dates, tmp_path):
    path = tmp_path / "dated.csv"
    n = len(dates) * 4
    pd.DataFrame({"a": np.arange(n, dtype=float), "b": np.arange(n, dtype=float) ** 0.5,
                  "when": dates * 4}).to_csv(path, index=False)
    result = run("detect", path, "-o", tmp_path / "s.csv", *FAST)
    assert result.exit_code == 2
    assert "column 'when' holds dates or times as text" in result.stderr
    assert "--exclude 'when'" in result.stderr


def test_threshold_from_normal_rows_only_fails_before_training(table_csv, tmp_path):
    normal = tmp_path / "normal.csv"
    pd.read_csv(table_csv).query("label == 0").to_csv(normal, index=False)
    result = run("detect", table_csv, "--id-column", "pixel_id", "--label-column", "label",
                 "--threshold-from", normal, "-o", tmp_path / "t.csv", *FAST)
    assert result.exit_code == 2 and str(normal) in result.stderr
    assert "only label 0" in result.stderr
    assert not (tmp_path / "t.csv").exists()


def test_detect_on_one_class_labels_warns_and_writes_the_scores(table_csv, tmp_path):
    normal = tmp_path / "normal.csv"
    pd.read_csv(table_csv).query("label == 0").to_csv(normal, index=False)
    result = run("detect", normal, "--id-column", "pixel_id", "--label-column", "label",
                 "-o", tmp_path / "t.csv", *FAST)
    assert result.exit_code == 0, result.output
    assert "not evaluated, the labels hold only label 0" in result.stderr
    assert (tmp_path / "t.csv").exists()


def test_the_chosen_best_f1_threshold_is_printed(table_csv, tmp_path):
    result = run("detect", table_csv, "--id-column", "pixel_id", "--label-column", "label",
                 "--threshold-from", table_csv, "-o", tmp_path / "t.csv", *FAST)
    assert result.exit_code == 0, result.output
    assert f"the best F1 on {table_csv}" in result.output


def test_threshold_and_contamination_move_without_retraining(table_csv, tmp_path):
    bundle = tmp_path / "m"
    assert run("fit", table_csv, "--id-column", "pixel_id", "--label-column", "label",
               "--contamination", "0.2", "-o", bundle, *FAST).exit_code == 0
    refit = tmp_path / "m2"
    assert run("fit", table_csv, "--id-column", "pixel_id", "--label-column", "label",
               "--contamination", "0.05", "-o", refit, *FAST).exit_code == 0
    moved, again = tmp_path / "moved.csv", tmp_path / "again.csv"
    assert run("score", bundle, table_csv, "--contamination", "0.05", "-o", moved).exit_code == 0
    assert run("score", refit, table_csv, "-o", again).exit_code == 0
    pd.testing.assert_frame_equal(pd.read_csv(moved), pd.read_csv(again))
    fixed = tmp_path / "fixed.csv"
    assert run("score", bundle, table_csv, "--threshold", "1e9", "-o", fixed).exit_code == 0
    assert not pd.read_csv(fixed)["is_anomaly"].any()
    result = run("evaluate", bundle, table_csv, "--threshold", "1e9")
    assert result.exit_code == 0 and "recall_at_threshold=0 " in result.output
    both = run("score", bundle, table_csv, "--threshold", "1", "--contamination", "0.1",
               "-o", fixed)
    assert both.exit_code == 2 and "not both" in both.stderr


def test_evaluate_features_takes_exclude_and_names_the_file(tmp_path):
    path = tmp_path / "visits.csv"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 4)), columns=list("abcd"))
    frame["visit_date"] = [f"visit {i}" for i in range(60)]
    frame["y"] = np.repeat([0, 1], 30)
    frame.to_csv(path, index=False)
    refused = run("evaluate-features", path, "--label-column", "y", "--variants", "ae",
                  "--classifiers", "logreg", "--cv", "2", "--epochs", "1", "-q",
                  "-o", tmp_path / "e.csv")
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"error: {path}:"), refused.stderr
    assert "--exclude 'visit_date'" in refused.stderr
    result = run("evaluate-features", path, "--label-column", "y", "--exclude", "visit_date",
                 "--variants", "ae", "--classifiers", "logreg", "--cv", "2", "--epochs", "1",
                 "-q", "-o", tmp_path / "e.csv")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "e.csv").exists()


def test_a_folder_of_table_parts_is_named_as_such(table_csv, tmp_path):
    bundle = tmp_path / "m"
    assert run("fit", table_csv, "--id-column", "pixel_id", "-o", bundle, *FAST).exit_code == 0
    parts = tmp_path / "parts"
    parts.mkdir()
    pd.read_csv(table_csv).to_parquet(parts / "part-0.parquet")
    result = run("score", bundle, parts, "-o", tmp_path / "s.csv")
    assert result.exit_code == 2
    assert "holds 1 table file(s)" in result.stderr and "--engine dask" in result.stderr
