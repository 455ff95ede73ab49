"""Synthetic defects on normal images (issue #18): two label-free uses, measured on real defects.

A synthetic defect is pasted on a normal image: a darker or brighter soft spot, a thin bent
scratch, a patch of the image cut out and pasted elsewhere (maybe mirrored; CutPaste's idea) or
a patch of noise, covering 1-5% of the image (the issue's size of a real defect); seeded, one
per image; ``synthetic_defects_examples.png`` shows some.

1. ``choose``: can synthetic defects pick the patch detector's pooling (the mean of the 1, 3, 5
   or 10 worst patches) and search (``reach`` 0, 1 or anywhere) for each data set, without
   labels? One default fit per case; 200 training images get a synthetic defect and are scored
   against the other images' codes (their own left out, as for the threshold); their clean
   versions are the normal side. The setting with the best synthetic ROC-AUC is compared, on
   the real test defects, with the fixed default (reach 1, mean of 3).
2. ``segment``: DRAEM's idea without its reconstruction network and without pretrained weights
   or outside textures: a small U-Net learns to segment synthetic defects on standardised
   normal training images (half the batch clean; focal loss); an image's score is the maximum
   of its smoothed defect map (or the mean of its top 1% pixels). Also averaged with the
   default patch detector by rank over the test set, an optimistic fusion (it sees the test
   scores): if that loses, a fusion a user could run loses too.

Cases as in bench/position_scale.py. Metric: image ROC-AUC on the real test defects.

    python bench/synthetic_defects.py                         # about 30 minutes on 2 cores
    python bench/synthetic_defects.py --parts choose --cases elpv64,mtile128
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
from common import EARLIER_PATCH_DETECTOR, RESULTS, machine, print_table, write_json
from position_scale import case_data

CHOOSE_CASES = ("elpv64", "mtile128", "elpv64 unaligned", "mtile128 unaligned",
                "elpv64 54 images seed 0", "mtile128 54 images seed 0",
                "elpv64 150 images seed 0", "mtile128 150 images seed 0")
SEGMENT_CASES = ("elpv64", "mtile128")
REACHES = (0, 1, None)
TOP_K = (1, 3, 5, 10)
KINDS = ("spot", "scratch", "cutpaste", "noise")
DEFAULT = "reach 1, top 3"


def _ellipse(h: int, w: int, area: float, rng: np.random.Generator) -> np.ndarray:
    """A soft-edged ellipse of about ``area`` of the image, anywhere, any angle (0..1 mask)."""
    ratio = rng.uniform(0.3, 1.0)
    a = np.sqrt(area * h * w / (np.pi * ratio))
    cy, cx, angle = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w, rng.uniform(0, np.pi)
    y, x = np.mgrid[0:h, 0:w]
    y, x = y - cy, x - cx
    u = (x * np.cos(angle) + y * np.sin(angle)) / a
    v = (-x * np.sin(angle) + y * np.cos(angle)) / (a * ratio)
    return np.clip((1.2 - np.sqrt(u ** 2 + v ** 2)) / 0.4, 0, 1)


def _scratch(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A thin, slightly bent line 20-50% of the shorter side long (0..1 mask)."""
    side = min(h, w)
    length = rng.uniform(0.2, 0.5) * side
    y0, x0, angle = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w, rng.uniform(0, 2 * np.pi)
    bend, width = rng.uniform(-0.3, 0.3), max(0.6, side / 100)
    y, x = np.mgrid[0:h, 0:w]
    mask = np.zeros((h, w))
    steps = int(length * 2)
    for s in range(steps):
        f = s / steps
        cy = y0 + f * length * np.sin(angle + bend * f)
        cx = x0 + f * length * np.cos(angle + bend * f)
        mask = np.maximum(mask, np.clip(width + 0.5 - np.hypot(y - cy, x - cx), 0, 1))
    return mask


