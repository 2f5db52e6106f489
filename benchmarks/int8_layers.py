"""Where a full-integer tfuq model loses accuracy: int8 against float, layer by layer.

The float reference is the float twin of the model's graph (``tfuq.conversion.convert.float_twin``:
the same Keras graph converted without quantization, whose tensors carry the same names), so
every int8 tensor with a twin can be compared, on the same images and MC masks:

- per layer output: the relative RMS error ``RMS(int8 - float) / RMS(float)`` and the share of
  the squared error that is a constant per channel (what ``tfuq convert --bias-correction``
  removes; the rest is noise);
- per model file: the MC-mean top-1 accuracy of float and int8, their agreement, and the AURC
  of the MC-mean max probability, on ``--eval`` seeded images of ``--data``.

Several ``.tflite`` files of the same Keras model (say, with and without bias correction)
are compared side by side:

    python benchmarks/int8_layers.py model.keras plain.tflite corrected.tflite \\
        --data ../shared/data/cifar100/test_50_per_class.npz --images 24 --eval 1000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _feeds(images: np.ndarray, config, seed: int) -> list[dict[str, np.ndarray]]:
    """One feed per image: the pixels and this image's MC masks (run seed ``seed + k``)."""
    from tfuq.runtime import masks

    layers = [(m.feature_shape, m.rate) for m in config.mc_dropout]
    feeds = []
    for k, image in enumerate(images):
        feed = {config.input.name: image[None].astype(np.float32)}
        drawn = masks.masks_for(seed + k, config.passes, layers)
        feed.update({m.input: d.astype(np.float32) for m, d in zip(config.mc_dropout, drawn, strict=True)})
        feeds.append(feed)
    return feeds


def _aurc(probabilities: np.ndarray, labels: np.ndarray) -> float:
    from tfuq.runtime import metrics

    return float(metrics.aurc(labels, probabilities.argmax(axis=1), probabilities.max(axis=1)))


def layer_errors(float_model: bytes, int8_model: bytes, feeds) -> list[dict]:
    """Relative RMS error and mean-per-channel share for every int8 tensor with a float twin."""
    from tfuq.conversion.bias_correction import run_tensors, tensor_interpreter

    reference, quantized = tensor_interpreter(float_model), tensor_interpreter(int8_model)
    float_names = {t["name"]: t for t in reference.get_tensor_details()}
    inputs = {d["name"] for d in quantized.get_input_details()}
    names = [t["name"] for t in quantized.get_tensor_details()
             if t["name"] in float_names and t["name"] not in inputs and np.issubdtype(t["dtype"], np.integer) and t["quantization"][0]
             and len(t["shape"]) >= 2 and tuple(t["shape"]) == tuple(float_names[t["name"]]["shape"])
             and float_names[t["name"]]["dtype"] == np.float32]
    differences = {name: [] for name in names}
    references = {name: [] for name in names}
    for feed in feeds:
        wanted = run_tensors(reference, feed, names)
        got = run_tensors(quantized, feed, names)
        for name, want, value in zip(names, wanted, got, strict=True):
            differences[name].append((value - want).reshape(-1, want.shape[-1]))
            references[name].append(want.reshape(-1, want.shape[-1]))
    rows = []
    for name in names:
        difference, reference_values = np.concatenate(differences[name]), np.concatenate(references[name])
        squared = float(np.mean(difference**2))
        if not np.any(reference_values):
            continue  # constants and masks
        rows.append({
            "tensor": name,
            "relative_rms_error": float(np.sqrt(squared / np.mean(reference_values**2))),
            "mean_share": float(np.mean(difference.mean(axis=0) ** 2) / squared) if squared else 0.0,
        })
    return rows


def mc_mean(model: bytes, feeds) -> np.ndarray:
    """MC-mean probabilities ``(images, classes)`` of one model on ``feeds``."""
    from tfuq.conversion.bias_correction import run_tensors, tensor_interpreter

    interpreter = tensor_interpreter(model)
    output = interpreter.get_output_details()[0]["name"]
    return np.stack([run_tensors(interpreter, feed, [output])[0].mean(axis=0) for feed in feeds])


def _labels(paths: list[str]) -> dict[str, str]:
    """Short names for the table: the file name, or folder/file name when file names repeat."""
    names = [Path(p).name for p in paths]
    return {p: Path(p).name if names.count(Path(p).name) == 1 else f"{Path(p).parent.name}/{Path(p).name}"
            for p in paths}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("keras", help="the Keras model the .tflite files were converted from")
    parser.add_argument("tflite", nargs="+", help="tfuq model files of that Keras model")
    parser.add_argument("--data", required=True, help=".npz with x (uint8 images) and y (labels)")
    parser.add_argument("--images", type=int, default=24, help="images for the per-layer errors (default 24)")
    parser.add_argument("--eval", type=int, default=1000, help="images for accuracy and agreement (default 1000)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    from tfuq.conversion.convert import float_twin, load_keras_model
    from tfuq.data import load_spec
    from tfuq.data.datasets import resize
    from tfuq.runtime.modelfile import read_config

    config = read_config(args.tflite[0])
    loaded = load_spec(f"npz:{args.data}")
    # To the model's input size by the photo rule, as `tfuq convert` brings representative images.
    images = resize(loaded.images, (config.input.height, config.input.width))
    order = np.random.default_rng(args.seed).permutation(len(loaded.images))
    floating = float_twin(load_keras_model(args.keras), config.passes)
    layer_feeds = _feeds(images[order[: args.images]], config, seed=1000)
    eval_images, eval_labels = images[order[: args.eval]], loaded.labels[order[: args.eval]]
    eval_feeds = _feeds(eval_images, config, seed=2000)
    float_probabilities = mc_mean(floating, eval_feeds)
    result = {"float": {"accuracy": float(np.mean(float_probabilities.argmax(1) == eval_labels)),
                        "aurc": _aurc(float_probabilities, eval_labels)}, "files": {}}
    for path in args.tflite:
        model = Path(path).read_bytes()
        probabilities = mc_mean(model, eval_feeds)
        rows = layer_errors(floating, model, layer_feeds)
        result["files"][path] = {
            "accuracy": float(np.mean(probabilities.argmax(1) == eval_labels)),
            "aurc": _aurc(probabilities, eval_labels),
            "agreement": float(np.mean(probabilities.argmax(1) == float_probabilities.argmax(1))),
            "layers": rows,
        }
    shown = _labels(args.tflite)
    print(f"MC-mean top-1 on {len(eval_labels)} images of {args.data} (T={config.passes}, same masks):")
    print("| model | accuracy | AURC | agreement with float |\n|---|---|---|---|")
    print(f"| float twin | {result['float']['accuracy']:.3f} | {result['float']['aurc']:.4f} | - |")
    for path, found in result["files"].items():
        print(f"| {shown[path]} | {found['accuracy']:.3f} | {found['aurc']:.4f} | {found['agreement']:.3f} |")
    print(f"\nRelative RMS error per layer output on {args.images} images (mean share: the part bias correction removes)")
    names = list(result["files"])
    print("| tensor | " + " | ".join(f"{shown[n]} rel. error / mean share" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    by_file = [{row["tensor"]: row for row in result["files"][n]["layers"]} for n in names]
    for row in result["files"][names[0]]["layers"]:
        cells = [f"{b[row['tensor']]['relative_rms_error']:.3f} / {b[row['tensor']]['mean_share']:.2f}"
                 if row["tensor"] in b else "-" for b in by_file]
        print(f"| {row['tensor'].split(';')[0][-60:]} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
