"""Denoising benchmark on MNIST: aetool's autoencoders against classical filters.

Train on the 10,000 shared training images; evaluate on the official test images (the first
--n-test of them, same for every method), pixels in [0, 1]. Noise: Gaussian σ 0.1/0.3/0.5
(clipped to [0, 1]) and salt-and-pepper p = 0.2, seeded. Classical peers get their parameters
tuned per noise level on 200 noisy *training* images (never on test images). Also a tabular case
(an ODDS set, standardised features): RMSE of the DAE vs PCA reconstruction.

    python bench/denoise.py           # about 15 minutes on 2 CPU cores
    python bench/denoise.py --bm3d-only   # BM3D into the saved results, about 15 minutes

BM3D (the `bm3d` package) is the strongest classical anchor, tuned like the others.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from common import RESULTS, SHARED, load_mnist, machine, print_table, require, timed, write_json

LEVELS = {"gaussian:0.1": ("gaussian", 0.1), "gaussian:0.3": ("gaussian", 0.3),
          "gaussian:0.5": ("gaussian", 0.5), "salt_pepper:0.2": ("salt_pepper", 0.2)}


def corrupt(x: np.ndarray, spec: str, seed: int) -> np.ndarray:
    kind, level = LEVELS[spec]
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return np.clip(x + rng.normal(scale=level, size=x.shape), 0, 1).astype(np.float32)
    u = rng.random(x.shape)
    out = x.copy()
    out[u < level / 2] = 0.0
    out[(u >= level / 2) & (u < level)] = 1.0
    return out


def scores(clean: np.ndarray, estimate: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    psnr = float(np.mean([peak_signal_noise_ratio(c[0], e[0], data_range=1.0)
                          for c, e in zip(clean, estimate)]))
    ssim = float(np.mean([structural_similarity(c[0], e[0], data_range=1.0)
                          for c, e in zip(clean, estimate)]))
    return psnr, ssim


def per_image(fn, images: np.ndarray) -> np.ndarray:
    return np.stack([fn(img[0])[None] for img in images]).astype(np.float32)


def classical(spec: str, train_clean: np.ndarray, tune_clean: np.ndarray, tune_noisy: np.ndarray):
    """Each classical method with its parameter tuned (best PSNR) on the tuning images."""
    from scipy.ndimage import gaussian_filter, median_filter
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle
    from sklearn.decomposition import PCA

    def tune(make, grid):
        best = max(grid, key=lambda p: scores(tune_clean, make(p)(tune_noisy))[0])
        return make(best), best

    methods = {"median 3x3": (lambda x: per_image(lambda i: median_filter(i, size=3), x), "-")}
    methods["gaussian blur"] = tune(
        lambda s: (lambda x: per_image(lambda i: gaussian_filter(i, s), x)),
        [0.5, 0.75, 1.0, 1.5])
    flat = train_clean.reshape(len(train_clean), -1)

    def pca_method(k):
        pca = PCA(k, random_state=0).fit(flat)
        return lambda x: np.clip(pca.inverse_transform(pca.transform(
            x.reshape(len(x), -1))), 0, 1).reshape(x.shape).astype(np.float32)

    methods["PCA"] = tune(pca_method, [16, 32, 64, 128])
    sigma = float(np.std(tune_noisy - tune_clean))  # noise level measured on training images
    methods["NL-means"] = tune(
        lambda h: (lambda x: per_image(lambda i: denoise_nl_means(
            i, h=h * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True), x)),
        [0.6, 1.0, 1.5, 2.5])
    methods["TV Chambolle"] = tune(
        lambda w: (lambda x: per_image(lambda i: denoise_tv_chambolle(i, weight=w), x)),
        [0.05, 0.1, 0.2, 0.3, 0.5])
    methods["BM3D"] = bm3d_method(sigma, tune)
    return methods


def bm3d_method(sigma: float, tune: Any) -> tuple[Any, float]:
    """BM3D (the ``bm3d`` package), its noise level tuned around the one measured on the
    tuning images (clipping makes the noise less than Gaussian, so the measured σ is a start)."""
    import bm3d

    return tune(lambda f: (lambda x: np.clip(per_image(
        lambda i: bm3d.bm3d(i, sigma_psd=max(f * sigma, 1e-3)), x), 0, 1)), [0.6, 0.8, 1.0, 1.25])


def aetool_models(spec: str, train: np.ndarray, epochs: int, cache: dict,
                  with_conv: bool) -> dict:
    """aetool denoisers: DAEs trained for this noise, ae/contractive trained on clean data."""
    from aetool import Denoiser

    mlp = {"backbone": "mlp", "hidden": [512], "code_size": 128, "activation": "relu"}
    # a wide code: the corruption, not a bottleneck, keeps a DAE from learning the identity
    conv = {"backbone": "conv", "code_size": 512, "activation": "relu"}
    daes = [("dae (mlp)", "dae", mlp, spec)]
    if with_conv:
        daes.append(("dae (conv)", "dae", conv, spec))
    models = {}
    for name, variant, params, noise in daes:
        model, seconds = timed(lambda v=variant, p=params, n=noise: Denoiser(
            variant=v, noise=n, variant_params=p, epochs=epochs, device="cpu").fit(train))
        models[name] = (model, seconds)
    for name, variant in (("contractive", "contractive"), ("ae", "ae")):
        if name not in cache:
            cache[name] = timed(lambda v=variant: Denoiser(
                variant=v, variant_params=mlp, epochs=epochs, device="cpu").fit(train))
        models[name] = cache[name]
    return models


def tabular(name: str = "satellite") -> list[dict]:
    """RMSE on standardised features: DAE vs PCA reconstruction, Gaussian noise 0.3 and 0.5."""
    from sklearn.decomposition import PCA

    from aetool import Denoiser

    data = np.load(require(SHARED / "odds" / f"{name}.npz"))
    x = data["X"].astype(np.float64)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    train, test = x[order[: len(x) * 3 // 4]], x[order[len(x) * 3 // 4:]]
    rows = []
    for sigma in (0.3, 0.5):
        noisy = test + rng.normal(scale=sigma, size=test.shape)
        rmse = {"noisy": float(np.sqrt(np.mean((noisy - test) ** 2)))}
        best = None
        for k in (4, 8, 12, 16, 24):
            pca = PCA(k).fit(train)
            val = train[:500] + rng.normal(scale=sigma, size=train[:500].shape)
            err = np.sqrt(np.mean((pca.inverse_transform(pca.transform(val)) - train[:500]) ** 2))
            if best is None or err < best[0]:
                best = (err, pca)
        rmse["PCA"] = float(np.sqrt(np.mean(
            (best[1].inverse_transform(best[1].transform(noisy)) - test) ** 2)))
        dae = Denoiser(noise=f"gaussian:{sigma}", variant_params={"activation": "relu",
                                                                  "hidden": [128]},
                       epochs=60, device="cpu").fit(train)
        rmse["aetool dae"] = float(np.sqrt(np.mean((dae.transform(noisy) - test) ** 2)))
        rows.append({"dataset": name, "sigma": sigma, **rmse})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--levels", default=",".join(LEVELS))
    parser.add_argument("--no-conv", action="store_true",
                        help="skip the convolutional DAE (slow on a 2-core CPU)")
    parser.add_argument("--bm3d-only", action="store_true",
                        help="add BM3D to the saved results (denoise.json) and redo the verdict")
    args = parser.parse_args()
    if args.bm3d_only:
        add_bm3d()
        return
    x_train, _, x_test, _ = load_mnist()
    train = (x_train[:, None] / 255.0).astype(np.float32)
    test = (x_test[: args.n_test, None] / 255.0).astype(np.float32)
    tune_clean = train[:200]
    rows, cache, figures = [], {}, {}
    for level_index, spec in enumerate(args.levels.split(",")):
        noisy = corrupt(test, spec, seed=100 + level_index)
        tune_noisy = corrupt(tune_clean, spec, seed=200 + level_index)
        psnr, ssim = scores(test, noisy)
        rows.append({"noise": spec, "method": "noisy input", "psnr": psnr, "ssim": ssim})
        outputs = {"clean": test[:6], "noisy": noisy[:6]}
        for name, (method, param) in classical(spec, train, tune_clean, tune_noisy).items():
            estimate, seconds = timed(lambda m=method, x=noisy: m(x))
            psnr, ssim = scores(test, estimate)
            rows.append({"noise": spec, "method": name, "param": str(param), "psnr": psnr,
                         "ssim": ssim, "seconds": seconds})
            outputs[name] = estimate[:6]
            print(rows[-1], flush=True)
        for name, (model, fit_s) in aetool_models(spec, train, args.epochs, cache,
                                                     not args.no_conv).items():
            estimate, seconds = timed(lambda m=model, x=noisy: m.transform(x))
            psnr, ssim = scores(test, estimate)
            rows.append({"noise": spec, "method": f"aetool {name}", "psnr": psnr, "ssim": ssim,
                         "seconds": seconds, "fit_s": fit_s})
            outputs[f"aetool {name}"] = estimate[:6]
            print(rows[-1], flush=True)
        figures[spec] = outputs
    print()
    print_table(rows, ["noise", "method", "param", "psnr", "ssim"])
    verdict = verdicts(rows, args.levels.split(","))
    table_rows = tabular()
    write_json("denoise.json", {"machine": machine(), "n_test": args.n_test,
                                "epochs": args.epochs, "mnist": rows, "verdict": verdict,
                                "tabular": table_rows})
    figure(figures, RESULTS / "denoise.png")
    print(f"\nwrote {RESULTS / 'denoise.json'} and {RESULTS / 'denoise.png'}")


def verdicts(rows: list[dict], levels: list[str]) -> dict[str, dict]:
    """Per noise level: the best aetool model against the best classical method."""
    verdict = {}
    for spec in levels:
        mine = [r for r in rows if r["noise"] == spec and r["method"].startswith("aetool")]
        peers = [r for r in rows if r["noise"] == spec and r["method"] not in
                 ("noisy input",) and not r["method"].startswith("aetool")]
        best_mine = max(mine, key=lambda r: r["psnr"])
        best_peer = max(peers, key=lambda r: r["psnr"])
        verdict[spec] = {"best_aetool": best_mine["method"], "best_classical": best_peer["method"],
                         "psnr_gain_db": best_mine["psnr"] - best_peer["psnr"],
                         "ssim_gain": max(r["ssim"] for r in mine) - max(r["ssim"] for r in peers)}
        print(f"{spec}: {best_mine['method']} {best_mine['psnr']:.2f} dB vs {best_peer['method']} "
              f"{best_peer['psnr']:.2f} dB ({verdict[spec]['psnr_gain_db']:+.2f} dB); SSIM gain "
              f"{verdict[spec]['ssim_gain']:+.3f}")
    return verdict


BM3D_TEST_IMAGES = 500  # BM3D takes 0.3-0.7 s per 28x28 image here: 2,000 x 4 levels is hours


def add_bm3d() -> None:
    """``--bm3d-only``: BM3D, given the noise level measured on the tuning images, on the first
    BM3D_TEST_IMAGES noisy test images of the saved run (same seeds), inserted after the other
    classical methods; the verdict recomputed."""
    import bm3d

    saved = json.loads((RESULTS / "denoise.json").read_text())
    x_train, _, x_test, _ = load_mnist()
    train = (x_train[:, None] / 255.0).astype(np.float32)
    test = (x_test[: saved["n_test"], None] / 255.0).astype(np.float32)
    tune_clean = train[:200]
    rows = [r for r in saved["mnist"] if r["method"] != "BM3D"]
    levels = list(dict.fromkeys(r["noise"] for r in rows))
    for spec in levels:
        level_index = list(LEVELS).index(spec)
        noisy = corrupt(test, spec, seed=100 + level_index)[:BM3D_TEST_IMAGES]
        sigma = float(np.std(corrupt(tune_clean, spec, seed=200 + level_index) - tune_clean))
        estimate, seconds = timed(lambda x=noisy, s=sigma: np.clip(per_image(
            lambda image: bm3d.bm3d(image, sigma_psd=s), x), 0, 1))
        psnr, ssim = scores(test[:BM3D_TEST_IMAGES], estimate)
        row = {"noise": spec, "method": "BM3D", "param": f"sigma_psd={sigma:.3f}",
               "psnr": psnr, "ssim": ssim, "seconds": seconds, "test_images": len(noisy)}
        print(row, flush=True)
        last_peer = max(i for i, r in enumerate(rows) if r["noise"] == spec
                        and not r["method"].startswith("aetool"))
        rows.insert(last_peer + 1, row)
    saved.update(mnist=rows, verdict=verdicts(rows, levels), machine=machine())
    write_json("denoise.json", saved)
    print_table(rows, ["noise", "method", "param", "psnr", "ssim"])


def figure(figures: dict, path) -> None:
    from aetool.plots import _pyplot, save_figure

    plt = _pyplot()
    spec = "gaussian:0.5" if "gaussian:0.5" in figures else next(iter(figures))
    outputs = figures[spec]
    fig, axes = plt.subplots(len(outputs), 6, figsize=(7, 1.2 * len(outputs)))
    for row, (name, images) in enumerate(outputs.items()):
        for col in range(6):
            axes[row, col].imshow(images[col][0], cmap="gray", vmin=0, vmax=1)
            axes[row, col].axis("off")
        axes[row, 0].set_title(name, fontsize=7, loc="left")
    fig.suptitle(f"MNIST test digits, noise {spec}", fontsize=9)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
