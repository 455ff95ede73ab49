"""Learning turned copies only when the parts lie in any orientation (issue #18): the patch
detector compares a patch with training patches near its own place, which fails when the parts
are photographed turned; learning every training image in its 8 turned and mirrored copies
(``turns``) recovers much of it, for 6-8x the fit. ``turns="auto"`` (the default) decides from
the training images alone: ``aetool.patches.turn_cost``, how much farther a training image's
patches lie from the other images' when it is turned a quarter (half for non-square images)
than as it is, on 32-pixel thumbnails; below ``ORIENTATION_FREE_BELOW`` (1.15) turns are learnt.

For every case the statistic (three seeded samples of at most 200 images) and what "auto"
picks; then one default fit per case and setting ("fixed": no turns; "turns": with them,
the autoencoder trained on every copy, as ``turns=True`` does; "auto": the default, which on a
set it turns trains the autoencoder on the original images alone, since they already show it
every orientation; where auto picks no turns it is the "fixed" fit and is not fitted again),
image ROC-AUC on the real test defects. Cases: the
12 of bench/patch_code_size.py and the turned cases with 54 training images; for the statistic
alone also each MNIST digit's 1,000 training images (upright objects, 28 px), as they are and
turned at random as the cells and tiles are.

    python bench/patch_turns.py --settings ""          # the statistic alone, every case (1 min)
    python bench/patch_turns.py                        # with the fits (about 90 minutes)
    python bench/patch_turns.py --cases "elpv64 unaligned 54 images seed 0" --settings fixed,turns

Rows of a partial run replace the same (case, setting) and keep the rest of the results file.
"""

from __future__ import annotations

import argparse
import warnings

import torch
from common import load_mnist, machine, print_table, rows_on_file, write_json
from patch_code_size import CASES, measure
from patch_settings import unalign
from position_scale import case_data

# fixed: one copy; turns: turned copies, the autoencoder trained on all of them (what
# turns=True does); auto: the default, which learns turned copies only below the turn cost
# threshold and then trains the autoencoder on the originals alone
SETTINGS = {"fixed": {"turns": False}, "turns": {"turns": True}, "auto": {"turns": "auto"}}
MORE_CASES = tuple(f"{name} unaligned 54 images seed {seed}"
                   for name in ("elpv64", "mtile128") for seed in (0, 1))
DIGITS = tuple(f"mnist {digit}{turned}" for turned in ("", " unaligned") for digit in range(10))
NAME = "patch_turns.json"


def statistic(case: str) -> dict:
    """The turn cost of a case's training images for three samples, and what auto picks."""
    from aetool.patches import ORIENTATION_FREE_BELOW, turn_cost

    if case.startswith("mnist"):
        images, labels = load_mnist()[:2]
        train = images[labels == int(case.split()[1])][:, None]
        train = unalign(train, 0) if "unaligned" in case else train
    else:
        train = case_data(case)[0]
    train = torch.as_tensor(train, dtype=torch.float32)
    images = train[:, None] if train.dim() == 3 else train
    costs = [turn_cost(images, seed=seed) for seed in range(3)]
    picks = {cost < ORIENTATION_FREE_BELOW for cost in costs}
    return {"train images": len(images), "turn cost": costs[0],
            "turn cost, 3 samples": costs, "auto picks": "turns" if picks == {True} else
            "fixed" if picks == {False} else "depends on the sample"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join((*CASES, *MORE_CASES, *DIGITS)))
    parser.add_argument("--settings", default=",".join(SETTINGS))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = rows_on_file(NAME)
    settings = [s for s in args.settings.split(",") if s]
    for case in args.cases.split(","):
        row = rows.setdefault(case, {"case": case})
        row.update(statistic(case))
        print(f"{case:36s} turn cost {row['turn cost']:.3f}: {row['auto picks']}", flush=True)
        for setting in settings if not case.startswith("mnist") else ():
            if setting == "auto" and row["auto picks"] == "fixed":
                continue  # the very same fit as "fixed"
            auc, seconds, flagged = measure(case, SETTINGS[setting])
            row[setting], row[f"{setting} fit seconds"] = auc, seconds
            row[f"{setting} normal flagged"] = flagged
            print(f"{case:36s} {setting:6s} {auc:.3f} ({seconds:.0f} s)", flush=True)
        if row["auto picks"] == "fixed" and "fixed" in row:
            row["auto"] = row["fixed"]
        write_json(NAME, {"protocol": __doc__, "machine": machine(),
                          "rows": list(rows.values())})
    print_table(list(rows.values()), ["case", "train images", "turn cost", "auto picks",
                                      "fixed", "turns", "auto"])


if __name__ == "__main__":
    main()
