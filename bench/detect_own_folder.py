"""`aetool detect` on one folder that holds its own anomalies: the unsupervised job, where the
detector is fitted on the very images it scores.

The patch detector keeps its training images' patch codes; scored as new images, the training
images find themselves in that bank and all score 0 (ROC-AUC 0.5, nothing flagged). `detect`
now scores each image without its own patches (PatchDetector.training_details). Measured here
through the CLI as a user runs it: a folder of every normal training image plus a seeded 10%
of as many defective test images (ELPV cells at 64x64, magnetic tiles at 128x128), `aetool
detect FOLDER --image-size H,W -o scores.csv`; image ROC-AUC, AUPR and F1-max of the written
scores, defect = positive, and the share flagged. Peers on the same pixels, each image scored
without itself: IsolationForest (scores of its own training rows) and the mean distance to the
5 nearest other images.

    python bench/detect_own_folder.py                    # both sets, about 6 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from common import SHARED, machine, print_table, require, rows_by_case_method, write_json
from real_defects import SETS, image_metrics

NAME = "detect_own_folder.json"
SHARE = 0.10  # defective images per normal one in the folder


def own_folder(root: Path, data: Path, seed: int = 0) -> tuple[list[Path], np.ndarray]:
    """Links under ``root``: normal/ every training image, defect/ a seeded SHARE of them as
    many defective test images; the files in CLI order are not needed, labels go by path."""
    from aetool.data.images import IMAGE_SUFFIXES

    def images(folder: Path) -> list[Path]:
        return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)

    normal, defects = images(data / "train"), images(data / "test" / "defect")
    rng = np.random.default_rng(seed)
    chosen = [defects[i] for i in sorted(rng.choice(len(defects), int(SHARE * len(normal)),
                                                    replace=False))]
    for kind, files in (("normal", normal), ("defect", chosen)):
        (root / kind).mkdir(parents=True)
        for file in files:
            (root / kind / file.name).symlink_to(file.resolve())
    return [*normal, *chosen], np.r_[np.zeros(len(normal)), np.ones(len(chosen))].astype(int)


def aetool_row(folder: Path, size: tuple[int, int], out: Path) -> dict:
    """`aetool detect` as a user runs it, metrics from the written scores."""
    import pandas as pd

    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "aetool.cli", "detect", str(folder),
                           "--image-size", f"{size[0]},{size[1]}", "-o", str(out), "-q",
                           "--normal-class", "normal"], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    seconds = time.perf_counter() - start
    frame = pd.read_csv(out)
    labels = frame["path"].str.startswith("defect").astype(int).to_numpy()
    return {"method": "aetool detect (default)", **image_metrics(labels, frame[
        "anomaly_score"].to_numpy()), "flagged": float(frame["is_anomaly"].mean()),
            "seconds": round(seconds, 1)}


def peer_rows(folder: Path, size: tuple[int, int]) -> list[dict]:
    """IsolationForest and 5-NN on the folder's pixels, each image scored without itself."""
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import NearestNeighbors

    from aetool.data.images import read_image_folder

    found = read_image_folder(folder, size)
    labels = np.array([c == "defect" for c in found.classes], dtype=int)
    pixels = found.images.reshape(len(labels), -1).astype(np.float32) / 255
    forest = IsolationForest(random_state=0).fit(pixels)
    distances, _ = NearestNeighbors(n_neighbors=6).fit(pixels).kneighbors(pixels)
    return [{"method": "IsolationForest on pixels", **image_metrics(labels,
                                                                   -forest.score_samples(pixels))},
            {"method": "5-NN on pixels (without itself)",
             **image_metrics(labels, distances[:, 1:].mean(axis=1))}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="elpv64,mtile128")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = rows_by_case_method(NAME)  # a run replaces only the sets it measures
    for name in args.sets.split(","):
        folder_name, size = SETS[name]
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "folder"
            _, labels = own_folder(folder, require(SHARED / folder_name))
            for row in [aetool_row(folder, size, Path(tmp) / "scores.csv"),
                        *peer_rows(folder, size)]:
                rows[(name, row["method"])] = {"case": name, "images": len(labels),
                                               "defects": int(labels.sum()), **row}
                print(rows[(name, row["method"])], flush=True)
    print_table(list(rows.values()), ["case", "method", "roc_auc", "aupr", "f1_max", "flagged"])
    write_json(NAME, {"protocol": __doc__, "machine": machine(), "rows": list(rows.values())})


if __name__ == "__main__":
    main()
