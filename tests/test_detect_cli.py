"""`aetool detect|fit|score|evaluate` on tables: outputs, explanations and every bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from aetool.cli import cli
from tests.conftest import low_rank_table

FAST = ["--set", "epochs=20", "--set", "batch_size=32", "--set", "max_steps=150", "-q"]


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def train_csv(tmp_path):
    x = low_rank_table(200, d=6)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    frame.insert(0, "row_id", [f"r{i}" for i in range(200)])
    frame["colour"] = np.where(x[:, 0] > np.quantile(x[:, 0], 0.66), "red", "blue")
    frame["label"] = 0
    frame.loc[:9, "f2"] += 8.0  # ten rows break the structure in f2
    frame.loc[:9, "label"] = 1
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    return path


def test_detect_writes_scores_explanations_and_metrics(train_csv, tmp_path):
    out = tmp_path / "out.csv"
    result = run("detect", str(train_csv), "-o", str(out), "--id-column", "row_id",
                 "--label-column", "label", "--contamination", "0.05", *FAST)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["row_id", "anomaly_score", "anomaly_probability",
                                   "is_anomaly", "top_features"]
    assert frame["row_id"].tolist()[:2] == ["r0", "r1"]
    assert frame["is_anomaly"].sum() == pytest.approx(10, abs=2)
    assert frame["anomaly_probability"].between(0, 1).all()
    truth = (frame["row_id"].str[1:].astype(int) < 10).astype(int)
    assert roc_auc_score(truth, frame["anomaly_score"]) > 0.9
    assert frame["top_features"][:10].str.startswith("f2").mean() >= 0.8
    assert "roc_auc=" in result.output


def test_detect_plots_with_and_without_labels(train_csv, tmp_path):
    labelled, unlabelled = tmp_path / "with", tmp_path / "without"
    result = run("detect", str(train_csv), "-o", str(tmp_path / "a.csv"), "--id-column",
                 "row_id", "--label-column", "label", "--plots", str(labelled), *FAST)
    assert result.exit_code == 0 and f"figures in {labelled}" in result.stdout
    assert {p.name for p in labelled.iterdir()} == {"roc.png", "pr.png", "scores.png",
                                                   "most_anomalous.png", "metrics.json"}
    result = run("detect", str(train_csv), "-o", str(tmp_path / "b.csv"), "--id-column",
                 "row_id", "--exclude", "label", "--plots", str(unlabelled), *FAST)
    assert result.exit_code == 0 and "roc_auc" not in result.stdout
    assert {p.name for p in unlabelled.iterdir()} == {"scores.png", "most_anomalous.png"}


def test_fit_score_evaluate_round_trip(train_csv, tmp_path):
    bundle, out, plots = tmp_path / "model", tmp_path / "s.csv", tmp_path / "plots"
    assert run("fit", str(train_csv), "-o", str(bundle), "--id-column", "row_id",
               "--label-column", "label", *FAST).exit_code == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["preprocessing"]["categorical"] == {"colour": ["blue", "red"]}
    assert manifest["table"]["id_column"] == "row_id"
    described = run("info", str(bundle)).stdout.splitlines()
    assert "columns:     7 (f0, f1, f2, f3, f4, f5, ... and 1 more)" in described
    assert "also read:   id row_id, label label" in described
    result = run("score", str(bundle), str(train_csv), "-o", str(out), "--top-features", "2")
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out)
    assert scored["top_features"].str.count(";").max() == 1
    result = run("evaluate", str(bundle), str(train_csv), "--plots", str(plots))
    assert result.exit_code == 0, result.output
    metrics = json.loads((plots / "metrics.json").read_text())
    assert metrics["roc_auc"] > 0.9 and metrics["anomalies"] == 10
    assert {p.name for p in plots.glob("*.png")} == {"roc.png", "pr.png", "scores.png",
                                                     "most_anomalous.png"}


def test_most_anomalous_rows_are_explained_by_the_broken_column(train_csv):
    from aetool.tasks.detect import TableSpec, details_for, fit_detector, load_table
    from aetool.tasks.evaluation import most_anomalous_shares

    spec = TableSpec(id_column="row_id", label_column="label")
    table = load_table(train_csv, spec)
    detector = fit_detector(table, spec, {"epochs": 20, "batch_size": 32, "max_steps": 150})
    shares = most_anomalous_shares(detector, table, details_for(detector, table), rows=10,
                                   columns=4)
    assert shares.shape == (10, 4) and shares.columns[0] == "f2"  # the column that was broken
    broken = [name for name in shares.index if name in {f"r{i}" for i in range(10)}]
    assert len(broken) >= 7  # most of the ten broken rows lead
    assert shares.loc[broken].mean().idxmax() == "f2"  # and are explained by f2 first
    assert (shares.loc[broken].idxmax(axis=1) == "f2").mean() >= 0.6
    assert list(table.labels[shares.attrs["positions"]]).count(1) == len(broken)


def test_threshold_options(train_csv, tmp_path):
    fixed = tmp_path / "fixed"
    assert run("fit", str(train_csv), "-o", str(fixed), "--threshold", "2.5", "--exclude",
               "row_id,label", *FAST).exit_code == 0
    assert json.loads((fixed / "manifest.json").read_text())["detector"]["threshold"] == 2.5
    best = tmp_path / "best"
    result = run("fit", str(train_csv), "-o", str(best), "--id-column", "row_id",
                 "--label-column", "label", "--threshold-from", str(train_csv), *FAST)
    assert result.exit_code == 0, result.output
    out = tmp_path / "o.csv"
    run("score", str(best), str(train_csv), "-o", str(out))
    flagged = pd.read_csv(out)["is_anomaly"]
    assert flagged[:10].mean() >= 0.8 and flagged[10:].mean() <= 0.05


def test_scoring_handles_unseen_category_and_extra_column(train_csv, tmp_path):
    bundle = tmp_path / "m"
    run("fit", str(train_csv), "-o", str(bundle), "--id-column", "row_id", "--label-column",
        "label", *FAST)
    frame = pd.read_csv(train_csv).head(20)
    frame.loc[0, "colour"] = "green"
    frame["unused"] = 1.0
    new = tmp_path / "new.csv"
    frame.to_csv(new, index=False)
    result = run("score", str(bundle), str(new), "-o", str(tmp_path / "o.csv"))
    assert result.exit_code == 0
    assert "ignoring column(s) not seen in training: unused" in result.stderr
    assert ("new.csv: column 'colour' has 1 value(s) not seen in training ('green'); they are "
            "encoded as all-zero") in result.stderr


def test_scoring_needs_only_the_columns_the_model_uses(train_csv, tmp_path):
    """At scoring, the fit-time id column, excluded columns and constant (dropped) columns may be
    absent: the id column is then left out of the output with a warning."""
    frame = pd.read_csv(train_csv)
    frame["site"] = "A"  # constant: dropped at fit time
    frame["note"] = "free text"  # excluded at fit time
    with_extras = tmp_path / "with_extras.csv"
    frame.to_csv(with_extras, index=False)
    bundle = tmp_path / "m"
    result = run("fit", str(with_extras), "-o", str(bundle), "--id-column", "row_id",
                 "--label-column", "label", "--exclude", "note", "--contamination", "0.05", *FAST)
    assert result.exit_code == 0, result.output
    bare = tmp_path / "bare.csv"
    frame.drop(columns=["row_id", "site", "note", "label"]).to_csv(bare, index=False)
    out = tmp_path / "o.csv"
    result = run("score", str(bundle), str(bare), "-o", str(out), "-q")
    assert result.exit_code == 0, result.output
    assert "bare.csv: no column 'row_id' (the id column at fit time)" in result.stderr
    scores = pd.read_csv(out)
    assert list(scores.columns) == ["anomaly_score", "anomaly_probability", "is_anomaly",
                                    "top_features"]
    flagged = int(scores["is_anomaly"].sum())
    assert f"scored 200 rows, {flagged} flagged as anomalies" in result.stdout
    assert roc_auc_score(frame["label"], scores["anomaly_score"]) > 0.95  # broken rows on top


def test_a_mistyped_column_name_is_an_error_with_the_closest_name(train_csv, tmp_path):
    out = tmp_path / "o.csv"
    for command, target in (("detect", out), ("fit", tmp_path / "bundle")):
        result = run(command, str(train_csv), "-o", str(target), "--id-column", "row_id",
                     "--label-column", "lable", *FAST)
        assert result.exit_code == 2 and not target.exists()
        assert result.stderr.strip() == (f"error: {train_csv}: no column 'lable' (given as "
                                          "--label-column); did you mean 'label'?")
    unlike = run("detect", str(train_csv), "-o", str(out), "--exclude", "zzz", *FAST)
    assert unlike.stderr.strip().endswith(
        "no column 'zzz' (given as --exclude); columns are: row_id, f0, f1, f2, f3, f4, f5, "
        "colour, label")
    bundle = tmp_path / "model"
    assert run("fit", str(train_csv), "-o", str(bundle), "--id-column", "row_id",
               "--label-column", "label", *FAST).exit_code == 0
    unlabelled = tmp_path / "new.csv"
    pd.read_csv(train_csv).drop(columns="label").to_csv(unlabelled, index=False)
    scored = run("score", str(bundle), str(unlabelled), "-o", str(out))
    assert scored.exit_code == 0 and len(pd.read_csv(out)) == 200  # scoring needs no labels
    # evaluate reads the table a chunk at a time: the error comes alone, before any progress bar
    evaluated = run("evaluate", str(bundle), str(train_csv), "--label-column", "lable")
    assert evaluated.exit_code == 2
    assert evaluated.stderr.strip() == (f"error: {train_csv}: no column 'lable' (given as "
                                        "--label-column); did you mean 'label'?")


def test_repeated_header_name_is_warned_and_read_as_numbered_copies(tmp_path):
    x = low_rank_table(60, d=3)
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a\n" + "\n".join(",".join(f"{v:.4f}" for v in row) for row in x) + "\n")
    out = tmp_path / "o.csv"
    result = run("detect", str(path), "-o", str(out), "--top-features", "3", *FAST)
    assert result.exit_code == 0, result.output
    assert "column 'a' appears 2 times in the header and is read as 'a', 'a.1'" in result.stderr
    named = {part.split(" (")[0] for cell in pd.read_csv(out)["top_features"] for part in cell.split("; ")}
    assert named == {"a", "a.1", "b"}


def test_a_row_number_column_is_warned_about_and_named_in_the_advice(tmp_path):
    frame = pd.DataFrame(low_rank_table(60, d=3), columns=list("abc"))
    frame.insert(0, "row", np.arange(100, 160))
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    result = run("fit", str(path), "-o", str(tmp_path / "m"), *FAST)
    assert result.exit_code == 0, result.output
    assert ("column 'row' changes in the same direction in every row (100 to 159)"
            in result.stderr)
    assert "--id-column 'row'" in result.stderr
    quiet = run("fit", str(path), "--id-column", "row", "-o", str(tmp_path / "m2"), *FAST)
    assert quiet.exit_code == 0 and "same direction" not in quiet.stderr
    shuffled = frame.assign(row=frame["row"].sample(frac=1.0, random_state=0).to_numpy())
    shuffled.to_csv(path, index=False)
    assert ("column 'row' holds each whole number from 100 to 159 once"
            in run("fit", str(path), "-o", str(tmp_path / "m3"), *FAST).stderr)
    frame.drop(columns="row").to_csv(path, index=False)  # measurements are not counters
    assert "like a row number" not in run("fit", str(path), "-o", str(tmp_path / "m4"), *FAST).stderr


def test_missing_values_are_imputed_and_constant_columns_dropped(tmp_path):
    frame = pd.DataFrame(low_rank_table(60, d=4), columns=list("abcd"))
    frame.loc[3, "a"] = np.nan
    frame["same"] = 7.0
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "o.csv"
    result = run("detect", str(path), "-o", str(out), *FAST)
    assert result.exit_code == 0, result.output
    assert "dropped constant column(s): same" in result.stderr
    assert np.isfinite(pd.read_csv(out)["anomaly_score"]).all()


def test_delimiter_is_sniffed_and_parquet_is_read(tmp_path):
    frame = pd.DataFrame(low_rank_table(60, d=4), columns=list("abcd"))
    frame.to_csv(tmp_path / "semi.csv", sep=";", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("semi.csv", "t.parquet"):
        out = tmp_path / f"{name}.out.csv"
        result = run("detect", str(tmp_path / name), "-o", str(out), *FAST)
        assert result.exit_code == 0, result.output
        assert len(pd.read_csv(out)) == 60


def test_decimal_commas_are_read_as_numbers_in_every_reader(tmp_path):
    from aetool.data.tables import iter_table_chunks, read_table

    frame = pd.DataFrame(low_rank_table(60, d=3).astype(float), columns=["temp", "pressure", "flow"])
    frame.insert(0, "site", [f"s{i % 3}" for i in range(60)])
    european = tmp_path / "eu.csv"
    frame.to_csv(european, sep=";", decimal=",", index=False)
    assert "." not in european.read_text()  # every number is written 0,123
    read = read_table(european)
    pd.testing.assert_frame_equal(read, frame, check_exact=False, atol=1e-12)
    pd.testing.assert_frame_equal(pd.concat(list(iter_table_chunks(european, 25))), frame,
                                  check_exact=False, atol=1e-12)
    tabbed = tmp_path / "points.tsv"
    frame.to_csv(tabbed, sep="\t", index=False)  # decimal points stay decimal points
    pd.testing.assert_frame_equal(read_table(tabbed), frame, check_exact=False, atol=1e-12)
    result = run("detect", str(european), "-o", str(tmp_path / "o.csv"), *FAST)
    assert result.exit_code == 0, result.output


def test_compressed_tables_are_read_and_spreadsheets_refused(train_csv, tmp_path):
    import zipfile

    from aetool.data.tables import read_table

    frame = pd.read_csv(train_csv)
    for suffix in (".gz", ".bz2", ".xz", ".zip"):
        packed = tmp_path / f"train.csv{suffix}"
        frame.to_csv(packed, sep=";", index=False)
        pd.testing.assert_frame_equal(read_table(packed), frame)
    out = tmp_path / "o.csv"
    result = run("detect", str(tmp_path / "train.csv.gz"), "-o", str(out), "--id-column",
                 "row_id", "--label-column", "label", *FAST)
    assert result.exit_code == 0 and len(pd.read_csv(out)) == 200, result.output
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes((tmp_path / "train.csv.gz").read_bytes()[:300])
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a.csv", "a\n1\n2\n")
        archive.writestr("b.csv", "a\n1\n2\n")
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    for name, message in (("cut.csv.gz", "cannot be read (EOFError); a compressed file may be "
                                         "damaged or cut short"),
                          ("two.zip", "a zipped table must hold exactly one file, this holds 2"),
                          ("sheet.xlsx", "spreadsheets are not read; save the sheet as CSV or "
                                         "Parquet")):
        bad = run("detect", str(tmp_path / name), "-o", str(tmp_path / "bad.csv"), *FAST)
        assert bad.exit_code == 2 and not (tmp_path / "bad.csv").exists()
        assert bad.stderr.strip() == f"error: {tmp_path / name}: {message}"


def bad_inputs(tmp_path, train_csv):
    """(name, file contents writer) pairs: each must fail with a one-line message."""
    good = pd.read_csv(train_csv)
    cases = {}

    def write(name, text=None, data=None, frame=None):
        path = tmp_path / name
        if frame is not None:
            frame.to_csv(path, index=False)
        elif data is not None:
            path.write_bytes(data)
        else:
            path.write_text(text)
        return path

    cases["missing file"] = (tmp_path / "nope.csv", "file not found")
    cases["empty file"] = (write("empty.csv", ""), "file is empty")
    cases["header only"] = (write("header.csv", "a,b,c\n"), "header but no data rows")
    cases["single row"] = (write("one.csv", "a,b\n1,2\n"), "1 sample")
    text = good.copy()
    text["note"] = [f"free text number {i}" for i in range(len(text))]
    cases["free text"] = (write("text.csv", frame=text), "column 'note' looks like free text")
    stray = good.copy()
    stray["f1"] = stray["f1"].astype(object)
    stray.loc[5, "f1"] = "1.2.3"
    cases["stray text"] = (write("stray.csv", frame=stray),
                           "column 'f1' holds numbers but 1 value(s) are text, first '1.2.3' at "
                           "data row 6")
    nan = good.copy()
    nan["blank"] = np.nan
    cases["all-NaN column"] = (write("nan.csv", frame=nan), "column 'blank' is empty")
    inf = good.copy()
    inf.loc[5, "f1"] = np.inf
    cases["inf values"] = (write("inf.csv", frame=inf), "column 'f1' has infinite values")
    dates = good.copy()
    dates["seen"] = pd.date_range("2024-01-01", periods=len(dates), freq="h")
    dates.to_parquet(tmp_path / "dates.parquet")
    cases["date column"] = (tmp_path / "dates.parquet",
                            "column 'seen' holds dates or times")
    cases["non-UTF-8"] = (write("latin.csv", data="a,b\ncafé,2\n".encode("latin-1") * 3),
                          "not UTF-8")
    return cases


LEFT_OUT = ("free text", "all-NaN column", "date column")  # the rest of the table is used


@pytest.mark.parametrize("case", ["missing file", "empty file", "header only", "single row",
                                  "stray text", "inf values", "non-UTF-8"])
def test_bad_training_input_gives_one_line_error(case, tmp_path, train_csv):
    path, message = bad_inputs(tmp_path, train_csv)[case]
    out = tmp_path / "out.csv"
    result = run("detect", str(path), "-o", str(out), "--exclude", "row_id", *FAST) \
        if case in ("stray text", "inf values") else \
        run("detect", str(path), "-o", str(out), *FAST)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0] and str(path.name) in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob(".out.csv*"))


@pytest.mark.parametrize("case", LEFT_OUT)
def test_a_column_the_model_cannot_use_is_left_out_with_a_warning(case, tmp_path, train_csv):
    path, message = bad_inputs(tmp_path, train_csv)[case]
    out = tmp_path / "out.csv"
    result = run("detect", str(path), "-o", str(out), "--exclude", "row_id", *FAST)
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if "left out 1 column(s)" in line]
    assert len(warning) == 1 and message.removeprefix("column ") in warning[0]
    assert len(pd.read_csv(out)) == len(pd.read_csv(train_csv))


def test_partly_labelled_data_is_evaluated_on_its_labelled_rows(train_csv, tmp_path):
    frame = pd.read_csv(train_csv)
    frame["label"] = frame["label"].astype("Int64")
    frame.loc[150:, "label"] = pd.NA  # the last 50 rows have no label
    path = tmp_path / "partly.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "o.csv"
    result = run("detect", str(path), "-o", str(out), "--label-column", "label", "--id-column",
                 "row_id", "--threshold-from", str(path), *FAST)
    assert result.exit_code == 0, result.output
    assert "partly.csv: 50 of 200 rows have no label; they are scored but left out" in result.stderr
    assert "rows=150  anomalies=10" in result.stdout
    assert len(pd.read_csv(out)) == 200
    frame["label"] = pd.NA
    frame.to_csv(path, index=False)
    result = run("detect", str(path), "-o", str(out), "--label-column", "label", *FAST)
    assert result.exit_code == 2 and "label column 'label' is empty" in result.stderr


def test_label_column_must_be_binary(train_csv, tmp_path):
    frame = pd.read_csv(train_csv)
    frame["label"] = np.arange(len(frame)) % 3
    path = tmp_path / "labels.csv"
    frame.to_csv(path, index=False)
    result = run("detect", str(path), "-o", str(tmp_path / "o.csv"), "--label-column", "label",
                 "--id-column", "row_id", *FAST)
    assert result.exit_code == 2
    assert "label column 'label' must be binary" in result.stderr
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("change,message", [
    ("drop", "missing column 'f3' that the model was trained on"),
    ("text", "column 'f3' was numeric in training but holds text here"),
])
def test_scoring_data_that_does_not_match_training(change, message, train_csv, tmp_path):
    bundle = tmp_path / "m"
    run("fit", str(train_csv), "-o", str(bundle), "--id-column", "row_id", "--label-column",
        "label", *FAST)
    frame = pd.read_csv(train_csv)
    if change == "drop":
        frame = frame.drop(columns=["f3"])
    else:
        frame["f3"] = "abc"
    path = tmp_path / "changed.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "o.csv"
    result = run("score", str(bundle), str(path), "-o", str(out))
    assert result.exit_code == 2 and message in result.stderr and "changed.csv" in result.stderr
    assert not out.exists()


def test_bundle_that_is_not_a_bundle(tmp_path, train_csv):
    (tmp_path / "folder").mkdir()
    result = run("score", str(tmp_path / "folder"), str(train_csv), "-o", str(tmp_path / "o.csv"))
    assert result.exit_code == 2 and "not an aetool bundle" in result.stderr
    assert "Traceback" not in result.output


def test_set_reaches_detector_settings_and_rejects_bad_values(train_csv, tmp_path):
    bundle = tmp_path / "model"
    result = run("fit", str(train_csv), "-o", str(bundle), "--id-column", "row_id",
                 "--label-column", "label", "--set", "log_views=false",
                 "--set", "score_method=reconstruction", "--set", "trim=0.05",
                 "--set", "code_core=0.8", *FAST)
    assert result.exit_code == 0, result.output
    manifest = json.loads((bundle / "manifest.json").read_text())
    params = manifest["params"]
    assert (params["log_views"], params["score_method"], params["trim"], params["code_core"]) == (
        False, "reconstruction", 0.05, 0.8)
    assert manifest["preprocessing"]["log_views"] == {}
    core = run("fit", str(train_csv), "-o", str(tmp_path / "c"), "--set", "code_core=2", "-q")
    assert core.exit_code == 2 and core.stderr.strip() == (
        "error: code_core must be 'auto' or a share of training codes in [0.5, 1], got 2.0")
    for setting, expected in [("epochs=abc", "'epochs' expects int, got 'abc'"),
                              ("lr=fast", "'learning_rate' expects float, got 'fast'"),
                              ("log_views=maybe", "'log_views' expects bool, got 'maybe'")]:
        bad = run("fit", str(train_csv), "-o", str(tmp_path / "bad"), "--set", setting, "-q")
        assert bad.exit_code == 2, setting
        assert bad.stderr.strip().splitlines() == [f"error: --set: setting {expected}"]
        assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("args, message", [
    (["score", "b", "d.csv", "--precision", "fp64"],
     "error: Invalid value for '--precision': 'fp64' is not one of 'fp32', 'bf16', 'fp16'; "
     "see 'cli score --help'"),
    (["score", "b"], "error: Missing argument 'DATA'; see 'cli score --help'"),
    (["detect", "d.csv", "--no-such-option"],
     "error: No such option '--no-such-option'; see 'cli detect --help'"),
    (["detect", "d.csv", "-o", "o.csv", "--contamination", "0.7"],
     "error: Invalid value for '--contamination': contamination must be a share in (0, 0.5) or "
     "'auto', got 0.7; see 'cli detect --help'"),
    (["fit", "d.csv", "-o", "m", "--contamination", "most"],
     "error: Invalid value for '--contamination': contamination must be a share in (0, 0.5) or "
     "'auto', got 'most'; see 'cli fit --help'"),
])
def test_usage_errors_are_one_line_with_exit_code_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [message]


@pytest.mark.parametrize("args, message", [
    (["--set", "epochs=0"], "setting 'epochs' must be at least 1, got 0"),
    (["--set", "batch_size=0"], "setting 'batch_size' must be at least 1, got 0"),
    (["--set", "lr=-1"], "setting 'learning_rate' must be a number > 0, got -1.0"),
    (["--set", "patience=-1"], "setting 'patience' must be at least 0, got -1"),
    (["--set", "code_size=-3"], "setting 'code_size' must be a finite number >= 0, got -3"),
    (["--set", "weight_penalty=-1"], "setting 'weight_penalty' must be a finite number >= 0"),
    (["--set", "backbone=rnn"], "setting 'backbone' must be mlp, conv or auto, got 'rnn'"),
    (["--set", "activation=foo"], "variant 'ae': unknown activation 'foo'; choose one of"),
    (["--threshold", "nan"], "threshold must be a finite anomaly score, got nan"),
    (["--top-features", "-1"], "Invalid value for '--top-features': -1 is not in the range"),
])
def test_impossible_settings_are_one_line_errors(args, message, train_csv, tmp_path):
    out = tmp_path / "o.csv"
    result = run("detect", str(train_csv), "-o", str(out), "--exclude", "row_id", *args, "-q")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.output and not out.exists()


def test_output_format_follows_the_suffix_and_unknown_ones_fail_before_training(train_csv,
                                                                               tmp_path):
    result = run("detect", str(train_csv), "-o", str(tmp_path / "o.xlsx"), "--set", "epochs=0")
    assert result.exit_code == 2  # the output name is checked before the settings and the data
    assert result.stderr.strip() == (f"error: {tmp_path / 'o.xlsx'}: cannot write '.xlsx' files; "
                                     "name the output .csv, .tsv or .parquet")
    assert not list(tmp_path.glob("*o.xlsx*"))
    result = run("detect", str(train_csv), "-o", str(tmp_path / "o.tsv"), "--id-column", "row_id",
                 *FAST)
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "o.tsv", sep="\t").columns[0] == "row_id"


def test_trim_outside_its_range_is_refused(train_csv, tmp_path):
    bad = run("fit", str(train_csv), "-o", str(tmp_path / "bad"), "--set", "trim=0.7", *FAST)
    assert bad.exit_code == 2
    assert bad.stderr.strip().splitlines() == [
        "error: trim must be in [0, 0.5) (the share of training rows to leave out of the refit), "
        "got 0.7"]
    assert not (tmp_path / "bad").exists()


def test_a_detector_fitted_on_an_array_scores_a_csv_by_position(tmp_path):
    """A bundle saved from AutoencoderDetector.fit(ndarray) has no column names: the CLI takes
    a CSV's columns in order (it raised AttributeError before), and a wrong width is one line."""
    from aetool import AutoencoderDetector

    table = low_rank_table(120, 5)
    detector = AutoencoderDetector(epochs=2).fit(table)
    detector.save(tmp_path / "b")
    pd.DataFrame(table, columns=[f"c{i}" for i in range(5)]).to_csv(tmp_path / "t.csv", index=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["score", str(tmp_path / "b"), str(tmp_path / "t.csv"),
                                 "-o", str(tmp_path / "s.csv"), "-q"])
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(tmp_path / "s.csv")["anomaly_score"].to_numpy()
    np.testing.assert_allclose(scores, -detector.score_samples(table), rtol=1e-4)  # CSV digits
    pd.DataFrame(table[:, :4]).to_csv(tmp_path / "narrow.csv", index=False)
    narrow = runner.invoke(cli, ["score", str(tmp_path / "b"), str(tmp_path / "narrow.csv"),
                                 "-o", str(tmp_path / "n.csv"), "-q"])
    assert narrow.exit_code == 2
    assert "has 4 feature columns; the model was fitted on an array of 5" in narrow.output


