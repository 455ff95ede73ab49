"""Context beyond a patch's own neighbourhood in the patch detector (issue #18): does any of it
help on every kind of set, or only on some?

On ELPV the default's misses are monocrystalline cells with fine cracks (scores near 1) and its
false alarms polycrystalline cells, whose grain makes every patch unusual (scores near 5). Three
ways to give a patch's distance more context, all label-free, all scored from one default fit
per case (the same codes and distances; image score the mean of the 3 worst patches):

- pixels: the same search (±1 grid step, position-scaled) on the standardised pixel patches
  themselves, alone, summed with the code distances patch by patch, or the larger of the two;
- retrieval (SPADE's idea): search only the patches of the K training images most like the
  test image (an 8x8 thumbnail of the standardised image, or the image's mean patch code);
- relative scores: the image's score against its own level (minus or over the median of its
  patch distances), or over the mean score of its K most similar training images (leave-one-out
  training scores; a local density ratio, LOF's idea), image by image or patch by patch.

Cases as in bench/position_scale.py: ELPV 64, tiles 128, both turned/mirrored/shifted at
random, and a seeded random 54 or 150 of their training images. Metric: image ROC-AUC. The
ELPV 64 case also draws ``patch_context_elpv64.png``: the default's 8 lowest-scored defects and
8 highest-scored normal cells.

    python bench/patch_context.py                 # about 15 minutes on 2 cores
    python bench/patch_context.py --cases elpv64,mtile128
"""

from __future__ import annotations

import time

import numpy as np
from common import (
    EARLIER_PATCH_DETECTOR,
    RESULTS,
    cases_from_command_line,
    machine,
    print_table,
    write_json,
)
from position_scale import case_data

CASES = ("elpv64", "mtile128", "elpv64 unaligned", "mtile128 unaligned",
         "elpv64 54 images seed 0", "mtile128 54 images seed 0",
         "elpv64 150 images seed 1", "mtile128 150 images seed 1")


def nearest_among(queries, bank, grid, reach, chosen):
    """(N, P) distance of each query patch (N, P, D) to the nearest bank patch (M, P, D) within
    ``reach`` grid steps, searching only the bank images ``chosen`` (N, K) for each query."""
    import torch

    n, count, dim = queries.shape
    out = torch.empty(n, count)
    for j in range(count):
        near = grid.neighbours(j, reach)
        for start in range(0, n, 128):
            pool = bank[chosen[start:start + 128]][:, :, near].reshape(
                len(chosen[start:start + 128]), -1, dim)
            out[start:start + 128, j] = torch.cdist(
                queries[start:start + 128, j:j + 1], pool).squeeze(1).min(1).values
    return out


def most_alike(queries, bank, k: int, leave_own_out: bool = False):
    """Indices (N, k) of the ``k`` bank rows nearest each query row (a training image skips
    itself)."""
    import torch

    distances = torch.cdist(queries, bank)
    if leave_own_out:
        distances.fill_diagonal_(float("inf"))
    return distances.topk(k, largest=False).indices


def extremes_figure(test: np.ndarray, labels: np.ndarray, scores: np.ndarray, path) -> None:
    """The 8 defective test images the detector scores lowest over the 8 normal ones it scores
    highest, each titled with its score: what the default misses, and what it mistakes."""
    from aetool.plots import _pyplot, save_figure

    plt = _pyplot()
    defect, normal = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    picks = [*defect[np.argsort(scores[defect])[:8]], *normal[np.argsort(-scores[normal])[:8]]]
    fig, axes = plt.subplots(2, 8, figsize=(13, 3.8))
    for ax, index in zip(axes.flat, picks):
        ax.imshow(test[index].squeeze(), cmap="gray")
        ax.set_title(f"{'defect' if labels[index] else 'normal'} {scores[index]:.2f}", fontsize=8)
        ax.axis("off")
    fig.suptitle("Default detector: lowest-scored defects (top), highest-scored normal images "
                 "(bottom)", fontsize=9)
    save_figure(fig, path)


