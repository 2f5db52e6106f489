"""Make the small demo model and two photos that the README's result-screen picture uses.

    python android_demo/tools/demo_model.py --out /tmp/tfuq-demo

writes ``model.tflite`` (a 4-class colour classifier from ``tfuq.conversion.convert``, 30 passes, the
default interval rule) and ``red.png`` / ``orange.png`` (photos of a red and an orange patch;
orange lies between the model's red and yellow, so it should abstain). Needs TensorFlow.
The model can also go into the app: ``./gradlew installDebug -PtfuqModel=/tmp/tfuq-demo/model.tflite``.

The network and its training images are the repository's test fixture
(``tests/_dummies/tiny.py``), reused rather than copied so the demo cannot drift from it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def photo(colour: tuple[int, int, int], size: int, seed: int) -> np.ndarray:
    """A ``size``-pixel square of ``colour`` with sensor-like noise, uint8 RGB."""
    rng = np.random.default_rng(seed)
    pixels = np.array(colour, dtype=np.float64)[None, None, :] + rng.normal(0, 30, (size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder to write into")
    parser.add_argument(
        "--passes", type=int, default=30, help="MC passes of the model (default 30)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "tests"))
    from _dummies import tiny
    from PIL import Image

    from tfuq.conversion.convert import convert

    network = tiny.trained_model()
    images, _ = tiny.images(160, seed=3)
    result = convert(
        network,
        images,
        passes=args.passes,
        calibration_samples=120,
        check_samples=40,
        labels=tiny.LABELS,
    )
    if result.check is not None and not result.check.passed:
        print(f"self-check failed: agreement {result.check.agreement:.3f}", file=sys.stderr)
        return 1
    result.save(args.out / "model.tflite")
    Image.fromarray(photo((200, 40, 40), 480, seed=11)).save(args.out / "red.png")
    Image.fromarray(photo((200, 120, 40), 480, seed=12)).save(args.out / "orange.png")
    print(f"wrote {args.out / 'model.tflite'}, red.png, orange.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
