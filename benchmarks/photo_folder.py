"""A folder of PNG photos in class subfolders, from the shared CIFAR-100 subset, for `tfuq fit`.

    python benchmarks/photo_folder.py --classes 10 --per-class 30 --out /tmp/photos10
    tfuq fit folder:/tmp/photos10 --out /tmp/fit10          # what benchmarks/README.md measured

The first ``per_class`` images of each of the first ``classes`` classes of
``../shared/data/cifar100/train_200_per_class.npz`` (in their original order), saved as
``<out>/<fine class name>/<nnn>.png``: what a user's folder of photos looks like to tfuq.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar100" / "train_200_per_class.npz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=10, help="the first N classes (default 10)")
    parser.add_argument("--per-class", type=int, default=30, help="images per class, at most 200 (default 30)")
    parser.add_argument("--out", type=Path, required=True, help="the folder to write (must not exist)")
    parser.add_argument("--source", type=Path, default=SHARED, help="the shared CIFAR-100 .npz")
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists")
    with np.load(args.source) as data:
        images, labels, names = data["x"], data["y"], [str(n) for n in data["fine_names"]]
    for label in range(args.classes):
        folder = args.out / names[label]
        folder.mkdir(parents=True)
        for number, index in enumerate(np.flatnonzero(labels == label)[: args.per_class]):
            Image.fromarray(images[index]).save(folder / f"{number:03d}.png")
    print(f"wrote {args.classes} x {args.per_class} PNG photos into {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
