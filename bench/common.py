"""Helpers shared by the benchmark scripts: data paths, timing, result tables."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AETOOL_SHARED_DATA", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "bench" / "results"
# A third image set for the image defaults (issue #19), not among the shared data: Fashion-MNIST's
# four idx files. Debian packages them (dataset-fashion-mnist); see docs/benchmarks.md.
FASHION_MNIST = Path(os.environ.get("AETOOL_FASHION_MNIST", SHARED / "fashion-mnist"))
# The patch detector as the benches of its earlier ideas measured it (position_scale,
# patch_neighbours, patch_context, synthetic_defects): before the edge channel, turned copies
# (bench/patch_turns.py), the conv patch autoencoder (bench/patch_backbone.py) and the texture
# division (bench/patch_texture.py) and the whole image's thumbnail (bench/whole_thumbnail.py),
# so their documented figures reproduce.
EARLIER_PATCH_DETECTOR = {"variant": "ae", "edges": False, "turns": False, "texture_power": 0,
                          "whole_image": False, "device": "cpu"}


def require(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"benchmark data not found at {path}; set AETOOL_SHARED_DATA")
    return path


def timed(func: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = func()
    return result, time.perf_counter() - start


def machine() -> dict[str, Any]:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine()}


def seeded_subset(total: int, n: int, seed: int) -> Any:
    """Sorted indices of a seeded random ``n`` of ``total`` rows: the same draw in every script
    that names the same seed, so their results can be set side by side."""
    import numpy as np

    return np.sort(np.random.default_rng(seed).permutation(total)[:n])


def cases_from_command_line(doc: str | None, default: Sequence[str]) -> list[str]:
    """The ``--cases`` a script was asked for (comma-separated; ``default`` when none; "":
    none, to print what the results file holds), with library warnings silenced for the
    table's sake."""
    import argparse
    import warnings

    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(default))
    cases = [case for case in parser.parse_args().cases.split(",") if case]
    warnings.filterwarnings("ignore")
    return cases


def cases_and_methods(doc: str | None, cases: Sequence[str], methods: Sequence[str],
                      default_methods: Sequence[str] | None = None
                      ) -> tuple[list[str], list[str]]:
    """The ``--cases`` (comma-separated) and ``--methods`` (';'-separated: method names hold
    commas) a script was asked for, by default every case and ``default_methods`` (None:
    every method), with library warnings silenced; a name that is not among them ends the
    script with one line."""
    import argparse
    import warnings

    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(cases))
    parser.add_argument("--methods", default=";".join(default_methods or methods),
                        help="';'-separated")
    args = parser.parse_args()
    chosen = args.cases.split(","), args.methods.split(";")
    for kind, names, known in (("case", chosen[0], cases), ("method", chosen[1], methods)):
        unknown = [name for name in names if name not in known]
        if unknown:  # one line and exit 2, before any data is loaded or any result written
            parser.exit(2, f"{parser.prog}: unknown {kind} {unknown[0]!r}; choose from: "
                           f"{', '.join(known)}\n")
    warnings.filterwarnings("ignore")
    return chosen


def saved_rows(name: str) -> list[dict[str, Any]]:
    """The rows of results file ``name`` (none when it does not exist yet)."""
    path = RESULTS / name
    return json.loads(path.read_text())["rows"] if path.exists() else []


