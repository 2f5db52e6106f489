"""Write what the Raspberry Pi test (``tests/pi/test_pi_runtime.py``) checks against.

Runs in the main environment (TensorFlow, ai-edge-litert, numpy 2): trains the tiny test model,
converts it three ways (masked, deterministic, in-graph), runs each with ai-edge-litert for a
few fixed seeds and saves the results. The Pi environment (tflite-runtime 2.14, numpy 1.x, no
TensorFlow) then loads the same files and must reproduce these outputs.

    python tests/pi/make_fixtures.py --out /tmp/pi-fixtures

Writes into --out: ``tiny_<mode>.tflite``, ``image_<i>.png`` (at the model's input size, so
decoding changes no pixel) and ``expected.npz`` with ``images`` (uint8 ``(N, 16, 16, 3)``),
``seeds`` (decimal strings: they may not fit int64), and for each mode and seed index ``k``
``<mode>_<k>``: the float32 MC probabilities ``(passes, batch, classes)`` from
``tfuq.load(path, backend="ai_edge_litert").run(images, seed)``; plus ``versions.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests._dummies

MODES = ("masked", "deterministic", "in-graph")
# 0, small, above 2**32, and the largest seed: the uint64 arithmetic is exercised at its ends.
SEEDS = (0, 1, 2**32 + 5, 2**64 - 1)
PASSES = 8
IMAGES = 12


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder to write into (created)")
    args = parser.parse_args(argv)
    import ai_edge_litert
    import tensorflow as tf
    from PIL import Image

    import tfuq
    from tests._dummies import tiny
    from tfuq.conversion.convert import convert

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    network = tiny.trained_model()
    calibration, _ = tiny.images(128, seed=3)
    images, _ = tiny.images(IMAGES, seed=11)
    expected = {"images": images, "seeds": np.array([str(s) for s in SEEDS])}
    for mode in MODES:
        path = out / f"tiny_{mode}.tflite"
        convert(network, calibration, passes=PASSES, mode=mode, calibration_samples=96,
                check_samples=0, labels=tiny.LABELS).save(path)
        model = tfuq.load(path, backend="ai_edge_litert")
        for index, seed in enumerate(SEEDS):
            expected[f"{mode}_{index}"] = model.run(images, seed=seed)
    for index, image in enumerate(images):
        Image.fromarray(image).save(out / f"image_{index}.png")
    np.savez(out / "expected.npz", **expected)
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "ai_edge_litert": getattr(ai_edge_litert, "__version__", "unknown"),
    }
    (out / "versions.json").write_text(json.dumps(versions, indent=1))
    print(f"wrote {len(MODES)} models, {IMAGES} images and expected outputs for seeds "
          f"{', '.join(map(str, SEEDS))} to {out} ({', '.join(f'{k} {v}' for k, v in versions.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
