"""The whole image beside its patches (issue #18, #19): the patch detector compares each patch
only with patches near its place, so an image whose parts are each normal but whose overall
shape is not (a sandal cut like a boot, a T-shirt's sleeves on a shirt) scores only through
its parts. An earlier form (commit 7fbabe2, bench/whole_patch.py then) encoded the shrunk image
as one more autoencoder patch and lost 0.002-0.004 ROC-AUC on every real-defect set. This
measures the plain form, which is now the default (``PatchDetector(whole_image=True)``): each
image's standardised pixels shrunk to a thumbnail, each thumbnail pixel standardised over the
training thumbnails, the distance to the nearest training thumbnail (the training images' own
with themselves left out) divided by the standard deviation of those training distances, so
it is in the units of the scaled patch distances.

From one fit per case (the detector's defaults without the whole image), three thumbnails
(shorter side 7 px, aspect kept; the patch's size; 7 px with the pixels not standardised over
the training ones) and three ways to pool the thumbnail distance t with the image's k = 3
worst patch distances: "among the worst" (t is one more candidate for the k worst), "in the
mean" (the mean of the k worst and t: k + 1 values), "added" (the mean of the k worst plus t);
six combinations, each divided by the texture level, as the detector does. Cases: ELPV at 64 px, tiles at
128 px, both also with a seeded 54 of their training images, every MNIST digit and every
Fashion-MNIST class at 28 px (train on its ~1,000 training images, score the 10,000 test
images; Fashion-MNIST is read from AETOOL_FASHION_MNIST, see docs/benchmarks.md).

    python bench/whole_thumbnail.py                  # about 30 minutes on 2 cores
    python bench/whole_thumbnail.py --cases elpv64,"fashion 5" --keep DIR
    python bench/whole_thumbnail.py --from-kept DIR  # the forms again from kept distances

Rows of a partial run replace the same case and keep the rest of the results file.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
from common import (
    load_fashion_mnist,
    load_mnist,
    machine,
    print_table,
    rows_on_file,
    write_json,
)

ONE_CLASS = {"fashion": load_fashion_mnist, "mnist": load_mnist}
CASES = ("elpv64", "mtile128", "elpv64 54 images seed 0", "mtile128 54 images seed 0",
         *(f"{name} {k}" for name in ONE_CLASS for k in range(10)))

NAME = "whole_thumbnail.json"
THUMBNAILS = ("thumbnail 7", "thumbnail patch", "thumbnail 7 pixels as they are")
POOLINGS = {  # how a thumbnail distance t joins the mean m of an image's k worst patches
    "among the worst": lambda worst, t: np.sort(np.c_[worst, t], axis=1)[:, 1:].mean(axis=1),
    "in the mean": lambda worst, t: (worst.sum(axis=1) + t) / (worst.shape[1] + 1),
    "added": lambda worst, t: worst.mean(axis=1) + t,
}
FORMS = ("without", *(f"thumbnail 7, {pooling}" for pooling in POOLINGS),
         "thumbnail patch, in the mean", "thumbnail 7 pixels as they are, in the mean",
         "thumbnail 7 pixels as they are, added")


def case_data(case: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training images, test images and labels (1 = anomaly) of one case name."""
    name, *rest = case.split()
    if name not in ONE_CLASS:
        from position_scale import case_data as defect_case

        return defect_case(case)
    x_train, y_train, x_test, y_test = ONE_CLASS[name]()
    k = int(rest[0])
    return x_train[y_train == k], x_test, (y_test != k).astype(int)


def thumbnails(detector, images: np.ndarray, side: int):
    """(N, D) thumbnails of standardised images, their shorter side ``side`` pixels."""
    from aetool.patches import standardise, whole_thumbnails

    work = standardise(detector.scorer_.to_work(detector._prepare(images, reset=False)[0]))[0]
    return whole_thumbnails(work, side).double()


