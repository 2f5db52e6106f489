"""The tfuq benchmark suite: latency, size, host cost, memory and accuracy parity, one table.

For each backbone at its usual input size (small_cnn 32, the ImageNet ones 224; random
backbone weights, since nothing is downloaded) with a 10-class head trained on the offline
default data (scikit-learn's 8x8 digits, upsampled to RGB at the model's input size):

- latency: deterministic int8 pass; one-invoke MC at T = 10, 30, 100; the seed paper's
  separate passes (in-graph model invoked T times) at the same T; 1 and 2 threads;
  ai-edge-litert here, and tflite-runtime in the Raspberry Pi venv (.venv-pi, made by
  .ci/pi_env.sh) as a subprocess when that venv exists;
- size: float TFLite vs int8 TFLite flatbuffer;
- host cost: mask generation per run and aggregation + decision per image (T=30, C=100);
- memory: peak resident memory of a `tfuq predict` process on one image;
- accuracy parity: float Keras vs int8 TFLite on held-out digits.

Each timing is the median of --repeats interleaved runs (ratios come from the same run);
machine, load and versions are printed with the numbers. Goals: one-invoke MC at T=30 within
1.05x of the deterministic pass; int8 at most 0.27x the float size; host cost under 1 ms per
image at T=30, C=100. A benchmark, not a timed test: nothing here fails on a slow machine.

    python benchmarks/run_all.py                      # everything (~30-60 min on 2 cores)
    python benchmarks/run_all.py --quick              # small_cnn only, for CI (< 2 min)
    python benchmarks/run_all.py --backbones small_cnn mobilenetv3small --json out.json
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from bench_one_invoke import interleaved_medians  # noqa: E402

BACKBONES = ("small_cnn", "mobilenetv3small", "efficientnetb0", "resnet50")
PASSES = (10, 30, 100)
THREADS = (1, 2)
CLASSES = 10
GOAL_ONE_INVOKE = 1.05  # one-invoke MC at T=30 / deterministic pass
GOAL_SIZE = 0.27  # int8 / float TFLite size
GOAL_HOST_MS = 1.0  # masks + aggregation + decision per image at T=30, C=100
HOST_PASSES, HOST_CLASSES = 30, 100


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "system": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


# -- data and models (TensorFlow side) ---------------------------------------------------------
def digits(size: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits (1797 8x8 images, 0-16) as uint8 RGB at ``size``, nearest-neighbour."""
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = np.round(data.images * (255.0 / 16.0)).astype(np.uint8)  # (N, 8, 8)
    index = np.arange(size) * 8 // size  # nearest source row/column for each target one
    pixels = pixels[:, index][:, :, index]
    order = np.random.default_rng(0).permutation(len(pixels))
    return np.repeat(pixels[order][..., None], 3, axis=-1), data.target[order].astype(np.int64)


def train(backbone: str, size: int, x: np.ndarray, y: np.ndarray, quick: bool):
    """The backbone with a trained MC-dropout head.

    small_cnn trains end to end. The ImageNet backbones keep random weights (no download) and
    only the classifier trains, on their pooled features: the numbers below are about int8
    parity and speed, not about accuracy on digits.
    """
    import keras

    from tfuq.modeling.backbones import build_model

    keras.utils.set_random_seed(0)
    model = build_model(backbone, CLASSES, input_size=size, weights=None,
                        trainable_layers=None if backbone == "small_cnn" else 0)
    if backbone == "small_cnn":
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x.astype("float32"), y, epochs=4 if quick else 10, batch_size=32, verbose=0)
        return model
    features = keras.Model(model.input, model.get_layer("pool").output)
    pooled = features.predict(x.astype("float32"), batch_size=16, verbose=0)
    scale = float(np.std(pooled)) or 1.0  # random-weight features can be far from unit scale
    head = keras.Sequential([keras.Input(pooled.shape[1:]), keras.layers.Dropout(0.5),
                             keras.layers.Dense(CLASSES, activation="softmax")])
    head.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    head.fit(pooled / scale, y, epochs=60, batch_size=64, verbose=0)
    kernel, bias = head.layers[-1].get_weights()
    model.get_layer("classifier").set_weights([kernel / scale, bias])
    return model


