"""Scoring throughput on a 1,000,000-row table with 100 numeric columns.

- model-only rows/s (preprocessed matrix in memory): aetool fp32 and bf16, PyOD AutoEncoder's
  decision_function with a network of the same size, and the roofline: a bare chain of torch
  matmuls of the same shapes (no bias, no activation), fp32 and bf16;
- end-to-end CSV -> CSV rows/s with ``aetool score`` (streaming) fp32 and bf16, against the I/O
  limit: pandas read_csv + to_csv of the same file with no model;
- peak RSS of ``aetool score`` streaming 200,000 and 2,000,000 rows (fresh processes);
- end to end (``--only e2e``, results in throughput_e2e.json; see bench/score_e2e.py): whole
  ``aetool score`` processes, CSV and Parquet, against pandas doing the same I/O alone; start-up
  on 10 rows against ``import torch``; peak RSS 200k vs 2M rows; streamed = in-memory scores;
- ONNX (``--only onnx``, results in throughput_onnx.json): the exported detector in
  onnxruntime on CPU against aetool's torch eager fp32, both from raw values to scores (the
  exported graph also computes every feature's share of the error), same batch sizes.

Model-only figures are best-of-5 rounds that run every contender in turn, so the machine's
drift in speed hits all of them alike.

    python bench/throughput.py            # about 10 minutes on 2 CPU cores
    python bench/throughput.py --only e2e # about 10 minutes
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# a fresh inductor cache, so the torch.compile time measured is what a first run pays
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="aetool-inductor-"))

from common import RESULTS, machine, print_table, write_json

COLUMNS = 100


def make_table(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(rows, 8)).astype(np.float32)
    return (latent @ rng.normal(size=(8, COLUMNS)).astype(np.float32)
            + 0.1 * rng.normal(size=(rows, COLUMNS)).astype(np.float32))


def rate(rows: int, seconds: float) -> float:
    return rows / seconds


def best_of(fn, repeats: int = 2) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


BATCHES = (4096, 16384, 65536)
COMPILED_BATCHES = (4096, 16384, 32768)  # every batch size is one more compiled shape
ROUNDS = 5


def contest(candidates: dict[tuple[str, int], Callable[[], Any]],
            rounds: int = ROUNDS) -> dict[tuple[str, int], float]:
    """Best seconds of each candidate over ``rounds`` rounds that run every candidate once in
    turn (after a warm-up), so drift in the machine's speed hits all of them alike."""
    for run in candidates.values():
        run()
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(rounds):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def model_only(detector, matrix: np.ndarray, precision: str, batch: int,
               compile_model: bool = False) -> Callable[[], Any]:
    """Turning the preprocessed matrix into anomaly scores (what PyOD's decision_function
    does): forward pass plus the error and code distances."""
    from aetool.scoring import score_rows

    return lambda: score_rows(detector.model_, detector.scorer_, matrix, batch_size=batch,
                              device="cpu", precision=precision, compile_model=compile_model)


def compile_seconds(detector, matrix: np.ndarray, precision: str, batch: int) -> float:
    """One-off cost of torch.compile for this shape (the first call)."""
    return best_of(model_only(detector, matrix[:batch], precision, batch, True), repeats=1)


def fastest(best: dict[tuple[str, int], float], kind: str) -> tuple[float, int]:
    """(seconds, batch size) of the fastest batch size: every contender gets its best."""
    return min((seconds, batch) for (name, batch), seconds in best.items() if name == kind)


def roofline(matrix: np.ndarray, shapes: list[tuple[int, int]], dtype,
             batch: int) -> Callable[[], None]:
    """A bare chain of matmuls of the model's shapes (no bias, no activation): the limit."""
    import torch

    weights = [torch.randn(a, b, dtype=dtype) for a, b in shapes]
    x = torch.from_numpy(matrix)

    def run() -> None:
        with torch.inference_mode():
            for start in range(0, len(x), batch):
                h = x[start:start + batch].to(dtype)
                for w in weights:
                    h = h @ w

    return run


def bf16_ranking(sets=("mnist", "shuttle", "satellite")) -> dict[str, float]:
    """Spearman correlation of bf16 (eager, and compiled with the rational tanh) and fp32
    scores of the default detector on real ODDS sets (fitted on the whole set: this checks
    precision, not detection quality)."""
    from common import SHARED
    from scipy.stats import spearmanr

    from aetool import AutoencoderDetector

    found = {}
    for name in sets:
        path = SHARED / "odds" / f"{name}.npz"
        if not path.exists():
            continue
        x = np.load(path)["X"].astype(np.float32)
        detector = AutoencoderDetector(random_state=0, device="cpu").fit(x)
        fp32 = detector.set_inference(device="cpu", precision="fp32").score_samples(x)
        found[name] = {}
        for mode, compiled in (("eager", False), ("compiled", True)):
            bf16 = detector.set_inference(device="cpu", precision="bf16",
                                          compile_model=compiled).score_samples(x)
            found[name][mode] = float(spearmanr(fp32, bf16).statistic)
    return found


