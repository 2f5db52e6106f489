"""Peak memory of the photo rule per pixel, for the formats a hostile upload can make large.

For each format (semi-transparent RGBA PNG, 16-bit greyscale PNG, mode ``I`` TIFF, lossless
WebP, GIF) a ``SIDE x SIDE`` photo is written once; then, in a fresh process per photo,
``tfuq.runtime.photo.read(path, (32, 32))`` runs after a warm-up, and the peak resident memory
it added (``VmHWM`` after ``/proc/self/clear_refs``) is reported in bytes per pixel, with the
wall time. The goal, stated in ``tfuq/runtime/photo.py``: at most 16 bytes per pixel, so the
largest photo allowed (2**26 pixels) needs at most 1 GiB. ``--compare DIR`` runs the same
photos against another checkout of tfuq (e.g. the one before a change) for the ratio.
Linux only (``/proc``).

    python benchmarks/bench_photo_memory.py
    python benchmarks/bench_photo_memory.py --side 8192 --compare /path/to/old/checkout --json -
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GOAL_BYTES_PER_PIXEL = 16

CHILD = """
import json, sys, time
from tfuq.runtime import photo

def kib(key):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key))

photo.read(sys.argv[2], (8, 8))  # warm-up: Pillow's plugins, numpy
base = kib("VmRSS")
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # VmHWM := VmRSS
start = time.perf_counter()
photo.read(sys.argv[1], (32, 32))
print(json.dumps({"peak_bytes": (kib("VmHWM") - base) * 1024, "seconds": time.perf_counter() - start}))
"""


def write_photos(folder: Path, side: int) -> dict[str, Path]:
    from PIL import Image

    photos = {}
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 3] = 200, np.arange(side, dtype=np.uint8)[None, :], 128
    photos["PNG RGBA, alpha 128"] = folder / "rgba.png"
    Image.fromarray(rgba).save(photos["PNG RGBA, alpha 128"])
    del rgba
    photos["PNG 16-bit grey"] = folder / "grey16.png"
    Image.fromarray(np.full((side, side), 40000, np.uint16)).save(photos["PNG 16-bit grey"])
    photos["TIFF mode I"] = folder / "int32.tif"
    Image.fromarray(np.full((side, side), 70000, np.int32), mode="I").save(
        photos["TIFF mode I"], compression="tiff_deflate")
    photos["WebP lossless RGB"] = folder / "rgb.webp"
    Image.fromarray(np.full((side, side, 3), 90, np.uint8)).save(photos["WebP lossless RGB"], lossless=True)
    photos["GIF palette"] = folder / "palette.gif"
    Image.fromarray(np.full((side, side), 3, np.uint8), mode="P").save(photos["GIF palette"])
    return photos


def measure(checkout: Path, photo: Path, small: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", CHILD, str(photo), str(small)], capture_output=True,
                            text=True, env=env, cwd=checkout, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=8192, help="photo side in pixels (default 8192)")
    parser.add_argument("--compare", type=Path, metavar="DIR", help="another tfuq checkout to measure too")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON ('-' for stdout)")
    args = parser.parse_args(argv)
    from PIL import Image

    pixels = args.side * args.side
    rows = []
    with tempfile.TemporaryDirectory(prefix="tfuq-photo-memory-") as scratch:
        folder = Path(scratch)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "small.png")
        for name, path in write_photos(folder, args.side).items():
            row = {"format": name, "file_bytes": path.stat().st_size}
            for label, checkout in (("this", REPO), ("compare", args.compare)):
                if checkout is None:
                    continue
                got = measure(checkout, path, folder / "small.png")
                row[label] = {"bytes_per_pixel": round(got["peak_bytes"] / pixels, 1),
                              "seconds": round(got["seconds"], 2)}
            rows.append(row)
    print(f"photo.read of a {args.side}x{args.side} photo ({pixels:,} pixels): peak resident memory added, "
          f"bytes per pixel (goal <= {GOAL_BYTES_PER_PIXEL})")
    for row in rows:
        line = f"  {row['format']:<22} {row['file_bytes']:>9,} B file: {row['this']['bytes_per_pixel']:5.1f} B/px " \
               f"{row['this']['seconds']:6.2f} s"
        if "compare" in row:
            line += (f" | compared: {row['compare']['bytes_per_pixel']:5.1f} B/px {row['compare']['seconds']:6.2f} s"
                     f" ({row['compare']['bytes_per_pixel'] / row['this']['bytes_per_pixel']:.1f}x the memory)")
        print(line)
    worst = max(row["this"]["bytes_per_pixel"] for row in rows)
    print(f"worst {worst} B/px: {'meets' if worst <= GOAL_BYTES_PER_PIXEL else 'MISSES'} the goal")
    if args.json:
        text = json.dumps({"side": args.side, "goal_bytes_per_pixel": GOAL_BYTES_PER_PIXEL, "rows": rows}, indent=1)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0 if worst <= GOAL_BYTES_PER_PIXEL else 1


if __name__ == "__main__":
    sys.exit(main())
