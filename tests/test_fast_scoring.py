"""The fast scoring path (issue 22): column-wise CSV text equal to pandas' bytes, vectorised
preprocessing and explanations equal to the column-by-column and row-by-row forms bit for bit,
a scikit-learn-free ``aetool score``, the writer thread, and progress in bytes of the file."""

from __future__ import annotations

import gzip
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from aetool.cli import cli
from aetool.data.csv_text import csv_text
from aetool.data.preprocess import MAX_STANDARD_SCORE, ROWS_PER_BLOCK, TablePreprocessor
from aetool.data.tables import ChunkReader, read_table
from aetool.estimators import AutoencoderDetector
from aetool.estimators.explain import format_top_features, top_feature_texts, top_features
from aetool.estimators.saved import SavedDetector
from aetool.tasks import stream
from tests.conftest import low_rank_table

# -- CSV text ------------------------------------------------------------------------------------


def awkward_frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Floats over 40 decades with the special values, ints, booleans, and text that needs
    quoting (separators, quotes, line breaks) or is missing."""
    rng = np.random.default_rng(seed)
    floats = rng.normal(size=n) * 10.0 ** rng.uniform(-20, 20, n)
    floats[:16] = [0.0, -0.0, np.nan, np.inf, -np.inf, 5e-324, 1.7976931348623157e308, 12.0,
                   1e-4, 9.9999e-5, 1e10, 9999999999.5, 1e16, 1e15, 0.1, 1 / 3]
    texts = np.array(["plain", "a,b", 'say "hi"', "two\nlines", "semi;colon", "tab\there",
                      "pipe|x", "", None, "ünïcode (3%)"], dtype=object)
    return pd.DataFrame({
        "id": texts[rng.integers(0, len(texts), n)],
        "anomaly_score": floats,
        "anomaly_probability": rng.random(n) ** 8,
        "is_anomaly": rng.integers(0, 2, n),
        "flag": rng.random(n) > 0.5,
        "top_features": texts[rng.integers(0, len(texts), n)],
    })


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_csv_text_is_byte_for_byte_what_pandas_writes(sep):
    frame = awkward_frame()
    assert csv_text(frame, sep) == frame.to_csv(index=False, sep=sep).encode()
    assert csv_text(frame, sep, header=False) == \
        frame.to_csv(index=False, sep=sep, header=False).encode()


def test_csv_text_keeps_pandas_string_columns_and_odd_headers():
    frame = pd.DataFrame({"the id, quoted": pd.array(["a", "b,c", None], dtype="string"),
                          "score": [1.5, 2.5e-7, 3e20]})
    assert csv_text(frame) == frame.to_csv(index=False).encode()


@pytest.mark.parametrize("column", [pd.to_datetime(["2024-01-01", "2024-01-02"]),
                                    pd.Series([1, "a"], dtype=object),
                                    np.array([1.5, 2.5], dtype=np.float32)])
def test_csv_text_leaves_other_types_to_pandas(column):
    assert csv_text(pd.DataFrame({"odd": column, "score": [1.0, 2.0]})) is None


def test_floats_in_every_decade_are_written_as_repr():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.uniform(1, 10, 2000) * 10.0 ** e for e in range(-12, 22)])
    values *= np.where(rng.random(values.size) < 0.5, -1, 1)
    assert csv_text(pd.DataFrame({"v": values}), header=False).decode().split() == \
        [repr(v) for v in values.tolist()]


# -- preprocessing -------------------------------------------------------------------------------


def column_by_column(prep: TablePreprocessor, frame: pd.DataFrame) -> np.ndarray:
    """The encoding written the plain way, one column at a time in float64, clipped, then cast:
    the reference the vectorised transform must equal bit for bit."""
    blocks, filled = [], {}
    for column in prep.order:
        if column in prep.numeric:
            stats = prep.numeric[column]
            values = pd.to_numeric(frame[column]).astype("float64").fillna(stats["fill"])
            filled[column] = values.to_numpy()
            blocks.append(((filled[column] - stats["mean"]) / stats["scale"])[:, None])
        else:
            categories = prep.categorical[column]
            text = frame[column].astype("string").fillna("(missing)").astype(object)
            blocks.append((text.to_numpy()[:, None] == np.asarray(categories)[None, :])
                          .astype(float))
    for column, view in prep.log_views.items():
        stats = prep.numeric[column]
        z = (filled[column] - stats["fill"]) / stats["scale"]
        logged = np.sign(z) * np.log1p(np.abs(z))
        blocks.append(((logged - view["mean"]) / view["scale"])[:, None])
    return np.clip(np.concatenate(blocks, axis=1), -MAX_STANDARD_SCORE,
                   MAX_STANDARD_SCORE).astype(np.float32)


def mixed_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "a": rng.normal(size=n) * 1e3,
        "colour": rng.choice(["red", "green", "blue", None], n),
        "b": rng.lognormal(3, 2, n),
        "count": rng.integers(0, 5, n),
        "heavy": rng.standard_cauchy(n) * 1e8,
        "flag": rng.random(n) > 0.5,
        "text_numbers": [str(v) for v in rng.normal(size=n)],
        "zeros": rng.choice([0.0, -0.0, 1e-320, 3.0], n),
    })
    frame.loc[::17, "a"] = np.nan
    frame.loc[::13, "b"] = np.nan
    return frame


@pytest.mark.parametrize("log_views", [False, True])
def test_vectorised_encoding_equals_column_by_column_bit_for_bit(log_views):
    warnings.simplefilter("ignore")
    prep = TablePreprocessor.fit(mixed_frame(3000), log_views=log_views)
    later = mixed_frame(2 * ROWS_PER_BLOCK + 123, seed=1)  # several blocks, a ragged last one
    later.loc[::7, "heavy"] = 1e300  # clipped
    later.loc[5, "colour"] = "violet"  # unseen: all zero
    matrix, unseen = prep.transform(later)
    expected = column_by_column(prep, later)
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix.view(np.uint32), expected.view(np.uint32))
    assert unseen == {"colour": {"violet": 1}}


def test_encoding_leaves_the_callers_frame_alone_and_refuses_infinities():
    prep = TablePreprocessor.fit(pd.DataFrame({"a": np.arange(50.0), "b": np.arange(50.0) ** 2}))
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [4.0, 5.0, np.inf]})
    before = frame.copy()
    with pytest.raises(Exception, match=r"column 'b' has infinite values \(first at data row 3\)"):
        prep.transform(frame)
    frame.loc[2, "b"] = 6.0
    prep.transform(frame)
    pd.testing.assert_frame_equal(frame, before.assign(b=[4.0, 5.0, 6.0]))


# -- explanations --------------------------------------------------------------------------------


class Groups:
    """A preprocessor's feature groups: columns, one-hot codes of 'colour', then log views."""

    feature_groups = ("a", "colour", "colour", "colour", "b", "c", "a", "b")


