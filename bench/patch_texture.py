"""Dividing an image's score by the texture of the training images it matched (issue #18).

What the patch detector gets most wrong on the cells: grainy polycrystalline normal cells,
whose every patch lies far from the other training patches, score as high as plain cells with
a fine crack. Each training image has a texture level (the median of its patches' scaled
distances to the other training images); a test image's texture is the median level of the
training images its patches matched, and its score is divided by that texture to a power
(``PatchDetector(texture_power=...)``; 0: off). One fit per case with the power 0.25 and
everything else as a user gets it (turned copies, backbone, edges); every power scored from
the same fit (same distances and matches). "auto" (the default) is the column it picks: off
below TEXTURE_FROM_IMAGES training images, 0.25 from there. Image ROC-AUC on the real test
defects, the share of normal test images flagged at contamination 0.1 by the fit's threshold
(power 0.25), fit seconds. Columns "own power P": a lead, not the default (and not in the
summary): each training image's level taken from its own patches (own_levels) instead.

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

POWERS = (0.0, 0.25, 0.5, 0.75)
OWN_POWERS = (0.25, 0.5)
CASES = (*(f"{name} {n} images seed {seed}" for name in ("elpv64", "mtile128")
           for n, seed in ((54, 0), (54, 1), (150, 0), (150, 1), (300, 0), (300, 1))),
         *(f"{name} unaligned 54 images seed {seed}" for name in ("elpv64", "mtile128")
           for seed in (0, 1)),
         "elpv64", "mtile128", "elpv64 unaligned", "mtile128 unaligned", "mtile240x96",
         "elpv150")
NAME = "patch_texture.json"


def setting(power: float) -> str:
    return "off" if power == 0 else f"power {power:g}"


def measure(case: str) -> dict:
    """One default fit; ROC-AUC for every power, the default's flagged share and fit time."""
    from sklearn.metrics import roc_auc_score

    from aetool import PatchDetector
    from aetool.models.blocks import resolve_backbone

    train, test, labels = case_data(case)
    start = time.perf_counter()
    detector = PatchDetector(device="cpu", texture_power=0.25).fit(train)
    row = {"case": case, "train images": len(train),
           "fit seconds": time.perf_counter() - start,
           "backbone": resolve_backbone(detector.model_.config.backbone,
                                        detector.model_.input_shape),
           "copies": detector.scorer_.copies}
    default = detector.scorer_.texture_power
    scores = -detector.score_samples(test)
    row["normal flagged"] = float((scores[labels == 0] > detector.threshold_).mean())
    for power in POWERS:
        detector.scorer_.texture_power = power or None
        row[setting(power)] = float(roc_auc_score(labels, -detector.score_samples(test)))
    # A lead, not the default: each training image's level from its own patches
    detector.levels_ = own_levels(detector.bank_[:len(train)])
    for power in OWN_POWERS:
        detector.scorer_.texture_power = power
        row[f"own {setting(power)}"] = float(roc_auc_score(labels,
                                                           -detector.score_samples(test)))
    detector.scorer_.texture_power = default
    return row


def own_levels(codes: Any) -> Any:
    """(N,) each image's level from its own patch codes (N, P, K): the median distance from
    each patch code to the nearest other patch code of the same image (no other image
    involved, so it does not depend on how many training images there are)."""
    import torch

    with torch.no_grad():
        distances = torch.cdist(codes, codes)
        distances.diagonal(dim1=1, dim2=2).fill_(float("inf"))
        return distances.min(dim=2).values.median(dim=1).values.clamp_min(1e-6)


def with_auto(row: dict) -> dict:
    """The row with the default's column: what texture_power="auto" picks for its case."""
    from aetool.defaults import TEXTURE_FROM_IMAGES, TEXTURE_POWER

    picked = TEXTURE_POWER if row["train images"] >= TEXTURE_FROM_IMAGES else 0.0
    return {**row, "auto": row[setting(picked)]}


def main() -> None:
    cases = cases_from_command_line(__doc__, CASES)
    settings = {**{setting(p): {} for p in POWERS}, "auto": {}}
    rows = {case: with_auto(row) for case, row in rows_on_file(NAME).items()}

    def save() -> None:  # after every case, and once more: the "auto" column follows the rule
        write_json(NAME, {"protocol": __doc__, "machine": machine(), "rows": list(rows.values()),
                          **summary(list(rows.values()), settings)})

    for case in cases:
        rows[case] = row = with_auto(measure(case))
        own = [f"own {setting(p)}" for p in OWN_POWERS]
        print(f"{case:36s} " + "  ".join(f"{s} {row[s]:.3f}" for s in [*settings, *own])
              + f"  ({row['fit seconds']:.0f} s, normal flagged {row['normal flagged']:.3f})",
              flush=True)
        save()
    save()
    print_table(list(rows.values()), ["case", *settings])
    print(summary(list(rows.values()), settings))

if __name__ == "__main__":
    main()
