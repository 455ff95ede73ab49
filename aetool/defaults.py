"""Settings that depend on the task and the kind of data, over a variant's general defaults.
Torch-free, so ``aetool variants`` can show them without loading a model."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# A table detector wants a smoother plain AE than the variant's general default: with the
# stronger L2 penalty it cannot learn to copy rare rows; on ODDS the mean ROC-AUC rose
# 0.842 -> 0.848 (5e-4: 0.844, 3e-3: 0.846, 1e-2: 0.826). Images keep the variant's default
# (not measured there). See docs/benchmarks.md.
TABLE_DETECTION_DEFAULTS: dict[str, dict[str, Any]] = {"ae": {"weight_penalty": 1e-3}}

# The table penalty above holds up to this many columns. The penalty sums the squared weights,
# whose count grows with the table's width, while the reconstruction error is a mean over the
# columns, so a fixed λ weighs more the wider the table: on dense low-rank synthetic tables 1e-3 fell to 0.62-0.75 ROC-AUC at
# 274-768 columns (1e-5: 0.92-0.99). Beyond it λ falls as TABLE_PENALTY_COLUMNS / columns. Rule:
# the cap with the smallest worst loss over the ODDS sets, 784-pixel MNIST and Fashion-MNIST
# tables and synthetic tables of 30 to 2,000 columns (bench/wide_tables.py), among 32, 64, 100
# and none: 64, worst loss 0.049 (synthetic, 100 columns), against 0.096 for 32 (optdigits, 64
# columns, needs the full 1e-3), 0.098 for 100 and 0.312 for none; ODDS mean 0.8639 -> 0.8644.
# See docs/benchmarks.md "The weight penalty on wide tables".
TABLE_PENALTY_COLUMNS = 64


# Tables whose encoded columns are mostly one-hot codes (at least this share) are detected
# differently: the plain AE with the variant's own light penalty and the reconstruction error
# alone as the score (score_method "auto"). The ODDS sets that chose 1e-3 and the combined score
# are all numeric; on categorical tables with structure (rows built from a few hidden factors,
# anomalies breaking it; numbers that depend on the row's categories) the default was at chance
# (0.50-0.55 ROC-AUC where 5-NN reached 0.84-0.98) and rose to 0.66-1.00, never lower, on every
# categorical case measured (bench/categorical_tables.py, docs/benchmarks.md "Categorical
# tables"). No numeric table is touched.
CATEGORICAL_TABLE_SHARE = 0.5
CATEGORICAL_TABLE_DETECTION_DEFAULTS: dict[str, dict[str, Any]] = {"ae": {"weight_penalty": 1e-5}}
# ... and they train up to 1,500 optimiser steps instead of 300 (at the default epochs): the
# patterns of a categorical table take longer to learn (prototypes 10 x 10: 0.914 -> 0.973,
# mixed 5 x 8 + 5: 0.931 -> 0.947; 60 full epochs gave the same on 3,000 rows; worst case
# -0.007), still bounded on a large table.
CATEGORICAL_STEP_BUDGET = 1500


def one_hot_share(numeric_columns: int, category_counts: Iterable[int]) -> float:
    """The share of a table's encoded columns (log views left out) that are one-hot codes:
    ``category_counts`` holds each categorical column's number of categories."""
    codes = sum(category_counts)
    return codes / max(1, codes + numeric_columns)


def mostly_categorical(share: float) -> bool:
    """Whether a table with this :func:`one_hot_share` is detected as a categorical one."""
    return share >= CATEGORICAL_TABLE_SHARE


def table_detection_defaults(columns: int | None, categorical_share: float = 0.0
                             ) -> dict[str, dict[str, Any]]:
    """TABLE_DETECTION_DEFAULTS for a table of ``columns`` feature columns: the plain AE's
    weight penalty falls as TABLE_PENALTY_COLUMNS / columns on wider tables; a mostly
    categorical table (CATEGORICAL_TABLE_SHARE) gets CATEGORICAL_TABLE_DETECTION_DEFAULTS."""
    if mostly_categorical(categorical_share):
        return CATEGORICAL_TABLE_DETECTION_DEFAULTS
    if not columns or columns <= TABLE_PENALTY_COLUMNS:
        return TABLE_DETECTION_DEFAULTS
    base = TABLE_DETECTION_DEFAULTS["ae"]["weight_penalty"]
    return {**TABLE_DETECTION_DEFAULTS,
            "ae": {**TABLE_DETECTION_DEFAULTS["ae"],
                   "weight_penalty": base * TABLE_PENALTY_COLUMNS / columns}}


