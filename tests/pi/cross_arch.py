"""Compare the same models on two architectures (x86-64 and emulated arm64), for `.ci/arm64.sh`.

``dump`` runs in one environment (a Pi venv: numpy 1, tflite-runtime, ai-edge-litert) and
writes every model's MC pass outputs for every photo with each interpreter package;
``compare`` reads two dumps (and the ``tfuq predict --json`` lines of each side) and says how
far apart they are, in int8 output steps::

    python tests/pi/cross_arch.py dump --out x86.npz --models a.tflite b.tflite \\
        --backends tflite_runtime ai_edge_litert --photos p1.png p2.jpg
    python tests/pi/cross_arch.py compare x86.npz arm64.npz [--predict NAME X86.jsonl ARM.jsonl]

``compare`` exits 1 when a decision differs between the architectures, or an interpreter
package's outputs differ by more than the bound below.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

# How far one package's outputs on arm64 (emulated Cortex-A72) may be from its outputs on
# x86-64: int8 output steps, and share of the values. Measured by .ci/arm64.sh (2026-12-05,
# demo model and the three test models, 54 photos; docs/raspberry_pi.md): tflite-runtime 2.14
# at most 3 steps on 0.17% of a model's values, ai-edge-litert 2.3 at most 1 step on 0.14%.
# Not bit for bit: their arm64 int8 kernels (NEON) round a few values otherwise than on x86-64.
MAX_STEPS = {"tflite_runtime": 4, "ai_edge_litert": 2}
MAX_SHARE = 0.005
# Fields of a `tfuq predict --json` record that must agree; latencies and paths may not.
DECISION_FIELDS = ("accept", "label", "predicted", "predicted_label", "probability", "score",
                   "uncertainty", "why")


def dump(out: Path, models: list[Path], backends: list[str], photos: list[Path], seed: int) -> None:
    import tfuq
    from tfuq.runtime import photo

    arrays: dict[str, np.ndarray] = {"machine": np.array(platform.machine())}
    for model_path in models:
        for backend in backends:
            model = tfuq.load(model_path, threads=1, backend=backend)
            size = model.input_shape[:2]
            passes = np.stack([model.run(photo.read(path, size), seed=seed)[:, 0] for path in photos])
            key = f"{model_path.stem}|{backend}"
            arrays[key] = passes  # (photos, passes, classes)
            arrays[f"{model_path.stem}|step"] = np.float64(model._output_detail["quantization"][0])
            arrays[f"{model_path.stem}|mode"] = np.array(model.mode)
    np.savez(out, **arrays)
    print(f"{platform.machine()}: {len(models)} models x {len(backends)} packages x {len(photos)} photos -> {out}")


def _difference(a: np.ndarray, b: np.ndarray, step: float) -> tuple[int, int, float]:
    """(values that differ, values, largest difference in output steps)."""
    steps = np.abs(a.astype(np.float64) - b.astype(np.float64)) / step
    return int(np.count_nonzero(steps)), steps.size, float(steps.max(initial=0.0))


def _describe(different: int, total: int, steps: float) -> str:
    if different == 0:
        return f"0 of {total} values differ (bit-identical)"
    return f"{different} of {total} values differ ({different / total:.2%}), by at most {steps:.0f} int8 step{'s' if steps > 1 else ''}"


def compare(x86_path: Path, arm_path: Path, predictions: list[tuple[str, Path, Path]]) -> int:
    x86, arm = dict(np.load(x86_path)), dict(np.load(arm_path))
    failures = []
    models = sorted({key.split("|")[0] for key in x86 if "|" in key})
    for name in models:
        step = float(x86[f"{name}|step"])
        backends = sorted(key.split("|")[1] for key in x86 if key.startswith(name + "|")
                          and key.split("|")[1] not in ("step", "mode"))
        shape = x86[f"{name}|{backends[0]}"].shape
        print(f"{name} ({x86[f'{name}|mode']}, {shape[1]} passes, {shape[2]} classes, {shape[0]} photos):")
        for backend in backends:
            different, total, steps = _difference(x86[f"{name}|{backend}"], arm[f"{name}|{backend}"], step)
            print(f"  {backend}, arm64 vs x86-64: {_describe(different, total, steps)}")
            if steps > MAX_STEPS[backend] or different > MAX_SHARE * total:
                failures.append(f"{name}: {backend} differs across architectures by more than "
                                f"{MAX_STEPS[backend]} steps or on more than {MAX_SHARE:.1%} of the values")
        if {"tflite_runtime", "ai_edge_litert"} <= set(backends):
            for side, data in (("x86-64", x86), ("arm64", arm)):
                result = _difference(data[f"{name}|tflite_runtime"], data[f"{name}|ai_edge_litert"], step)
                print(f"  tflite_runtime vs ai_edge_litert on {side}: {_describe(*result)}")
    for name, x86_lines, arm_lines in predictions:
        a = [json.loads(line) for line in x86_lines.read_text().splitlines()]
        b = [json.loads(line) for line in arm_lines.read_text().splitlines()]
        if len(a) != len(b) or not a:
            failures.append(f"tfuq predict {name}: {len(a)} records on x86-64, {len(b)} on arm64")
            continue
        fields = [f for f in DECISION_FIELDS if f in a[0]]
        same = [all(x[f] == y[f] for f in fields) for x, y in zip(a, b, strict=True)]
        decisions = [(x["accept"], x["predicted"]) == (y["accept"], y["predicted"]) for x, y in zip(a, b, strict=True)]
        accepted = sum(x["accept"] for x in a)
        print(f"tfuq predict {name}: {sum(decisions)} of {len(a)} decisions equal ({accepted} predicted on x86-64), "
              f"{sum(same)} of {len(a)} records equal in {', '.join(fields)}")
        if not all(decisions):
            failures.append(f"tfuq predict {name}: {len(a) - sum(decisions)} decisions differ")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    dumping = commands.add_parser("dump")
    dumping.add_argument("--out", type=Path, required=True)
    dumping.add_argument("--models", type=Path, nargs="+", required=True)
    dumping.add_argument("--backends", nargs="+", required=True)
    dumping.add_argument("--photos", type=Path, nargs="+", required=True)
    dumping.add_argument("--seed", type=int, default=0)
    comparing = commands.add_parser("compare")
    comparing.add_argument("x86", type=Path)
    comparing.add_argument("arm64", type=Path)
    comparing.add_argument("--predict", nargs=3, action="append", default=[], metavar=("NAME", "X86", "ARM64"),
                           help="`tfuq predict --json` output of the same command on each side")
    args = parser.parse_args(argv)
    if args.command == "dump":
        dump(args.out, args.models, args.backends, args.photos, args.seed)
        return 0
    return compare(args.x86, args.arm64, [(n, Path(a), Path(b)) for n, a, b in args.predict])


if __name__ == "__main__":
    sys.exit(main())
