"""An edge channel beside the intensities of every patch (issue #18): the patch detector's
patches carried only the standardised intensities, in which a crack one or two pixels wide
changes few values. With ``edges`` each patch also carries the gradient magnitude of the image
smoothed at sigma = 1/64 of its shorter side (at least 1 pixel; aetool.patches.with_edges).
Each setting is a full default fit; metric: image ROC-AUC on the real test defects. Cases as
in bench/patch_code_size.py (ELPV cells and magnetic tiles at two sizes, both turned at random,
54 or 150 training images); the smoothing at half and twice the rule shows how sharp the choice
is.

    python bench/patch_edges.py --settings "no edges,edges,edges sigma x0.5,edges sigma x2"  # 40 min
    python bench/patch_edges.py --cases elpv64,mtile128 --settings "no edges,edges"
    python bench/patch_edges.py --cases "elpv64 unaligned,mtile128 unaligned" --settings "edges turns"

Rows of a partial run replace the same (case, setting) and keep the rest of the results file.
"""

from __future__ import annotations

from patch_code_size import CASES, sweep

SETTINGS = {  # PatchDetector keyword arguments (edge_smoothing: patches.EDGE_SMOOTHING)
    "no edges": {"edges": False},
    "edges": {},
    "edges sigma x0.5": {"edge_smoothing": 1 / 128},
    "edges sigma x2": {"edge_smoothing": 1 / 32},
    # parts in any orientation: also learn the turned and mirrored copies (unaligned cases)
    "edges turns": {"turns": True},
}
NAME = "patch_edges.json"

if __name__ == "__main__":
    sweep(__doc__, NAME, SETTINGS, CASES)