# Image denoising: settings over the variant's defaults when the input is images (the backbone
# is already convolutional there). Empty until a candidate wins on two image sets: ReLU with a
# 512-wide code, the expert flags of docs/denoise.md, gained 2-4 dB on MNIST but lost 1.2 dB on
# ELPV cells (bench/denoise_defaults.py, docs/benchmarks.md "Denoising defaults on images").
IMAGE_DENOISING_DEFAULTS: dict[str, dict[str, Any]] = {}

# Image generation (`aetool train` / `Autoencoder` on images): an unconditional VAE keeps 0.5
# nats of KL per code unit (free bits), so the decoder cannot ignore the code. Without it, on
# scikit-learn's 8x8 digits only 3 of 32 units carried more than 0.2 nats and samples were
# ambiguous (classifier score 6.84 -> 8.74); on MNIST 8.91 -> 9.05. 0.25 free bits (8.60 /
# 8.98) and a 1,000-step KL warm-up (8.59 / 9.09) also held; the warm-up had the better
# likelihood but, counted in steps, never reached full weight on the small set. The
# conditional VAE's label already carries the class and it keeps its own default
# (bench/generative.py, docs/benchmarks.md). Detection keeps the variant's default: its image
# VAE was not measured with free bits.
IMAGE_GENERATION_DEFAULTS: dict[str, dict[str, Any]] = {"vae": {"free_bits": 0.5}}

# Training on images (`aetool train`, `Autoencoder`, and the feature extractor): these variants
# use their convolutional backbone on images instead of flattening them. Rule: per variant,
# the backbone with the smaller worst loss against the other in logistic-probe accuracy over
# MNIST and ELPV cells at widths 32 and 256 (bench/features_defaults.py). Conv for all four:
# sparse and contractive won everywhere (the flattened sparse code collapsed: up to 35 points
# lower); for ae and dae the sets split (MNIST up to 1.8 points for flattened, cells up to 8.4
# for conv). The activation by the same rule, tanh (every variant's own) against ReLU on the
# conv backbone: ReLU for ae, dae and sparse (worst loss 0.6 / 1.6 / 1.5 points against tanh's
# 1.2 / 2.0 / 1.7: ReLU was 0.7-2.0 points better on MNIST in every cell, 0.6-1.6 worse on the
# cells), tanh for contractive (1.1 against 1.6). The plain AE's L2 weight penalty by the same
# rule over digits, 1,000 MNIST images, Fashion-MNIST and ELPV cells at widths 32 and 256:
# none (0) against the variant's 1e-5, worst loss 1.6 points (ELPV at 32) against 4.0 (ELPV at
# 256: 0.735 -> 0.775; MNIST at 256: 0.849 -> 0.876); 1e-4 was worse than 1e-5 on all three
# sets measured at 32. The penalty sums the squared weights, 250,000 at width 32 on MNIST, so
# it weighs far more on a conv network than on a small table model. See
# docs/benchmarks.md "Features at default settings on images".
IMAGE_FEATURE_DEFAULTS: dict[str, dict[str, Any]] = {
    "ae": {"backbone": "conv", "activation": "relu", "weight_penalty": 0.0},
    **{name: {"backbone": "conv", "activation": "relu"} for name in ("dae", "sparse")},
    "contractive": {"backbone": "conv"}}

