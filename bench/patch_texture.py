"""Dividing an image's score by the texture of the training images it matched (issue #18).

What the patch detector gets most wrong on the cells: grainy polycrystalline normal cells,
whose every patch lies far from the other training patches, score as high as plain cells with
a fine crack. Each training image has a texture level; a test image's texture is the median
level of the training images its patches matched, and its score is divided by that texture to
a power (``PatchDetector(texture_power=...)``; 0: off). Two kinds of level: "own" (the
default), the median distance from each of an image's patch codes to the nearest other code
of the same image (patches.own_spread), and "others" (the default before), the median of its
patches' scaled distances to the other training images; "both": their geometric mean. One default fit per case, everything
as a user gets it (turned copies, backbone, edges); every column scored from the same fit
(same distances and matches). "auto" is the default's own score: the power
auto_texture_power picks (aetool.defaults.TEXTURE_POWERS). Image ROC-AUC on the real test
defects, the share of normal test images the default flags at contamination 0.1, fit seconds.

    python bench/patch_texture.py                            # about 50 minutes on 2 cores
    python bench/patch_texture.py --cases elpv64,mtile128
    python bench/patch_texture.py --cases ""                 # table and summary of the file

Rows of a partial run replace the same case and keep the rest of the results file.
"""

from __future__ import annotations

import time
from typing import Any

from common import cases_from_command_line, machine, print_table, rows_on_file, write_json
from patch_code_size import summary
from position_scale import case_data

OWN_POWERS = (0.25, 0.5, 0.75, 1.0)
OTHERS_POWER = 0.25  # the default before own levels
BOTH_POWERS = (0.5, 1.0)  # the geometric mean of the two levels, to this power
CASES = (*(f"{name} {n} images seed {seed}" for name in ("elpv64", "mtile128")
           for n, seed in ((54, 0), (54, 1), (150, 0), (150, 1), (200, 0), (200, 1),
                           (245, 0), (300, 0), (300, 1))),
         *(f"{name} unaligned 54 images seed {seed}" for name in ("elpv64", "mtile128")
           for seed in (0, 1)),
         "elpv64", "mtile128", "elpv64 unaligned", "mtile128 unaligned", "mtile240x96",
         "elpv150")
NAME = "patch_texture.json"


def setting(power: float, levels: str = "own") -> str:
    return "off" if power == 0 else f"{levels} power {power:g}"


SETTINGS = ("off", setting(OTHERS_POWER, "others"), *map(setting, OWN_POWERS),
            *(setting(p, "both") for p in BOTH_POWERS), "auto")


def measure(case: str) -> dict:
    """One default fit; ROC-AUC of the default and of every other column, the default's
    flagged share and fit time."""
    from sklearn.metrics import roc_auc_score

    from aetool import PatchDetector
    from aetool.estimators.patch_scorer import floored_levels
    from aetool.models.blocks import resolve_backbone
    from aetool.patches import own_spread

    train, test, labels = case_data(case)
    start = time.perf_counter()
    detector = PatchDetector(device="cpu", whole_image=False).fit(train)  # as measured
    row = {"case": case, "train images": len(train),
           "fit seconds": time.perf_counter() - start,
           "backbone": resolve_backbone(detector.model_.config.backbone,
                                        detector.model_.input_shape),
           "copies": detector.scorer_.copies,
           "auto power": detector.scorer_.texture_power or 0.0}
    scores = -detector.score_samples(test)
    row["auto"] = float(roc_auc_score(labels, scores))
    row["normal flagged"] = float((scores[labels == 0] > detector.threshold_).mean())
    matrix = detector._prepare(test, reset=False)[0]
    distances, entries = detector._search(detector._image_codes(matrix))
    n = len(train)
    own = own_spread(detector.bank_[:n])
    others = detector._training_search(n)[0].median(dim=1).values  # (rescales as in fit)

    def roc(levels: Any, power: float) -> float:
        detector.levels_, detector.scorer_.texture_power = levels, power or None
        return float(roc_auc_score(labels, detector._image_scores(distances, entries)))

    row["off"] = roc(None, 0)
    own, others = floored_levels(own), floored_levels(others)  # as the detector keeps them
    row[setting(OTHERS_POWER, "others")] = roc(others, OTHERS_POWER)
    for power in OWN_POWERS:
        row[setting(power)] = roc(own, power)
    for power in BOTH_POWERS:
        row[setting(power, "both")] = roc((own * others).sqrt(), power)
    return row


def main() -> None:
    cases = cases_from_command_line(__doc__, CASES)
    settings = {name: {} for name in SETTINGS}
    rows = {case: row for case, row in rows_on_file(NAME).items() if "auto power" in row}

    def save() -> None:
        write_json(NAME, {"protocol": __doc__, "machine": machine(), "rows": list(rows.values()),
                          **summary(list(rows.values()), settings)})

    for case in cases:
        rows[case] = row = measure(case)
        print(f"{case:36s} " + "  ".join(f"{s} {row[s]:.3f}" for s in settings)
              + f"  ({row['fit seconds']:.0f} s, auto power {row['auto power']:g}, "
              f"normal flagged {row['normal flagged']:.3f})", flush=True)
        save()
    save()
    print_table(list(rows.values()), ["case", *settings])
    print(summary(list(rows.values()), settings))


if __name__ == "__main__":
    main()