def row_by_row(contributions: np.ndarray, top_k: int) -> list[str]:
    names = list(dict.fromkeys(Groups.feature_groups))
    texts = []
    for row in contributions:
        shares = {name: 0.0 for name in names}
        for value, group in zip(row, Groups.feature_groups, strict=True):
            shares[group] += float(value)
        ranked = sorted(names, key=lambda n: (-shares[n] if shares[n] == shares[n] else 1,
                                              names.index(n)))[:top_k]
        texts.append(format_top_features([(n, shares[n]) for n in ranked]))
    return texts


def test_explanation_texts_equal_the_row_by_row_form():
    rng = np.random.default_rng(0)
    contributions = rng.random((500, 8)).astype(np.float32)
    contributions /= contributions.sum(axis=1, keepdims=True)
    contributions[0] = 0.0  # ties: in column order
    contributions[1, 2] = np.nan  # a NaN share ranks last
    contributions[2] = [0.125, 0, 0, 0, 0.125, 0.5, 0, 0.25]  # exact halves: round half even
    for top_k in (1, 3, 4, 10):
        assert top_feature_texts(contributions, Groups, top_k) == \
            row_by_row(contributions, top_k)
    assert top_feature_texts(contributions, Groups, 3)[2] == "c (50%); b (38%); a (12%)"
    assert [format_top_features(t) for t in top_features(contributions, Groups, 3)] == \
        top_feature_texts(contributions, Groups, 3)
    # a wide table spreads a row's error thinly: shares under 1% keep a decimal, not '0%'
    contributions[3] = [0.004, 0.0004, 0.0003, 0, 0.005, 0.9903, 0.0, 0.0]
    assert top_feature_texts(contributions, Groups, 4)[3] == \
        "c (99%); b (0.5%); a (0.4%); colour (0.1%)"
    assert top_feature_texts(contributions, Groups, 4) == row_by_row(contributions, 4)


def test_a_share_under_one_percent_is_written_with_a_decimal():
    from aetool.estimators.explain import share_text

    assert [share_text(v) for v in (0.5, 0.0123, 0.005, 0.004, 0.0004, 0.0)] == \
        ["50%", "1%", "0.5%", "0.4%", "<0.1%", "0%"]


