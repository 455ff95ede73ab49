"""How many nearest training codes a patch is measured against (issue #18): the patch detector
scores a test patch by the distance to its single nearest training code (within ±1 grid step);
the mean distance to its k nearest is less at the mercy of one odd training patch that happens
to resemble a defect. One default fit per case; for each k the positions' normal spread is
measured again with the same k (training images left out of their own search, as the detector
does), then the test images are scored. Metric: image ROC-AUC on the real test defects. Cases
as in bench/position_scale.py.

    python bench/patch_neighbours.py                     # about 15 minutes on 2 cores
    python bench/patch_neighbours.py --cases elpv64,mtile128
"""

from __future__ import annotations

import argparse
import functools
import warnings

import torch
from common import machine, print_table, write_json
from position_scale import case_data

CASES = ("elpv64", "mtile128", "elpv64 unaligned", "mtile128 unaligned", "mtile240x96",
         *(f"{name} {n} images seed {seed}" for name in ("elpv64", "mtile128")
           for n, seed in ((54, 0), (54, 1), (150, 1))))
NEIGHBOURS = (1, 3, 5, 10)
NAME = "patch_neighbours.json"


def mean_of_nearest(queries: torch.Tensor, bank: torch.Tensor, grid, reach, owners=None,
                    budget: int = 1 << 24, k: int = 1) -> torch.Tensor:
    """aetool.patches.local_nearest with the mean distance to the ``k`` nearest codes."""
    n, _, width = queries.shape
    out = queries.new_empty(n, grid.count)
    owners = None if owners is None else owners.to(bank.device)
    for j in range(grid.count):
        near = grid.neighbours(j, reach)
        pool = bank[:, near].reshape(-1, width)
        pool_sq = pool.square().sum(1)
        pool_owner = None if owners is None else owners.repeat_interleave(len(near))
        step = max(1, budget // max(1, pool.shape[0]))
        for start in range(0, n, step):
            q = queries[start:start + step, j]
            d2 = q.square().sum(1, keepdim=True) - 2 * q @ pool.T + pool_sq
            if pool_owner is not None:
                mine = torch.arange(start, start + len(q), device=bank.device)
                d2.masked_fill_(pool_owner[None, :] == mine[:, None], float("inf"))
            nearest = d2.topk(min(k, d2.shape[1]), dim=1, largest=False).values
            out[start:start + len(q), j] = nearest.clamp_min(0).sqrt().mean(1)
    return out


def measure(case: str) -> dict:
    from sklearn.metrics import roc_auc_score

    import aetool.estimators.patch_detector as module
    from aetool import PatchDetector

    train, test, labels = case_data(case)
    detector = PatchDetector(device="cpu").fit(train)
    row = {"case": case}
    original = module.local_nearest
    try:
        for k in NEIGHBOURS:
            module.local_nearest = functools.partial(mean_of_nearest, k=k)
            detector._training_distances(len(train))  # the spread, measured with this k
            row[f"k={k}"] = float(roc_auc_score(labels, -detector.score_samples(test)))
    finally:
        module.local_nearest = original
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    for case in args.cases.split(","):
        rows.append(measure(case))
        columns = [f"k={k}" for k in NEIGHBOURS]
        worst = {c: max(max(r[d] for d in columns) - r[c] for r in rows) for c in columns}
        write_json(NAME, {"protocol": __doc__, "machine": machine(), "rows": rows,
                          "worst loss": worst})
    print_table(rows, ["case", *columns])
    print("worst loss against each case's best:", worst)


if __name__ == "__main__":
    main()
