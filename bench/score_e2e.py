"""End-to-end ``aetool score`` against pandas doing only the I/O (``bench/throughput.py --only
e2e``): whole processes started from the shell, best of 3, the contenders interleaved so the
machine's drift hits all alike.

- CSV -> CSV and Parquet -> Parquet, 1,000,000 x 100 floats, with the default 3 top features
  and with ``--top-features 0``; the peer is a ``python -c`` process that reads the input with
  pandas and writes a frame shaped like aetool's output (same columns; a constant text where
  aetool writes explanations);
- start-up: ``aetool score`` on a 10-row file against ``python -c "import torch"``;
- peak RSS of a stream over 200,000 and 2,000,000 rows;
- exactness: the streamed fp32 scores against ``AutoencoderDetector.score_samples`` in memory;
- the CSV readers: pandas' C parser against pyarrow's multi-threaded one, whole file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

PEER = """
import sys, pandas as pd
source, target, explain = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
parquet = source.endswith(".parquet")
f = pd.read_parquet(source) if parquet else pd.read_csv(source)
out = pd.DataFrame({"anomaly_score": f.iloc[:, 0] * 1.0,
                    "anomaly_probability": f.iloc[:, 1].abs() / 10,
                    "is_anomaly": (f.iloc[:, 2] > 1).astype(int)})
if explain:
    out["top_features"] = "f12 (31%); f3 (12%); f77 (9%)"
out.to_parquet(target, index=False) if parquet else out.to_csv(target, index=False)
"""


def _seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def interleaved(commands: dict[str, list[str]], repeats: int) -> dict[str, float]:
    """Best wall-clock seconds of each command over ``repeats`` rounds that run every command
    in turn."""
    best = dict.fromkeys(commands, float("inf"))
    for _ in range(repeats):
        for name, command in commands.items():
            best[name] = min(best[name], _seconds(command))
    return best


def aetool(*args: str) -> list[str]:
    """The ``aetool`` command as a user's shell finds it."""
    found = shutil.which("aetool")
    return [found, *args] if found else [sys.executable, "-m", "aetool.cli", *args]


def end_to_end(work: Path, data: np.ndarray, columns: list[str], bundle: Path,
               device: str, repeats: int = 3) -> dict[str, Any]:
    """The CSV and Parquet contests and the start-up contest; rows of rows/s and ratios."""
    import pandas as pd

    rows = len(data)
    frame = pd.DataFrame(data, columns=columns)
    inputs = {"csv": work / "table.csv", "parquet": work / "table.parquet"}
    frame.to_csv(inputs["csv"], index=False)
    frame.to_parquet(inputs["parquet"], index=False)
    frame.iloc[:10].to_csv(work / "ten.csv", index=False)
    device_args = ["--device", device] if device != "auto" else []
    table: list[dict[str, Any]] = []
    for kind, source in inputs.items():
        out = str(work / f"out.{kind}")
        commands = {
            "peer, explained shape": [sys.executable, "-c", PEER, str(source), out, "1"],
            "peer, plain shape": [sys.executable, "-c", PEER, str(source), out, "0"],
            "aetool score (top 3)": aetool("score", str(bundle), str(source), "-o", out, "-q",
                                           *device_args),
            "aetool score --top-features 0": aetool("score", str(bundle), str(source), "-o",
                                                    out, "-q", "--top-features", "0",
                                                    *device_args),
        }
        best = interleaved(commands, repeats)
        pairs = {"aetool score (top 3)": "peer, explained shape",
                 "aetool score --top-features 0": "peer, plain shape"}
        for name, seconds in best.items():
            peer = pairs.get(name)
            table.append({"what": f"{kind}: {name}", "seconds": seconds,
                          "rows_per_s": rows / seconds,
                          "vs_peer": best[peer] / seconds if peer else None})
    startup = interleaved({
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "aetool score, 10 rows": aetool("score", str(bundle), str(work / "ten.csv"), "-o",
                                        str(work / "ten_out.csv"), "-q", *device_args),
    }, repeats=5)
    return {"table": table, "startup_seconds": startup,
            "startup_ratio": startup["aetool score, 10 rows"]
            / startup["python -c 'import torch'"]}


def streamed_equals_in_memory(detector: Any, data: np.ndarray, columns: list[str],
                              work: Path) -> dict[str, Any]:
    """Whether streaming (chunks, writer thread, CSV text) gives the in-memory fp32 scores bit
    for bit, on the first 200,000 rows."""
    import pandas as pd

    from aetool.tasks.stream import stream_score

    frame = pd.DataFrame(data[:200_000], columns=columns)
    source, out = work / "exact.csv", work / "exact_scores.csv"
    frame.to_csv(source, index=False)
    detector.set_inference(device="cpu", precision="fp32")
    stream_score(detector, source, out, top_k=0, progress=False)
    streamed = pd.read_csv(out)["anomaly_score"].to_numpy()
    in_memory = -detector.score_samples(pd.read_csv(source))
    return {"rows": len(frame), "identical": bool(np.array_equal(streamed, in_memory)),
            "max_abs_difference": float(np.max(np.abs(streamed - in_memory)))}


def readers(source: Path, repeats: int = 2) -> dict[str, float]:
    """Seconds to read the whole CSV with pandas' C parser and with pyarrow's multi-threaded
    reader (best of ``repeats``, in this process): why aetool reads with pandas."""
    import pandas as pd
    import pyarrow.csv

    best = {"pandas read_csv": float("inf"), "pyarrow.csv.read_csv": float("inf")}
    for _ in range(repeats):
        for name, read in (("pandas read_csv", lambda: pd.read_csv(source)),
                           ("pyarrow.csv.read_csv", lambda: pyarrow.csv.read_csv(source))):
            start = time.perf_counter()
            read()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def copy_rows(source: Path, target: Path, rows: int, times: int = 1) -> None:
    """The header and the first ``rows`` data rows of CSV ``source``, repeated ``times``."""
    with open(source) as handle:
        header = handle.readline()
        body = [line for _, line in zip(range(rows), handle, strict=False)]
    with open(target, "w") as out:
        out.write(header)
        for _ in range(times):
            out.writelines(body)


def rss_ratio(work: Path, bundle: Path, peak_rss: Any) -> dict[str, float]:
    """Peak RSS of streams over 200,000 and 2,000,000 rows (the table's first 1,000,000 rows
    twice)."""
    small, big = work / "small.csv", work / "big.csv"
    copy_rows(work / "table.csv", small, 200_000)
    copy_rows(work / "table.csv", big, 1_000_000, times=2)
    small_mib = peak_rss(bundle, small, work / "s.csv")
    big_mib = peak_rss(bundle, big, work / "b.csv")
    for path in (small, big):
        path.unlink()
    return {"200k": small_mib, "2000k": big_mib, "ratio": big_mib / small_mib}


def cleanup(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