# -- aetool score --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("fast")
    frame = pd.DataFrame(low_rank_table(3000, d=6, seed=4), columns=[f"c{i}" for i in range(6)])
    frame.insert(0, "key", [f"row {i}" if i % 9 else f'row "{i}", odd' for i in range(3000)])
    frame["kind"] = np.random.default_rng(0).choice(["x", "y;z"], 3000)
    frame.to_csv(root / "data.csv", index=False)
    with gzip.open(root / "data.csv.gz", "wt") as handle:
        frame.to_csv(handle, index=False)
    result = CliRunner().invoke(cli, ["fit", str(root / "data.csv"), "--id-column", "key",
                                      "-o", str(root / "model"), "--set", "epochs=2", "-q"])
    assert result.exit_code == 0, result.output
    return root, frame


@pytest.mark.parametrize("suffix", ["csv", "tsv"])
def test_streamed_file_is_what_pandas_would_write(bundle, suffix):
    root, frame = bundle
    out = root / f"scores.{suffix}"
    result = CliRunner().invoke(cli, ["score", str(root / "model"), str(root / "data.csv"),
                                      "-o", str(out), "--chunk-rows", "1000", "--batch-size",
                                      "500", "-q"])
    assert result.exit_code == 0, result.output
    detector = AutoencoderDetector.load(root / "model").set_inference(batch_size=500)
    frame = read_table(root / "data.csv")  # the values as parsed from the file
    details = detector.anomaly_details(frame.drop(columns="key"))
    expected = pd.DataFrame({
        "key": frame["key"], "anomaly_score": details["anomaly_score"],
        "anomaly_probability": details["anomaly_probability"],
        "is_anomaly": details["is_anomaly"].astype(int),
        "top_features": [format_top_features(t) for t in
                         top_features(details["contributions"], detector.preprocessor_, 3)],
    })
    sep = "\t" if suffix == "tsv" else ","
    assert out.read_bytes() == expected.to_csv(index=False, sep=sep).encode()


def test_saved_detector_scores_as_the_estimator(bundle):
    root, frame = bundle
    features = frame.drop(columns="key")
    lean = SavedDetector.load(root / "model").set_threshold(contamination=0.2)
    full = AutoencoderDetector.load(root / "model").set_threshold(contamination=0.2)
    for name, value in full.anomaly_details(features).items():
        np.testing.assert_array_equal(lean.anomaly_details(features)[name], value)
    assert lean.threshold_ == full.threshold_


def test_score_does_not_import_scikit_learn(bundle, tmp_path):
    root, _ = bundle
    code = ("import sys\nfrom aetool.cli import cli\ntry:\n"
            f"    cli(['score', {str(root / 'model')!r}, {str(root / 'data.csv')!r}, '-o', "
            f"{str(tmp_path / 'out.csv')!r}, '-q'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "out.csv").exists()


def test_progress_counts_bytes_of_the_compressed_file(bundle):
    root, _ = bundle
    reader = ChunkReader(root / "data.csv.gz", 500)
    seen = []
    for _ in reader:
        seen.append(reader.bytes_read)
    assert seen == sorted(seen) and seen[-1] <= reader.total_bytes
    assert reader.total_bytes == (root / "data.csv.gz").stat().st_size
    assert reader.bytes_read == reader.total_bytes  # done: the whole file
    progress = stream._Progress(ChunkReader(root / "data.csv", 500), enabled=False)
    assert progress.bar.total == (root / "data.csv").stat().st_size


def test_a_failing_writer_stops_the_run_and_leaves_no_output(bundle, monkeypatch):
    root, _ = bundle
    detector = SavedDetector.load(root / "model")

    def full_disk(self, frame):
        raise OSError("No space left on device")

    monkeypatch.setattr(stream._CsvSink, "write", full_disk)
    out = root / "never.csv"
    with pytest.raises(OSError, match="No space left"):
        stream.stream_score(detector, root / "data.csv", out, chunk_rows=500, progress=False)
    assert not out.exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".never.csv")]


def test_a_header_without_rows_is_a_clean_error_and_writes_nothing(bundle):
    root, frame = bundle
    (root / "empty.csv").write_text(",".join(frame.columns) + "\n")
    result = CliRunner().invoke(cli, ["score", str(root / "model"), str(root / "empty.csv"),
                                      "-o", str(root / "empty_scores.csv"), "-q"])
    assert result.exit_code == 2
    assert "empty.csv: has a header but no data rows" in result.stderr
    assert "Traceback" not in result.output and not (root / "empty_scores.csv").exists()
