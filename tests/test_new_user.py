"""What a new user meets (issue #25): ids kept intact by denoising, probabilities that agree
with the flags, dates refused, honest messages, and thresholds that move without retraining."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from aetool import Autoencoder
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
def test_date_text_columns_are_left_out_as_dates(dates, tmp_path):
    path = tmp_path / "dated.csv"
    n = len(dates) * 4
    pd.DataFrame({"a": np.arange(n, dtype=float), "b": np.arange(n, dtype=float) ** 0.5,
                  "when": dates * 4}).to_csv(path, index=False)
    result = run("detect", path, "-o", tmp_path / "s.csv", *FAST)
    assert result.exit_code == 0, result.output
    assert "left out 1 column(s)" in result.stderr
    assert "'when' holds dates or times as text" in result.stderr
    assert "add numeric features derived from it (hour, weekday)" in result.stderr
    assert len(pd.read_csv(tmp_path / "s.csv")) == n


def test_columns_the_model_cannot_use_are_left_out_in_one_warning(tmp_path):
    """An identifier and a date column in one table: the table is scored on the rest, both
    named in one warning with what they hold and how to use them; --exclude silences it, and
    scoring works with or without them."""
    path = tmp_path / "mixed.csv"
    n = 120
    rng = np.random.default_rng(0)
    pd.DataFrame({"id": [f"r{i}" for i in range(n)], "a": rng.normal(size=n),
                  "b": rng.normal(size=n),
                  "when": [f"2024-03-{d % 28 + 1:02d}" for d in range(n)]}).to_csv(path,
                                                                                 index=False)
    result = run("detect", path, "-o", tmp_path / "s.csv", "--save-model", tmp_path / "m",
                 *FAST)
    assert result.exit_code == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "left out" in line]
    assert len(warning) == 1 and "left out 2 column(s) the model cannot use" in warning[0]
    assert "'id' looks like free text or an identifier" in warning[0]
    assert "pass it as --id-column" in warning[0]
    assert "'when' holds dates or times as text" in warning[0]
    assert warning[0].endswith("(--exclude 'id,when' leaves them out without this warning)")
    scores = pd.read_csv(tmp_path / "s.csv")["anomaly_score"]
    assert len(scores) == n
    quiet = run("detect", path, "--exclude", "id,when", "-o", tmp_path / "t.csv", *FAST)
    assert quiet.exit_code == 0 and "left out" not in quiet.stderr
    np.testing.assert_allclose(pd.read_csv(tmp_path / "t.csv")["anomaly_score"], scores)
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert set(manifest["preprocessing"]["dropped"]) == {"id", "when"}
    assert "not used:    2 (id, when; constant or unusable, may be absent when scoring)" in \
        run("info", tmp_path / "m").stdout.splitlines()
    pd.read_csv(path)[["a", "b"]].to_csv(tmp_path / "ab.csv", index=False)
    assert run("score", tmp_path / "m", tmp_path / "ab.csv", "-o",
               tmp_path / "u.csv").exit_code == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "u.csv")["anomaly_score"], scores)


def test_columns_to_mend_are_still_refused_together(tmp_path):
    """A typo in a column of numbers and infinite values are mistakes to mend, not columns to
    do without: both named in one refusal, nothing written."""
    path = tmp_path / "broken.csv"
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 3)), columns=["a", "b", "c"])
    frame["a"] = frame["a"].astype(object)
    frame.loc[3, "a"] = "1.2.3"
    frame.loc[5, "c"] = np.inf
    frame.to_csv(path, index=False)
    result = run("detect", path, "-o", tmp_path / "s.csv", *FAST)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "2 columns cannot be used" in result.stderr
    assert "(1) column 'a' holds numbers but 1 value(s) are text" in result.stderr
    assert "(2) column 'c' has infinite values" in result.stderr
    assert not (tmp_path / "s.csv").exists()


def test_numbers_written_as_a_spreadsheet_shows_them_are_read_as_numbers(tmp_path):
    """Thousands separators, currency and percent signs: read as the numbers they are (one
    warning per column, at training), the same way when scoring; the scores equal those of the
    same table written plainly. Text that is not a number is still refused."""
    from aetool.data.preprocess import TablePreprocessor
    from aetool.errors import DataError

    rng = np.random.default_rng(0)
    n = 200
    amount, rate, price = rng.normal(5000, 1500, n), rng.normal(12, 2, n), rng.normal(30, 5, n)
    written = pd.DataFrame({"amount": [f"{v:,.2f}" for v in amount],
                            "rate": [f"{v:.1f}%" for v in rate],
                            "price": [f"${v:.2f}" for v in price]})
    plain = pd.DataFrame({"amount": np.round(amount, 2), "rate": np.round(rate, 1),
                          "price": np.round(price, 2)})
    with pytest.warns(UserWarning, match=r"column 'amount' holds numbers written as text "
                                         r"\(e.g. '[\d,]+\.\d\d', read as"):
        prep = TablePreprocessor.fit(written, "written.csv")
    assert prep.numeric_columns == ["amount", "rate", "price"]
    assert np.allclose(prep.transform(written)[0], TablePreprocessor.fit(plain).transform(plain)[0])
    marked = written.assign(price=["?" if i % 10 == 0 else v for i, v in
                                   enumerate(written["price"])])  # UCI's missing values
    blank = plain.assign(price=[np.nan if i % 10 == 0 else v for i, v in
                                enumerate(plain["price"])])
    with pytest.warns(UserWarning, match=r"column 'price' holds numbers with 20 value\(s\) "
                                         r"'\?', read as missing"):
        prep = TablePreprocessor.fit(marked, "marked.csv")
    assert np.allclose(prep.transform(marked)[0], TablePreprocessor.fit(blank).transform(blank)[0])
    with pytest.warns(UserWarning, match="left out 1 column.*'price' is empty"):
        assert "price" not in TablePreprocessor.fit(written.assign(price="?"), "marks.csv").order
    stray = written.assign(price=[*written["price"][:-1], "cheap"])  # a typo among numbers
    with pytest.raises(DataError, match="column 'price' holds numbers but 1 value"):
        TablePreprocessor.fit(stray, "stray.csv")
    for name, frame in (("written", written), ("plain", plain)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        result = run("detect", tmp_path / f"{name}.csv", "-o", tmp_path / f"{name}-s.csv", *FAST)
        assert result.exit_code == 0, result.stderr
    scores = [pd.read_csv(tmp_path / f"{name}-s.csv")["anomaly_score"] for name in
              ("written", "plain")]
    assert np.allclose(*scores)


def test_text_labels_with_a_normal_word_are_read_as_normal_and_anomalies(tmp_path):
    """KDD-style labels ('normal.' and attack names) and yes/no: the value that reads as
    normal is 0, every other value 1, said in a warning; the metrics equal those of 0/1
    labels. Two values of which none reads as normal are refused with what to write."""
    from aetool.data.source import binary_labels
    from aetool.errors import DataError

    with pytest.warns(UserWarning, match=r"'normal\.' is taken as normal \(0\), 'back', "
                                         r"'smurf' as anomalies"):
        coded = binary_labels(["normal.", "smurf", "back", "normal.", None], "kind", "k.csv")
    assert np.array_equal(coded[:4], [0, 1, 1, 0]) and np.isnan(coded[4])
    with pytest.warns(UserWarning):
        assert list(binary_labels(["No", "yes", "no"], "kind", "k.csv")) == [0, 1, 0]
    with pytest.raises(DataError, match="name the normal rows with one of: normal, good"):
        binary_labels(["x", "y"], "kind", "k.csv")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=list("abc"))
    attack = rng.random(200) < 0.1
    frame.loc[attack, "a"] += 4
    outputs = []
    for name, labels in (("text", np.where(attack, "attack", "normal")), ("coded", attack * 1)):
        frame.assign(kind=labels).to_csv(tmp_path / f"{name}.csv", index=False)
        result = run("detect", tmp_path / f"{name}.csv", "--label-column", "kind", "-o",
                     tmp_path / f"{name}-s.csv", *FAST)
        assert result.exit_code == 0, result.stderr
        outputs.append(result.stdout.strip().splitlines()[-1])
    assert outputs[0] == outputs[1] and "roc_auc=" in outputs[0]


def test_normal_class_names_the_normal_value_of_a_table_label_column(tmp_path):
    """--normal-class was for images only and silently ignored on tables: labels 'B'/'M' or
    2/1 were refused as not binary. It now names the normal value; the metrics equal those of
    0/1 labels, read a chunk at a time or whole, and a value the column lacks is refused."""
    from aetool.data.source import binary_labels
    from aetool.errors import DataError

    assert list(binary_labels([2, 1, 2.0], "kind", "k.csv", normal="2")) == [0, 1, 0]
    assert list(binary_labels([0, 1], "kind", "k.csv", normal="1")) == [1, 0]  # told wins
    with pytest.raises(DataError, match="has no value '3' \\(given as --normal-class\\)"):
        binary_labels([1, 2], "kind", "k.csv", normal="3")
    with pytest.raises(DataError, match="name the normal value with --normal-class VALUE"):
        binary_labels([1, 2], "kind", "k.csv")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=list("abc"))
    bad = rng.random(200) < 0.1
    frame.loc[bad, "b"] -= 4
    frame = frame.assign(coded=bad * 1, text=np.where(bad, "M", "B"), number=np.where(bad, 1, 2))
    frame.to_csv(tmp_path / "t.csv", index=False)
    bundle = tmp_path / "m"
    assert run("fit", tmp_path / "t.csv", "--exclude", "coded,text,number", "-o", bundle,
               *FAST).exit_code == 0
    lines = []
    for column, normal in (("coded", None), ("text", "B"), ("number", "2")):
        extra = ["--normal-class", normal] if normal else []
        for rows in ("50", "1000"):  # a chunk at a time and whole
            result = run("evaluate", bundle, tmp_path / "t.csv", "--label-column", column,
                         "--chunk-rows", rows, *extra)
            assert result.exit_code == 0, result.stderr
            lines.append(result.stdout.strip().splitlines()[-1])
    assert len(set(lines)) == 1 and "anomalies=" in lines[0]
    detected = run("detect", tmp_path / "t.csv", "--exclude", "coded,number", "--label-column",
                   "text", "--normal-class", "B", "-o", tmp_path / "d.csv", *FAST)
    assert detected.exit_code == 0, detected.stderr
    assert f"anomalies={int(bad.sum())}" in detected.stdout
    # options that would do nothing on this table are refused, not ignored
    for extra, message in ((["--normal-class", "B"], "name that column with --label-column"),
                           (["--image-size", "28,28"], "--image-size is for images")):
        idle = run("detect", tmp_path / "t.csv", "--exclude", "coded,number,text", *extra,
                   "-o", tmp_path / "idle.csv", *FAST)
        assert idle.exit_code == 2 and message in idle.stderr
    # fitted with them, the bundle keeps both: evaluate needs neither again, info shows them
    kept = tmp_path / "kept"
    assert run("fit", tmp_path / "t.csv", "--exclude", "coded,number", "--label-column", "text",
               "--normal-class", "B", "-o", kept, *FAST).exit_code == 0
    assert run("evaluate", kept, tmp_path / "t.csv").stdout.strip().splitlines()[-1] == lines[0]
    assert "also read:   label text, normal class B" in run("info", kept).stdout


def test_a_header_with_spaces_after_its_commas_takes_the_names_as_typed(tmp_path):
    """'id, temp, label' holds ' label': --label-column label was refused ("did you mean
    ' label'?"); each name given is now matched to the one column it means, at fit and
    scoring, and the scores equal those of the plainly written table."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(150, 3)), columns=["temp", "flow", "load"])
    frame.insert(0, "id", np.arange(150))
    frame["label"] = (rng.random(150) < 0.1).astype(int)
    frame.to_csv(tmp_path / "plain.csv", index=False)
    frame.rename(columns=lambda c: c if c == "id" else f" {c}").to_csv(tmp_path / "spaced.csv",
                                                                        index=False)
    outputs = []
    for name in ("plain", "spaced"):
        result = run("detect", tmp_path / f"{name}.csv", "--id-column", "id", "--label-column",
                     "label", "--exclude", "load", "-o", tmp_path / f"{name}-s.csv", *FAST)
        assert result.exit_code == 0, result.stderr
        outputs.append(pd.read_csv(tmp_path / f"{name}-s.csv")["anomaly_score"])
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-6)