def rows_by_case_method(name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The rows of results file ``name`` by (case, method), so a run replaces only what it
    measures again."""
    return {(r["case"], r["method"]): r for r in saved_rows(name)}


def rows_on_file(name: str) -> dict[str, dict[str, Any]]:
    """The rows of results file ``name`` by case, so a partial run replaces only its cases."""
    return {r["case"]: r for r in saved_rows(name)}


def merge_row(name: str, protocol: str | None, row: dict[str, Any]) -> Path:
    """Write ``row`` into results file ``name`` in place of the row of its (case, method),
    reading the file again first, so runs of other cases that share the file keep theirs."""
    rows = {**rows_by_case_method(name), (row["case"], row["method"]): row}
    return write_json(name, {"protocol": protocol, "machine": machine(),
                             "rows": list(rows.values())})


def measure_all(chosen: tuple[list[str], list[str]], order: tuple[Sequence[str], Sequence[str]],
                measure: Callable[[str, str], dict[str, Any]], name: str, protocol: str,
                columns: list[str]) -> None:
    """``measure(case, method)`` for every chosen (case, method), each row saved into results
    file ``name`` as it comes (a long run keeps what it measured) and its ``columns`` printed;
    then the file's whole table in the ``order`` of cases and methods."""
    for case in chosen[0]:
        for method in chosen[1]:
            row = measure(case, method)
            merge_row(name, protocol, row)
            print(*(row.get(c) for c in ["case", "method", *columns]), flush=True)
    cases, methods = (list(names) for names in order)
    print_table(sorted(saved_rows(name), key=lambda r: (cases.index(r["case"]),
                                                        methods.index(r["method"]))),
                ["case", "method", *columns])


def worst_losses(by: dict[tuple[str, str], float], cases: Sequence[str],
                 methods: Sequence[str]) -> list[dict[str, Any]]:
    """The rule every patch default is chosen by: for each method measured on every one of
    ``cases`` (ROC-AUC in ``by``, keyed (case, method)), its mean and its worst loss against
    the best method measured on each case, and where that loss is."""
    import numpy as np

    table = []
    for method in methods:
        aucs = [by.get((case, method)) for case in cases]
        if None in aucs or not aucs:
            continue
        losses = [max(by[(c, m)] for m in methods if (c, m) in by) - a
                  for c, a in zip(cases, aucs)]
        worst = int(np.argmax(losses))
        table.append({"method": method, "cases": len(cases),
                      "mean_roc_auc": float(np.mean(aucs)),
                      "worst_loss": float(losses[worst]), "where": cases[worst]})
    return table


def placed_size(side: int, parts: int) -> int:
    """Patches ``1/parts`` of the side, with the placed rule's floor (PatchGrid.for_image)."""
    from aetool.defaults import PATCH_SIZE_RULE
    from aetool.patches import PatchGrid

    return PatchGrid.for_image(side, side, parts=parts,
                               smallest=PATCH_SIZE_RULE["placed"][1]).size


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(_fmt(row.get(c)).ljust(widths[c]) for c in columns))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


def _idx(path: Path) -> Any:
    """A gzipped idx file (MNIST's format) as uint8: (N, 28, 28) images or (N,) labels."""
    import gzip

    import numpy as np

    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    images = raw[3] == 3  # the magic number's last byte: the number of dimensions
    values = np.frombuffer(raw, np.uint8, offset=16 if images else 8)
    return values.reshape(-1, 28, 28) if images else values


def load_mnist() -> tuple[Any, Any, Any, Any]:
    """(train images, train labels, test images, test labels) as uint8 arrays from the shared
    folder: the first 10,000 official training images and the official 10,000 test images."""
    import numpy as np

    folder = require(SHARED / "mnist")
    train = np.load(folder / "mnist_train10k_uint8.npz")
    return (train["X"], train["y"], _idx(folder / "t10k-images-idx3-ubyte.gz"),
            _idx(folder / "t10k-labels-idx1-ubyte.gz"))


def load_fashion_mnist() -> tuple[Any, Any, Any, Any]:
    """Fashion-MNIST (Zalando, MIT licence) as :func:`load_mnist` gives MNIST: the first 10,000
    official training images (about 1,000 per class) and the official 10,000 test images, read
    from the four idx files in FASHION_MNIST (not in the shared folder; docs/benchmarks.md says
    where)."""
    folder = FASHION_MNIST
    if not (folder / "train-images-idx3-ubyte.gz").exists():
        raise SystemExit(f"Fashion-MNIST not found at {folder}; set AETOOL_FASHION_MNIST to a "
                         "folder with its four idx .gz files (docs/benchmarks.md says where)")
    return (_idx(folder / "train-images-idx3-ubyte.gz")[:10000],
            _idx(folder / "train-labels-idx1-ubyte.gz")[:10000],
            _idx(folder / "t10k-images-idx3-ubyte.gz"), _idx(folder / "t10k-labels-idx1-ubyte.gz"))


def one_class_case(kind: str, k: int) -> tuple[Any, Any, Any]:
    """One-class protocol on ``kind`` ("mnist" or "fashion"): the training images of class
    ``k``, every test image, and labels (1: another class, anomalous)."""
    x_train, y_train, x_test, y_test = (load_mnist if kind == "mnist" else load_fashion_mnist)()
    return x_train[y_train == k], x_test, (y_test != k).astype(int)