def float_tflite(model) -> bytes:
    """The same network, MCDropout off, as a float32 TFLite flatbuffer (no quantization)."""
    import tensorflow as tf

    from tfuq.conversion import rewrite
    from tfuq.quiet import held_output  # the converter's chatter, held back

    with held_output():
        return tf.lite.TFLiteConverter.from_keras_model(rewrite.build_deterministic(model)).convert()


def convert_all(model, calibration: np.ndarray, folder: Path, name: str) -> tuple[dict, dict]:
    """Convert ``model`` every way the suite times; return (files, flatbuffer sizes)."""
    from tfuq.conversion.convert import convert

    files = {"masked": {}}
    sizes = {"float": len(float_tflite(model))}
    variants = [("deterministic", 1), *(("masked", count) for count in PASSES), ("in-graph", 1)]
    for mode, passes in variants:
        path = folder / f"{name}_{mode}{passes if mode == 'masked' else ''}.tflite"
        result = convert(model, calibration, passes=passes, mode=mode,
                         calibration_samples=len(calibration), check_samples=0)
        result.save(path)
        if mode == "masked":
            files["masked"][str(passes)] = str(path)
            sizes[f"masked{passes}"] = len(result.flatbuffer)
        else:
            files[mode] = str(path)
            sizes[mode] = len(result.flatbuffer)
    return files, sizes


def parity(model, files: dict, x: np.ndarray, y: np.ndarray, mc_images: int) -> dict:
    """Float Keras vs int8 TFLite on held-out images: accuracy of each and top-1 agreement."""
    import tfuq
    from tfuq.conversion import rewrite
    from tfuq.conversion.convert import self_check

    keras_probs = rewrite.build_deterministic(model).predict(x.astype("float32"), batch_size=16, verbose=0)
    deterministic = tfuq.load(files["deterministic"], threads=2).run(x)[0]
    masked_path = files["masked"]["30"]
    mc_mean = tfuq.load(masked_path, threads=2).run(x, seed=0).mean(axis=0)
    # Per (pass, image), the same masks on both sides (the converter's own self-check).
    masked_keras, _ = rewrite.build_masked(model, 30)
    check = self_check(model, masked_keras, Path(masked_path).read_bytes(), x[:mc_images], 0.0)
    return {
        "images": len(x),
        "keras_accuracy": float(np.mean(keras_probs.argmax(-1) == y)),
        "int8_accuracy": float(np.mean(deterministic.argmax(-1) == y)),
        "agreement": float(np.mean(keras_probs.argmax(-1) == deterministic.argmax(-1))),
        "int8_mc30_accuracy": float(np.mean(mc_mean.argmax(-1) == y)),
        "mc30_pass_agreement": check.pass_agreement,
        "mc30_pass_images": check.images,
        "mc30_mean_abs_diff": check.mean_abs_diff,
    }


# -- host cost (numpy only) --------------------------------------------------------------------
def host_cost(features: dict[str, int], repeats: int) -> dict:
    """Milliseconds of the host-side work around one invoke, T=30, C=100.

    Masks: one run's masks for a head of F features (Model.run draws them once per call, so
    once per image when images come one at a time). Aggregation and decision: one image,
    and per image within a batch of 256.
    """
    from tfuq.runtime import abstain, masks
    from tfuq.runtime.aggregate import aggregate

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (HOST_PASSES, 256, HOST_CLASSES))
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    probabilities = probabilities.astype(np.float32)
    single = probabilities[:, :1]
    rule = abstain.DEFAULT_RULE
    calls = {f"masks_f{size}": (lambda s=size: masks.masks_for(0, HOST_PASSES, [((s,), 0.5)]))
             for size in sorted(set(features.values()))}
    calls["aggregate_decide_1"] = lambda: abstain.decide(aggregate(single), rule)
    calls["aggregate_decide_256"] = lambda: abstain.decide(aggregate(probabilities), rule)
    medians = interleaved_medians(calls, repeats)
    medians["aggregate_decide_per_image_in_256"] = medians.pop("aggregate_decide_256") / 256
    worst = max(v for k, v in medians.items() if k.startswith("masks_f"))
    medians["per_image_worst"] = worst + medians["aggregate_decide_1"]
    return medians


