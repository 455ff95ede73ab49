"""Streaming and distributed scoring: same scores as in memory, atomic output, Dask parts."""

from __future__ import annotations

import io
import queue
import threading

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import spearmanr

from aetool.cli import cli
from aetool.data.tables import ChunkReader, read_table
from aetool.estimators import AutoencoderDetector
from aetool.tasks.stream import prefetched, stream_score
from tests.conftest import low_rank_table


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    x = low_rank_table(6000, d=10, seed=3)
    frame = pd.DataFrame(x, columns=[f"c{i}" for i in range(10)])
    frame.insert(0, "key", np.arange(len(frame)))
    frame.to_csv(root / "data.csv", index=False)
    frame.to_parquet(root / "data.parquet")
    frame.to_csv(root / "data.csv.gz", index=False)
    result = CliRunner().invoke(cli, ["fit", str(root / "data.csv"), "--id-column", "key", "-o",
                                      str(root / "model"), "--set", "epochs=3", "-q"])
    assert result.exit_code == 0, result.output
    detector = AutoencoderDetector.load(root / "model")
    in_memory = detector.anomaly_details(frame.drop(columns="key"))["anomaly_score"]
    return root, frame, in_memory


@pytest.mark.parametrize("name", ["data.csv", "data.parquet", "data.csv.gz"])
def test_fp32_streaming_equals_in_memory_exactly(fitted, name):
    root, frame, _ = fitted
    out = root / f"{name}.scores.parquet"
    result = CliRunner().invoke(cli, ["score", str(root / "model"), str(root / name), "-o",
                                      str(out), "--chunk-rows", "1000", "--batch-size", "500",
                                      "-q"])
    assert result.exit_code == 0, result.output
    streamed = pd.read_parquet(out)
    assert (streamed["key"] == frame["key"]).all()
    detector = AutoencoderDetector.load(root / "model").set_inference(batch_size=500)
    whole = read_table(root / name)  # the same file read at once, in memory
    expected = detector.anomaly_details(whole.drop(columns="key"))["anomaly_score"]
    np.testing.assert_array_equal(streamed["anomaly_score"].to_numpy(), expected)


def test_bf16_keeps_the_ranking(fitted):
    root, frame, in_memory = fitted
    detector = AutoencoderDetector.load(root / "model").set_inference(precision="bf16")
    low = detector.anomaly_details(frame.drop(columns="key"))["anomaly_score"]
    assert spearmanr(low, in_memory).statistic > 0.99


