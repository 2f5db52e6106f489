"""Aggregation plus decision for a batch of MC outputs, on one core.

Times ``tfuq.runtime.aggregate.aggregate`` followed by ``tfuq.runtime.abstain.decide`` (interval rule) and a
threshold decision, for 10,000 images at T=30 passes and C=100 classes by default: float32
softmax outputs ``(passes, batch, classes)`` quantized to the 1/256 steps of an int8 output,
as the runtime returns them. The process is pinned to one CPU where the OS allows it, and the
BLAS/OpenMP pools are limited to one thread. Goal: under 1 s, so it is never the bottleneck
next to inference. The CPU time is printed beside the wall time: on a shared machine the wall
time also counts the time other processes held the core.

    python benchmarks/bench_aggregate.py
    python benchmarks/bench_aggregate.py --images 10000 --passes 30 --classes 100 --repeats 5 --json -
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from tfuq.runtime import abstain  # noqa: E402
from tfuq.runtime.aggregate import aggregate  # noqa: E402

GOAL_SECONDS = 1.0


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity on this OS)"


def mc_outputs(passes: int, images: int, classes: int, seed: int = 0) -> np.ndarray:
    """Softmax outputs that vary between passes, rounded to int8 output steps (1/256)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (images, classes)).astype(np.float32)
    probabilities = np.empty((passes, images, classes), dtype=np.float32)
    for t in range(passes):  # one pass at a time keeps the set-up's memory low
        noisy = logits + rng.normal(0, 1, (images, classes)).astype(np.float32)
        noisy -= noisy.max(axis=1, keepdims=True)
        np.exp(noisy, out=noisy)
        noisy /= noisy.sum(axis=1, keepdims=True)
        probabilities[t] = np.round(noisy * 256) / 256
    return probabilities


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs after one warm-up")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    pinned = pin_to_one_core()
    probabilities = mc_outputs(args.passes, args.images, args.classes)
    interval = abstain.interval_rule(1.0)
    threshold = abstain.threshold_rule("mutual_information", 0.1)

    def once() -> tuple[float, float]:
        start, cpu_start = time.perf_counter(), time.process_time()
        summary = aggregate(probabilities, conf_factor=1.0)
        abstain.decide(summary, interval)
        abstain.decide(summary, threshold)
        return time.perf_counter() - start, time.process_time() - cpu_start

    first = once()[0]  # includes first-touch memory costs
    runs = [once() for _ in range(args.repeats)]
    timings = [wall for wall, _ in runs]
    median = statistics.median(timings)
    # CPU time of this process: what the work costs one core even when others share it.
    cpu = statistics.median(cpu for _, cpu in runs)
    result = {
        "images": args.images,
        "passes": args.passes,
        "classes": args.classes,
        "first_seconds": first,
        "median_seconds": median,
        "min_seconds": min(timings),
        "cpu_seconds": cpu,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "images_per_second": args.images / median,
        "goal_seconds": GOAL_SECONDS,
        "meets_goal": median < GOAL_SECONDS,
        "cpu": platform.processor() or platform.machine(),
        "numpy": np.__version__,
        "note": pinned,
    }
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(
        f"aggregate + decide, {args.images} images x {args.passes} passes x {args.classes} "
        f"classes, one core ({pinned}{load}): median {median:.3f} s wall, {cpu:.3f} s CPU over "
        f"{args.repeats} runs (first {first:.3f} s, min {min(timings):.3f} s), "
        f"{args.images / median:,.0f} images/s; goal < {GOAL_SECONDS:g} s: "
        f"{'met' if median < GOAL_SECONDS else 'NOT met'}"
    )
    if args.json:
        text = json.dumps(result, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as out:
                out.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
