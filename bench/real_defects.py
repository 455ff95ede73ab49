"""Real defects (issue #18): image anomaly detection on photographs where a defect covers a
small part of a normal-looking image.

Sets (from ../shared/datasets, normal training images only; test folders normal/ and defect/):
ELPV solar cells at 64x64 and at their native 150x150, magnetic tiles (mtile) at 128x128 and,
non-square, at 240 high x 96 wide.
Rows: aetool's default image detector through the CLI (`aetool fit train/ --image-size H,W`,
`aetool evaluate BUNDLE test/ --normal-class normal --plots`), the peers of
bench/defect_peers.py on the same resized pixels, and the ideas of bench/defect_ideas.py.
Metrics: image ROC-AUC, AUPR (average precision, defect = positive) and F1-max.

    python bench/real_defects.py                          # all sets, about 80 minutes on 2 cores
    python bench/real_defects.py --sets elpv64 --rows cli,ideas
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from common import RESULTS, SHARED, machine, print_table, require, write_json
from defect_ideas import IDEAS
from defect_peers import PEERS

SETS = {"elpv64": ("elpv", (64, 64)), "elpv150": ("elpv", (150, 150)),
        "mtile128": ("mtile", (128, 128)),
        "mtile240x96": ("mtile", (240, 96))}  # height x width: non-square, as some users' sets


def load(folder: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training images, test images and test labels (1 = defect), resized as the CLI does."""
    from aetool.data.images import read_image_folder

    train = read_image_folder(folder / "train", size).images
    test = read_image_folder(folder / "test", size)
    labels = np.array([c == "defect" for c in test.classes], dtype=int)
    return train, test.images, labels


def image_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    from aetool.tasks.evaluation import f1_max

    return {"roc_auc": float(roc_auc_score(labels, scores)),
            "aupr": float(average_precision_score(labels, scores)),
            "f1_max": f1_max(labels, scores)}


CLI_ROWS = {  # method name -> extra fit options; the first is what a user gets
    "aetool default (CLI: fit, evaluate)": [],
    "aetool whole-image conv detector (the previous default, --image-detector whole)":
        ["--image-detector", "whole"],
}


def fit_and_evaluate(train: Path, test: Path, size: tuple[int, int] | None,
                     fit_options: list[str], evaluate_options: list[str], out: Path,
                     normal: str = "normal") -> tuple[dict, float]:
    """The user's path: ``aetool fit`` on the training folder (bundle ``out``/model; ``size``
    None: no --image-size, as a user who passes nothing), then ``aetool evaluate`` on the
    test folder (normal class ``normal``) with plots in ``out``/plots; the saved metrics and
    the fit's seconds."""
    sized = [] if size is None else ["--image-size", f"{size[0]},{size[1]}"]
    start = time.perf_counter()
    subprocess.run(["aetool", "fit", str(train), *sized, "-o", str(out / "model"), "-q",
                    *fit_options], check=True)
    fit_s = time.perf_counter() - start
    subprocess.run(["aetool", "evaluate", str(out / "model"), str(test), "--normal-class",
                    normal, "--plots", str(out / "plots"), *evaluate_options],
                   check=True, capture_output=True)
    return json.loads((out / "plots" / "metrics.json").read_text()), fit_s


def cli_run(name: str, folder: Path, size: tuple[int, int], options: list[str],
            figure: bool) -> dict[str, float]:
    """:func:`fit_and_evaluate` on a shared set; with ``figure`` the most-anomalous figure is
    kept as bench/results/real_defects_<set>.png."""
    with tempfile.TemporaryDirectory() as tmp:
        saved, fit_s = fit_and_evaluate(folder / "train", folder / "test", size, options, [],
                                        Path(tmp))
        if figure:
            shutil.copy(f"{tmp}/plots/most_anomalous.png",
                        RESULTS / f"real_defects_{name}.png")
    return {"roc_auc": saved["roc_auc"], "aupr": saved["pr_auc"], "f1_max": saved["f1_max"],
            "seconds": fit_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--rows", default="cli,peers,ideas", help="any of cli, peers, ideas")
    parser.add_argument("--skip", default="", help="method names to leave out, ';'-separated")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    kinds = args.rows.split(",")
    path = RESULTS / "real_defects.json"
    results = json.loads(path.read_text())["results"] if path.exists() else {}
    for name in args.sets.split(","):
        root, size = SETS[name]
        folder = require(SHARED / root)
        train, test, labels = load(folder, size)
        rows = results.setdefault(name, [])  # a method measured again replaces its row
        skip = args.skip.split(";")
        if "cli" in kinds:
            for first, (method, options) in enumerate(CLI_ROWS.items()):
                if method not in skip:
                    keep(rows, {"method": method, "kind": "aetool",
                                **cli_run(name, folder, size, options, figure=first == 0)})
                    save(results)
        methods = ({**PEERS} if "peers" in kinds else {}) | (IDEAS if "ideas" in kinds else {})
        for method, func in methods.items():
            if method in skip:
                continue
            start = time.perf_counter()
            scores = func(train, test)
            keep(rows, {"method": method, "kind": "peer" if method in PEERS else "idea",
                        **image_metrics(labels, scores), "seconds": time.perf_counter() - start})
            save(results)  # after every row: a long run keeps what it measured
        print_table(rows, ["method", "kind", "roc_auc", "aupr", "f1_max", "seconds"])
        sys.stdout.flush()


def keep(rows: list[dict], row: dict) -> None:
    """Put ``row`` in ``rows`` in place of an earlier one of the same method."""
    print(row, flush=True)
    same = [i for i, r in enumerate(rows) if r["method"] == row["method"]]
    if same:
        rows[same[0]] = row
    else:
        rows.append(row)


def save(results: dict) -> None:
    write_json("real_defects.json", {"protocol": __doc__, "machine": machine(),
                                     "results": results})


if __name__ == "__main__":
    main()
