"""One invoke for all MC passes vs one deterministic pass vs the seed paper's separate passes.

For each backbone at 224x224 with random weights (no network needed), the same network is
converted three ways with the same int8 settings, and timed in one run on the same machine:

- deterministic: MCDropout off, one pass (the baseline);
- one-invoke MC: masks as inputs, trunk once, all T passes in one invoke (tfuq's default);
- separate passes: the seed paper's in-graph RANDOM_UNIFORM model, invoked T times.

Each figure is the median of --repeats timed runs after a warm-up. Goal: one-invoke MC within
1.05x of the deterministic pass at T=30.

    python benchmarks/bench_one_invoke.py --backbones resnet50 efficientnetb0 --passes 30
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

APPLICATIONS = {
    "resnet50": "ResNet50",
    "efficientnetb0": "EfficientNetB0",
    "mobilenetv2": "MobileNetV2",
    "mobilenetv3small": "MobileNetV3Small",
}


def build(backbone: str, size: int, classes: int):
    """The backbone (random weights) with the seed paper's head: pooling, dense, MC dropout."""
    import keras

    from tfuq import MCDropout

    keras.utils.set_random_seed(0)
    application = getattr(keras.applications, APPLICATIONS[backbone])
    base = application(include_top=False, weights=None, input_shape=(size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    x = keras.layers.Dense(256, activation="relu")(x)
    x = MCDropout(0.5)(x)
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    return keras.Model(base.input, outputs, name=backbone)


def interleaved_medians(calls: dict, repeats: int) -> dict:
    """Median milliseconds of each call, timed in turn (ABCABC...) after one warm-up each.

    Interleaving makes background load hit every variant alike, so ratios stay fair.
    """
    for call in calls.values():
        call()  # the first invoke allocates and packs weights
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def bench(backbone: str, passes: int, threads: int, repeats: int, size: int, folder: Path) -> dict:
    import tfuq
    from tfuq.conversion.convert import convert

    model = build(backbone, size, classes=100)
    calibration = np.random.default_rng(0).integers(0, 256, (16, size, size, 3), dtype=np.uint8)
    image = calibration[0]
    row = {"backbone": backbone, "passes": passes, "threads": threads, "input": size}
    calls = {}
    for mode in ("deterministic", "masked", "in-graph"):
        print(f"[{backbone}] converting {mode}", file=sys.stderr, flush=True)
        path = folder / f"{backbone}_{mode}.tflite"
        convert(model, calibration, passes=passes, mode=mode, calibration_samples=16, check_samples=0).save(path)
        row[f"{mode}_bytes"] = path.stat().st_size
        runtime = tfuq.load(path, threads=threads)
        if mode == "in-graph":
            runtime.run(image, seed=0)  # patches the seed once, as a run does
            feed = {runtime.config.input.name: image[None]}
            calls["separate"] = lambda r=runtime, f=feed: [r.signature_runner(**f) for _ in range(passes)]
        else:
            masks = runtime.masks(0) if mode == "masked" else {}
            calls[mode] = lambda r=runtime, m=masks: r.run_with_masks(image, m)
    print(f"[{backbone}] timing", file=sys.stderr, flush=True)
    for name, value in interleaved_medians(calls, repeats).items():
        row[f"{name}_ms"] = value
    row["one_invoke_ratio"] = row["masked_ms"] / row["deterministic_ms"]
    row["separate_ratio"] = row["separate_ms"] / row["deterministic_ms"]
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["resnet50", "efficientnetb0"], choices=sorted(APPLICATIONS))
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    import ai_edge_litert
    import tensorflow as tf

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"TensorFlow {tf.__version__}, ai-edge-litert {getattr(ai_edge_litert, '__version__', '?')}; "
          f"{args.size}x{args.size}, int8, T={args.passes}, {args.threads} threads, median of {args.repeats}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for backbone in args.backbones:
            rows.append(bench(backbone, args.passes, args.threads, args.repeats, args.size, Path(folder)))
    print(f"{'backbone':<16}{'deterministic':>15}{'one-invoke MC':>15}{'ratio':>8}{'separate':>12}{'ratio':>8}  goal (<=1.05x)")
    for r in rows:
        verdict = "met" if r["one_invoke_ratio"] <= 1.05 else "MISSED"
        print(f"{r['backbone']:<16}{r['deterministic_ms']:>12.1f} ms{r['masked_ms']:>12.1f} ms{r['one_invoke_ratio']:>7.2f}x"
              f"{r['separate_ms']:>9.0f} ms{r['separate_ratio']:>7.1f}x  {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
