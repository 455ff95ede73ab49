"""How many nearest training codes a patch is measured against (issue #18): the patch detector
scores a test patch by the distance to its single nearest training code (within ±1 grid step);
the mean distance to its k nearest is less at the mercy of one odd training patch that happens
to resemble a defect. One default fit per case; for each k the positions' normal spread is
measured again with the same k (training images left out of their own search, as the detector
does), then the test images are scored. Metric: image ROC-AUC on the real test defects. Cases
as in bench/position_scale.py.

    python bench/patch_neighbours.py                     # about 15 minutes on 2 cores
    python bench/patch_neighbours.py --cases elpv64,mtile128

Rows of a partial run replace the same case and keep the rest of the results file.
"""

from __future__ import annotations

import functools

from common import (
    EARLIER_PATCH_DETECTOR,
    cases_from_command_line,
    machine,
    print_table,
    rows_on_file,
    write_json,
)
from position_scale import case_data

CASES = ("elpv64", "mtile128", "elpv64 unaligned", "mtile128 unaligned", "mtile240x96",
         *(f"{name} {n} images seed {seed}" for name in ("elpv64", "mtile128")
           for n, seed in ((54, 0), (54, 1), (150, 1))))
NEIGHBOURS = (1, 3, 5, 10)
NAME = "patch_neighbours.json"


def measure(case: str) -> dict:
    from sklearn.metrics import roc_auc_score

    import aetool.estimators.patch_detector as module
    from aetool import PatchDetector

    train, test, labels = case_data(case)
    detector = PatchDetector(**EARLIER_PATCH_DETECTOR).fit(train)
    row = {"case": case}
    original = module.local_nearest
    try:
        for k in NEIGHBOURS:
            module.local_nearest = functools.partial(original, neighbours=k)
            detector._training_distances(len(train))  # the spread, measured with this k
            row[f"k={k}"] = float(roc_auc_score(labels, -detector.score_samples(test)))
    finally:
        module.local_nearest = original
    print(row, flush=True)
    return row


def main() -> None:
    kept = rows_on_file(NAME)  # a case measured again replaces its row; the others stay
    for case in cases_from_command_line(__doc__, CASES):
        kept[case] = measure(case)
        rows = list(kept.values())
        columns = [f"k={k}" for k in NEIGHBOURS]
        worst = {c: max(max(r[d] for d in columns) - r[c] for r in rows) for c in columns}
        write_json(NAME, {"protocol": __doc__, "machine": machine(), "rows": rows,
                          "worst loss": worst})
    print_table(rows, ["case", *columns])
    print("worst loss against each case's best:", worst)


if __name__ == "__main__":
    main()
