"""Which channels the patch detector's reconstruction error is taken over (PatchDetector's
``residual_edges``): each patch carries the image's channels and an edge channel (the
smoothed gradient magnitude), and its code one more coordinate, the error of its worst-drawn
tenth of values. Taken over every channel (``residual_edges=true``, the default before this
bench), the edges of a grain or a stripe, which the decoder draws worst, make the error of
every textured patch high, so a scratch among them stands out less; taken over the image's
own channels (``residual_edges=false``) it does not see them. The edge channel stays in the
patch and its code either way.

Each case is fitted once per form with the default detector otherwise; image ROC-AUC and
AUPR. A form is the default when its worst loss against the better form of each case, over
every case, is the smaller (the rule every default of the patch detector follows).

Cases: bench/patch_pooling.py's 25: the shared cells and tiles at the sizes of
bench/real_defects.py and from 54 or 150 training images, the synthetic photographs at
128x128 and 240x96, the coffee-cup crops, one-class MNIST digits 1, 3, 5, 8 and Fashion-MNIST
classes 0, 2, 4, 6 (when AETOOL_FASHION_MNIST is set), brick crops and the cells moved round.

    python bench/residual_channels.py                    # about 50 minutes on 2 cores
    python bench/residual_channels.py --cases elpv64,brick

Rows of a partial run replace the same (case, method) and keep the rest of the results file,
so two runs of different cases can share the work.
"""

from __future__ import annotations

import os

from common import cases_and_methods, merge_row, print_table, saved_rows, worst_losses
from patch_pooling import CASES, case_data
from unaligned import detector, method_row

NAME = "residual_channels.json"
INTENSITIES = "error over the image's channels (residual_edges=false, default)"
EVERY_CHANNEL = "error over every channel, edges too (residual_edges=true, the default before)"
METHODS = {INTENSITIES: detector(residual_edges=False),
           EVERY_CHANNEL: detector(residual_edges=True)}


def main() -> None:
    cases, methods = cases_and_methods(__doc__, CASES, list(METHODS))
    for case in cases:
        if case.startswith("fashion") and not os.environ.get("AETOOL_FASHION_MNIST"):
            print(f"{case}: skipped (set AETOOL_FASHION_MNIST)")
            continue
        data = case_data(case)
        for method in methods:
            row, _ = method_row(case, method, METHODS[method], data)
            merge_row(NAME, __doc__, row)
            print(f"{case}: {method}: {row['roc_auc']:.4f}, {row['seconds']:.0f} s", flush=True)
    summarise(saved_rows(NAME))


def summarise(rows: list[dict]) -> None:
    """Each form's mean ROC-AUC and worst loss against the better form, over the cases both
    are measured on, and the cases where the two differ by more than 0.005."""
    by = {(r["case"], r["method"]): r["roc_auc"] for r in rows}
    cases = sorted({c for c, _ in by if all((c, m) in by for m in METHODS)})
    if not cases:
        print("no case measured with both forms yet")
        return
    print_table(worst_losses(by, cases, list(METHODS)),
                ["method", "cases", "mean_roc_auc", "worst_loss", "where"])
    moved = [{"case": c, "before": by[(c, EVERY_CHANNEL)], "now": by[(c, INTENSITIES)]}
             for c in cases if abs(by[(c, INTENSITIES)] - by[(c, EVERY_CHANNEL)]) > 0.005]
    if moved:
        print_table(moved, ["case", "before", "now"])


if __name__ == "__main__":
    main()
