"""The patch detector's own autoencoder (issue #18): its code size and variant had never been
varied on the real-defect sets. Each setting is a full default fit (everything else at the
detector's defaults: quarter-side patches, ±1 grid step, position-scaled distances, mean of the
3 worst patches); metric: image ROC-AUC on the real test defects. Cases as in
bench/position_scale.py, plus ELPV at 150 px and the tiles at 240x96.

    python bench/patch_code_size.py                     # about 40 minutes on 2 cores
    python bench/patch_code_size.py --cases elpv64,mtile128 --settings "ae 16,ae 32"

Rows of a partial run replace the same (case, setting) and keep the rest of the results file.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

from common import RESULTS, machine, print_table, write_json
from position_scale import case_data

SETTINGS = {  # PatchDetector keyword arguments
    "ae 8": {"code_size": 8},
    "ae 16": {"code_size": 16},
    "ae 32": {"code_size": 32},
    "ae 64": {"code_size": 64},
    "ae 128": {"code_size": 128},
    "dae 32": {"variant": "dae", "code_size": 32},
    # beyond the code size (the default's code of 16 otherwise): the noise of one training run,
    # the denoising variant, a wider hidden layer, twice the epochs
    "ae 16 seed 1": {"code_size": 16, "random_state": 1},
    "dae 16": {"variant": "dae", "code_size": 16},
    "ae 16 hidden 512": {"code_size": 16, "variant_params": {"hidden": [512]}},
    "ae 16 40 epochs": {"code_size": 16, "epochs": 40},
}
CASES = ("elpv64", "mtile128", "elpv64 unaligned", "mtile128 unaligned", "elpv150",
         "mtile240x96", *(f"{name} {n} images seed {seed}" for name in ("elpv64", "mtile128")
                          for n, seed in ((54, 0), (54, 1), (150, 1))))
NAME = "patch_code_size.json"


def measure(case: str, setting: str) -> tuple[float, float]:
    """ROC-AUC and fit seconds of one default fit with ``setting``."""
    from sklearn.metrics import roc_auc_score

    from aetool import PatchDetector

    train, test, labels = case_data(case)
    start = time.perf_counter()
    detector = PatchDetector(device="cpu", **SETTINGS[setting]).fit(train)
    seconds = time.perf_counter() - start
    return float(roc_auc_score(labels, -detector.score_samples(test))), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--settings", default=",".join(SETTINGS))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    path = RESULTS / NAME
    rows = {r["case"]: r for r in json.loads(path.read_text())["rows"]} if path.exists() else {}
    for case in args.cases.split(","):
        for setting in args.settings.split(","):
            auc, seconds = measure(case, setting)
            row = rows.setdefault(case, {"case": case})
            row[setting], row[f"{setting} fit seconds"] = auc, seconds
            print(f"{case:28s} {setting:8s} {auc:.3f} ({seconds:.0f} s)", flush=True)
            write_json(NAME, {"protocol": __doc__, "machine": machine(),
                              "rows": list(rows.values()), **summary(list(rows.values()))})
    print_table(list(rows.values()), ["case", *SETTINGS])
    print(summary(list(rows.values())))


def summary(rows: list[dict]) -> dict:
    """For each setting measured on every case: its worst loss against the best setting of each
    case (the rule the detector's settings are chosen by) and its mean ROC-AUC."""
    complete = [s for s in SETTINGS if all(s in r for r in rows)]
    worst = {s: max(max(r[t] for t in complete) - r[s] for r in rows) for s in complete}
    mean = {s: sum(r[s] for r in rows) / len(rows) for s in complete}
    return {"settings on every case": complete, "worst loss": worst, "mean": mean}


if __name__ == "__main__":
    main()
