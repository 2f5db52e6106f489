"""One-invoke MC vs one deterministic pass, counted in CPU instructions (load-independent).

Wall-clock ratios on a shared machine move with whatever else runs (see README.md).
``valgrind --tool=callgrind`` counts the instructions the process executes instead, which
does not depend on load. Per invoke = (count with 5 invokes - count with 1 invoke) / 4, so
start-up and model loading cancel out. One thread, the same image and masks every time.

    python benchmarks/bench_instructions.py --backbones resnet50 efficientnetb0 --passes 30

Needs valgrind (Debian: apt-get install valgrind) and TensorFlow for the conversion.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from bench_one_invoke import build

WORKER = """
import sys, numpy as np, tfuq
model = tfuq.load(sys.argv[1], threads=1)
masks = model.masks(0) if model.mode == "masked" else {}
image = np.random.default_rng(0).integers(0, 256, model.input_shape, dtype=np.uint8)
for _ in range(int(sys.argv[2])):
    model.run_with_masks(image, masks)
"""


def instructions(path: Path, invokes: int) -> int:
    """Instructions executed by a worker process that loads ``path`` and invokes it."""
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/out",
             sys.executable, "-c", WORKER, str(path), str(invokes)],
            capture_output=True, text=True, check=True,
        )
    return int(re.search(r"Collected : (\d+)", result.stderr).group(1))


def per_invoke(path: Path) -> float:
    return (instructions(path, 5) - instructions(path, 1)) / 4


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["resnet50", "efficientnetb0"])
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    from tfuq.conversion.convert import convert

    print(f"# instructions per invoke (callgrind), {args.size}x{args.size}, int8, T={args.passes}, 1 thread")
    print(f"{'backbone':<16}{'deterministic':>16}{'one-invoke MC':>16}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for backbone in args.backbones:
            model = build(backbone, args.size, classes=100)
            images = np.random.default_rng(0).integers(0, 256, (16, args.size, args.size, 3), dtype=np.uint8)
            counts = {}
            for mode in ("deterministic", "masked"):
                print(f"[{backbone}] {mode}", file=sys.stderr, flush=True)
                path = Path(folder) / f"{backbone}_{mode}.tflite"
                convert(model, images, passes=args.passes, mode=mode, calibration_samples=16, check_samples=0).save(path)
                counts[mode] = per_invoke(path)
            ratio = counts["masked"] / counts["deterministic"]
            print(f"{backbone:<16}{counts['deterministic'] / 1e6:>13.1f} M{counts['masked'] / 1e6:>13.1f} M{ratio:>7.3f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