def peak_rss(bundle: Path, data: Path, out: Path) -> float:
    """Peak resident memory (MiB) of a fresh process streaming ``data`` through ``bundle``:
    VmHWM of the new process image (ru_maxrss would inherit the forking parent's peak)."""
    code = (
        "import sys\n"
        "from aetool.cli import cli\n"
        "try:\n"
        f"    cli(['score', {str(bundle)!r}, {str(data)!r}, '-o', {str(out)!r}, '-q'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(int(hwm.split()[1]) / 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return float(result.stdout.strip().splitlines()[-1])


def onnx_contest(detector, frame, batches=BATCHES) -> list[dict[str, Any]]:
    """Rows/s from raw values to scores: aetool (table preprocessing + torch eager fp32) and the
    exported graph in onnxruntime (2 threads, like torch here), best of ROUNDS rounds."""
    import onnxruntime

    from aetool.export import onnx as onnx_export
    from aetool.scoring import score_rows

    graph = onnx_export.export_model(detector, "detect")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    raw = frame.to_numpy(np.float64)

    def torch_run(batch: int) -> Callable[[], Any]:
        def run() -> None:
            matrix, _ = detector.preprocessor_.transform(frame)
            score_rows(detector.model_, detector.scorer_, matrix, batch_size=batch)
        return run

    def onnx_run(batch: int) -> Callable[[], Any]:
        def run() -> None:
            for start in range(0, len(raw), batch):
                session.run(["anomaly_score"], {"numeric": raw[start:start + batch]})
        return run

    candidates = {}
    for b in batches:
        candidates["torch eager fp32", b] = torch_run(b)
        candidates["onnxruntime fp32", b] = onnx_run(b)
    best = contest(candidates)
    return [{"what": f"{name} raw -> scores (batch {b})", "batch": b,
             "rows_per_s": rate(len(raw), seconds)} for (name, b), seconds in best.items()]


def end_to_end_section(work: Path, data: np.ndarray, columns: list[str], bundle: Path,
                       detector: Any, device: str) -> None:
    """``--only e2e``: see bench/score_e2e.py; results in throughput_e2e.json."""
    import score_e2e

    found = score_e2e.end_to_end(work, data, columns, bundle, device)
    print_table(found["table"], ["what", "seconds", "rows_per_s", "vs_peer"])
    startup = found["startup_seconds"]
    print("start-up: " + ", ".join(f"{k} {v:.2f} s" for k, v in startup.items())
          + f"; ratio {found['startup_ratio']:.2f}")
    found["exact_fp32"] = score_e2e.streamed_equals_in_memory(detector, data, columns, work)
    print(f"streamed fp32 scores equal in-memory ones: {found['exact_fp32']}")
    found["csv_readers_seconds"] = score_e2e.readers(work / "table.csv")
    print(f"CSV readers, whole file: {found['csv_readers_seconds']}")
    found["peak_rss_mib"] = score_e2e.rss_ratio(work, bundle, peak_rss)
    print(f"peak RSS: {found['peak_rss_mib']}")
    write_json("throughput_e2e.json", {"machine": machine(), "rows": len(data),
                                       "columns": COLUMNS, "device": device, **found})


def main() -> None:
    import pandas as pd
    import torch

    from aetool import AutoencoderDetector
    from aetool.data.source import TableSpec
    from aetool.tasks.stream import stream_score

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--only", choices=["onnx", "e2e"], help="run one section")
    parser.add_argument("--device", default="auto",
                        help="e2e: the --device of aetool score (cuda on a GPU machine)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    results: dict = {"machine": machine(), "rows": args.rows, "columns": COLUMNS}
    work = Path(tempfile.mkdtemp(prefix="aetool-throughput-"))
    try:
        data = make_table(args.rows)
        columns = [f"f{i}" for i in range(COLUMNS)]
        detector = AutoencoderDetector(random_state=0, device="cpu").fit(
            pd.DataFrame(data[:20000], columns=columns))
        detector.table_spec_ = TableSpec()
        bundle = work / "model"
        detector.save(bundle)
        if args.only == "e2e":
            end_to_end_section(work, data, columns, bundle, detector, args.device)
            return
        if args.only == "onnx":
            rows = onnx_contest(detector, pd.DataFrame(data[:args.rows], columns=columns))
            print_table(rows, ["what", "rows_per_s"])
            by = {(r["what"].split(" raw")[0], r["batch"]): r["rows_per_s"] for r in rows}
            ratio = {b: by["onnxruntime fp32", b] / by["torch eager fp32", b] for b in BATCHES}
            print("onnxruntime / torch: " + ", ".join(f"batch {b}: {v:.2f}x"
                                                      for b, v in ratio.items()))
            write_json("throughput_onnx.json", {"machine": machine(), "rows": args.rows,
                                                "columns": COLUMNS, "rows_detail": rows,
                                                "onnx_over_torch": ratio})
            return
        matrix, _ = detector._prepare(pd.DataFrame(data, columns=columns), reset=False)
        hidden = detector.config_.hidden
        width = matrix.shape[1]  # the model's input: columns plus their log views
        sizes = [width, *hidden, detector.model_.code_size, *reversed(hidden), width]
        shapes = list(itertools.pairwise(sizes))
        rows = []
        for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            setup = compile_seconds(detector, matrix, precision, 16384)
            candidates = {}
            for b in BATCHES:
                candidates["roofline", b] = roofline(matrix, shapes, dtype, b)
                candidates["eager", b] = model_only(detector, matrix, precision, b)
            for b in COMPILED_BATCHES:
                candidates["compiled", b] = model_only(detector, matrix, precision, b, True)
            best = contest(candidates)
            roof, roof_batch = fastest(best, "roofline")
            eager, batch = fastest(best, "eager")
            compiled, compiled_batch = fastest(best, "compiled")
            rows.append({"what": f"aetool model {precision} (batch {batch})",
                         "rows_per_s": rate(len(matrix), eager), "share_of_roofline": roof / eager})
            rows.append({"what": f"aetool model {precision} torch.compile (batch "
                                 f"{compiled_batch}; compile {setup:.0f} s once)",
                         "rows_per_s": rate(len(matrix), compiled),
                         "share_of_roofline": roof / compiled})
            rows.append({"what": f"roofline matmuls {precision} (batch {roof_batch})",
                         "rows_per_s": rate(len(matrix), roof)})
            results[f"compile_seconds_{precision}"] = setup
            saved_per_row = (eager - compiled) / len(matrix)
            results[f"compile_pays_after_rows_{precision}"] = (
                setup / saved_per_row if saved_per_row > 0 else None)
        from pyod.models.auto_encoder import AutoEncoder

        pyod = AutoEncoder(hidden_neuron_list=[*hidden, detector.model_.code_size], epoch_num=1,
                           verbose=0).fit(matrix[:20000])
        subset = matrix[:200_000]
        seconds = best_of(lambda: pyod.decision_function(subset), repeats=1)
        rows.append({"what": "PyOD AutoEncoder decision_function", "rows_per_s":
                     rate(len(subset), seconds)})
        fp32_model = rows[0]["rows_per_s"]
        results["bf16_vs_fp32_spearman"] = bf16_ranking()
        results["model_vs_pyod"] = fp32_model / rows[-1]["rows_per_s"]

        csv_path = work / "table.csv"
        pd.DataFrame(data, columns=columns).to_csv(csv_path, index=False)
        io_seconds = best_of(lambda: pd.read_csv(csv_path).to_csv(work / "copy.csv", index=False),
                             repeats=1)
        rows.append({"what": "I/O limit: pandas read_csv + to_csv", "rows_per_s":
                     rate(args.rows, io_seconds)})
        for precision in ("fp32", "bf16"):
            detector.set_inference(device="cpu", precision=precision)
            seconds = best_of(lambda: stream_score(detector, csv_path, work / "scores.csv",
                                                   top_k=3, progress=False), repeats=1)
            rows.append({"what": f"aetool score CSV->CSV {precision}",
                         "rows_per_s": rate(args.rows, seconds),
                         "share_of_io_limit": io_seconds / seconds})
        print_table(rows, ["what", "rows_per_s", "share_of_roofline", "share_of_io_limit"])
        results["table"] = rows
        if not args.skip_memory:
            small, big = work / "small.csv", work / "big.csv"
            with open(csv_path) as source, open(small, "w") as target:
                for i, line in enumerate(source):
                    if i > 200_000:
                        break
                    target.write(line)
            with open(big, "w") as target:
                with open(csv_path) as source:
                    shutil.copyfileobj(source, target)
                with open(csv_path) as source:
                    next(source)
                    shutil.copyfileobj(source, target)
            rss_small = peak_rss(bundle, small, work / "s.csv")
            rss_big = peak_rss(bundle, big, work / "b.csv")
            results["peak_rss_mib"] = {"200k": rss_small, f"{2 * args.rows // 1000}k": rss_big,
                                       "ratio": rss_big / rss_small}
            print(f"\npeak RSS: 200k rows {rss_small:.0f} MiB, {2 * args.rows:,} rows "
                  f"{rss_big:.0f} MiB, ratio {rss_big / rss_small:.2f}")
        print(f"model-only fp32 vs PyOD: {results['model_vs_pyod']:.1f}x")
        print(f"bf16 vs fp32 score ranking (Spearman): {results['bf16_vs_fp32_spearman']}")
        for precision in ("fp32", "bf16"):
            after = results[f"compile_pays_after_rows_{precision}"]
            print(f"torch.compile {precision}: {results[f'compile_seconds_{precision}']:.0f} s, "
                  + (f"pays after {after:,.0f} rows" if after else "never pays here"))
        write_json("throughput.json", results)
        print(f"wrote {RESULTS / 'throughput.json'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