def test_f1_max_is_the_best_f1_over_all_thresholds():
    """The threshold-free F1 anomalib reports: checked against a brute-force sweep."""
    from sklearn.metrics import f1_score

    from aetool.tasks.evaluation import metrics

    rng = np.random.default_rng(0)
    labels = (rng.random(200) < 0.3).astype(int)
    scores = labels * 0.8 + rng.random(200)
    brute = max(f1_score(labels, (scores >= t).astype(int)) for t in scores)
    result = metrics(labels, scores, (scores > 1.2).astype(int))
    assert result["f1_max"] == pytest.approx(brute)
    assert result["f1_max"] >= result["f1_at_threshold"]


def test_evaluate_reads_a_table_a_chunk_at_a_time_with_the_same_results(train_csv, tmp_path,
                                                                       recwarn):
    """``evaluate`` on a CSV reads it in chunks (a labelled table larger than memory is
    evaluated too), with the metrics and figures of scoring it whole; the labels' encoding is
    the whole column's: under -1/1 (-1 = anomaly) a chunk of only 1s is normal rows."""
    from aetool.tasks.detect import TableSpec, evaluate_table, fit_detector, load_table
    from aetool.tasks.evaluation import RunningTop, evaluate_table_file

    spec = TableSpec(id_column="row_id", label_column="label")
    table = load_table(train_csv, spec, need_labels=True, for_scoring=True)
    detector = fit_detector(table, spec, {"epochs": 5, "batch_size": 32})
    whole = evaluate_table(detector, table, tmp_path / "p1")
    detector.set_inference(batch_size=16)  # chunks of 32 rows: whole batches of 16
    chunked = evaluate_table_file(detector, str(train_csv), spec, str(tmp_path / "p2"),
                                  chunk_rows=32, progress=False)
    assert chunked == pytest.approx(whole, abs=1e-9)
    assert sorted(p.name for p in (tmp_path / "p2").iterdir()) == sorted(
        p.name for p in (tmp_path / "p1").iterdir())
    frame = pd.read_csv(train_csv)
    frame["label"] = np.where(frame["label"] == 1, -1, 1)  # rows 10-199: only 1s per chunk
    frame.loc[150:, "label"] = np.nan  # partly labelled: said once, not once per chunk
    frame.to_csv(tmp_path / "signed.csv", index=False)
    recwarn.clear()
    signed = evaluate_table_file(detector, str(tmp_path / "signed.csv"), spec, chunk_rows=32,
                                 progress=False)
    assert signed["anomalies"] == 10 and signed["rows"] == 150
    said = [str(w.message) for w in recwarn if "have no label" in str(w.message)]
    assert said == [f"{tmp_path / 'signed.csv'}: 50 of 200 rows have no label; they are "
                    "scored but left out of the evaluation"]
    top = RunningTop(3)  # the running top keeps what sorting every score would
    for part in (np.array([1.0, 5.0]), np.array([5.0, 2.0, 9.0])):
        top.add(part, ids=[f"i{v}" for v in part])
    assert list(top.kept["ids"]) == ["i9.0", "i5.0", "i5.0"] and list(top.kept["score"]) == [
        9.0, 5.0, 5.0]