# Training length on images (`aetool train`, `Autoencoder`, the feature extractor): the
# optimiser steps a variant makes at least while the epochs are left at their default, a small
# image set stretching its epochs and early-stopping patience to reach them (60 epochs of 1,000
# images are 480 steps). Rule: per variant, 2,000 steps against the plain epochs by the smaller
# worst loss in logistic-probe accuracy over scikit-learn's digits, 1,000 MNIST images and ELPV
# cells at widths 32 and 256 (bench/features_defaults.py --min-steps, features_min_steps.json):
# ae 1.5 against 2.0 points, dae 0.3 against 2.1, sparse 0.9 against 12.2 (its 32-wide code
# needs the steps: digits 0.836 -> 0.957, MNIST 0.798 -> 0.866), contractive 0.6 against 1.1.
# Every variant that has image feature defaults takes 2,000; a margin under a point (ae,
# contractive) is within one run's spread. Sets that already make 2,000 steps in their epochs
# (MNIST's 10,000) train as before.
IMAGE_TRAINING_STEPS: dict[str, dict[str, int]] = {
    name: {"min_steps": 2000} for name in ("ae", "dae", "sparse", "contractive")}

# Whole-image training from an image folder (`aetool train`, `evaluate-features`) reads images
# whose shorter side is longer than this scaled down to it, aspect kept, when no --image-size is
# given: a whole-image autoencoder's training time grows with the pixels (12 photographs of
# 900x1200: `train` estimated 524 minutes), and its codes gained nothing from them. `ae` 32 with
# today's image defaults, logistic probe normal vs defect (bench/features_image_size.py), at 32
# / 64 px: ELPV cells 0.744 / 0.738 (fit 440 / 579 s), magnetic tiles 0.687 / 0.661 (234 /
# 408 s); the tiles at 128 px 0.660 (3,090 s). Rule: the smaller worst loss against the better
# size on each set (32: 0, 64: 2.6 points).
WHOLE_IMAGE_MAX_SHORT_SIDE = 32


def image_min_steps(variant: str) -> int:
    """The optimiser steps ``variant`` makes at least when trained on images (0: no minimum)."""
    return IMAGE_TRAINING_STEPS.get(variant, {}).get("min_steps", 0)


def image_training_defaults() -> dict[str, dict[str, Any]]:
    """What `train` uses on images, by variant: IMAGE_FEATURE_DEFAULTS and
    IMAGE_GENERATION_DEFAULTS together (looked up when called)."""
    names = set(IMAGE_FEATURE_DEFAULTS) | set(IMAGE_GENERATION_DEFAULTS)
    return {name: {**IMAGE_FEATURE_DEFAULTS.get(name, {}), **IMAGE_GENERATION_DEFAULTS.get(name, {})}
            for name in names}


# Image denoising candidates that `Denoiser(selection="auto")` (the default of `aetool denoise
# fit` on images) trains side by side, keeping the one with the best PSNR on held-out clean
# images corrupted with the training noise: on MNIST the flags win by 2-4 dB, on ELPV cells the
# variant's own settings by 0.2-1.2 dB, so neither is the default and the user's data decides
# (bench/denoise_defaults.py).
IMAGE_DENOISING_CANDIDATES: dict[str, dict[str, dict[str, Any]]] = {
    "dae": {"default": {}, "relu": {"activation": "relu"},
            "relu + code 512": {"activation": "relu", "code_size": 512}},
}

# Image denoising on tiles: a denoiser of images whose shorter side is at least
# DENOISE_TILE_MIN_SIDE learns from DENOISE_TILES random tiles of DENOISE_TILE pixels and
# cleans an image tile by tile (overlapping by half, blended by a Hann window), instead of
# whole images through one code. Gaussian sigma 0.3, the dae's own settings, one thread:
# ELPV cells at their 150 px, whole images 22.27 dB in 2,002 s of training, tiles of 32 24.71
# dB in 371 s; a synthetic round part at 256 px, whole 27.04 dB in 4,748 s, tiles 25.45 dB in
# 359 s; the cells at 64 px, whole 23.42 dB in 345 s, tiles 22.49 dB (a 64-px cell is two
# tiles wide: tiles lose what the whole cell's layout tells); leather at 256 px, whole 24.66,
# tiles 25.50; magnetic tiles at 128 px, whole 26.63, tiles 26.47. Rule: from 128 px (four
# tiles wide): over the four sets of 128 px and more tiles win on the two textured ones, and
# have the smaller worst loss (tiles 1.6 dB, whole 2.4) at a fifth to a seventeenth of the
# training time. See docs/benchmarks.md "Denoising on tiles".
DENOISE_TILE = 32
DENOISE_TILE_MIN_SIDE = 128
DENOISE_TILES = 20_000
# Tiles start DENOISE_TILE_STARTS times per tile side along each axis when an image is cleaned:
# every quarter side, so each pixel is the Hann-weighted mean of 16 tiles' outputs instead of 4.
# The same fits cleaned at a half and a quarter step (bench/denoise_tile_settings.py, sigma 0.3,
# 19 fits on the four sets of 128 px and more): a quarter ahead on 18 (+0.03 to +0.27 dB, -0.03
# on one) for 2-3x the seconds of cleaning; the fit is unchanged. The same bench measured the
# tile side (48: -0.22 to -0.39 dB) and count (60,000: -0.09 to -0.19): 32 and 20,000 stay.
DENOISE_TILE_STARTS = 4
# ... unless an image would then be cut into more tiles than this (about 2,000 x 2,000 px):
# such an image is cleaned with a tile every half side, for time, not memory (tiles are
# cleaned in bands of at most aetool.tiles.TILES_AT_ONCE, so memory does not grow with the
# step). A 12-megapixel colour photograph on 2 cores: half step 24 s, quarter 78 s
# (bench/denoise_large_image.py).
DENOISE_TILES_PER_IMAGE = 65_536

