"""How the patch detector pools an image's distances into its score: the mean of its ``top_k``
worst patches and, where it also compares the whole image's thumbnail, that distance beside
them at a weight (before this bench: one value among k + 1, weight 1 / (k + 1); since it:
aetool.defaults.TOP_K and WHOLE_WEIGHT). Each case is fitted once with the default
detector; every pooling is computed from the same test distances (and the same
texture division), so only the pooling differs. Image ROC-AUC; a pooling is a candidate
default when its worst loss against the best pooling of each case, over every case, is the
smallest (the rule every default of the patch detector follows).

Cases: the shared cells and tiles at the sizes of bench/real_defects.py and from 54 or 150
training images (bench/patch_size_aligned.py's subsets), the synthetic photographs read at
128x128 and 240x96, the coffee-cup crops, one-class MNIST digits 1, 3, 5, 8 and
Fashion-MNIST classes 0, 2, 4, 6 (when AETOOL_FASHION_MNIST is set), and two sets searched
anywhere, where no thumbnail is compared (brick crops, the cells moved round).

    python bench/patch_pooling.py                        # about 45 minutes on 2 cores
    python bench/patch_pooling.py --cases elpv64,mtile128

Rows of a partial run replace the same (case, method) and keep the rest of the results file.
"""

from __future__ import annotations

import os
import time

import numpy as np
from common import cases_and_methods, merge_row, print_table, saved_rows, worst_losses
from patch_residual import CASES as RESIDUAL_CASES
from patch_residual import case_data as residual_case
from patch_size_aligned import case_data as aligned_case

from aetool.defaults import TOP_K as DEFAULT_K
from aetool.defaults import WHOLE_WEIGHT as DEFAULT_WEIGHT

NAME = "patch_pooling.json"
SUBSETS = tuple(f"{name} {n} images seed {seed}" for name in ("elpv64", "mtile128")
                for n, seed in ((54, 0), (54, 1), (150, 1)))
CASES = ("elpv64", "mtile128", "elpv150", "mtile240x96", *SUBSETS,
         "surface 128x128", "bottle 128x128", "surface 240x96", "bottle 240x96", "coffee",
         "mnist1", "mnist3", "mnist5", "mnist8", "fashion0", "fashion2", "fashion4", "fashion6",
         "brick", "elpv64 rolled")
TOP_K = (1, 2, 3, 5, 8)
WHOLE_WEIGHTS = (None, 0.25, 0.33, 0.4, 0.5)  # None: one value among k + 1 (the form before)


def pooling_name(k: int, weight: float | None) -> str:
    whole = "one among k + 1" if weight is None else f"weight {weight}"
    return f"mean of {k} worst, thumbnail {whole}"


METHODS = [pooling_name(k, w) for k in TOP_K for w in WHOLE_WEIGHTS]


def case_data(case: str):
    """Training images, test images and labels (1: anomalous) of one case."""
    return residual_case(case) if case in RESIDUAL_CASES else aligned_case(case)


def test_distances(case: str) -> dict:
    """The default detector fitted on ``case``: its test images' patch distances (N, P, and
    the thumbnail's last when it has one), their texture divisors, the labels."""
    from aetool import PatchDetector

    class Recording(PatchDetector):
        """The default detector, keeping the distances its last scoring pooled."""

        def _image_scores(self, distances, entries):
            self.pooled_ = (distances.clone(), entries.clone())
            return super()._image_scores(distances, entries)

    train, test, labels = case_data(case)
    start = time.perf_counter()
    detector = Recording(device="cpu").fit(train)
    scores = -detector.score_samples(test)
    distances, entries = detector.pooled_
    scorer = detector.scorer_
    divisor = np.ones(len(test))
    if detector.levels_ is not None and scorer.texture_power:  # as the detector divides
        levels = detector.levels_[entries % len(detector.levels_)].median(dim=1).values
        divisor = levels.double().numpy() ** scorer.texture_power
    return {"distances": distances.double().numpy(), "count": scorer.grid.count,
            "divisor": divisor,
            "labels": labels, "scores": scores, "seconds": time.perf_counter() - start}


def pooled(found: dict, k: int, weight: float | None) -> np.ndarray:
    """Image scores of one pooling: the mean of the ``k`` worst patch distances and the
    thumbnail's distance at ``weight`` (None: one value among k + 1), over the divisor."""
    patches = found["distances"][:, :found["count"]]
    worst = -np.sort(-patches, axis=1)[:, :k].mean(axis=1)
    if found["distances"].shape[1] > found["count"]:
        whole = found["distances"][:, found["count"]]
        share = 1 / (k + 1) if weight is None else weight
        worst = (1 - share) * worst + share * whole
    return worst / found["divisor"]


def main() -> None:
    from sklearn.metrics import roc_auc_score

    cases, methods = cases_and_methods(__doc__, CASES, METHODS)
    for case in cases:
        if case.startswith("fashion") and not os.environ.get("AETOOL_FASHION_MNIST"):
            print(f"{case}: skipped (set AETOOL_FASHION_MNIST)")
            continue
        found = test_distances(case)
        # the detector's own pooling, recomputed here, gives the scores it gave
        default = float(roc_auc_score(found["labels"], pooled(found, DEFAULT_K, DEFAULT_WEIGHT)))
        assert abs(default - roc_auc_score(found["labels"], found["scores"])) < 1e-6
        whole = found["distances"].shape[1] > found["count"]
        for k in TOP_K:
            for weight in WHOLE_WEIGHTS:
                name = pooling_name(k, weight)
                if name not in methods or (weight is not None and not whole):
                    continue
                auc = float(roc_auc_score(found["labels"], pooled(found, k, weight)))
                merge_row(NAME, __doc__, {"case": case, "method": name, "roc_auc": auc,
                                          "thumbnail": whole, "fit_and_score_s":
                                          found["seconds"]})
        print(f"{case}: default {default:.4f}, {found['seconds']:.0f} s", flush=True)
    summarise(saved_rows(NAME))


def summarise(rows: list[dict]) -> None:
    """Each pooling's worst loss against each case's best, over the cases with a thumbnail
    (every pooling is measured there), and its mean ROC-AUC."""
    cases = sorted({r["case"] for r in rows if r.get("thumbnail")})
    table = worst_losses({(r["case"], r["method"]): r["roc_auc"] for r in rows}, cases, METHODS)
    if not table:
        print("no case with a thumbnail measured yet")
        return
    print_table(sorted(table, key=lambda r: r["worst_loss"]),
                ["method", "mean_roc_auc", "worst_loss", "where"])


if __name__ == "__main__":
    main()