def _paste_defect(image: np.ndarray, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """Put one defect into ``image`` (C, H, W float, in place); its kind and 0/1 mask (H, W)."""
    _, h, w = image.shape
    spread = float(image.std()) + 1e-3
    kind = KINDS[rng.integers(len(KINDS))]
    area = rng.uniform(0.01, 0.05)
    if kind in ("spot", "scratch"):
        soft = _ellipse(h, w, area, rng) if kind == "spot" else _scratch(h, w, rng)
        strength = rng.uniform(0.7, 2.0) if kind == "spot" else rng.uniform(1.0, 2.5)
        image += soft[None] * rng.choice([-1, 1]) * strength * spread
        return kind, soft > 0.3
    ph = min(h - 1, max(2, int(np.sqrt(area * h * w) * rng.uniform(0.7, 1.4))))
    pw = min(w - 1, max(2, int(area * h * w / ph)))
    y, x = rng.integers(0, h - ph), rng.integers(0, w - pw)
    if kind == "cutpaste":
        sy, sx = rng.integers(0, h - ph), rng.integers(0, w - pw)
        block = image[:, sy:sy + ph, sx:sx + pw].copy()
        block = block[:, ::-1] if rng.integers(2) else block
        image[:, y:y + ph, x:x + pw] = block[:, :, ::-1] if rng.integers(2) else block
    else:
        image[:, y:y + ph, x:x + pw] = rng.normal(image.mean(), spread, (image.shape[0], ph, pw))
    mask = np.zeros((h, w), bool)
    mask[y:y + ph, x:x + pw] = True
    return kind, mask


def synthetic_defects(images: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A copy of the uint8 images (N, C, H, W) with one synthetic defect each; masks (N, H, W)
    and kinds."""
    rng = np.random.default_rng(seed)
    out = images.astype(np.float32)
    made = [_paste_defect(image, rng) for image in out]
    return (np.clip(out, 0, 255).astype(np.uint8), np.stack([m for _, m in made]),
            [k for k, _ in made])


def examples_figure(case: str, path) -> None:
    """Eight training images above the same images with their synthetic defects."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = case_data(case)[0][:8]
    defective, _, kinds = synthetic_defects(train, seed=7)
    fig, axes = plt.subplots(2, 8, figsize=(16, 4.4))
    for i in range(8):
        for row, images in enumerate((train, defective)):
            axes[row, i].imshow(images[i, 0], cmap="gray")
            axes[row, i].axis("off")
        axes[1, i].set_title(kinds[i])
    fig.suptitle(f"{case}: normal training images (top) and with one synthetic defect (bottom)")
    fig.savefig(path, dpi=70, bbox_inches="tight")
    plt.close(fig)


def choose(case: str, sample: int = 200) -> dict:
    """Real and synthetic ROC-AUC of every (reach, top_k) from one default fit, and the setting
    synthetic defects would choose."""
    import torch
    from sklearn.metrics import roc_auc_score

    from aetool import PatchDetector
    from aetool.patches import local_nearest, position_spread, top_mean

    train, test, labels = case_data(case)
    start = time.perf_counter()
    detector = PatchDetector(**EARLIER_PATCH_DETECTOR).fit(train)
    row: dict = {"case": case, "train_images": len(train),
                 "fit_seconds": time.perf_counter() - start}
    scorer, n = detector.scorer_, len(train)

    def codes_of(images: np.ndarray):
        return detector._image_codes(detector._prepare(images, reset=False)[0])

    chosen = np.sort(np.random.default_rng(123).choice(n, min(sample, n), replace=False))
    defective, _, kinds = synthetic_defects(train[chosen], seed=7)
    test_codes, synthetic_codes = codes_of(test), codes_of(defective)
    owners = torch.full((n,), -1, dtype=torch.long)  # query i skips training image chosen[i]
    owners[torch.from_numpy(chosen)] = torch.arange(len(chosen))
    is_defect = np.r_[np.zeros(len(chosen)), np.ones(len(chosen))]
    for reach in REACHES:
        own = local_nearest(detector.bank_, detector.bank_, scorer.grid, reach,
                            owners=torch.arange(n))
        spread, left_out = position_spread(own)
        real = local_nearest(test_codes, detector.bank_, scorer.grid, reach) / spread
        clean = own[torch.from_numpy(chosen)] / left_out[torch.from_numpy(chosen)]
        synthetic = local_nearest(synthetic_codes, detector.bank_, scorer.grid, reach,
                                  owners=owners) / left_out[torch.from_numpy(chosen)]
        for k in TOP_K:
            name = f"reach {'any' if reach is None else reach}, top {k}"
            negatives, positives = top_mean(clean, k).numpy(), top_mean(synthetic, k).numpy()
            row[f"real {name}"] = float(roc_auc_score(labels, top_mean(real, k).numpy()))
            row[f"synthetic {name}"] = float(roc_auc_score(is_defect, np.r_[negatives,
                                                                           positives]))
            for kind in KINDS:
                mine = np.array([kk == kind for kk in kinds])
                row[f"synthetic {kind} {name}"] = float(roc_auc_score(
                    np.r_[np.zeros(len(chosen)), np.ones(mine.sum())],
                    np.r_[negatives, positives[mine]]))
    names = [key.removeprefix("real ") for key in row if key.startswith("real ")]
    pooling_only = [name for name in names if name.startswith("reach 1,")]
    for label, options in (("chosen pooling", pooling_only), ("chosen reach and pooling", names)):
        pick = max(options, key=lambda name: row[f"synthetic {name}"])
        row[label] = pick
        row[f"{label}, real"] = row[f"real {pick}"]
    row["default, real"] = row[f"real {DEFAULT}"]
    row["best, real"] = max(row[f"real {name}"] for name in names)
    print({k: v for k, v in row.items() if not k.startswith(("real ", "synthetic "))},
          flush=True)
    return row


def _unet():
    """A four-level U-Net, 16 to 64 channels, one logit per pixel."""
    import torch
    from torch import nn

    def block(i: int, o: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                             nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())

    class UNet(nn.Module):
        def __init__(self, c: tuple[int, ...] = (16, 32, 64, 64)) -> None:
            super().__init__()
            self.down = nn.ModuleList([block(1, c[0]), block(c[0], c[1]), block(c[1], c[2]),
                                       block(c[2], c[3])])
            self.up = nn.ModuleList([block(c[3] + c[2], c[2]), block(c[2] + c[1], c[1]),
                                     block(c[1] + c[0], c[0])])
            self.out = nn.Conv2d(c[0], 1, 1)

        def forward(self, x):
            skips = []
            for i, layer in enumerate(self.down):
                x = layer(x if i == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            for layer, skip in zip(self.up, reversed(skips[:-1]), strict=True):
                x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear",
                                              align_corners=False)
                x = layer(torch.cat([x, skip], 1))
            return self.out(x)

    return UNet()


def _standardised(images: np.ndarray) -> np.ndarray:
    import torch

    from aetool.patches import standardise

    return standardise(torch.from_numpy(images[:, :1].astype(np.float32) / 255))[0].numpy()


def segment(case: str, steps: int, batch: int = 16, pool: int = 4000) -> dict:
    """ROC-AUC of a segmentation net trained on synthetic defects, alone and fused with the
    default patch detector."""
    import torch
    from scipy.stats import rankdata
    from sklearn.metrics import roc_auc_score

    from aetool import PatchDetector

    train, test, labels = case_data(case)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    picks = rng.integers(0, len(train), pool)
    defective, masks, _ = synthetic_defects(train[picks], seed=1)
    defective, clean = _standardised(defective), _standardised(train)
    masks = masks[:, None].astype(np.float32)
    net = _unet()
    optimiser = torch.optim.Adam(net.parameters(), 1e-3)
    start = time.perf_counter()
    for step in range(steps):
        a, b = rng.integers(0, pool, batch // 2), rng.integers(0, len(clean), batch - batch // 2)
        x = torch.from_numpy(np.concatenate([defective[a], clean[b]]))
        target = torch.from_numpy(np.concatenate([masks[a], np.zeros_like(masks[b])]))
        if rng.integers(2):
            x, target = x.flip(-1), target.flip(-1)
        logits = net(x)
        p = torch.sigmoid(logits)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target,
                                                                   reduction="none")
        loss = ((1 - torch.where(target > 0.5, p, 1 - p)) ** 2 * bce).mean()  # focal, gamma 2
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 500 == 0:
            print(f"  {case} step {step} loss {loss.item():.4f}", flush=True)
    row: dict = {"case": case, "steps": steps, "train_seconds": time.perf_counter() - start}
    net.eval()
    smooth = max(3, (min(train.shape[-2:]) // 8) | 1)
    peak, top = [], []
    with torch.no_grad():
        x = torch.from_numpy(_standardised(test))
        for s in range(0, len(x), 64):
            p = torch.sigmoid(net(x[s:s + 64]))
            smoothed = torch.nn.functional.avg_pool2d(p, smooth, stride=1, padding=smooth // 2)
            peak.append(smoothed.flatten(1).max(1).values.numpy())
            flat = p.flatten(1)
            top.append(flat.topk(max(1, flat.shape[1] // 100), 1).values.mean(1).numpy())
    scores = {"max of smoothed map": np.concatenate(peak), "top 1% pixels": np.concatenate(top)}
    patch = -PatchDetector(**EARLIER_PATCH_DETECTOR).fit(train).score_samples(test)
    row["patch default"] = float(roc_auc_score(labels, patch))
    for name, values in scores.items():
        row[f"segmenter, {name}"] = float(roc_auc_score(labels, values))
        row[f"rank mean with the patch default, {name}"] = float(roc_auc_score(
            labels, rankdata(patch) + rankdata(values)))
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="choose,segment")
    parser.add_argument("--cases", default=None, help="comma-separated (default: each part's)")
    parser.add_argument("--steps", type=int, default=1500, help="segmenter training steps")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    path = RESULTS / "synthetic_defects.json"  # a partial run keeps the other cases' rows
    results: dict = json.loads(path.read_text()) if path.exists() else {"choose": [],
                                                                          "segment": []}
    results.update(protocol=__doc__, machine=machine())
    examples_figure("elpv64", RESULTS / "synthetic_defects_examples.png")
    for part in args.parts.split(","):
        cases = args.cases.split(",") if args.cases else (
            CHOOSE_CASES if part == "choose" else SEGMENT_CASES)
        for case in cases:
            row = choose(case) if part == "choose" else segment(case, args.steps)
            results[part] = [r for r in results[part] if r["case"] != case] + [row]
            write_json("synthetic_defects.json", results)
    if results["choose"]:
        rows = results["choose"]
        for row in rows:
            for label in ("default", "chosen pooling", "chosen reach and pooling"):
                row[f"{label}, loss to best"] = row["best, real"] - row[f"{label}, real"]
        results["worst loss to the best setting"] = {
            label: max(r[f"{label}, loss to best"] for r in rows)
            for label in ("default", "chosen pooling", "chosen reach and pooling")}
        results["change against the default, worst and best"] = {
            label: [min(r[f"{label}, real"] - r["default, real"] for r in rows),
                    max(r[f"{label}, real"] - r["default, real"] for r in rows)]
            for label in ("chosen pooling", "chosen reach and pooling")}
        write_json("synthetic_defects.json", results)
        print_table(rows, ["case", "default, real", "chosen pooling", "chosen pooling, real",
                           "chosen reach and pooling", "chosen reach and pooling, real",
                           "best, real"])
        print(results["worst loss to the best setting"])
    if results["segment"]:
        print_table(results["segment"], list(results["segment"][0]))


if __name__ == "__main__":
    main()
