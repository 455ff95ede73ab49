"""The patch autoencoder's backbone (issue #18): fully connected (``ae``, 256 -> 16, each patch
flattened; the default until now) or convolutional (``conv``: two strided 3x3 convolutions of
32 and 64 channels, ReLU, the same 16-wide code; each patch a small image). One default fit
per case and backbone (``turns="auto"``, edges, position scaling, as a user gets them), image
ROC-AUC on the real test defects, fit seconds and the share of normal test images flagged at
contamination 0.1. Cases: the 12 of bench/patch_code_size.py except ELPV 150, and the turned
cases with 54 training images of bench/patch_turns.py.

    python bench/patch_backbone.py                     # about 45 minutes on 2 cores
    python bench/patch_backbone.py --cases elpv64,mtile128 --settings conv

Rows of a partial run replace the same (case, setting) and keep the rest of the results file.
"""

from __future__ import annotations

from patch_code_size import CASES, sweep
from patch_turns import MORE_CASES

SETTINGS = {"ae": {"variant": "ae", "turns": "auto"},
            "conv": {"variant": "conv", "turns": "auto"}}
# ELPV 150 is left out for time (its conv fit alone would take about 10 minutes); the rule
# trains ae there (49,000 patches), as before this study.
SMALL_FIRST = (*(c for c in (*CASES, *MORE_CASES) if "images" in c),
               *(c for c in (*CASES, *MORE_CASES) if "images" not in c and c != "elpv150"))
NAME = "patch_backbone.json"

if __name__ == "__main__":
    sweep(__doc__, NAME, SETTINGS, SMALL_FIRST)