# Image detection: the patch detector's autoencoder (aetool.PatchDetector) learns patches of
# standardised images with one 256-unit layer and a 16-wide code: of codes 8 to 128 on ELPV
# cells and magnetic tiles (12 cases: sizes, unaligned copies, 54 or 150 training images), 16
# has the smallest worst loss (0.017; 32: 0.030, 8: 0.034) and the highest mean
# (bench/patch_code_size.py). With few training patches the convolutional variant (two
# strided convolutions of 32 and 64 channels, ReLU, the same 16-wide code) learns them better:
# its weights are shared across each patch. Measured on 14 cases (bench/patch_backbone.py):
# from 54 and 150 training images (2,600-7,400 patches) conv won 8 of 10 cases by up to
# +0.041 ROC-AUC (lost 0.005 and 0.010); from 650-1,000 images (32,000-86,000 patches) ae won
# 4 of 5 by up to 0.015 (lost 0.008), at a third of conv's fit time. So the patch detector's
# variant "auto" trains conv below CONV_PATCHES_BELOW training patches, ae from there on
# (15,000: the geometric middle of the gap, about 300 images of 49 patches, the quarter-side
# patches then; about 37 images of the 400 tenth-side patches of a 64-px image under
# PATCH_SIZE_RULE, which was measured with this cut: 54 images now train ae at 64 px,
# bench/patch_size_aligned.py).
PATCH_DETECTION_DEFAULTS: dict[str, dict[str, Any]] = {"ae": {"hidden": [256], "code_size": 16},
                                                       "conv": {"code_size": 16}}
CONV_PATCHES_BELOW = 15_000

# The patch detector (texture_power "auto") divides an image's score by the texture level of
# the training images its patches matched (each one's median distance between neighbouring
# patch codes of its own), to a power: a grainy normal image, whose every patch lies far from
# the rest, then does not pass for a defective one. The power by set (bench/patch_texture.py,
# 28 cases of cells and tiles, the same rule on both kinds): aligned sets 0.25 below
# TEXTURE_FROM_IMAGES training images and 0.5 from there (0.5 at least as good as 0.25 on all
# 14 cases from 200 images, cells and tiles; below, it lost up to 0.014 on the cells); sets
# learnt in every orientation (turned copies) one step lower: off below, 0.25 from there (every
# power lost on the 54-image turned sets, cells and tiles). The cut lies between the 150- and
# 200-image cases measured; the sets measured hold 54-1,000 training images.
TEXTURE_POWERS = {"aligned": (0.25, 0.5), "turned": (0.0, 0.25)}  # (below, from) the cut
TEXTURE_FROM_IMAGES = 200