# -- subprocesses: timing worker and peak memory -----------------------------------------------
def run_worker(python: str, spec: dict, folder: Path, tag: str) -> dict:
    path = folder / f"spec_{tag}.json"
    path.write_text(json.dumps(spec))
    result = subprocess.run([python, str(HERE / "time_models.py"), str(path)], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if result.returncode != 0:
        raise RuntimeError(f"timing worker ({python}) failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


# The child reports its own high-water mark: VmHWM belongs to the address space that exec
# made, while a child's ru_maxrss (wait4, getrusage) also counts the pages it shared with
# this big parent between fork and exec, about 1 GB with TensorFlow loaded.
_PREDICT_WITH_PEAK = """
import sys
from tfuq.cli.main import main
status = main(sys.argv[1:])
with open("/proc/self/status") as proc:
    peak = next(line.split()[1] for line in proc if line.startswith("VmHWM:"))
print(f"peak_rss_kb {peak}", file=sys.stderr)
sys.exit(status)
"""


def peak_rss_mb(python: str, model: str, image: str, backend: str, runs: int) -> float:
    """Median peak resident memory (MB) of `tfuq predict` on one image, over ``runs`` processes."""
    peaks = []
    for _ in range(runs):
        result = subprocess.run(
            [python, "-c", _PREDICT_WITH_PEAK, "predict", model, image, "--backend", backend,
             "--threads", "2"],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        lines = [line for line in result.stderr.splitlines() if line.startswith("peak_rss_kb ")]
        if result.returncode != 0 or not lines:
            raise RuntimeError(f"tfuq predict failed ({python}):\n{result.stderr[-2000:]}")
        peaks.append(int(lines[-1].split()[1]) / 1024)
    return statistics.median(peaks)


def pi_python(option: str | None) -> tuple[str | None, str]:
    """The Pi venv's python with tflite-runtime, or None and why not."""
    if option == "none":
        return None, "not asked (--pi-python none)"
    candidate = Path(option) if option else REPO / ".venv-pi" / "bin" / "python"
    if not candidate.exists():
        return None, f"no Pi venv at {candidate} (make it with: bash .ci/pi_env.sh)"
    probe = subprocess.run([str(candidate), "-c", "import tflite_runtime.interpreter"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return None, f"{candidate} cannot import tflite_runtime"
    return str(candidate), f"tflite-runtime timed in {candidate} (a subprocess, numpy < 2)"


# -- report ------------------------------------------------------------------------------------
def goals(report: dict) -> dict:
    one_invoke = [r["ms"]["mc30"] / r["ms"]["deterministic"] for r in report["latency"]]
    sizes = [s["int8"] / s["float"] for s in report["size"]]
    host = report["host_ms"]["per_image_worst"]
    return {
        "one_invoke_mc30_within_1.05x": {
            "met": bool(one_invoke) and max(one_invoke) <= GOAL_ONE_INVOKE,
            "met_rows": sum(r <= GOAL_ONE_INVOKE for r in one_invoke), "rows": len(one_invoke),
            "worst_ratio": max(one_invoke, default=None),
            "median_ratio": statistics.median(one_invoke) if one_invoke else None,
        },
        "int8_at_most_0.27x_float": {"met": bool(sizes) and max(sizes) <= GOAL_SIZE,
                                     "worst_ratio": max(sizes, default=None)},
        "host_under_1ms_per_image": {"met": host < GOAL_HOST_MS, "ms": host},
    }


def format_report(report: dict) -> str:
    m, v = report["machine"], report["versions"]
    lines = [
        f"# {m['date']}  {m['cpu']}, {m['cores']} cores, load average {m['load_average']} at start, "
        f"{report['load_at_end']} at end",
        "# main process: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        *(f"# {backend} timing process: " + ", ".join(f"{k} {val}" for k, val in versions.items())
          for backend, versions in report["processes"].items()),
        f"# tflite-runtime: {report['pi_note']}",
        f"# latency: median of {report['repeats']} interleaved runs per figure; ratios to the "
        "deterministic pass of the same run",
        "",
        "## Latency (ms per image)",
        "| backend | backbone | input | threads | deterministic | MC T=10 | MC T=30 | MC T=100 "
        "| separate T=10 | separate T=30 | separate T=100 | MC30/det | separate30/det |",
        "|" + " --- |" * 13,
    ]
    inputs = {s["backbone"]: s["input"] for s in report["size"]}
    for r in report["latency"]:
        ms = r["ms"]
        cells = [f"{ms['deterministic']:.2f}"] + [f"{ms[f'mc{t}']:.2f}" for t in PASSES] + [
            f"{ms[f'separate{t}']:.1f}" for t in PASSES]
        lines.append(f"| {r['backend']} | {r['backbone']} | {inputs.get(r['backbone'], '')} | {r['threads']} | "
                     + " | ".join(cells)
                     + f" | {ms['mc30'] / ms['deterministic']:.2f}x | {ms['separate30'] / ms['deterministic']:.1f}x |")
    lines += ["", "## Size (TFLite flatbuffer, MB)",
              "| backbone | float | int8 deterministic | int8 / float | int8 one-invoke T=30 |",
              "| --- | --- | --- | --- | --- |"]
    for s in report["size"]:
        lines.append(f"| {s['backbone']} | {s['float'] / 1e6:.2f} | {s['int8'] / 1e6:.2f} | "
                     f"{s['int8'] / s['float']:.3f}x | {s['masked30'] / 1e6:.2f} |")
    h = report["host_ms"]
    lines += ["", f"## Host cost (ms, T={HOST_PASSES}, C={HOST_CLASSES}, numpy {v['numpy']})",
              "| work | ms |", "| --- | --- |"]
    for key, value in h.items():
        lines.append(f"| {key} | {value:.3f} |")
    lines += ["", "## Peak resident memory of `tfuq predict` on one image (MB, one-invoke T=30 model)",
              "| backbone | backend | MB |", "| --- | --- | --- |"]
    for r in report["memory"]:
        lines.append(f"| {r['backbone']} | {r['backend']} | {r['peak_rss_mb']:.0f} |")
    lines += ["", "## Accuracy parity on held-out digits (float Keras vs int8 TFLite)",
              "| backbone | images | Keras float acc. | int8 acc. | top-1 agreement | int8 MC T=30 acc. "
              "| per-pass agreement, same masks | mean abs diff |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["accuracy"]:
        lines.append(f"| {r['backbone']} | {r['images']} | {r['keras_accuracy']:.3f} | {r['int8_accuracy']:.3f} | "
                     f"{r['agreement']:.3f} | {r['int8_mc30_accuracy']:.3f} | "
                     f"{r['mc30_pass_agreement']:.3f} ({r['mc30_pass_images']} images) | {r['mc30_mean_abs_diff']:.4f} |")
    g = report["goals"]
    one = g["one_invoke_mc30_within_1.05x"]
    lines += ["", "## Goals",
              f"- one-invoke MC at T=30 within {GOAL_ONE_INVOKE}x of one deterministic pass: "
              f"{'met' if one['met'] else 'NOT met'} (met in {one['met_rows']} of {one['rows']} rows; "
              f"median ratio {one['median_ratio']:.2f}x, worst {one['worst_ratio']:.2f}x)",
              f"- int8 at most {GOAL_SIZE}x the float size: "
              f"{'met' if g['int8_at_most_0.27x_float']['met'] else 'NOT met'} "
              f"(worst {g['int8_at_most_0.27x_float']['worst_ratio']:.3f}x)",
              f"- host cost under {GOAL_HOST_MS} ms per image at T=30, C=100: "
              f"{'met' if g['host_under_1ms_per_image']['met'] else 'NOT met'} "
              f"({g['host_under_1ms_per_image']['ms']:.3f} ms: masks for the widest head + aggregate and decide one image)"]
    return "\n".join(lines)


# -- the suite ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small_cnn only, fewer repeats (CI smoke run)")
    parser.add_argument("--backbones", nargs="+", choices=BACKBONES, help="default: all four (quick: small_cnn)")
    parser.add_argument("--repeats", type=int, help="timed runs per latency figure (default 5, quick 3)")
    parser.add_argument("--pi-python", help="python of the Pi venv (default .venv-pi/bin/python; 'none' skips)")
    parser.add_argument("--json", metavar="PATH", help="also write the full report as JSON")
    parser.add_argument("--keep", metavar="DIR", help="keep the converted models in DIR")
    args = parser.parse_args(argv)
    backbones = args.backbones or (["small_cnn"] if args.quick else list(BACKBONES))
    repeats = args.repeats or (3 if args.quick else 5)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.json and not Path(args.json).resolve().parent.is_dir():
        parser.error(f"--json: folder does not exist: {Path(args.json).parent}")
    started = time.monotonic()
    from tfuq.quiet import import_tensorflow

    import_tensorflow(log_level=3)
    import tensorflow as tf

    from tfuq.modeling.backbones import DEFAULT_INPUT_SIZE

    pi, pi_note = pi_python(args.pi_python)
    report = {
        "machine": machine(),
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "tensorflow": tf.__version__,
                     "keras": version("keras"), "ai-edge-litert": version("ai-edge-litert"),
                     "tfuq": version("tfuq")},
        "processes": {}, "pi_note": pi_note, "repeats": repeats, "quick": args.quick,
        "latency": [], "size": [], "memory": [], "accuracy": [],
    }
    log(f"benchmarks: {', '.join(backbones)}; {pi_note}")
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(args.keep or temporary)
        folder.mkdir(parents=True, exist_ok=True)
        spec = {"threads": list(THREADS), "repeats": repeats, "passes": list(PASSES), "backbones": {}}
        features, images = {}, {}
        for backbone in backbones:
            size = DEFAULT_INPUT_SIZE[backbone]
            x, y = digits(size)
            train_count = 1000 if backbone == "small_cnn" else (200 if args.quick else 500)
            test_count = 100 if args.quick else 200
            log(f"[{backbone}] training the head on {train_count} digits at {size}x{size}")
            model = train(backbone, size, x[:train_count], y[:train_count], args.quick)
            features[backbone] = int(model.get_layer("classifier").input.shape[-1])
            log(f"[{backbone}] converting: float, deterministic, one-invoke T={PASSES}, in-graph")
            files, sizes = convert_all(model, x[:32], folder, backbone)
            spec["backbones"][backbone] = files
            report["size"].append({"backbone": backbone, "input": size, "float": sizes["float"],
                                   "int8": sizes["deterministic"], "masked30": sizes["masked30"],
                                   "in-graph": sizes["in-graph"]})
            log(f"[{backbone}] accuracy parity on {test_count} held-out digits")
            test_x, test_y = x[-test_count:], y[-test_count:]
            row = parity(model, files, test_x, test_y, mc_images=min(test_count, 50))
            report["accuracy"].append({"backbone": backbone, **row})
            image = folder / f"{backbone}_image.png"
            from PIL import Image

            Image.fromarray(test_x[0]).save(image)
            images[backbone] = str(image)
        log("host cost of masks and aggregation")
        report["host_ms"] = host_cost(features, repeats=200 if not args.quick else 50)
        for backend, python in (("ai_edge_litert", sys.executable), ("tflite_runtime", pi)):
            if python is None:
                continue
            log(f"latency with {backend}")
            worker = run_worker(python, {**spec, "backend": backend}, folder, backend)
            report["latency"] += worker["rows"]
            report["processes"][backend] = worker["versions"]
            for backbone in backbones:
                log(f"[{backbone}] peak memory of tfuq predict ({backend})")
                peak = peak_rss_mb(python, spec["backbones"][backbone]["masked"]["30"], images[backbone],
                                   backend, runs=3)
                report["memory"].append({"backbone": backbone, "backend": backend, "peak_rss_mb": peak})
    report["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["seconds"] = round(time.monotonic() - started, 1)
    report["goals"] = goals(report)
    print(format_report(report))
    print(f"\n({report['seconds']:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
