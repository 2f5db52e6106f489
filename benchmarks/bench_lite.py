"""The pretrained EfficientNet-Lite0 (ImageNet weights, offline) through tfuq: latency, size, int8.

Builds ``tfuq pretrained efficientnet_lite0`` (1000 classes, MCDropout(0.2) before the
classifier, 224x224), converts it twice with the same 200 calibration images (CIFAR-100 train
photos upsampled, from ../shared/data): masked one-invoke T=30 and deterministic. Then:

- latency: one invoke of T=30 vs one deterministic pass, interleaved, median of --repeats;
  the bound of that ratio for a head-only MC dropout is 1 + (T-1) * head MACs / total MACs;
- size of both files;
- float Keras vs int8 on real photos of ImageNet classes: scikit-image's cat and coffee, and
  CIFAR-100 test images of the classes with an unambiguous ImageNet counterpart (below): MC-mean
  top-1 accuracy (a hit when the predicted ImageNet class is the CIFAR class's), and agreement.

    python benchmarks/bench_lite.py --folder /tmp/lite --per-class 25 --json lite.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_one_invoke import interleaved_medians  # noqa: E402

CIFAR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar100"
# CIFAR-100 class -> ImageNet indices (0-based, tfuq/modeling/imagenet_classes.txt).
CIFAR_TO_IMAGENET = {
    "kangaroo": [104], "snail": [113], "leopard": [288], "lion": [291], "tiger": [292],
    "bee": [309], "cockroach": [314], "hamster": [333], "porcupine": [334], "beaver": [337],
    "camel": [354], "otter": [360], "skunk": [361], "chimpanzee": [367], "castle": [483],
    "lawn_mower": [621], "pickup_truck": [717], "streetcar": [829], "tank": [847],
    "television": [851], "tractor": [866], "wardrobe": [894], "mushroom": [947, 992],
    "orange": [950],
}
PHOTOS = {"chelsea": [281, 282, 283, 284, 285], "coffee": [967, 968]}
PASSES = 30


def macs(model) -> tuple[int, int]:
    """(total, head) multiply-accumulates of one pass; head = the layers after the MCDropout."""
    import keras

    total = head = 0
    after_dropout = False

    def count(layer):
        out = layer.output.shape
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            k = layer.kernel_size
            return out[1] * out[2] * out[3] * k[0] * k[1]
        if isinstance(layer, keras.layers.Conv2D):
            k = layer.kernel_size
            return out[1] * out[2] * out[3] * k[0] * k[1] * layer.input.shape[-1]
        if isinstance(layer, keras.layers.Dense):
            return layer.input.shape[-1] * layer.units
        return 0

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += sum(count(inner) for inner in layer.layers)
            continue
        if layer.name.startswith("mc_dropout"):
            after_dropout = True
        value = count(layer)
        total += value
        head += value if after_dropout else 0
    return int(total), int(head)


def float_bytes(model) -> int:
    """Size of the same network as a float32 TFLite file (MCDropout off, no quantization)."""
    import tensorflow as tf

    from tfuq.conversion import rewrite
    from tfuq.quiet import held_output

    with held_output():
        return len(tf.lite.TFLiteConverter.from_keras_model(rewrite.build_deterministic(model)).convert())


def photos(size: int) -> tuple[np.ndarray, list[list[int]]]:
    import skimage.data
    from PIL import Image

    images = []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        h, w = image.shape[:2]
        side = min(h, w)
        crop = image[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2]
        images.append(np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR)))
    return np.stack(images), list(PHOTOS.values())


def cifar(per_class: int, size: int) -> tuple[np.ndarray, list[list[int]]]:
    from tfuq.data.datasets import resize

    data = np.load(CIFAR / "test_50_per_class.npz")
    names = [str(n) for n in data["fine_names"]]
    images, targets = [], []
    for name, classes in CIFAR_TO_IMAGENET.items():
        index = np.flatnonzero(data["y"] == names.index(name))[:per_class]
        images.append(data["x"][index])
        targets += [classes] * len(index)
    return resize(np.concatenate(images), (size, size)), targets


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, required=True, help="where the .keras/.tflite go (reused when present)")
    parser.add_argument("--per-class", type=int, default=25, help="CIFAR-100 test images per mapped class (max 50)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tfuq
    from tfuq.conversion.convert import convert
    from tfuq.conversion.rewrite import build_masked
    from tfuq.modeling import efficientnet_lite

    size = 224
    say = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    model = efficientnet_lite.pretrained_classifier("efficientnet_lite0", dropout=0.2)
    names = efficientnet_lite.imagenet_class_names()
    train = np.load(CIFAR / "train_200_per_class.npz")["x"]
    calibration = train[np.random.default_rng(0).choice(len(train), 300, replace=False)]
    paths = {}
    for mode, name in (("masked", "lite0.tflite"), ("deterministic", "lite0_deterministic.tflite")):
        path = args.folder / name
        if not path.exists():
            say(f"converting {mode}")
            convert(model, calibration, passes=PASSES, mode=mode, calibration_samples=200,
                    check_samples=0, labels=names).save(path)
        paths[mode] = path
    row = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": os.getloadavg(),
           "passes": PASSES, "threads": args.threads, "input": size}
    row.update({f"{mode}_bytes": path.stat().st_size for mode, path in paths.items()})
    row["float_bytes"] = float_bytes(model)
    total, head = macs(model)
    row.update(total_macs=total, head_macs=head, bound=1 + (PASSES - 1) * head / total)

    runtimes = {mode: tfuq.load(path, threads=args.threads) for mode, path in paths.items()}
    x_photo, t_photo = photos(size)
    image = x_photo[0]
    masks = runtimes["masked"].masks(0)
    say(f"MACs: total {total / 1e6:.1f} M, head {head / 1e6:.2f} M, bound {row['bound']:.4f}")
    say("timing")
    medians = interleaved_medians(
        {
            "deterministic": lambda: runtimes["deterministic"].run_with_masks(image, {}),
            "masked": lambda: runtimes["masked"].run_with_masks(image, masks),
        },
        args.repeats,
    )
    row.update({f"{k}_ms": v for k, v in medians.items()})
    row["ratio"] = row["masked_ms"] / row["deterministic_ms"]
    say(f"timing: {medians}, ratio {row['ratio']:.3f}")

    say("accuracy")
    x_cifar, t_cifar = cifar(args.per_class, size)
    masked_keras, specs = build_masked(model, PASSES)
    runtime = runtimes["masked"]
    for label, images, targets in (("photos", x_photo, t_photo), ("cifar", x_cifar, t_cifar)):
        float_top, int8_top, det_top = [], [], []
        for index, picture in enumerate(images):
            feeds = runtime.masks(index)
            inputs = [picture[None].astype(np.float32)] + [
                feeds[spec.input].astype(np.float32) for spec in runtime.mask_specs
            ]
            # (passes, classes) on both sides, the same masks
            float_top.append(int(np.asarray(masked_keras(inputs, training=False)).mean(0).argmax()))
            int8_top.append(int(runtime.run_with_masks(picture, feeds).mean(0).argmax()))
            det_top.append(int(runtimes["deterministic"].run_with_masks(picture, {})[0].argmax()))
        hit = lambda tops, targets=targets: float(np.mean([t in c for t, c in zip(tops, targets, strict=True)]))  # noqa: E731
        row[label] = {
            "images": len(images),
            "float_mc_top1": hit(float_top),
            "int8_mc_top1": hit(int8_top),
            "int8_deterministic_top1": hit(det_top),
            "mc_mean_agreement": float(np.mean(np.array(float_top) == np.array(int8_top))),
            "predicted": [names[t] for t in int8_top] if label == "photos" else None,
        }
        say(f"{label}: {row[label]}")
    text = json.dumps(row, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
