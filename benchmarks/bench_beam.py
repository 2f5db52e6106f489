"""Batch inference on Apache Beam against one process: images per second and the cost per image.

Builds small_cnn (32x32, 10 classes, random weights: speed only) or another backbone, converts
it to the one-invoke int8 model at T=30, writes random images as four ``.npz`` shards, and
times, at two data sizes:

- ``one process``: :func:`tfuq.evaluation.evaluate` on the model already loaded (what
  ``tfuq evaluate`` does after start-up);
- the DirectRunner: in memory (one worker in this process), and as 1 and 2 worker processes
  (``--direct_running_mode=multi_processing``), each from pipeline construction to the
  records written and merged into the report (:func:`tfuq.beam.pipeline.run` + ``merge``).

From the two sizes: a fixed cost (start-up, the intercept) and a cost per image (the slope);
the Beam overhead per image is a runner's slope minus the one-process slope. Both in wall-clock
time (the best of --repeats runs) and in CPU time (user + system of this process and of the
worker processes it waited for), which a loaded machine inflates much less. Prints Markdown
tables and, with --json, the raw times. A benchmark, not a test.

    python benchmarks/bench_beam.py                        # small_cnn, 400 and 2,000 images
    python benchmarks/bench_beam.py --backbone efficientnetb0 --sizes 40 200
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RUNNERS = {
    "DirectRunner, in memory (1 worker)": ["--direct_num_workers=1", "--direct_running_mode=in_memory"],
    "DirectRunner, 1 process": ["--direct_num_workers=1", "--direct_running_mode=multi_processing"],
    "DirectRunner, 2 processes": ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
}


def make_model(backbone: str, size: int, folder: Path, passes: int) -> str:
    import keras

    from tfuq.conversion.convert import convert
    from tfuq.modeling.backbones import build_model

    keras.utils.set_random_seed(0)
    model = build_model(backbone, 10, input_size=size, weights=None)
    calibration = np.random.default_rng(0).integers(0, 256, (32, size, size, 3), dtype=np.uint8)
    path = folder / f"{backbone}.tflite"
    convert(model, calibration, passes=passes, calibration_samples=16, check_samples=0).save(path)
    return str(path)


def shards(folder: Path, count: int, size: int) -> Path:
    rng = np.random.default_rng(count)
    images = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, count)
    target = folder / f"data{count}"
    target.mkdir()
    for index, part in enumerate(np.array_split(np.arange(count), 4)):
        np.savez(target / f"part-{index}.npz", x=images[part], y=labels[part])
    np.savez(folder / f"all{count}.npz", x=images, y=labels)
    return target


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_one_process(model_path: str, folder: Path, count: int, threads: int) -> tuple[float, float]:
    from tfuq import evaluation, runtime

    with np.load(folder / f"all{count}.npz") as data:
        images, labels = data["x"], data["y"]
    model = runtime.load(model_path, threads=threads)
    start, cpu = time.perf_counter(), _cpu()
    evaluation.evaluate(model, images, labels, seed=0)
    return time.perf_counter() - start, _cpu() - cpu


def time_beam(model_path: str, data: Path, flags: list[str], threads: int,
              out: Path) -> tuple[float, float]:
    from tfuq import runtime
    from tfuq.beam import pipeline

    model = runtime.load(model_path)
    shutil.rmtree(out, ignore_errors=True)
    start, cpu = time.perf_counter(), _cpu()
    sources = pipeline.sources(f"npz:{data}/part-*.npz", model.input_shape[:2])
    pipeline.run(model_path, sources, str(out), options=pipeline.pipeline_options("direct", flags),
                 rule=model.config.decision_rule(), threads=threads)
    records = pipeline.read_records(out)
    pipeline.merge(records, model.config.decision_rule(), passes=model.passes)
    return time.perf_counter() - start, _cpu() - cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="small_cnn")
    parser.add_argument("--size", type=int, help="input size (default 32 for small_cnn, else 224)")
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--sizes", type=int, nargs=2, default=(400, 2000), metavar=("SMALL", "LARGE"))
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads per worker")
    parser.add_argument("--repeats", type=int, default=2, help="runs per figure (best is kept)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    size = args.size or (32 if args.backbone == "small_cnn" else 224)
    folder = Path(tempfile.mkdtemp(prefix="bench_beam_"))
    try:
        model_path = make_model(args.backbone, size, folder, args.passes)
        data = {count: shards(folder, count, size) for count in args.sizes}
        load_before = os.getloadavg()
        def best(run) -> tuple[float, float]:
            results = [run() for _ in range(args.repeats)]
            return min(r[0] for r in results), min(r[1] for r in results)

        times = {"one process": {c: best(lambda c=c: time_one_process(
            model_path, folder, c, args.threads)) for c in args.sizes}}
        for name, flags in RUNNERS.items():
            times[name] = {c: best(lambda c=c, flags=flags: time_beam(
                model_path, data[c], flags, args.threads, folder / "out")) for c in args.sizes}
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    small, large = args.sizes
    print(f"{args.backbone} {size}x{size}, T={args.passes}, {args.threads} interpreter thread(s) "
          f"per worker, best of {args.repeats}; load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after")
    summary = {}
    for kind, column in (("wall-clock", 0), ("CPU", 1)):
        pick = {name: {c: t[column] for c, t in by_count.items()} for name, by_count in times.items()}
        base = (pick["one process"][large] - pick["one process"][small]) / (large - small)
        print(f"\n{kind} time\n")
        print(f"| how | {small} images (s) | {large} images (s) | images/s at {large} | "
              "fixed cost (s) | ms per image | Beam overhead per image (ms) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name, by_count in pick.items():
            slope = (by_count[large] - by_count[small]) / (large - small)
            fixed = by_count[small] - slope * small
            overhead = "" if name == "one process" else f"{(slope - base) * 1e3:.2f}"
            print(f"| {name} | {by_count[small]:.2f} | {by_count[large]:.2f} | "
                  f"{large / by_count[large]:.0f} | {fixed:.2f} | {slope * 1e3:.2f} | {overhead} |")
            summary.setdefault(name, {})[kind] = {
                "seconds": by_count, "per_image_ms": slope * 1e3, "fixed_s": fixed}
    if args.json:
        Path(args.json).write_text(json.dumps({"backbone": args.backbone, "size": size,
                                               "passes": args.passes, "load": [load_before, load_after],
                                               "results": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