def measure(case: str) -> dict:
    import torch
    from sklearn.metrics import roc_auc_score

    from aetool import PatchDetector
    from aetool.patches import local_nearest, position_spread, resized, standardise, top_mean

    train, test, labels = case_data(case)
    start = time.perf_counter()
    detector = PatchDetector(**EARLIER_PATCH_DETECTOR).fit(train)
    scorer, n = detector.scorer_, len(train)
    seconds = time.perf_counter() - start
    work = {name: standardise(scorer.to_work(detector._prepare(x, reset=False)[0]))[0]
            for name, x in (("test", test), ("train", train))}
    pixels = {name: scorer.grid.cut(images) for name, images in work.items()}
    codes = detector._patch_codes(pixels["test"])
    bank = detector.bank_[:n]
    scaled = detector._distances(codes)               # the default's distances
    own = detector._training_distances(n)             # training images, each left out

    def auc(scores) -> float:
        return float(roc_auc_score(labels, np.asarray(scores)))

    def pooled(distances):  # the detector's own pooling
        return top_mean(distances, scorer.top_k).numpy()

    row = {"case": case, "train_images": n, "fit_seconds": seconds, "default": auc(pooled(scaled))}
    if case == "elpv64":
        extremes_figure(test, labels, pooled(scaled), RESULTS / "patch_context_elpv64.png")
    # pixels
    spread = position_spread(local_nearest(pixels["train"], pixels["train"], scorer.grid,
                                           scorer.reach, owners=torch.arange(n)))[0]
    by_pixels = local_nearest(pixels["test"], pixels["train"], scorer.grid, scorer.reach) / spread
    row["pixels"] = auc(pooled(by_pixels))
    row["pixels + codes"] = auc(pooled(scaled + by_pixels))
    row["larger of pixels, codes"] = auc(pooled(torch.maximum(scaled, by_pixels)))
    # retrieval and relative scores
    described = {"thumbnail": [resized(work[name], (8, 8)).flatten(1) for name in ("test", "train")],
                 "mean code": [codes.mean(1), bank.mean(1)]}
    level = scaled.median(1).values
    row["minus own median"] = auc(pooled(scaled) - level.numpy())
    row["over own median"] = auc(pooled(scaled) / level.numpy())
    own_scores = top_mean(own, scorer.top_k)
    for name, (query, base) in described.items():
        for k in (10, 30):
            if k >= n - 1:
                continue
            alike = most_alike(query, base, k)
            raw = nearest_among(codes, bank, scorer.grid, scorer.reach, alike)
            own_raw = nearest_among(bank, bank, scorer.grid, scorer.reach,
                                    most_alike(base, base, k, leave_own_out=True))
            row[f"retrieval, {name}, K={k}"] = auc(pooled(raw / position_spread(own_raw)[0]))
        for k in (5, 20):
            alike = most_alike(query, base, k)
            row[f"over {k} alike, {name}"] = auc(pooled(scaled) / own_scores[alike].mean(1).numpy())
            row[f"over {k} alike, {name}, by patch"] = auc(pooled(scaled / own[alike].mean(1)))
    print({key: round(v, 3) if isinstance(v, float) else v for key, v in row.items()}, flush=True)
    return row


def main() -> None:
    rows = []
    for case in cases_from_command_line(__doc__, CASES):
        rows.append(measure(case))
        ideas = [key for key in rows[0]
                 if key not in ("case", "train_images", "fit_seconds", "default")]
        worst = {idea: min(r[idea] - r["default"] for r in rows) for idea in ideas}
        best = {idea: max(r[idea] - r["default"] for r in rows) for idea in ideas}
        write_json("patch_context.json", {"protocol": __doc__, "machine": machine(), "rows": rows,
                                          "worst_change": worst, "best_change": best})
    print_table(rows, ["case", "train_images", "default", "pixels + codes",
                       "retrieval, thumbnail, K=10", "minus own median",
                       "over 20 alike, thumbnail"])
    print_table([{"idea": idea, "worst change": worst[idea], "best change": best[idea]}
                 for idea in ideas], ["idea", "worst change", "best change"])


if __name__ == "__main__":
    main()
