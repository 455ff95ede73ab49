"""Whether a scored patch's reconstruction error is floored (PatchDetector's
``residual_floor``): each patch's code carries its reconstruction error as one more
coordinate, and a test patch drawn better than any training patch (an image saved as JPEG or
resampled, as another camera gives it, is smoother) lies far from the bank in that coordinate
and stands out for being too normal. Floored at the lowest a training patch had at its grid
position (overall, where patches are searched anywhere), it cannot. The bank and the
threshold are the same either way (the training patches are at or above the floor).

Both forms are scored from one default fit per case (the floor only acts when scoring), so
the difference is the floor's alone; image ROC-AUC. A form is the default when its worst loss
against the better form of each case, over every case, is the smaller (the rule every default
of the patch detector follows). Then the camera check: a detector fitted on the synthetic
round part's normal images scores its normal test images as saved (PNG), as JPEG at quality
75 and resampled to 300 px (bicubic), in multiples of its threshold, floored and not.

Cases: bench/patch_pooling.py's 25 (cells, tiles, synthetic photographs, coffee crops, MNIST
digits, Fashion-MNIST classes when AETOOL_FASHION_MNIST is set, brick, cells moved round).

    python bench/residual_floor.py                       # about 25 minutes on 2 cores
    python bench/residual_floor.py --cases elpv64,brick  # some cases ("camera": the check)

Rows of a partial run replace the same (case, method) and keep the rest of the results file,
so two runs of different cases can share the work.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
from common import cases_and_methods, merge_row, print_table, saved_rows, worst_losses
from patch_pooling import CASES, case_data

NAME = "residual_floor.json"
FLOORED = "error floored at the training patches' lowest (residual_floor=true, default)"
UNFLOORED = "error as drawn (residual_floor=false, the default before)"
METHODS = [FLOORED, UNFLOORED]
CAMERA = "camera"


def both_forms(detector, images: np.ndarray) -> dict[str, np.ndarray]:
    """The anomaly scores of ``images``, floored and not, from the one fitted detector."""
    scorer = detector.scorer_
    found = {}
    for method, floored in ((FLOORED, True), (UNFLOORED, False)):
        scorer.residual_floor = floored
        found[method] = -detector.score_samples(images)
    scorer.residual_floor = True
    return found


def run_case(case: str) -> None:
    from sklearn.metrics import roc_auc_score

    from aetool import PatchDetector

    train, test, labels = case_data(case)
    start = time.perf_counter()
    detector = PatchDetector(device="cpu").fit(train)
    for method, scores in both_forms(detector, test).items():
        row = {"case": case, "method": method, "roc_auc": float(roc_auc_score(labels, scores)),
               "fit_and_score_s": time.perf_counter() - start}
        merge_row(NAME, __doc__, row)
        print(f"{case}: {method}: {row['roc_auc']:.4f}", flush=True)


def camera_check() -> None:
    """Normal test images of the synthetic round part as saved, as JPEG and resampled, in
    multiples of the threshold of a detector fitted on its training images."""
    from PIL import Image
    from synthetic_photos import write_set

    from aetool import PatchDetector, read_images

    folder = write_set("bottle", Path(tempfile.mkdtemp()))
    detector = PatchDetector(device="cpu").fit(read_images(folder / "train").images)
    goods = sorted((folder / "test" / "good").glob("*.png"))
    forms = {"png": folder / "test" / "good"}
    for form in ("jpeg", "resampled"):
        forms[form] = folder / form
        forms[form].mkdir()
        for path in goods:
            image = Image.open(path)
            if form == "jpeg":
                image.save(forms[form] / (path.stem + ".jpg"), quality=75)
            else:
                image.resize((300, 300), Image.BICUBIC).save(forms[form] / path.name)
    size = tuple(read_images(folder / "train").images.shape[2:])
    for form, path in forms.items():
        images = read_images(path, image_size=size).images
        for method, scores in both_forms(detector, images).items():
            ratio = float(np.mean(scores / detector.threshold_))
            merge_row(NAME, __doc__, {"case": f"{CAMERA}: normal images, {form}",
                                      "method": method, "times_threshold": ratio,
                                      "flagged": float(np.mean(scores > detector.threshold_))})
            print(f"camera, {form}: {method}: {ratio:.2f} x threshold", flush=True)


def main() -> None:
    cases, _ = cases_and_methods(__doc__, [*CASES, CAMERA], METHODS)
    for case in cases:
        if case == CAMERA:
            camera_check()
        elif case.startswith("fashion") and not os.environ.get("AETOOL_FASHION_MNIST"):
            print(f"{case}: skipped (set AETOOL_FASHION_MNIST)")
        else:
            run_case(case)
    summarise(saved_rows(NAME))


def summarise(rows: list[dict]) -> None:
    """Each form's mean ROC-AUC and worst loss against the better form, and the camera check."""
    by = {(r["case"], r["method"]): r["roc_auc"] for r in rows if "roc_auc" in r}
    cases = sorted({c for c, _ in by if all((c, m) in by for m in METHODS)})
    if cases:
        print_table(worst_losses(by, cases, METHODS),
                    ["method", "cases", "mean_roc_auc", "worst_loss", "where"])
    camera = [r for r in rows if "times_threshold" in r]
    if camera:
        print_table(camera, ["case", "method", "times_threshold", "flagged"])


if __name__ == "__main__":
    main()
