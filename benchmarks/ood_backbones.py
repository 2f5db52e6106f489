"""Is the backbone the lever for near OOD? Frozen ImageNet trunks (Lite0 against Lite2), one head.

Issue 19's CIFAR-10 targets (AUROC >= 0.82, FPR95 <= 0.50) were missed by every score of the
fine-tuned Lite0, with or without outlier exposure (benchmarks/README.md, "Outlier exposure, OOD
scores and the OOD guard"). The pretrained weights that install offline are EfficientNet-Lite0,
1 and 2 (ImageNet-1k). This probe asks whether the largest of them separates CIFAR-10 from
CIFAR-100 better: each trunk, frozen, computes pooled features of the 32-px images upscaled to
its input size (bilinear, as the experiment does); the same head as the paper experiment's
(MC dropout 0.3, dense 512, MC dropout 0.3, classifier) is fitted on the 20,000 shared CIFAR-100
training images, with and without outlier exposure on the Tiny-ImageNet outlier classes
(``ood_dev.OUTLIER_CLASSES``, weight 1.0, tfuq's ``OutlierExposureLoss``), and measured with
T = 30 MC passes (float) on the 5,000 test images, the 1,000 CIFAR-10 dev images and the 50
unseen Tiny-ImageNet classes: accuracy, and per set the AUROC and the literature's FPR95 of the
MC predictive entropy and max probability.

    python benchmarks/ood_backbones.py --out runs/ood_backbones [--backbones efficientnet_lite0 efficientnet_lite2]

Features are cached per backbone in ``--out`` (``<backbone>.npz``; Lite2 takes about 25 min on
two loaded cores); the table goes to stdout and ``--out/ood_backbones.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ood_dev  # noqa: E402

SHARED_CIFAR100 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar100"
SETS = ("train", "test", "cifar10", "tiny_unseen", "tiny_outliers")
PASSES = 30


def _images(cifar100: Path) -> dict[str, np.ndarray]:
    with np.load(cifar100 / "train_200_per_class.npz") as train, np.load(cifar100 / "test_50_per_class.npz") as test:
        images = {"train": train["x"], "test": test["x"], "y_train": train["y"], "y_test": test["y"]}
    images.update(cifar10=ood_dev.cifar10(), tiny_unseen=ood_dev.tinyimagenet(ood_dev.UNSEEN_CLASSES),
                  tiny_outliers=ood_dev.tinyimagenet(ood_dev.OUTLIER_CLASSES))
    return images


def features(backbone: str, images: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """Pooled frozen-trunk features of every set (float16), cached in ``path``."""
    if path.is_file():
        with np.load(path) as cached:
            return {k: cached[k] for k in cached.files}
    import keras

    from tfuq.modeling.efficientnet_lite import VARIANTS, lite_backbone, preprocessing_layer

    size = VARIANTS[backbone].input_size
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Resizing(size, size, interpolation="bilinear")(inputs)
    x = lite_backbone(backbone, (size, size, 3))(preprocessing_layer()(x))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    out = {"y_train": images["y_train"], "y_test": images["y_test"]}
    for name in SETS:
        start = time.monotonic()
        out[name] = model.predict(images[name], batch_size=128, verbose=0).astype(np.float16)
        print(f"{backbone}: {name} {len(images[name])} images, {time.monotonic() - start:.0f} s", flush=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **out)
    partial.replace(path)
    return out


def fit_head(feats: dict[str, np.ndarray], outlier_weight: float, seed: int, epochs: int):
    """The paper experiment's head on frozen features; outliers labelled -1 when weighted."""
    import keras

    from tfuq.modeling.layers import MCDropout, OutlierExposureLoss

    keras.utils.set_random_seed(seed)
    x = feats["train"].astype(np.float32)
    y = feats["y_train"].astype(np.int32)
    if outlier_weight:
        x = np.concatenate([x, feats["tiny_outliers"].astype(np.float32)])
        y = np.concatenate([y, np.full(len(feats["tiny_outliers"]), -1, np.int32)])
    inputs = keras.Input((x.shape[1],))
    h = MCDropout(0.3)(inputs)
    h = MCDropout(0.3)(keras.layers.Dense(512, activation="relu")(h))
    model = keras.Model(inputs, keras.layers.Dense(100, activation="softmax")(h))
    model.compile(keras.optimizers.Adam(1e-3), OutlierExposureLoss(smoothing=0.1, outlier_weight=outlier_weight))
    model.fit(x, y, batch_size=128, epochs=epochs, shuffle=True, verbose=0)
    return model


def measure(model, feats: dict[str, np.ndarray]) -> dict:
    from tfuq.evaluation import ood_kept_at_95_id
    from tfuq.runtime.metrics import auroc

    def mean_probabilities(name):
        x = feats[name].astype(np.float32)
        return np.mean([model.predict(x, batch_size=1024, verbose=0) for _ in range(PASSES)], axis=0)

    def certainties(p):  # larger = more like the training data
        return {"entropy": (p * np.log(np.clip(p, 1e-12, 1.0))).sum(1), "max_probability": p.max(1)}

    test = mean_probabilities("test")
    result = {"accuracy": float((test.argmax(1) == feats["y_test"]).mean())}
    inside = certainties(test)
    for name in ("cifar10", "tiny_unseen"):
        outside = certainties(mean_probabilities(name))
        for score in inside:
            both = np.concatenate([inside[score], outside[score]])
            is_ood = np.r_[np.zeros(len(inside[score]), bool), np.ones(len(outside[score]), bool)]
            result[f"{name} {score}"] = {"auroc": auroc(-both, is_ood),
                                         "ood_kept_at_95_id": ood_kept_at_95_id(inside[score], outside[score])}
    return result


def table(results: dict) -> str:
    lines = ["| backbone | outlier exposure | accuracy | CIFAR-10 entropy AUROC / FPR95 | CIFAR-10 MSP | "
             "Tiny unseen entropy | Tiny unseen MSP |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for key, r in results.items():
        backbone, weight = key.split(" oe ")
        cells = [f"{r[s]['auroc']:.3f} / {r[s]['ood_kept_at_95_id']:.2f}" for s in
                 ("cifar10 entropy", "cifar10 max_probability", "tiny_unseen entropy", "tiny_unseen max_probability")]
        lines.append(f"| {backbone} | {weight} | {r['accuracy']:.1%} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--backbones", nargs="+", default=["efficientnet_lite0", "efficientnet_lite2"],
                        choices=["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
    parser.add_argument("--cifar100", type=Path, default=SHARED_CIFAR100)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not ood_dev.available() or not (args.cifar100 / "train_200_per_class.npz").is_file():
        print("ood_backbones: needs ../shared/data/cifar100 and ../shared/data/ood_dev", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    images = _images(args.cifar100)
    results = {}
    for backbone in args.backbones:
        feats = features(backbone, images, args.out / f"{backbone}.npz")
        for weight in (0.0, 1.0):
            results[f"{backbone} oe {weight}"] = measure(fit_head(feats, weight, args.seed, args.epochs), feats)
            print(f"{backbone}, outlier weight {weight}: done", flush=True)
    (args.out / "ood_backbones.json").write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
