"""Encoder features: the transformer in pipelines and grid search, export, CV evaluation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from aetool import EncoderTransformer
from aetool.cli import cli
from tests.conftest import low_rank_table

FAST = {"epochs": 4, "device": "cpu"}


def two_class_table(n: int = 160):
    x = low_rank_table(n, d=8)
    y = (x[:, 0] > np.median(x[:, 0])).astype(int)
    return x, y


def test_transform_gives_codes_of_the_requested_width():
    x, _ = two_class_table()
    enc = EncoderTransformer(code_size=3, **FAST).fit(x)
    codes = enc.transform(x)
    assert codes.shape == (len(x), 3)
    assert list(enc.get_feature_names_out()) == ["code_0", "code_1", "code_2"]
    vae = EncoderTransformer(variant="vae", code_size=3, include_logvar=True, **FAST).fit(x)
    assert vae.transform(x).shape == (len(x), 6)


def test_pipeline_and_grid_search_refit_the_autoencoder_per_fold():
    x, y = two_class_table()
    pipe = make_pipeline(EncoderTransformer(**FAST), LogisticRegression(max_iter=500))
    search = GridSearchCV(pipe, {"encodertransformer__code_size": [2, 4]}, cv=2).fit(x, y)
    assert search.best_params_["encodertransformer__code_size"] in (2, 4)
    assert search.best_score_ > 0.8
    copy = clone(EncoderTransformer(code_size=5))
    assert copy.get_params()["code_size"] == 5 and not hasattr(copy, "model_")


def test_labels_never_reach_the_autoencoder():
    x, y = two_class_table()
    a = EncoderTransformer(**FAST).fit(x, y).transform(x)
    b = EncoderTransformer(**FAST).fit(x, 1 - y).transform(x)
    np.testing.assert_array_equal(a, b)


def test_features_command_carries_ids_and_labels(tmp_path):
    x, y = two_class_table(80)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)])
    frame.insert(0, "key", range(80))
    frame["cls"] = y
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)
    bundle = tmp_path / "vae"
    train = CliRunner().invoke(cli, ["train", str(data), "--variant", "vae", "-o",
                                     str(bundle), "--set", "epochs=3", "--set", "code_size=4",
                                     "--id-column", "key", "--exclude", "cls", "-q"])
    assert train.exit_code == 0, train.output
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["feature_names_in"] == [f"f{i}" for i in range(8)]
    bad = CliRunner().invoke(cli, ["train", str(data), "-o", str(tmp_path / "b"), "--exclude",
                                   "clss", "-q"])
    assert bad.exit_code == 2 and "no column 'clss' (given as --exclude); did you mean 'cls'?" in bad.stderr
    for suffix in (".csv", ".parquet"):
        out = tmp_path / f"codes{suffix}"
        result = CliRunner().invoke(cli, ["features", str(bundle), str(data), "-o", str(out),
                                          "--id-column", "key", "--label-column", "cls",
                                          "--logvar"])
        assert result.exit_code == 0, result.output
        codes = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
        assert list(codes.columns[:3]) == ["key", "cls", "code_0"]
        assert codes.shape == (80, 2 + 8)
        assert (codes["cls"] == y).all()
    npy = tmp_path / "codes.npy"
    CliRunner().invoke(cli, ["features", str(bundle), str(data), "-o", str(npy), "--id-column",
                             "key", "--label-column", "cls"])
    assert np.load(npy).shape == (80, 4)


def test_evaluate_features_table_and_chart(tmp_path):
    x, y = two_class_table(120)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)])
    frame["cls"] = y
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "eval.csv"
    result = CliRunner().invoke(cli, ["evaluate-features", str(data), "--label-column", "cls",
                                      "--variants", "ae", "--classifiers", "logreg,knn",
                                      "--code-size", "2", "--cv", "3", "--epochs", "3", "-q",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert set(table["method"]) == {"raw", "pca2", "ae"}
    assert set(table["classifier"]) == {"logreg", "knn"}
    raw = table[(table.method == "raw") & (table.classifier == "logreg")].iloc[0]
    assert raw["accuracy_mean"] > 0.9 and 0 <= raw["accuracy_std"] < 0.1
    assert (tmp_path / "eval.png").stat().st_size > 1000


def test_pca_peer_is_no_wider_than_the_data(tmp_path):
    """Codes wider than the table (32 codes, 3 encoded features): the PCA peer keeps all 3."""
    x, y = two_class_table(90)
    frame = pd.DataFrame(x[:, :3], columns=["a", "b", "c"])
    frame["cls"] = y
    frame.to_csv(tmp_path / "narrow.csv", index=False)
    out = tmp_path / "eval.csv"
    result = CliRunner().invoke(cli, ["evaluate-features", str(tmp_path / "narrow.csv"),
                                      "--label-column", "cls", "--variants", "ae",
                                      "--classifiers", "logreg", "--code-size", "32", "--cv", "3",
                                      "--epochs", "2", "-q", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(out)["method"]) == {"raw", "pca3", "ae"}


def test_evaluate_features_needs_labels(tmp_path):
    x, _ = two_class_table(40)
    np.save(tmp_path / "x.npy", x)
    result = CliRunner().invoke(cli, ["evaluate-features", str(tmp_path / "x.npy"), "-q"])
    assert result.exit_code == 2 and "needs labels" in result.stderr
    for option, value, message in (("--cv", "1", "1 is not in the range x>=2"),
                                   ("--code-size", "0", "0 is not in the range x>=1")):
        bad = CliRunner().invoke(cli, ["evaluate-features", str(tmp_path / "x.npy"), option,
                                       value, "-q"])  # a traceback, or a wrong message
        assert bad.exit_code == 2 and message in bad.stderr and "Traceback" not in bad.output


def test_evaluate_features_refuses_bad_epochs_in_one_line(tmp_path):
    """`--epochs 0` stops at the option, before any fold is fitted; a fit that fails inside a
    fold raises its own error, not scikit-learn's summary of failed fits."""
    from aetool.data.source import Loaded
    from aetool.errors import SettingError
    from aetool.tasks.features import evaluate_features

    x, y = two_class_table(40)
    np.savez(tmp_path / "t.npz", X=x, y=y)
    out = tmp_path / "eval.csv"
    result = CliRunner().invoke(cli, ["evaluate-features", str(tmp_path / "t.npz"), "--epochs",
                                      "0", "-q", "-o", str(out)])
    assert result.exit_code == 2 and "'--epochs': 0 is not in the range" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
    with pytest.raises(SettingError, match="'epochs' must be at least 1, got 0"):
        evaluate_features(Loaded(x, None, y, "t.npz"), ["ae"], ["logreg"], 4, 2, {"epochs": 0},
                          progress=False)


@pytest.mark.parametrize("bad", ["cvae"])
def test_conditional_variants_are_refused_for_features(bad):
    x, _ = two_class_table(40)
    with pytest.raises(Exception, match="needs labels"):
        EncoderTransformer(variant=bad, **FAST).fit(x)
