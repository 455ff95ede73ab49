"""Whether and where a patch's reconstruction error is floored (PatchDetector's
``residual_floor``): each patch's code carries its reconstruction error as one more
coordinate, and a test patch drawn better than any training patch (an image saved as JPEG or
resampled, as another camera gives it, is smoother) lies far from the bank in that coordinate
and stands out for being too normal. Floored at a quantile of the training patches' errors at
its grid position (overall, where patches are searched anywhere), in the bank and when
scoring, it cannot: at 0, the lowest, the bank and the threshold are as unfloored (every
training patch is at or above it); at 0.5, the median, the error below it counts as the median
everywhere, so a patch drawn somewhat better than usual is not odd either.

Unfloored and floored at 0 are scored from one default fit per case (at 0 the floor only acts
when scoring), so their difference is the floor's alone; the median form is fitted on its own.
Image ROC-AUC. A form is the default when its worst loss against the best form of each case,
over every case, is the smallest (the rule every default of the patch detector follows). Then
the camera check: a detector fitted on the synthetic round part's normal images scores its
normal test images as saved (PNG), as JPEG at quality 75 and resampled to 300 px (bicubic),
in multiples of its threshold, for each form.

Cases: bench/patch_pooling.py's 25 (cells, tiles, synthetic photographs, coffee crops, MNIST
digits, Fashion-MNIST classes when AETOOL_FASHION_MNIST is set, brick, cells moved round).

    python bench/residual_floor.py                       # about 50 minutes on 2 cores
    python bench/residual_floor.py --cases elpv64,brick  # some cases ("camera": the check)
    python bench/residual_floor.py --methods "error floored at the training patches' median (residual_floor=0.5, default)"

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
FLOORED = "error floored at the training patches' lowest (residual_floor=0)"
UNFLOORED = "error as drawn (residual_floor=none, the default before)"
MEDIAN = "error floored at the training patches' median (residual_floor=0.5, default)"
METHODS = [FLOORED, UNFLOORED, MEDIAN]
CAMERA = "camera"


def fitted_forms(train: np.ndarray, methods: list[str]) -> list[tuple[list[str], object]]:
    """The detectors that score ``methods``: one fit for the lowest floor and none (a scoring
    switch: at the lowest the bank is as unfloored), one of its own for the median."""
    from aetool import PatchDetector

    fits = []
    shared = [m for m in methods if m in (FLOORED, UNFLOORED)]
    if shared:
        fits.append((shared, PatchDetector(residual_floor=0.0, device="cpu").fit(train)))
    if MEDIAN in methods:
        fits.append(([MEDIAN], PatchDetector(residual_floor=0.5, device="cpu").fit(train)))
    return fits


def scored(fits: list[tuple[list[str], object]], images: np.ndarray) -> dict[str, tuple]:
    """Each method's anomaly scores of ``images`` and its detector's threshold."""
    found = {}
    for methods, detector in fits:
        for method in methods:
            detector.scorer_.residual_floor = None if method == UNFLOORED else \
                detector.residual_floor
            found[method] = (-detector.score_samples(images), detector.threshold_)
        detector.scorer_.residual_floor = detector.residual_floor
    return found


def run_case(case: str, methods: list[str]) -> None:
    from sklearn.metrics import roc_auc_score

    train, test, labels = case_data(case)
    start = time.perf_counter()
    for method, (scores, _) in scored(fitted_forms(train, methods), test).items():
        row = {"case": case, "method": method, "roc_auc": float(roc_auc_score(labels, scores)),
               "fit_and_score_s": time.perf_counter() - start}
        merge_row(NAME, __doc__, row)
        print(f"{case}: {method}: {row['roc_auc']:.4f}", flush=True)


def camera_check(methods: list[str]) -> None:
    """Normal test images of the synthetic round part as saved, as JPEG and resampled, in
    multiples of the threshold of a detector fitted on its training images."""
    from PIL import Image
    from synthetic_photos import write_set

    from aetool import read_images

    folder = write_set("bottle", Path(tempfile.mkdtemp()))
    train = read_images(folder / "train").images
    fits = fitted_forms(train, methods)
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
    size = tuple(train.shape[2:])
    for form, path in forms.items():
        images = read_images(path, image_size=size).images
        for method, (scores, threshold) in scored(fits, images).items():
            ratio = float(np.mean(scores / threshold))
            merge_row(NAME, __doc__, {"case": f"{CAMERA}: normal images, {form}",
                                      "method": method, "times_threshold": ratio,
                                      "flagged": float(np.mean(scores > threshold))})
            print(f"camera, {form}: {method}: {ratio:.2f} x threshold", flush=True)


def main() -> None:
    cases, methods = cases_and_methods(__doc__, [*CASES, CAMERA], METHODS)
    for case in cases:
        if case == CAMERA:
            camera_check(methods)
        elif case.startswith("fashion") and not os.environ.get("AETOOL_FASHION_MNIST"):
            print(f"{case}: skipped (set AETOOL_FASHION_MNIST)")
        else:
            run_case(case, methods)
    summarise(saved_rows(NAME))


def summarise(rows: list[dict]) -> None:
    """Each form's mean ROC-AUC and worst loss against the best form, and the camera check."""
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