# The patch detector's patches (patch_size None): (parts of the shorter image side, smallest
# patch in pixels; a side under 4x that smallest keeps its quarter). A tenth, at least 7 px,
# where each patch is compared near its own place (aligned images: 7 px to 70 px, 12 at 128,
# 15 at 150, 25 at 256); an eighth, at least 16 px, where it is searched anywhere.
# Aligned (bench/patch_size_aligned.py, 13 cases: cells and tiles with 54 to 1,000 training
# images, synthetic photographs at 256 px, coffee-cup crops; sixth, eighth and tenth each
# measured with today's detector): the tenth's worst loss against the best of the three is
# 0.030 (coffee crops 0.595 -> 0.565), the eighth's before it 0.092 (a striped surface with thin
# scratches: eighth 0.888, tenth 0.980), the sixth's 0.193. On the ten sets of real cells and
# tiles the tenth is level with the eighth on the mean (-0.003; ELPV 64 0.893 -> 0.894, ELPV 150
# 0.893 both, tiles 128 0.971 -> 0.966, tiles 240x96 0.969 -> 0.957, subsets -0.012 .. +0.016):
# its gain rests on the one surface whose scratches are thinner than an eighth-side patch can
# see (also read at 128x128 and 240x96: eighth 0.834 / 0.961, tenth 0.915 / 0.985). A twelfth,
# measured on 17 cases, ties it on worst loss (0.032 against 0.031) and loses on 4 of the 6
# real sets where they differ, at more patches, so the rule stops at the tenth. The eighth's
# gain over the sixth rested on that surface too (0.787 -> 0.888; the sixth had beaten the
# quarter, 7 of 10, ELPV 64 0.875 -> 0.891). At 28 px a sixth is 4 px: MNIST digit 0 lost 0.010,
# Fashion-MNIST classes 0 and 2 +0.005 and -0.003, at 3x the fit, so placed patches keep at
# least the 7 px a quarter gives there (images under 28 px keep their quarter, which is
# smaller: PatchGrid.for_image). Anywhere (bench/patch_size_anywhere.py, 12 cases: brick,
# gravel, grass crops of 64-128 px, moved cells and tiles, a synthetic leather at 256 px): a
# patch searched anywhere needs more context than a placed one, or a defect finds its match
# somewhere in the grain (grass 64: 16 px 0.583, 10 px 0.419, 8 px 0.502). An eighth of the
# side, at least 16 px (so a quarter at 64, a sixth at 96, an eighth from 128), against the
# quarter before: leather 0.818 -> 0.939, gravel 128 0.439 -> 0.588, crops of 96 +0.02-0.03,
# grass 128 -0.043, moved tiles -0.009; worst loss against the best of quarter, sixth and
# eighth 0.083 (gravel 96) against the quarter's 0.149 (gravel 128), plain eighth's 0.081 on
# the 11 cases measured, a tie, but 20x the fit at 64 px. Smaller patches cost more where the set
# is learnt turned: each image's patches are searched among every training copy's.
PATCH_SIZE_RULE = {"placed": (10, 7), "anywhere": (8, 16)}

# The patch detector scales images whose shorter side is longer than this down to it (aspect
# kept) before cutting patches: a patch is a fixed part of the side, so the autoencoder's input and
# the fit time grow with the square of the side (30 photographs at 900x900: 9 minutes on 2
# cores), while the measured score barely moves with resolution (ELPV 0.833 at 64 px, 0.826 at
# 150 px). At 256 px the 1,000 ELPV cells would fit in about 10 minutes on 2 cores without the
# edge channel, which doubles each patch's values (1.4-1.8x the fit, bench/patch_edges.py).
PATCH_MAX_SHORT_SIDE = 256

# The patch detector's reconstruction error in each code (PatchDetector.residual) is the root
# of the mean of each patch's worst-drawn tenth of squared errors, not of all of them: a thin
# scratch is a few of a patch's values, and the RMS error averages it into the texture the
# decoder draws no better. Measured on 19 cases (bench/patch_residual.py): brick +0.029, a
# striped surface +0.028, leather +0.011, the rest within 0.005 either way. Worst loss against
# the best of the three forms (worst tenth, RMS, codes only): 0.024 (gravel, near chance;
# 0.008 on MNIST), the RMS error's 0.029 (brick), codes only 0.212 (the surface).
RESIDUAL_WORST_SHARE = 0.1

