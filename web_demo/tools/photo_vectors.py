"""Test-only: photo-rule cases computed with Pillow, until `tests/vectors/photos.json` lands.

    python web_demo/tools/photo_vectors.py OUT.json

writes the `tests/vectors/photos.json` format ({"rule", "cases": [{"name", "source_height",
"source_width", "source_rgba_base64", "target_height", "target_width", "expected_rgb_base64"}]})
for a few random RGBA pictures. The expected bytes come from an independent route: the rule's
integer compositing in NumPy, then Pillow itself (`Image.crop`, `Image.resize(..., Image.BILINEAR)`),
so the TypeScript resampler is checked against Pillow's C code, not against a port of it.
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


def expected(rgba: np.ndarray, target_height: int, target_width: int) -> np.ndarray:
    height, width = rgba.shape[:2]
    alpha = rgba[..., 3:].astype(np.int64)
    composite = (rgba[..., :3].astype(np.int64) * alpha + 255 * (255 - alpha) + 127) // 255
    if width * target_height > height * target_width:
        crop_h, crop_w = height, (height * target_width + target_height // 2) // target_height
        x0, y0 = (width - crop_w) // 2, 0
    else:
        crop_w, crop_h = width, (width * target_height + target_width // 2) // target_width
        x0, y0 = 0, (height - crop_h) // 2
    image = Image.fromarray(composite.astype(np.uint8), "RGB").crop((x0, y0, x0 + crop_w, y0 + crop_h))
    return np.asarray(image.resize((target_width, target_height), Image.BILINEAR))


def main(out: str) -> int:
    rng = np.random.default_rng(2026)
    cases = []
    for name, (height, width), (target_height, target_width), opaque in CASES:
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
                expected(rgba, target_height, target_width).tobytes()).decode(),
        })
    payload = {"rule": {"name": "center-crop-bilinear", "version": 1}, "cases": cases}
    with open(out, "w") as handle:
        json.dump(payload, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
