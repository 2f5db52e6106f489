"""Test-only: photo-rule cases computed with Pillow, until `tests/vectors/photos.json` (and
`photos_v2.json`) land.

    python web_demo/tools/photo_vectors.py OUT.json [--version 2]

writes the `tests/vectors/photos.json` format ({"rule", "cases": [{"name", "source_height",
"source_width", "source_rgba_base64", "target_height", "target_width", "expected_rgb_base64"}]})
for a few random RGBA pictures. The expected bytes come from an independent route: the rule's
integer compositing in NumPy, then Pillow itself (`Image.crop`, `Image.resize(..., Image.BILINEAR)`),
so the TypeScript resampler is checked against Pillow's C code, not against a port of it.
Version 2 (`--version 2`) reduces the composited image with Pillow's `Image.reduce(s)` first.
"""

from __future__ import annotations

import base64
import json
import sys

import numpy as np
from PIL import Image

CASES = [  # name, (source height, width), (target height, width), opaque
    ("downscale wide to square", (37, 61), (16, 16), False),
    ("downscale tall to square", (90, 40), (16, 16), False),
    ("upscale", (7, 9), (16, 16), False),
    ("non-square target, wide source", (50, 80), (12, 20), False),
    ("non-square target, tall source", (64, 30), (20, 12), False),
    ("same aspect, no crop", (32, 48), (16, 24), True),
    ("height already right: horizontal pass only", (16, 40), (16, 16), True),
    ("large downscale factor", (480, 640), (16, 16), False),
]


CASES_V2 = [  # step 1b: s = 2, 4, 8, edge blocks on each axis and both, n not a power of two
    ("s = 2, even sizes", (48, 64), (16, 16), False),
    ("s = 2, odd width (right edge blocks of 2 x 1)", (40, 67), (16, 16), True),
    ("s = 4, odd height (bottom edge blocks)", (70, 96), (16, 16), False),
    ("s = 8, both edges (corner of 3 x 5)", (133, 171), (16, 16), False),
    ("s = 8, tall, edges", (250, 139), (14, 10), False),
    ("s = 4, non-square target", (107, 161), (20, 30), True),
    ("s = 1: the same as version 1", (37, 61), (16, 16), False),
    ("a 3-pixel-wide photo: one edge block", (3, 3), (1, 1), False),
]


def reduction_factor(height: int, width: int, target_height: int, target_width: int) -> int:
    for s in (8, 4, 2):
        crop_h, crop_w = _crop(-(-height // s), -(-width // s), target_height, target_width)[2:]
        if crop_w >= target_width and crop_h >= target_height:
            return s
    return 1


def _crop(height: int, width: int, target_height: int, target_width: int) -> tuple[int, int, int, int]:
    if width * target_height > height * target_width:
        crop_h, crop_w = height, max(1, (height * target_width + target_height // 2) // target_height)
        return (width - crop_w) // 2, 0, crop_h, crop_w
    crop_w, crop_h = width, max(1, (width * target_height + target_width // 2) // target_width)
    return 0, (height - crop_h) // 2, crop_h, crop_w


def expected(rgba: np.ndarray, target_height: int, target_width: int, version: int = 1) -> np.ndarray:
    height, width = rgba.shape[:2]
    alpha = rgba[..., 3:].astype(np.int64)
    composite = (rgba[..., :3].astype(np.int64) * alpha + 255 * (255 - alpha) + 127) // 255
    if version == 2:
        s = reduction_factor(height, width, target_height, target_width)
        image = Image.fromarray(composite.astype(np.uint8), "RGB").reduce(s)
        x0, y0, crop_h, crop_w = _crop(image.height, image.width, target_height, target_width)
        image = image.crop((x0, y0, x0 + crop_w, y0 + crop_h))
        return np.asarray(image.resize((target_width, target_height), Image.BILINEAR))
    if width * target_height > height * target_width:
        crop_h, crop_w = height, (height * target_width + target_height // 2) // target_height
        x0, y0 = (width - crop_w) // 2, 0
    else:
        crop_w, crop_h = width, (width * target_height + target_width // 2) // target_width
        x0, y0 = 0, (height - crop_h) // 2
    image = Image.fromarray(composite.astype(np.uint8), "RGB").crop((x0, y0, x0 + crop_w, y0 + crop_h))
    return np.asarray(image.resize((target_width, target_height), Image.BILINEAR))


def main(out: str, version: int = 1) -> int:
    rng = np.random.default_rng(2026)
    cases = []
    for name, (height, width), (target_height, target_width), opaque in (CASES_V2 if version == 2 else CASES):
        rgba = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
        if opaque:
            rgba[..., 3] = 255
        else:  # include the ends of the alpha range
            rgba[0, 0, 3], rgba[0, 1, 3] = 0, 255
        cases.append({
            "name": name,
            "source_height": height,
            "source_width": width,
            "source_rgba_base64": base64.b64encode(rgba.tobytes()).decode(),
            "target_height": target_height,
            "target_width": target_width,
            "expected_rgb_base64": base64.b64encode(
                expected(rgba, target_height, target_width, version).tobytes()).decode(),
        })
    payload = {"rule": {"name": "center-crop-bilinear", "version": version}, "cases": cases}
    with open(out, "w") as handle:
        json.dump(payload, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], 2 if sys.argv[2:] == ["--version", "2"] else 1))