# Whether that error also counts the edge channel's values (PatchDetector.residual_edges). The
# decoder draws the edges of a grain or a stripe worst, so over them the error is high on every
# textured patch and a scratch among them stands out less. Over the image's own channels only,
# on the 25 cases of bench/patch_pooling.py, one fit per form (bench/residual_channels.py): a
# striped synthetic surface 0.913 -> 0.948 (128 px), brick crops 0.883 -> 0.918, the rest
# within 0.006 either way (ELPV cells at 64 px -0.002); worst loss 0.006 against 0.036.
RESIDUAL_OVER_EDGES = False

# The level below which a patch's reconstruction error counts as that level, in the code bank
# and when scoring (PatchDetector.residual_floor): a quantile of the training patches' errors
# at each grid position (of all of them, when patches are searched anywhere). An image drawn
# more smoothly than the training images (saved as JPEG, resampled: another camera) is
# reconstructed better than they are, and unfloored that alone sets it apart; a patch drawn
# better than usual is not odd. Measured on the 25 cases of bench/patch_pooling.py
# (bench/residual_floor.py), against the error as drawn and floored at the lowest (0): the
# median's worst loss 0.006 (54 cells) against 0.008 for both others (the cells moved round,
# +0.008 with the median), mean 0.887 against 0.888; normal images saved as JPEG (quality 75)
# scored 3.4 / 1.3 / 1.0 times the threshold (unfloored / lowest / median), resampled from
# another resolution 3.7 / 2.9 / 1.7.
RESIDUAL_FLOOR = 0.5

# How the patch detector pools an image's distances into its score: the mean of its TOP_K
# worst patches and, where it compares the whole image's thumbnail too, that distance at
# WHOLE_WEIGHT beside them (the weighted mean). Measured on 25 cases from one default fit
# each, every pooling computed from the same test distances (bench/patch_pooling.py: cells
# and tiles at four sizes and from 54 or 150 images, synthetic photographs at 128x128 and
# 240x96, coffee crops, four MNIST digits and four Fashion-MNIST classes, brick crops and the
# cells moved round, searched anywhere): of 1, 2, 3, 5 and 8 worst patches and a thumbnail
# weight of 1/(k+1), 0.25, 0.33, 0.4 and 0.5, the 8 worst at 0.25 has the smallest worst loss
# (0.014, Fashion-MNIST class 0) against the 3 worst at 1/(k+1) before (0.020, 54 cells), and
# is ahead of it on 19 of the 25 cases (ELPV 64 0.894 -> 0.897, tiles 128 0.966 -> 0.968, the
# two searched anywhere +0.012 / +0.013), behind on 4 by at most 0.003.
TOP_K = 8
WHOLE_WEIGHT = 0.25

# Which image detector `aetool fit` trains when the user does not say (--image-detector auto):
# the patch detector when the shorter image side is at least this many pixels, else the
# whole-image conv detector. Measured (bench/detector_cut.py, real_defects.py,
# mnist_oneclass.py): from 12 px every set measured favours the patch detector, both kinds of
# set: one-class MNIST at 12, 16 and 28 px (also with 90 training images per digit at 12 and
# 28) and drawn shapes at 28 px, ELPV cells and magnetic tiles read at 12-28 px and at 64-150
# px. At 8 px one set still favours the whole-image detector: scikit-learn's 8x8 digits (by
# 0.008 since the whole image's thumbnail joined the patch detector's score; MNIST at 8 px, 90
# or ~1,000 per digit, the cells and tiles favour patches); below the cut the whole-image
# detector stays, the status quo, as one set is not the two a new rule needs. The one set that
# favours it above the cut is the 8x8 digits brought up to 16 px (by 0.002; their detail is
# still 8 px). The cut was 64 px until the patch detector gained its edge channel, conv patch
# codes and texture division.
PATCH_DETECTOR_MIN_SIDE = 12
IMAGE_DETECTORS = ("auto", "patches", "whole")


def image_detector_for(height: int, width: int, choice: str = "auto") -> str:
    """'patches' or 'whole': the detector ``choice`` names, or for 'auto' the one the image
    size calls for (PATCH_DETECTOR_MIN_SIDE)."""
    if choice not in IMAGE_DETECTORS:
        raise ValueError(f"image detector must be one of {', '.join(IMAGE_DETECTORS)}, got "
                         f"'{choice}'")
    if choice != "auto":
        return choice
    return "patches" if min(height, width) >= PATCH_DETECTOR_MIN_SIDE else "whole"
