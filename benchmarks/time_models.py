"""Time converted tfuq models with one interpreter package: the latency part of run_all.py.

Needs numpy and tfuq's runtime only (no TensorFlow), so run_all.py runs it both in the main
environment (ai-edge-litert) and in the Raspberry Pi environment (tflite-runtime 2.14 with
numpy < 2). For each backbone and thread count it times, interleaved in one loop so that
background load hits every variant alike (``bench_one_invoke.interleaved_medians``):

- ``deterministic``: one int8 pass, MCDropout off;
- ``mc<T>``: the masked model, all T passes in one invoke (masks drawn beforehand);
- ``separate<T>``: the seed paper's in-graph model invoked T times.

    python benchmarks/time_models.py spec.json     # prints one JSON object on stdout

The spec: ``{"backend": "ai_edge_litert", "threads": [1, 2], "repeats": 5,
"passes": [10, 30, 100], "backbones": {"small_cnn": {"deterministic": path,
"masked": {"10": path, ...}, "in-graph": path}}}``.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_one_invoke import interleaved_medians  # noqa: E402  (numpy-only at import)

import tfuq  # noqa: E402


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def time_backbone(files: dict, passes: list[int], threads: int, repeats: int, backend: str) -> dict:
    """Median milliseconds per call of every variant of one backbone, from one interleaved run."""
    deterministic = tfuq.load(files["deterministic"], threads=threads, backend=backend)
    image = np.random.default_rng(0).integers(0, 256, deterministic.input_shape, dtype=np.uint8)
    calls = {"deterministic": lambda: deterministic.run_with_masks(image, {})}
    for count in passes:
        masked = tfuq.load(files["masked"][str(count)], threads=threads, backend=backend)
        masks = masked.masks(0)
        calls[f"mc{count}"] = lambda m=masked, k=masks: m.run_with_masks(image, k)
    in_graph = tfuq.load(files["in-graph"], threads=threads, backend=backend)
    in_graph.run(image, seed=0)  # patches the seeds once, as a run does
    feed = {in_graph.config.input.name: image[None]}
    for count in passes:
        calls[f"separate{count}"] = lambda n=count: [in_graph.signature_runner(**feed) for _ in range(n)]
    return interleaved_medians(calls, repeats)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    backend = spec["backend"]
    rows = []
    for backbone, files in spec["backbones"].items():
        for threads in spec["threads"]:
            print(f"[{backend}] timing {backbone}, {threads} thread(s)", file=sys.stderr, flush=True)
            medians = time_backbone(files, spec["passes"], threads, spec["repeats"], backend)
            rows.append({"backend": backend, "backbone": backbone, "threads": threads,
                         "repeats": spec["repeats"], "ms": medians})
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "ai-edge-litert": _version("ai-edge-litert"), "tflite-runtime": _version("tflite-runtime")}
    json.dump({"versions": versions, "rows": rows}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
