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
import time
import warnings

from common import machine, print_table, rows_on_file, write_json
from position_scale import case_data

SETTINGS = {  # PatchDetector keyword arguments; measured before the edge channel (off here)
    "ae 8": {"edges": False, "code_size": 8},
    "ae 16": {"edges": False, "code_size": 16},
    "ae 32": {"edges": False, "code_size": 32},
    "ae 64": {"edges": False, "code_size": 64},
    "ae 128": {"edges": False, "code_size": 128},
    "dae 32": {"edges": False, "variant": "dae", "code_size": 32},
    # beyond the code size (the default's code of 16 otherwise): the noise of one training run,
    # the denoising variant, a wider hidden layer, twice the epochs
    "ae 16 seed 1": {"edges": False, "code_size": 16, "random_state": 1},
    "dae 16": {"edges": False, "variant": "dae", "code_size": 16},
    "ae 16 hidden 512": {"edges": False, "code_size": 16,
                         "variant_params": {"hidden": [512]}},
    "ae 16 40 epochs": {"edges": False, "code_size": 16, "epochs": 40},
}
CASES = ("elpv64", "mtile128", "elpv64 unaligned", "mtile128 unaligned", "elpv150",
         "mtile240x96", *(f"{name} {n} images seed {seed}" for name in ("elpv64", "mtile128")
                          for n, seed in ((54, 0), (54, 1), (150, 1))))
NAME = "patch_code_size.json"


def measure(case: str, keywords: dict) -> tuple[float, float, float]:
    """ROC-AUC, fit seconds and the share of normal test images flagged (the threshold's
    contamination is 0.1) of one default fit with the PatchDetector ``keywords``
    (``edge_smoothing``: aetool.patches.EDGE_SMOOTHING for this fit)."""
    from sklearn.metrics import roc_auc_score

    import aetool.patches as patches
    from aetool import PatchDetector

    # measured before turns="auto" (bench/patch_turns.py), the conv patch autoencoder
    # (bench/patch_backbone.py) and the texture division (bench/patch_texture.py)
    keywords = {"turns": False, "variant": "ae", "texture_power": 0, **keywords}
    smoothing = keywords.pop("edge_smoothing", patches.EDGE_SMOOTHING)
    train, test, labels = case_data(case)
    original, patches.EDGE_SMOOTHING = patches.EDGE_SMOOTHING, smoothing
    try:
        start = time.perf_counter()
        detector = PatchDetector(device="cpu", **keywords).fit(train)
        seconds = time.perf_counter() - start
        scores = -detector.score_samples(test)
        flagged = float((scores[labels == 0] > detector.threshold_).mean())
        return float(roc_auc_score(labels, scores)), seconds, flagged
    finally:
        patches.EDGE_SMOOTHING = original


def sweep(doc: str, name: str, settings: dict[str, dict], cases: tuple[str, ...]) -> None:
    """Command line of a settings sweep: every (case, setting) fit once, rows written into
    bench/results/``name`` as they come; a partial run keeps the file's other rows."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(cases))
    parser.add_argument("--settings", default=",".join(settings))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = rows_on_file(name)
    for case in args.cases.split(","):
        for setting in args.settings.split(","):
            auc, seconds, flagged = measure(case, settings[setting])
            row = rows.setdefault(case, {"case": case})
            row[setting], row[f"{setting} fit seconds"] = auc, seconds
            row[f"{setting} normal flagged"] = flagged
            print(f"{case:28s} {setting:8s} {auc:.3f} ({seconds:.0f} s, normal flagged "
                  f"{flagged:.3f})", flush=True)
            write_json(name, {"protocol": doc, "machine": machine(),
                              "rows": list(rows.values()),
                              **summary(list(rows.values()), settings)})
    print_table(list(rows.values()), ["case", *settings])
    print(summary(list(rows.values()), settings))


def summary(rows: list[dict], settings: dict[str, dict]) -> dict:
    """For each setting measured on every case: its worst loss against the best setting of each
    case (the rule the detector's settings are chosen by) and its mean ROC-AUC."""
    complete = [s for s in settings if all(s in r for r in rows)]
    worst = {s: max(max(r[t] for t in complete) - r[s] for r in rows) for s in complete}
    mean = {s: sum(r[s] for r in rows) / len(rows) for s in complete}
    return {"settings on every case": complete, "worst loss": worst, "mean": mean}


if __name__ == "__main__":
    sweep(__doc__, NAME, SETTINGS, CASES)