def test_streamed_warnings_are_said_once_with_totals(tmp_path):
    """Unseen categories are summed over all chunks into one warning; the extra-column warning
    that every chunk raises appears once."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=400), "kind": rng.choice(["x", "y"], 400)})
    frame.to_csv(tmp_path / "train.csv", index=False)
    result = CliRunner().invoke(cli, ["fit", str(tmp_path / "train.csv"), "-o",
                                      str(tmp_path / "model"), "--set", "epochs=2", "-q"])
    assert result.exit_code == 0, result.output
    frame.loc[::100, "kind"] = "z"  # one unseen value in each of the four chunks
    frame.loc[[5, 205], "kind"] = "w"
    frame["note"] = 1
    frame.to_csv(tmp_path / "new.csv", index=False)
    result = CliRunner().invoke(cli, ["score", str(tmp_path / "model"), str(tmp_path / "new.csv"),
                                      "-o", str(tmp_path / "o.csv"), "--chunk-rows", "100",
                                      "--batch-size", "100", "-q"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("ignoring column(s) not seen in training: note") == 1
    assert result.stderr.count("not seen in training (") == 1
    assert ("new.csv: column 'kind' has 6 value(s) not seen in training ('z', 'w'); they are "
            "encoded as all-zero") in result.stderr


def test_progress_is_read_without_touching_the_file_from_another_thread(tmp_path, monkeypatch):
    """The progress bar asks how far the reader is from another thread. It used to ask the open
    file (tell), and when the reader closed the file at that moment the streamed score failed
    with 'Bad file descriptor' (about 1 run in 10 of a 4-chunk file). Only the reading thread
    may touch the file; the bar reads a number it recorded."""
    import aetool.data.tables as tables

    path = tmp_path / "t.csv"
    pd.DataFrame({"a": np.arange(400)}).to_csv(path, index=False)
    askers: set[int] = set()

    class Watched(io.BufferedReader):
        def tell(self) -> int:
            askers.add(threading.get_ident())
            return super().tell()

    monkeypatch.setattr(tables, "open", lambda name, mode: Watched(io.FileIO(name, mode)),
                        raising=False)
    reader = ChunkReader(path, 100)
    chunks: queue.Queue = queue.Queue()
    resume = threading.Event()

    def consume() -> None:  # one chunk at a time, paused while the file is open
        for chunk in reader:
            resume.clear()
            chunks.put(len(chunk))
            resume.wait()
        chunks.put(None)

    worker = threading.Thread(target=consume)
    worker.start()
    progress = []
    while chunks.get() is not None:
        progress.append(reader.bytes_read)
        resume.set()
    worker.join()
    assert askers == {worker.ident}
    assert progress == sorted(progress) and 0 < progress[0] <= progress[-1] <= path.stat().st_size
    assert reader.bytes_read == path.stat().st_size


def test_interrupted_stream_leaves_no_output(fitted, monkeypatch):
    root = fitted[0]
    detector = AutoencoderDetector.load(root / "model")
    calls = {"n": 0}
    original = detector.details_of_encoded

    def failing(matrix, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(matrix, **kwargs)

    monkeypatch.setattr(detector, "details_of_encoded", failing)
    out = root / "partial.csv"
    with pytest.raises(KeyboardInterrupt):
        stream_score(detector, root / "data.csv", out, chunk_rows=1000, progress=False)
    assert not out.exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".partial.csv")]


def test_prefetched_keeps_order():
    assert list(prefetched(iter(range(5)))) == [0, 1, 2, 3, 4]


def test_dask_local_cluster_gives_the_same_scores(fitted):
    pytest.importorskip("distributed", reason="Dask is an extra: pip install 'aetool[dask]'")
    root, frame, _ = fitted
    parts = root / "parts"
    parts.mkdir(exist_ok=True)
    for i in range(3):
        part = frame.iloc[i * 2000:(i + 1) * 2000]
        part = part.assign(note=1) if i == 1 else part  # a worker's warning reaches the user
        part.to_csv(parts / f"part{i}.csv{'.gz' if i == 2 else ''}", index=False)
    single = root / "single.csv"
    CliRunner().invoke(cli, ["score", str(root / "model"), str(root / "data.csv"), "-o",
                             str(single), "-q"])
    out = root / "dask-out"
    result = CliRunner().invoke(cli, ["score", str(root / "model"), str(parts),
                                      "--engine", "dask", "--workers", "2", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0].endswith(
        "part1.csv: ignoring column(s) not seen in training: note")
    assert result.stderr.startswith("warning: ") and result.stderr.count("warning:") == 1
    assert "flagged as anomalies" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [f"part{i}.scores.csv" for i in range(3)]
    combined = pd.concat([pd.read_csv(out / f"part{i}.scores.csv") for i in range(3)])
    np.testing.assert_array_equal(combined["anomaly_score"].to_numpy(),
                                  pd.read_csv(single)["anomaly_score"].to_numpy())
    # an output named as a table file would have become a folder of that name: refused
    named = CliRunner().invoke(cli, ["score", str(root / "model"), str(parts), "--engine",
                                     "dask", "-o", str(root / "scores.csv"), "-q"])
    assert named.exit_code == 2 and not (root / "scores.csv").exists()
    assert "names a table file, but --engine dask writes one scores file per part" in named.stderr


def test_row_scores_match_full_errors_path(fitted):
    """Reducing errors on the device gives the scores of the per-element path."""
    from aetool.scoring import model_outputs, score_rows

    detector = AutoencoderDetector.load(fitted[0] / "model")
    matrix = detector._prepare(read_table(fitted[0] / "data.csv").drop(columns="key"),
                               reset=False)[0]
    errors, codes = model_outputs(detector.model_, matrix, batch_size=512)
    reduced, kept = score_rows(detector.model_, detector.scorer_, matrix, batch_size=512)
    assert kept is None
    np.testing.assert_allclose(reduced, detector.scorer_.score(errors, codes), rtol=1e-5,
                               atol=1e-5)
    _, kept = score_rows(detector.model_, detector.scorer_, matrix, keep_errors=True)
    np.testing.assert_array_equal(kept, errors)


def test_compiled_scoring_equals_eager_and_compiles_once(fitted):
    """torch.compile pads the last batch to one shape, and chunks reuse the compiled step."""
    from aetool.scoring import _COMPILED, score_rows

    detector = AutoencoderDetector.load(fitted[0] / "model")
    matrix = detector._prepare(read_table(fitted[0] / "data.csv").drop(columns="key"),
                               reset=False)[0][:1500]
    eager, _ = score_rows(detector.model_, detector.scorer_, matrix, batch_size=1024)
    first, _ = score_rows(detector.model_, detector.scorer_, matrix, batch_size=1024,
                          compile_model=True)
    second, _ = score_rows(detector.model_, detector.scorer_, matrix[:700], batch_size=1024,
                           compile_model=True)
    np.testing.assert_allclose(first, eager, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(second, eager[:700], rtol=1e-4, atol=1e-4)
    assert len(_COMPILED[detector.model_]) == 1


def test_rational_tanh_is_within_1e4_and_only_in_a_copy():
    import torch

    from aetool.approx import RationalTanh, rational_tanh, with_rational_tanh

    grid = torch.linspace(-12, 12, 200_001)
    assert (rational_tanh(grid) - torch.tanh(grid)).abs().max() < 1e-4
    # in bf16 it is tanh rounded to bf16, give or take one bf16 step (coefficients kept in fp32)
    half = grid.bfloat16()
    step = torch.finfo(torch.bfloat16).eps * torch.tanh(half.float()).abs().clamp(min=2**-8)
    assert ((rational_tanh(half).float() - torch.tanh(half.float())).abs() <= step).all()
    assert rational_tanh(half).dtype == torch.bfloat16
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    clone = with_rational_tanh(model)
    assert isinstance(clone[1], RationalTanh) and isinstance(model[1], torch.nn.Tanh)


def test_compiled_bf16_keeps_the_ranking(fitted):
    """Compiled bf16 runs the rational tanh; it ranks rows as faithfully as eager bf16."""
    from aetool.scoring import score_rows

    detector = AutoencoderDetector.load(fitted[0] / "model")
    matrix = detector._prepare(read_table(fitted[0] / "data.csv").drop(columns="key"),
                               reset=False)[0][:2000]
    eager, _ = score_rows(detector.model_, detector.scorer_, matrix, precision="bf16")
    compiled, _ = score_rows(detector.model_, detector.scorer_, matrix, precision="bf16",
                             compile_model=True)
    fp32, _ = score_rows(detector.model_, detector.scorer_, matrix)
    faithful_compiled = spearmanr(compiled, fp32).statistic
    assert faithful_compiled > 0.995
    assert faithful_compiled >= spearmanr(eager, fp32).statistic - 1e-3


@pytest.mark.parametrize("variant", ["conv", "cvae"])
def test_compiled_bf16_codes_for_images_and_conditional_variants(variant):
    """The bf16 copy runs convolutions and one-hot labels (fp32) as well as MLPs."""
    from sklearn.datasets import load_digits

    from aetool.estimators import Autoencoder

    digits = load_digits()
    images = (digits.images[:300, None] / 16.0).astype(np.float32)
    labels = digits.target[:300]
    model = Autoencoder(variant=variant, epochs=1, device="cpu").fit(images, labels)
    conditional = labels if variant == "cvae" else None
    exact = model.set_inference(device="cpu").transform(images, conditional)
    fast = model.set_inference(device="cpu", precision="bf16", compile_model=True,
                               batch_size=128).transform(images, conditional)
    assert fast.shape == exact.shape
    np.testing.assert_allclose(fast, exact, atol=0.05 * np.abs(exact).max())


def test_zero_batch_size_is_a_clean_error(fitted, tmp_path):
    root = fitted[0]
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(cli, ["score", str(root / "model"), str(root / "data.csv"),
                                      "-o", str(out), "--batch-size", "0"])
    assert result.exit_code == 2
    assert "batch size must be a positive number" in result.output
    assert not out.exists()


def test_sample_table_is_uniform_ordered_and_reads_in_chunks(tmp_path):
    from aetool.data.tables import sample_table

    frame = pd.DataFrame({"row": np.arange(5000), "v": np.random.default_rng(0).normal(size=5000)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.parquet"):
        sample = sample_table(tmp_path / name, 1000, chunk_rows=300)
        rows = sample["row"].to_numpy()
        assert len(rows) == 1000 and len(set(rows)) == 1000
        assert (np.diff(rows) > 0).all()  # file order kept
        per_fifth = np.bincount(rows // 1000, minlength=5)
        assert per_fifth.min() > 150  # every part of the file is represented (200 expected)
        np.testing.assert_array_equal(sample["v"].to_numpy(), frame["v"].to_numpy()[rows])
    np.testing.assert_array_equal(sample_table(tmp_path / "t.csv", 10, seed=1)["row"],
                                  sample_table(tmp_path / "t.csv", 10, seed=1)["row"])
    assert len(sample_table(tmp_path / "t.csv", 9000)) == 5000


def test_fit_on_a_sample_of_a_large_table(fitted):
    root = fitted[0]
    result = CliRunner().invoke(cli, ["fit", str(root / "data.csv"), "--id-column", "key",
                                      "--sample-rows", "800", "-o", str(root / "sampled"),
                                      "--set", "epochs=3", "-q"])
    assert result.exit_code == 0, result.output
    detector = AutoencoderDetector.load(root / "sampled")
    assert detector.anomaly_details(pd.read_csv(root / "data.csv").drop(columns="key").head(5)
                                    )["anomaly_score"].shape == (5,)
    from aetool.data.tables import sample_table

    sample = sample_table(root / "data.csv", 800)  # the same seeded sample fit drew
    assert detector.preprocessor_.numeric["c0"]["fill"] == pytest.approx(sample["c0"].median())
    assert sample["c0"].median() != pytest.approx(pd.read_csv(root / "data.csv")["c0"].median())
