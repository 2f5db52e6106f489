"""Bring your own model: a keras.io-style classifier with Dropout and [-1, 1] scaling done
outside the model converts, and its int8 MC mean agrees with Keras on held-out images.

The model is keras.io's "Image classification from scratch" network (entry convolution,
residual blocks of separable convolutions, Dropout(0.25), a Dense with logits), narrowed to
run on a CPU, trained here on the real CIFAR-100 subset in ``../shared/data/cifar100/`` with
the images scaled to [-1, 1] outside the model, as keras.io scales its datasets. Then the
exact command a user would type:

    tfuq convert OUT/keras_io.keras --out OUT/keras_io.tflite --representative OUT/rep.npz \\
        --passes 30 --input-range=-1,1 --add-softmax

and on held-out test images, the int8 file against the float Keras graph with the same masks:
top-1 agreement of the MC mean, mean |p_keras - p_int8| of the MC mean, per-pass agreement,
and accuracy of each.

    python benchmarks/byo_keras_io.py --out byo/ [--epochs 8] [--images 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar100"


def make_model(input_shape, num_classes, widths=(64, 128), final=256):
    """keras.io's make_model (image_classification_from_scratch), with narrower layers and the
    Rescaling left out: this model is fed [-1, 1] from outside."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(32, 3, strides=2, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x
    for size in widths:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])
        previous_block_activation = x
    x = layers.SeparableConv2D(final, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(num_classes, activation=None)(x)
    return keras.Model(inputs, outputs, name="keras_io")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the model, data and results")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--images", type=int, default=1000, help="held-out test images compared")
    parser.add_argument("--passes", type=int, default=30)
    args = parser.parse_args(argv)
    if not (DATA / "train_200_per_class.npz").is_file():
        print(f"needs the CIFAR-100 subset in {DATA.resolve()}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import keras

    train = np.load(DATA / "train_200_per_class.npz")
    test = np.load(DATA / "test_50_per_class.npz")
    x, y, names = train["x"], train["y"], train["fine_names"]
    model_path = out / "keras_io.keras"
    started = time.monotonic()
    if not model_path.exists():  # an existing model is reused: rerun the comparison alone
        keras.utils.set_random_seed(0)
        model = make_model(x.shape[1:], len(names))
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        model.fit(x.astype("float32") / 127.5 - 1.0, y, epochs=args.epochs, batch_size=64,
                  validation_split=0.0, verbose=2)
        model.save(model_path)
    trained = time.monotonic() - started
    rng = np.random.default_rng(0)
    representative = rng.choice(len(x), 250, replace=False)
    np.savez(out / "rep.npz", x=x[representative], y=y[representative], label_names=names)
    held = rng.choice(len(test["x"]), min(args.images, len(test["x"])), replace=False)
    images, labels = test["x"][held], test["y"][held]

    tflite = out / "keras_io.tflite"
    command = [sys.executable, "-m", "tfuq.cli.main", "convert", str(model_path), "--out", str(tflite),
               "--representative", str(out / "rep.npz"), "--passes", str(args.passes),
               "--input-range=-1,1", "--add-softmax", "--json", str(out / "convert.json")]
    started = time.monotonic()
    subprocess.run(command, check=True)
    converted = time.monotonic() - started

    import tfuq
    from tfuq.conversion import rewrite
    from tfuq.modeling import byo

    original = keras.models.load_model(model_path)
    prepared = byo.prepare(original, preprocessing=byo.Preprocessing.from_options("-1,1"), add_softmax=True)
    int8 = tfuq.load(tflite)
    masked, _ = rewrite.build_masked(prepared.model, int8.passes)
    keras_mean, int8_mean, per_pass = [], [], []
    for seed, image in enumerate(images):
        feeds = int8.masks(seed)
        inputs = [image[None].astype("float32")] + [feeds[s.input].astype("float32") for s in int8.mask_specs]
        expected = np.asarray(masked(inputs))
        got = int8.run(image, seed=seed)[:, 0]
        keras_mean.append(expected.mean(0))
        int8_mean.append(got.mean(0))
        per_pass.append(np.mean(expected.argmax(-1) == got.argmax(-1)))
    keras_mean, int8_mean = np.stack(keras_mean), np.stack(int8_mean)
    ordered = np.sort(keras_mean, axis=-1)
    clear = (ordered[:, -1] - ordered[:, -2]) >= 0.05  # Keras' top class ahead by 5 points
    agree = keras_mean.argmax(-1) == int8_mean.argmax(-1)
    deterministic = np.asarray(original.predict(images.astype("float32") / 127.5 - 1.0, verbose=0)).argmax(-1)
    result = {
        "held_out_images": len(images),
        "passes": int8.passes,
        "mc_mean_top1_agreement": float(np.mean(agree)),
        "mc_mean_top1_agreement_margin_0.05": float(np.mean(agree[clear])),
        "images_margin_0.05": int(clear.sum()),
        "disagreements_top2_swapped": int(np.sum(~agree & (np.argsort(keras_mean, -1)[:, -2] == int8_mean.argmax(-1)))),
        "mc_mean_abs_diff": float(np.mean(np.abs(keras_mean - int8_mean))),
        "mc_mean_max_abs_diff": float(np.max(np.abs(keras_mean - int8_mean))),
        "mc_mean_l1_per_image": float(np.mean(np.abs(keras_mean - int8_mean).sum(-1))),
        "per_pass_top1_agreement": float(np.mean(per_pass)),
        "accuracy_keras_deterministic": float(np.mean(deterministic == labels)),
        "accuracy_keras_mc_mean": float(np.mean(keras_mean.argmax(-1) == labels)),
        "accuracy_int8_mc_mean": float(np.mean(int8_mean.argmax(-1) == labels)),
        "tflite_bytes": tflite.stat().st_size,
        "train_seconds": round(trained, 1),  # ~0 when the model was reused
        "convert_seconds": round(converted, 1),
        "epochs": args.epochs,
        "command": " ".join(command[2:]),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "load_average": os.getloadavg(),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
