"""The patch size where patches are searched anywhere (images that are not aligned).

The patch detector cuts patches a quarter of the shorter side wide; that size was chosen on
aligned sets (cells, tiles: an eighth lost there, docs/benchmarks.md). Where the place cost
says the images have no places (crops of a surface, parts at any position) each patch is
searched anywhere, and a first look at crops of brick, gravel and grass at 96 px favoured a
sixth of the side. Is that a rule, at other crop sizes and on real defects moved round?

Cases (bench/unaligned.py's protocol): brick, gravel, grass crops of 64, 96 and 128 px
(150 training crops from the top 60% of the photograph, 100 normal and 100 with one
synthetic defect from the bottom 40%); the ELPV cells at 64 px and magnetic tiles at 128 px,
every image moved round at random (real defects); the synthetic leather of
bench/synthetic_photos.py (256 px, a grain with no places, thin cuts and glue spots).
Methods: aetool with ``patch_size`` a quarter of the side (the default before), a sixth and an
eighth (at least 7 px, as the placed rule), aetool's default (an eighth, at least 16 px:
aetool.defaults.PATCH_SIZE_RULE; a quarter at 64 px, a sixth at 96, an eighth from 128: its
figures are those rows'), and the pixel peers 5-NN and patch kNN on pixels (16 px patches,
max) on the crops. Image ROC-AUC and AUPR. Each row is merged into
the results file as it comes, so two runs on different cases may share it.

    python bench/patch_size_anywhere.py          # about two hours on 2 cores
    python bench/patch_size_anywhere.py --cases gravel128 --methods "aetool, a sixth"
"""

from __future__ import annotations

from common import cases_and_methods, merge_row, placed_size, print_table, saved_rows
from defect_peers import knn_pixels, patch_knn_pixels
from synthetic_photos import photo_set
from unaligned import PHOTOS, ROLLED, detector, method_row, peer, photo_case, rolled_case

NAME = "patch_size_anywhere.json"
CROPS = (64, 96, 128)
SYNTHETIC = {"leather256": "leather"}
CASES = (*(f"{photo}{crop}" for crop in CROPS for photo in PHOTOS), *ROLLED, *SYNTHETIC)
FRACTIONS = {"aetool, a quarter (the default before)": 4, "aetool, a sixth": 6,
             "aetool, an eighth": 8}
DEFAULT = "aetool default (an eighth, at least 16 px)"
PEERS = {"5-NN on pixels": knn_pixels, "patch kNN on pixels (max)": patch_knn_pixels}
METHODS = (*FRACTIONS, DEFAULT, *PEERS)
MEASURED_ELSEWHERE = (*ROLLED, *SYNTHETIC)  # their pixel peers: unaligned.py, synthetic_photos.py


def case_data(case: str):
    """(train, test, labels) of a crop case ("gravel96"), a rolled set or a synthetic one."""
    if case in ROLLED:
        return rolled_case(case)
    if case in SYNTHETIC:
        return photo_set(SYNTHETIC[case])
    photo = case.rstrip("0123456789")
    return photo_case(photo, int(case[len(photo):]))


def side(case: str) -> int:
    """The images' side in pixels, as the case's name says ("gravel96", "elpv64 rolled")."""
    return int("".join(ch for ch in case if ch.isdigit()))


def method(name: str, case: str):
    if name == DEFAULT:
        return detector()
    if name in FRACTIONS:
        return detector(patch_size=placed_size(side(case), FRACTIONS[name]))
    return peer(PEERS[name])


def main() -> None:
    cases, methods = cases_and_methods(__doc__, CASES, METHODS,
                                       [m for m in METHODS if m != DEFAULT])
    for case in cases:
        data = case_data(case)
        for name in methods:
            if case in MEASURED_ELSEWHERE and name in PEERS:
                continue
            row, _ = method_row(case, name, method(name, case), data)
            row = {**row, "side": side(case)}
            print(row, flush=True)
            merge_row(NAME, __doc__, row)
    print_table(saved_rows(NAME), ["case", "method", "roc_auc", "aupr", "seconds"])


if __name__ == "__main__":
    main()
