"""Featureless images: what a camera sees with the lens covered, against a wall or the sky.

Outlier exposure teaches a model "none of these" from photos of other things; photos of
*nothing* are rare in such sets, and a model fine-tuned on objects answers a plain wall or a
lens cap with a confident class (before this, the paper experiment's model answered 30% of flat
colours). These images are generated, seeded, in three equal kinds:

- **flat**: one colour, uniform over RGB;
- **gradient**: a linear blend between two colours along a random direction;
- **smooth**: a random 2x2 to 4x4 grid of colours, bilinearly stretched over the image;

each with mild sensor noise (Gaussian, sigma drawn in [0, 3] grey levels per image), rounded and
clipped to uint8. Nothing here is a photo of anything, so nothing of a class is taught away.

    >>> from tfuq.data.featureless import featureless
    >>> featureless(6, (32, 32), seed=0).shape
    (6, 32, 32, 3)
"""

from __future__ import annotations

import numpy as np

from tfuq.data.common import DataError

KINDS = ("flat", "gradient", "smooth")
MAX_COUNT = 1_000_000  # a bound on memory, not a recommendation (a few hundred are plenty)
_NOISE_SIGMA = 3.0  # grey levels: the most sensor noise an image gets


def featureless(count: int, size: tuple[int, int] = (32, 32), seed: int = 0) -> np.ndarray:
    """``count`` featureless uint8 RGB images ``(count, height, width, 3)``, kinds in turn
    (flat, gradient, smooth, flat, ...); image ``i`` depends only on ``seed``, ``i`` and ``size``.

    Raises:
        DataError: ``count`` not in 1..1,000,000, or ``size`` not two positive integers.
    """
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or not 1 <= count <= MAX_COUNT:
        raise DataError(f"featureless image count must be an integer in 1..{MAX_COUNT}, got {count!r}")
    if (len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1
                              for s in size)):
        raise DataError(f"featureless image size must be (height, width) in pixels, got {size!r}")
    height, width = int(size[0]), int(size[1])
    out = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        kind = KINDS[i % len(KINDS)]
        if kind == "flat":
            image = np.broadcast_to(rng.uniform(0, 255, 3), (height, width, 3))
        elif kind == "gradient":
            image = _gradient(rng, height, width)
        else:
            image = _smooth(rng, height, width)
        noisy = image + rng.normal(0.0, rng.uniform(0, _NOISE_SIGMA), (height, width, 3))
        out[i] = np.clip(np.rint(noisy), 0, 255)
    return out


def _gradient(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    start, end = rng.uniform(0, 255, (2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:height, 0:width]
    along = x * np.cos(angle) + y * np.sin(angle)
    span = along.max() - along.min()
    t = (along - along.min()) / span if span > 0 else np.zeros_like(along, float)
    return start + t[..., None] * (end - start)


def _smooth(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    rows, cols = rng.integers(2, 5, 2)
    grid = rng.uniform(0, 255, (rows, cols, 3))
    # bilinear interpolation of the grid, its corners on the image's corners
    gy = np.linspace(0, rows - 1, height)
    gx = np.linspace(0, cols - 1, width)
    y0 = np.minimum(gy.astype(int), rows - 2)
    x0 = np.minimum(gx.astype(int), cols - 2)
    fy = (gy - y0)[:, None, None]
    fx = (gx - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy
