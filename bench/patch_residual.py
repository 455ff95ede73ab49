"""The patch's reconstruction error as one more coordinate of its code (PatchDetector's
``residual``): measured on every kind of image set at hand, with it and without it.

A patch code keeps what the encoder encodes; a defect it maps near a normal code (a fine
texture, a colour the 16 numbers leave out) is lost to the search. The decoder cannot draw
such a defect, so the patch's reconstruction error can tell. ``residual=True`` appends it to
each code, weighted to vary over the training patches as much as one code coordinate does
on average (aetool.estimators.patch_detector.residual_weight: no setting chosen on labels).
Two forms of the error: the patch's RMS error (``residual_share=1``) and the root of the mean
of its worst-drawn tenth of squared errors (``residual_share=0.1``), which a thin scratch
among a texture the decoder draws no better moves more. The default is the form, of the
three, whose worst loss against the others over every case is the smallest.

Cases (the same as bench/unaligned.py and bench/real_defects.py, plus a colour photograph):

- brick, gravel, grass: crops of scikit-image's bundled grey photographs, synthetic defects
  (bench/unaligned.py), searched anywhere by the place cost;
- coffee: the same protocol on scikit-image's colour photograph of a coffee cup (400 x 600
  RGB; its crops share a layout, so the place cost keeps the place-bound search);
- surface, bottle, leather: synthetic colour and grey photographs of a surface, a round part and
  a fine grain with small scratches, stains, chips and cuts (bench/synthetic_photos.py),
  aligned;
- elpv64, mtile128: the shared solar cells and magnetic tiles, real defects, aligned;
- elpv64 rolled, mtile128 rolled: the same, every image moved round at random;
- mnist1, 3, 5, 8 and fashion0, 2, 4, 6 (the latter when AETOOL_FASHION_MNIST is set): one
  class of the first 10,000 training images, every test image scored, the other classes
  anomalous (bench/mnist_oneclass.py's protocol), aligned whole objects.

Image ROC-AUC and AUPR, the share of normal test images above the fitted threshold
(contamination 0.1).

    python bench/patch_residual.py            # about 70 minutes on 2 cores
    python bench/patch_residual.py --cases coffee --methods "patch kNN on pixels (max)"
"""

from __future__ import annotations

import os

import numpy as np
from common import (
    SHARED,
    cases_and_methods,
    machine,
    one_class_case,
    print_table,
    require,
    rows_by_case_method,
    write_json,
)
from defect_peers import patch_knn_pixels
from real_defects import load
from synthetic_photos import SETS as SYNTHETIC
from synthetic_photos import photo_set
from unaligned import PHOTOS, ROLLED, detector, method_row, peer, photo_case, rolled_case

NAME = "patch_residual.json"
ALIGNED = {"elpv64": ("elpv", (64, 64)), "mtile128": ("mtile", (128, 128))}
RMS = "residual=true, RMS error of the patch (residual_share=1)"
WORST_TENTH = "residual=true, error of its worst-drawn tenth (residual_share=0.1, default)"
ONE_CLASS = ("mnist1", "mnist3", "mnist5", "mnist8", "fashion0", "fashion2", "fashion4",
             "fashion6")
CASES = (*PHOTOS, "coffee", *SYNTHETIC, *ALIGNED, *ROLLED, *ONE_CLASS)
METHODS = {
    RMS: detector(residual=True, residual_share=1.0),
    "residual=false (codes only)": detector(residual=False),
    WORST_TENTH: detector(residual=True, residual_share=0.1),
    "patch kNN on pixels (max)": peer(patch_knn_pixels),
}
DEFAULT_METHODS = list(METHODS)[:3]


def case_data(case: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training images, test images and labels (1: defect) of one case."""
    if case in ALIGNED:
        root, size = ALIGNED[case]
        return load(require(SHARED / root), size)
    if case in SYNTHETIC:
        return photo_set(case)
    if case in ONE_CLASS:
        return one_class_case(case.rstrip("0123456789"), int(case[-1]))
    return rolled_case(case) if case in ROLLED else photo_case(case)


def main() -> None:
    cases, methods = cases_and_methods(__doc__, CASES, list(METHODS), DEFAULT_METHODS)
    rows = rows_by_case_method(NAME)
    if not os.environ.get("AETOOL_FASHION_MNIST"):
        cases = [c for c in cases if not c.startswith("fashion")]
    for case in cases:
        data = case_data(case)
        labels = data[2]
        for method in methods:
            row, scores = method_row(case, method, METHODS[method], data)
            if "threshold" in row:
                row["normal_flagged"] = float(np.mean(scores[labels == 0] > row["threshold"]))
            rows[(case, method)] = row
            print(rows[(case, method)], flush=True)
            write_json(NAME, {"protocol": __doc__, "machine": machine(),
                              "rows": list(rows.values())})
    print_table(list(rows.values()), ["case", "method", "roc_auc", "aupr", "normal_flagged",
                                      "seconds"])


if __name__ == "__main__":
    main()