def test_a_table_saved_with_its_pandas_index_takes_the_index_as_row_id(tmp_path):
    """df.to_csv(path) writes the index as a first column without a name: it was a feature
    (a row number: new rows beyond its range look anomalous), with a warning asking for
    --exclude 'Unnamed: 0'. It is the row id now, as if --id-column named it."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(150, 3)), columns=["temp", "flow", "load"])
    frame.to_csv(tmp_path / "indexed.csv")  # the index written first, unnamed
    frame.rename_axis("row").to_csv(tmp_path / "named.csv")
    indexed = run("detect", tmp_path / "indexed.csv", "-o", tmp_path / "i.csv", *FAST)
    assert indexed.exit_code == 0, indexed.stderr
    assert "the first column has no name (a pandas index saved with the table)" in indexed.stderr
    assert "like a row number" not in indexed.stderr
    named = run("detect", tmp_path / "named.csv", "--id-column", "row", "-o",
                tmp_path / "n.csv", *FAST)
    assert named.exit_code == 0, named.stderr
    given, written = pd.read_csv(tmp_path / "n.csv"), pd.read_csv(tmp_path / "i.csv")
    assert list(written["Unnamed: 0"]) == list(range(150))
    np.testing.assert_allclose(written["anomaly_score"], given["anomaly_score"], rtol=1e-6)


def test_tables_without_a_header_or_separated_by_spaces_are_read_as_written(tmp_path):
    """numpy.savetxt's and UCI's files: columns separated by spaces were one text column
    (refused as free text), and a CSV without a header lost its first row to the header.
    A header of numbers that are not like the values below it (wavelengths) stays a header;
    JSON and pickles are refused saying what to write instead."""
    rng = np.random.default_rng(4)
    values = rng.normal(size=(120, 4))
    np.savetxt(tmp_path / "spaced.txt", values, fmt="%.5f")
    np.savetxt(tmp_path / "bare.csv", values, fmt="%.5f", delimiter=",")
    pd.DataFrame(values, columns=[f"x{i}" for i in range(4)]).to_csv(tmp_path / "named.csv",
                                                                    index=False)
    scores = {}
    for name in ("spaced.txt", "bare.csv", "named.csv"):
        result = run("detect", tmp_path / name, "-o", tmp_path / f"{name}.out.csv", *FAST)
        assert result.exit_code == 0, result.stderr
        assert ("read as data, not as a header; the columns are named x0 to x3"
                in result.stderr) == (name != "named.csv")
        scores[name] = pd.read_csv(tmp_path / f"{name}.out.csv")["anomaly_score"]
        assert len(scores[name]) == 120
    np.testing.assert_allclose(scores["spaced.txt"], scores["named.csv"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scores["bare.csv"], scores["named.csv"], rtol=1e-4, atol=1e-5)
    # denoised, a file without a header comes back without one
    assert run("denoise", "fit", tmp_path / "bare.csv", "-o", tmp_path / "dn",
               *FAST).exit_code == 0
    assert run("denoise", "apply", tmp_path / "dn", tmp_path / "bare.csv", "-o",
               tmp_path / "bare-clean.csv").exit_code == 0
    back = np.loadtxt(tmp_path / "bare-clean.csv", delimiter=",")
    assert back.shape == (120, 4)
    pd.DataFrame(np.abs(values), columns=[400, 410, 420, 430]).to_csv(tmp_path / "nm.csv",
                                                                      index=False)
    pd.DataFrame(values).to_csv(tmp_path / "counted.csv", index=False)  # header 0,1,2,3
    for name in ("nm.csv", "counted.csv"):
        kept = run("detect", tmp_path / name, "-o", tmp_path / f"{name}.out.csv", *FAST)
        assert kept.exit_code == 0 and "not as a header" not in kept.stderr
        assert len(pd.read_csv(tmp_path / f"{name}.out.csv")) == 120
    for name, message in (("t.json", "JSON is not read"), ("t.pkl", "pickles are never read")):
        (tmp_path / name).write_text("[]")
        refused = run("detect", tmp_path / name, "-o", tmp_path / "r.csv")
        assert refused.exit_code == 2 and message in refused.stderr


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
    unused = run("evaluate-features", path, "--label-column", "y", "--variants", "ae",
                 "--classifiers", "logreg", "--cv", "2", "--epochs", "1", "-q",
                 "-o", tmp_path / "d.csv")
    assert unused.exit_code == 0, unused.output
    warned = [line for line in unused.stderr.splitlines() if "left out" in line]
    assert len(warned) == 1 and warned[0].startswith(f"warning: {path}:"), unused.stderr
    assert "--exclude 'visit_date'" in warned[0]
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


def _image_folder(root, n=24, size=12):
    from tests.conftest import blob_images

    for cls, seed in (("circles", 0), ("squares", 1)):
        (root / cls).mkdir(parents=True)
        for i, image in enumerate(blob_images(n // 2, size, seed=seed)):
            Image.fromarray((image[0] * 255).astype(np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_train_and_features_read_image_folders(tmp_path):
    folder = _image_folder(tmp_path / "shapes")
    bundle = tmp_path / "m"
    result = run("train", folder, "--variant", "ae", "-o", bundle, *FAST)
    assert result.exit_code == 0, result.output
    out = tmp_path / "codes.csv"
    result = run("features", bundle, folder, "-o", out)
    assert result.exit_code == 0, result.output
    codes = pd.read_csv(out).set_index("path")
    assert len(codes) == 24
    # a user with one photograph to encode gives its file: its codes as in the folder
    one = tmp_path / "one.csv"
    result = run("features", bundle, folder / "squares" / "3.png", "-o", one)
    assert result.exit_code == 0, result.output
    single = pd.read_csv(one).set_index("path")
    assert list(single.index) == ["3.png"]
    assert np.allclose(single.loc["3.png"].to_numpy(float),
                       codes.drop(columns="label").loc["squares/3.png"].to_numpy(float),
                       atol=1e-5)
    conditional = run("train", folder, "--variant", "cvae", "-o", tmp_path / "c", *FAST)
    assert conditional.exit_code == 0, conditional.output  # class folders are the labels
    flat = run("train", folder / "squares", "--variant", "cvae", "-o", tmp_path / "f", *FAST)
    assert flat.exit_code == 2  # no classes: says where labels come from for a folder
    assert "class sub-folders in an image folder (FOLDER/CLASS/image.png)" in flat.stderr


def test_large_photographs_are_learnt_whole_at_a_smaller_size_and_encoded_at_any_size(
        tmp_path, monkeypatch):
    """train reads a folder of large images scaled down to WHOLE_IMAGE_MAX_SHORT_SIDE (aspect
    kept, said), or at --image-size; features reads any folder at the model's size and colours,
    so images of other sizes give codes instead of an error."""
    from aetool import defaults

    monkeypatch.setattr(defaults, "WHOLE_IMAGE_MAX_SHORT_SIDE", 16)
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray((rng.random((40, 60)) * 255).astype(np.uint8)).save(
            _mkdir(tmp_path / "photos") / f"{i}.png")
        Image.fromarray((rng.random((30, 25, 3)) * 255).astype(np.uint8)).save(
            _mkdir(tmp_path / "others") / f"{i}.jpg")
    scaled = run("train", tmp_path / "photos", "-o", tmp_path / "m", *FAST)
    assert scaled.exit_code == 0, scaled.output
    assert "images of 40x60 are read at 16x24" in scaled.stderr
    assert tuple(Autoencoder.load(tmp_path / "m").preprocessor_.shape) == (1, 16, 24)
    sized = run("train", tmp_path / "photos", "--image-size", "20,20", "-o", tmp_path / "s",
                *FAST)
    assert sized.exit_code == 0 and "read at" not in sized.stderr
    assert tuple(Autoencoder.load(tmp_path / "s").preprocessor_.shape) == (1, 20, 20)
    out = tmp_path / "codes.csv"
    encoded = run("features", tmp_path / "m", tmp_path / "others", "-o", out)
    assert encoded.exit_code == 0, encoded.output
    codes = pd.read_csv(out)
    assert len(codes) == 8 and np.isfinite(codes.drop(columns="path").to_numpy()).all()
    folder = _image_folder(tmp_path / "shapes", n=12, size=20)  # evaluate-features alike
    quick = ["--variants", "ae", "--classifiers", "logreg", "--cv", "2", "--epochs", "1", "-q"]
    evaluated = run("evaluate-features", folder, *quick, "-o", tmp_path / "e.csv")
    assert evaluated.exit_code == 0, evaluated.output
    assert "images of 20x20 are read at 16x16" in evaluated.stderr
    told = run("evaluate-features", folder, *quick, "--image-size", "12,12", "-o",
               tmp_path / "t.csv")
    assert told.exit_code == 0 and "read at" not in told.stderr


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_features_to_npy_says_that_ids_and_labels_are_not_written(table_csv, tmp_path):
    bundle = tmp_path / "m"
    assert run("train", table_csv, "--exclude", "pixel_id,label", "-o", bundle,
               *FAST).exit_code == 0
    result = run("features", bundle, table_csv, "--id-column", "pixel_id", "--label-column",
                 "label", "-o", tmp_path / "codes.npy")
    assert result.exit_code == 0
    assert "'pixel_id' and 'label' column(s) are not written" in result.stderr


def test_heavy_tailed_scores_get_a_log_axis():
    from aetool.plots import score_axis_scale

    rng = np.random.default_rng(0)
    typical = rng.normal(size=1000)
    assert score_axis_scale(typical) == "linear"
    assert score_axis_scale(np.concatenate([typical, [423.0, 300.0]])) == "symlog"


def test_image_grid_titles_name_files_and_mark_labelled_anomalies():
    from aetool.data.source import Loaded
    from aetool.tasks.heatmaps import grid_titles

    table = Loaded(np.zeros((3, 1, 4, 4)), pd.Series(["good/a.png", "crack/b.png",
                                                      "good/a_very_long_file_name.png"],
                                                     name="path"),
                   np.array([0.0, 1.0, 0.0]), "folder")
    titles = grid_titles(table, np.array([0.5, 3.0, 1.0]), np.array([1, 2, 0]))
    assert titles[0] == ("b.png\n3.00", True)
    assert titles[1][0].startswith("a_very_long_fil") and not titles[1][1]
    assert titles[2] == ("a.png\n0.50", False)
    same_names = Loaded(np.zeros((3, 1, 4, 4)), pd.Series(["test/crack/000.png",
                                                           "test/good/000.png", "test/good/1.png"],
                                                          name="path"),
                        np.array([1.0, 0.0, 0.0]), "folder")
    titles = grid_titles(same_names, np.array([3.0, 2.0, 1.0]), np.array([0, 1, 2]))
    assert [title for title, _ in titles] == ["crack/\n000.png\n3.00", "good/\n000.png\n2.00",
                                              "1.png\n1.00"]
    # a name the table holds twice keeps its folder when only one of the two is shown
    titles = grid_titles(same_names, np.array([3.0, 2.0, 1.0]), np.array([1, 2]))
    assert [title for title, _ in titles] == ["good/\n000.png\n2.00", "1.png\n1.00"]


def test_evaluate_features_chart_starts_at_zero(tmp_path):
    from aetool.tasks.features import accuracy_chart

    captured = {}
    import aetool.tasks.features as module

    def keep(fig, path):
        captured["ylim"] = fig.axes[0].get_ylim()
        return path

    table = pd.DataFrame({"method": ["raw", "ae"], "classifier": ["logreg"] * 2,
                          "accuracy_mean": [0.6, 0.7], "accuracy_std": [0.01, 0.02]})
    original = module.save_figure
    module.save_figure = keep
    try:
        accuracy_chart(table, tmp_path / "c.png")
    finally:
        module.save_figure = original
    assert captured["ylim"][0] == 0.0


def test_detector_takes_sparse_input_and_a_code_size(tmp_path):
    from scipy import sparse
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from aetool import AutoencoderDetector

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"colour": rng.choice(["red", "blue", "green"], 120),
                          "size": rng.normal(size=120)})
    encode = ColumnTransformer([("onehot", OneHotEncoder(), ["colour"])],
                               remainder="passthrough", sparse_threshold=1.0)
    assert sparse.issparse(encode.fit_transform(frame))
    pipeline = make_pipeline(encode, AutoencoderDetector(code_size=2, epochs=2, device="cpu"))
    pipeline.fit(frame)
    assert pipeline.predict(frame).shape == (120,)
    assert pipeline[-1].model_.code_size == 2
    assert AutoencoderDetector(code_size=3).get_params()["code_size"] == 3


def test_many_constant_columns_are_counted_not_listed():
    import warnings

    from aetool import AutoencoderDetector

    rng = np.random.default_rng(0)
    pixels = np.zeros((60, 200))
    pixels[:, :4] = rng.normal(size=(60, 4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AutoencoderDetector(epochs=1, device="cpu").fit(pixels)
    said = [str(w.message) for w in caught if "constant" in str(w.message)]
    assert len(said) == 1 and "and 191 more (196 of 200)" in said[0] and len(said[0]) < 200


def test_denoise_apply_cleans_only_the_chosen_trained_columns(table_csv, tmp_path):
    bundle, out = tmp_path / "den", tmp_path / "clean.csv"
    assert run("denoise", "fit", table_csv, "--id-column", "pixel_id", "--exclude", "label",
               "-o", bundle, *FAST).exit_code == 0
    result = run("denoise", "apply", bundle, table_csv, "-o", out, "--columns", "f0,f1")
    assert result.exit_code == 0, result.output
    before, after = pd.read_csv(table_csv), pd.read_csv(out)
    pd.testing.assert_frame_equal(before[["f2", "f3", "f4", "pixel_id"]],
                                  after[["f2", "f3", "f4", "pixel_id"]])
    assert not np.allclose(before["f0"], after["f0"])
    wrong = run("denoise", "apply", bundle, table_csv, "-o", out, "--columns", "pixel_id")
    assert wrong.exit_code == 2 and "not trained on column 'pixel_id'" in wrong.stderr


def test_a_two_dimensional_array_that_fit_accepts_can_be_scored(tmp_path):
    rows = tmp_path / "rows.npy"
    np.save(rows, low_rank_table(80, d=4))
    bundle, out = tmp_path / "m", tmp_path / "s.csv"
    assert run("fit", rows, "-o", bundle, *FAST).exit_code == 0
    result = run("score", bundle, rows, "-o", out)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert len(frame) == 80 and list(frame.columns)[:3] == ["anomaly_score",
                                                            "anomaly_probability", "is_anomaly"]
    maps = run("score", bundle, rows, "-o", out, "--maps", tmp_path / "maps")
    assert maps.exit_code == 2 and "--maps needs images" in maps.stderr


def test_a_column_named_like_a_label_is_warned_about(tmp_path):
    """A 0/1 'Class' column left in the features tells the model which rows are anomalies:
    the user is told to score against it with --label-column; passed so, no warning."""
    path = tmp_path / "cards.csv"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["v1", "v2", "amount"])
    frame["Class"] = (np.arange(200) < 6).astype(int)
    frame.to_csv(path, index=False)
    result = run("detect", path, "-o", tmp_path / "s.csv", *FAST)
    assert result.exit_code == 0, result.output
    assert "column 'Class' looks like a label" in result.stderr
    assert "--label-column 'Class'" in result.stderr
    labelled = run("detect", path, "--label-column", "Class", "-o", tmp_path / "t.csv", *FAST)
    assert labelled.exit_code == 0 and "looks like a label" not in labelled.stderr
    frame.rename(columns={"Class": "kind"}).to_csv(path, index=False)  # another name: silent
    assert "looks like a label" not in run("detect", path, "-o", tmp_path / "u.csv",
                                           *FAST).stderr