def thumbnail_distances(train, test, per_pixel: bool = True):
    """Scaled nearest distances of test thumbnails and of training ones (themselves left out);
    ``per_pixel``: each thumbnail pixel standardised over the training thumbnails first."""
    import torch

    if per_pixel:
        mean, spread = train.mean(0), train.std(0).clamp_min(1e-6)
        train, test = (train - mean) / spread, (test - mean) / spread
    own = torch.cdist(train, train)
    own.fill_diagonal_(float("inf"))
    train_near = own.min(1).values
    test_near = torch.cat([torch.cdist(part, train).min(1).values for part in test.split(2048)])
    scale = float(train_near.std())
    return train_near / scale, test_near / scale


def fit_and_keep(case: str) -> tuple[dict, dict[str, np.ndarray]]:
    """One default fit of a case: its row so far and what the forms are scored from (the
    test images' scaled patch distances, the texture each is divided by, the labels, and each
    thumbnail kind's scaled distance)."""
    from aetool import PatchDetector

    train, test, labels = case_data(case)
    start = time.perf_counter()
    detector = PatchDetector(device="cpu", whole_image=False).fit(train)  # thumbnails below
    row = {"case": case, "train_images": len(train), "patch size": detector.scorer_.grid.size,
           "fit seconds": time.perf_counter() - start}
    distances, entries = detector._search(detector._image_codes(
        detector._prepare(test, reset=False)[0]))
    texture = np.ones(len(labels))
    if detector.levels_ is not None and detector.scorer_.texture_power:
        texture = (detector.levels_[entries % len(detector.levels_)].median(dim=1).values
                   ** detector.scorer_.texture_power).numpy()
    kept = {"distances": distances.numpy(), "labels": labels, "top_k": detector.scorer_.top_k,
            "texture": texture}
    sides = dict(zip(THUMBNAILS, (7, detector.scorer_.grid.size, 7)))
    for kind in THUMBNAILS:
        kept[kind] = thumbnail_distances(thumbnails(detector, train, sides[kind]),
                                         thumbnails(detector, test, sides[kind]),
                                         per_pixel="as they are" not in kind)[1].numpy()
    return row, kept


def scored(row: dict, kept: dict[str, np.ndarray]) -> dict:
    """``row`` with the ROC-AUC of every form, from one case's kept distances."""
    from sklearn.metrics import roc_auc_score

    distances, labels, texture = kept["distances"], kept["labels"], kept["texture"]
    worst = np.sort(distances, axis=1)[:, -min(int(kept["top_k"]), distances.shape[1]):]
    for form in FORMS:
        if form == "without":
            score = worst.mean(axis=1)
        else:
            kind, pooling = form.split(", ")
            score = POOLINGS[pooling](worst, kept[kind])
        row[form] = float(roc_auc_score(labels, score / texture))
    return row


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--keep", type=Path, help="folder to keep each case's distances in")
    parser.add_argument("--from-kept", type=Path,
                        help="score the forms from distances kept there, without fitting")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = rows_on_file(NAME)
    for case in [c for c in args.cases.split(",") if c]:
        name = f"{case.replace(' ', '_')}.npz"
        if args.from_kept:
            if not (args.from_kept / name).exists():
                continue
            row = {key: value for key, value in rows.get(case, {"case": case}).items()
                   if key in ("case", "train_images", "patch size", "fit seconds")}
            kept = dict(np.load(args.from_kept / name))
        else:
            row, kept = fit_and_keep(case)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(args.keep / name, **kept)
        rows[case] = row = scored(row, kept)
        print(f"{case:26s} " + "  ".join(f"{row[f]:.4f}" for f in FORMS), flush=True)
    done = list(rows.values())
    kinds = {"real defects": [r for r in done if r["case"].split()[0] not in ONE_CLASS],
             **{name: [r for r in done if r["case"].split()[0] == name] for name in ONE_CLASS}}
    write_json(NAME, {"protocol": __doc__, "machine": machine(), "rows": done,
                      "mean by kind": {kind: {f: float(np.mean([r[f] for r in group]))
                                              for f in FORMS}
                                       for kind, group in kinds.items() if group},
                      "worst gain": {f: min(r[f] - r["without"] for r in done)
                                     for f in FORMS[1:]}})
    print_table(done, ["case", "train_images", *FORMS])


if __name__ == "__main__":
    main()