@pytest.mark.parametrize("size", ["0,32", "-3,32", "abc", "1,2,3", ","])
def test_an_image_size_that_is_no_size_is_one_line(size, tmp_path):
    """'0,32' reached PIL and ended in a traceback; '1,2,3' was read as 1x3."""
    result = run("fit", str(tmp_path), "--image-size", size, "-o", str(tmp_path / "m"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip() == (
        f"error: --image-size expects H,W (or one size for a square) of whole numbers of pixels "
        f"of at least 1, got '{size}'")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_threshold_that_is_no_score_is_refused(value, train_csv, tmp_path):
    """--threshold nan flagged nothing (every comparison with NaN is false) and said nothing."""
    bundle = tmp_path / "m"
    columns = ("--id-column", "row_id", "--label-column", "label")
    fitted = run("fit", str(train_csv), "-o", str(bundle), *columns, "--threshold", value, *FAST)
    assert fitted.exit_code == 2 and not bundle.exists()
    assert run("fit", str(train_csv), "-o", str(bundle), *columns, *FAST).exit_code == 0
    for command in (("score", str(bundle), str(train_csv), "-o", str(tmp_path / "s.csv")),
                    ("evaluate", str(bundle), str(train_csv), "--label-column", "label")):
        result = run(*command, "--threshold", value)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert f"a threshold must be a finite anomaly score, got {value}" in result.stderr
    assert not (tmp_path / "s.csv").exists()


def test_the_explanation_heatmap_labels_shares_under_one_percent(tmp_path, monkeypatch):
    """On a wide table every share is under 1%: whole percents labelled the colour bar 0% from
    end to end."""
    from aetool import plots

    labels = []

    def keep_ticks(fig, path):
        fig.canvas.draw()
        colorbar = fig.axes[-1]
        labels.extend(t.get_text() for t in colorbar.get_yticklabels() if t.get_text())
        plt = plots._pyplot()
        plt.close(fig)
        return path

    monkeypatch.setattr(plots, "save_figure", keep_ticks)
    shares = np.linspace(0.0005, 0.006, 12).reshape(3, 4)
    plots.explanation_heatmap(shares, ["row 1", "row 2", "row 3"], ["a", "b", "c", "d"],
                              tmp_path / "map.png")
    assert len(labels) >= 3 and len(set(labels)) == len(labels)  # no run of '0%'
    assert any("." in label for label in labels)


def test_info_says_what_the_score_is_made_of(tmp_path, train_csv):
    """A categorical table is scored by its reconstruction error alone ('auto'); info says so,
    and says the combined score's parts on a numeric table."""
    from tests.test_detector import prototype_table

    frame, labels = prototype_table(rows=600)
    frame["label"] = labels
    frame.to_csv(tmp_path / "cat.csv", index=False)
    fitted = run("fit", str(tmp_path / "cat.csv"), "--label-column", "label", "--set",
                 "epochs=2", "-o", str(tmp_path / "cat"), "-q")
    assert fitted.exit_code == 0
    assert "note: 100% of the encoded columns are categorical codes: scored by reconstruction" \
        in fitted.output
    info = run("info", str(tmp_path / "cat")).stdout
    assert "score:       reconstruction error alone (most columns are categorical" in info
    assert run("fit", str(train_csv), "--id-column", "row_id", "--label-column", "label",
               "--set", "epochs=2", "-o", str(tmp_path / "num"), "-q").exit_code == 0
    info = run("info", str(tmp_path / "num")).stdout
    assert "score:       reconstruction error and code distance" in info
    assert "categorical codes" not in run("fit", str(train_csv), "--id-column", "row_id",
                                          "--set", "epochs=2", "-o", str(tmp_path / "n2"),
                                          "-q").output
    assert "asked" not in info
