"""Make the page's demo model and test photos (git-ignored), reusing the Android demo's script.

    python web_demo/tools/make_demo_model.py [--out web_demo/.cache/demo]

writes ``model.tflite``, ``red.png`` and ``orange.png`` with ``android_demo/tools/demo_model.py``
(a 4-class colour classifier made by ``tfuq convert``; needs TensorFlow, about a minute), and
``yellow-wide.png``: a 300x200 picture whose top band is transparent, so the browser test also
covers the photo rule's alpha compositing and centre crop (only alpha 0 and 255: a canvas stores
pixels premultiplied, so a browser cannot return partly transparent pixels exactly); and
``rotated.jpg``, stored sideways with EXIF orientation 6, for the orientation step; and
``guarded.tflite``: the same model with an OOD guard in its rule, from ``tfuq calibrate`` on 400
labelled images of the model's training distribution (``tests/_dummies/tiny.py``, a seed it was
not trained on) at target risk 0.3: the guard on its energy score, then a max-probability
threshold within it. Skips each model that exists.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE.parent / ".cache" / "demo")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()  # the tfuq commands below run from the repository root
    args.out.mkdir(parents=True, exist_ok=True)
    if not (args.out / "model.tflite").is_file():
        subprocess.run(
            [sys.executable, str(REPO / "android_demo" / "tools" / "demo_model.py"), "--out", str(args.out)],
            check=True, cwd=REPO, stdout=subprocess.DEVNULL,
        )
    guarded = args.out / "guarded.tflite"
    if not guarded.is_file():
        sys.path.insert(0, str(REPO / "tests"))
        from _dummies import tiny

        images, labels = tiny.images(400, seed=21)
        np.savez(args.out / "calibration.npz", x=images.astype(np.uint8), y=labels)
        partial = args.out / "guarded.partial.tflite"
        partial.write_bytes((args.out / "model.tflite").read_bytes())
        calibrated = subprocess.run(
            [sys.executable, "-m", "tfuq.cli.main", "calibrate", str(partial), "--data", str(args.out / "calibration.npz"),
             "--target-risk", "0.3"],
            cwd=REPO, capture_output=True, text=True,
        )
        if calibrated.returncode != 0:
            print(f"tfuq calibrate failed:\n{calibrated.stderr[-2000:]}", file=sys.stderr)
            return 1
        partial.replace(guarded)
    rng = np.random.default_rng(13)
    pixels = np.clip(np.array([220, 200, 40]) + rng.normal(0, 25, (200, 300, 3)), 0, 255)
    alpha = np.full((200, 300, 1), 255.0)
    alpha[:30] = 0
    rgba = np.concatenate([pixels, alpha], axis=-1).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(args.out / "yellow-wide.png")
    # A JPEG stored sideways with EXIF orientation 6 (display rotated 90 degrees clockwise): the
    # top of the picture as displayed is green, the rest blue, both noisy; 120x80 stored, 80x120 displayed.
    stored = np.empty((80, 120, 3))
    stored[:] = (40, 60, 200)
    stored[:, :40] = (40, 190, 60)  # the stored left edge becomes the displayed top
    stored = np.clip(stored + rng.normal(0, 20, stored.shape), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(args.out / "rotated.jpg", quality=95, exif=exif.tobytes())
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
