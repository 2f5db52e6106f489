"""The 15 CIFAR-10-C / CIFAR-100-C corruptions at severities 1-5, seeded (numpy, scipy, PIL).

Reference: D. Hendrycks and T. Dietterich, "Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations", ICLR 2019. The definitions and the severity parameters for
32x32 images are those of ``ImageNet-C/create_c/make_cifar_c.py`` in
https://github.com/hendrycks/robustness (read at commit ca360085), the script that produced the
published CIFAR-10-C and CIFAR-100-C files. Every parameter table below was checked against it.

Where this module departs from that script, and why:

* **Random numbers.** The script draws from NumPy's global state. Here image ``i`` of a call
  gets its own ``numpy.random.Generator`` seeded by ``(seed, corruption, dataset index of the
  image)``, so a result depends only on those numbers and the severity: the same seed gives
  identical images, on any machine, in any batch split. The severity is deliberately not in the seed: the five
  severities of one image share their random draws (same noise pattern, blur angle, fog map),
  so they differ only by the published parameters, and curves over severity carry less noise.
  Each (image, severity) still has the script's distribution; the draws are not those of the
  published files.
* **motion_blur** (and the streaks of **snow**) used ImageMagick through Wand. Here the
  ImageMagick ``MotionBlurImage`` kernel is rebuilt with NumPy: a one-sided Gaussian of
  ``2 * ceil(radius) + 1`` taps, ``exp(-i^2 / (2 sigma^2))`` normalised, tap ``i`` reading the
  pixel ``(round(i sin a), round(i cos a))`` (row, column) away, edge pixels repeated beyond the
  border, and the result quantised as ImageMagick Q16 and its 8-bit PNG did (pixels x 257,
  rounded, integer-divided by 257). On 40 CIFAR images, 6 angles and 4 (radius, sigma) pairs this
  matched ImageMagick 6.9.11 Q16 through Wand on every pixel.
* **frost** blends a random crop of a photograph of frost into the image. The photographs
  (``frost1.png`` ... ``frost6.jpg``) ship as package data in the PyPI wheel
  ``imagecorruptions`` 1.1.2; when that package is installed (``pip install --no-deps
  imagecorruptions==1.1.2``: only its data files are read, so OpenCV and its other
  dependencies are not needed), they are read from its folder without importing it, and the
  frost is the script's: one of the first five files (the script draws ``randint(5)``, so
  ``frost6.jpg`` is never used), alpha dropped as ``cv2.imread`` does, shrunk by 0.2 with
  ``cv2.resize``'s bilinear rule (at that factor every output pixel is the source pixel
  ``5 i + 2``, exactly), and a random crop of the image's size. Without the package a
  **procedural substitute** is used (see :func:`frost_texture`) with a one-time warning: the
  blend and its severity weights are the published ones, but the texture is not the
  photographs, so those frost numbers are *not* comparable with the official CIFAR-100-C
  frost. :func:`frost_source` says which one is in use.
* **OpenCV** calls of the script (``GaussianBlur``, ``filter2D``, ``getAffineTransform``,
  ``warpAffine``, ``cvtColor``) are replaced by their definitions with ``scipy.ndimage``
  (OpenCV's default border ``BORDER_REFLECT_101`` is scipy's ``mode="mirror"``), and
  scikit-image's ``gaussian``, ``random_noise(mode="s&p")``, ``rgb2hsv``/``hsv2rgb`` by the same
  arithmetic in NumPy/SciPy. OpenCV's warp uses 1/32-pixel fixed-point weights; SciPy's are exact.
* **glass_blur** kept the script's behaviour: its "swap" ``x[h, w], x[h', w'] = x[h', w'], x[h, w]``
  on NumPy views copies pixel ``(h', w')`` into ``(h, w)`` and leaves ``(h', w')`` as it was.
  Because the offsets are in ``{-1, 0}`` and the loop walks from the bottom-right, every copy
  reads a pixel not yet written, so one pass is an exact vectorised gather.
* Outputs are converted with ``np.uint8`` (truncation), as the script did; JPEG and pixelate go
  through PIL as in the script.

How it was checked: the script's functions were run (with OpenCV, scikit-image and Wand on
ImageMagick 6.9.11) on 40 CIFAR-100 test images at every severity, feeding both sides the same
random draws. Outputs are identical for gaussian, shot, glass, motion, zoom, fog, brightness,
contrast, pixelate and jpeg; snow differs by one level on 6 of 614,400 values, elastic on 4
(OpenCV's fixed-point warp) and defocus on 0.8% at severity 1, almost none at the others
(OpenCV filters its 17x17 kernel through a DFT). Impulse noise matches in distribution only, as
scikit-image draws from its own generator. Frost was not run through the
script (its shrink rule is exact by construction, see :func:`_shrink_like_cv2`).

What the published parameters do, reproduced here and not "fixed": for the same image and
draws, motion_blur severities 3 and 4 (radius 6 and 8, sigma 2) give identical images, since
the extra taps weigh under 1e-9; glass_blur severities 1-3 (one shuffle pass) are not ordered
among themselves, a larger sigma smoothing the shuffle away, and 4-5 (two passes) change images
much more; frost severities 3 and 4 share the frost weight 0.4 and differ only by the image
weight (0.9, 0.85); elastic_transform changes images *less* as severity rises, its affine jitter
shrinking from 2.56 to 0.96 pixels. The other twelve change images more at every step
(1 - SSIM against the clean image, tests/test_corruptions.py).

The severity parameters are for 32x32 images. Other sizes work, with the same parameters in
pixels, so larger images are corrupted less in relative terms (the script assumed square
images; elastic's affine points use the true centre ``(W // 2, H // 2)``).

Example::

    >>> import numpy as np
    >>> from tfuq.corruptions import corrupt
    >>> images = np.full((2, 32, 32, 3), 128, np.uint8)
    >>> corrupt(images, "contrast", 5).shape
    (2, 32, 32, 3)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tfuq.data.common import DataError, check_images

__all__ = [
    "CORRUPTIONS",
    "SEVERITIES",
    "config_name",
    "corrupt",
    "frost_source",
    "frost_texture",
    "parse_config_name",
]

# The order of the published script's dictionary, which is also the order of CIFAR-C tables.
CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# Names tfds uses for the same corruptions in ``cifar10_corrupted``.
_ALIASES = {"frosted_glass_blur": "glass_blur", "elastic": "elastic_transform"}

_IMSIZE = 32  # the script's IMSIZE: elastic parameters are fractions of it

# Severity 1..5 parameters, copied from make_cifar_c.py (commit ca360085).
_PARAMS: dict[str, tuple] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    # (disk radius, alias blur sigma)
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    # (sigma, max shift, iterations)
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    # (radius, sigma)
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    # np.arange(1, stop, 0.01): with floating point these hold 7, 12, 16, 21, 26 factors
    "zoom_blur": (1.06, 1.11, 1.16, 1.21, 1.26),
    # (noise mean, noise std, zoom, threshold, blur radius, blur sigma, image weight)
    "snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    # (image weight, frost weight)
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    # (fog strength, wibble decay)
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    # (alpha, sigma, affine jitter), in pixels
    "elastic_transform": (
        (_IMSIZE * 0, _IMSIZE * 0, _IMSIZE * 0.08),
        (_IMSIZE * 0.05, _IMSIZE * 0.2, _IMSIZE * 0.07),
        (_IMSIZE * 0.08, _IMSIZE * 0.06, _IMSIZE * 0.06),
        (_IMSIZE * 0.1, _IMSIZE * 0.04, _IMSIZE * 0.05),
        (_IMSIZE * 0.1, _IMSIZE * 0.03, _IMSIZE * 0.03),
    ),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg_compression": (80, 65, 58, 50, 40),
}


def config_name(corruption: str, severity: int) -> str:
    """``"fog", 3`` -> ``"fog_3"``, the tfds config name (checked)."""
    return f"{_check_corruption(corruption)}_{_check_severity(severity)}"


def parse_config_name(name: str) -> tuple[str, int]:
    """``"zoom_blur_5"`` -> ``("zoom_blur", 5)``; tfds' cifar10_corrupted aliases are accepted.

    Raises:
        DataError: not ``<corruption>_<severity>`` with a known corruption and severity 1-5.
    """
    corruption, _, severity = name.rpartition("_")
    if not corruption or not (severity.isascii() and severity.isdigit()) or len(severity) > 3:
        raise DataError(
            f"corruption config {name!r} is not <corruption>_<severity>, e.g. gaussian_noise_3"
        )
    return _check_corruption(corruption), _check_severity(int(severity))


def corrupt(
    images: np.ndarray,
    corruption: str,
    severity: int,
    seed: int = 0,
    index: int | np.ndarray = 0,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Apply one CIFAR-C corruption to uint8 ``(N, H, W, 3)`` images; returns the same layout.

    Image ``k`` of the batch is corrupted with a generator seeded by
    ``(seed, corruption, index + k)`` (or ``index[k]`` when ``index`` is an array), where the
    index is the image's position in the whole dataset. So a long array can be processed in
    chunks, or a subset on its own, with the same result per image as in one call; and the five
    severities of an image share their random draws.

    Args:
        images: uint8 RGB images ``(N, H, W, 3)``.
        corruption: one of :data:`CORRUPTIONS` (``frosted_glass_blur``/``elastic`` also accepted).
        severity: 1 (mildest) to 5.
        seed: non-negative integer.
        index: dataset index of the first image, or one non-negative index per image.
        progress: called as ``progress(done, total)`` after each image (a few ms each).

    Example:
        >>> import numpy as np
        >>> clean = np.full((1, 32, 32, 3), 100, np.uint8)
        >>> int(corrupt(clean, "brightness", 1)[0, 0, 0, 0])  # V: 100/255 + 0.05 -> 112.75
        112
    """
    images = check_images(images)
    corruption = _check_corruption(corruption)
    severity = _check_severity(severity)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    indices = _image_indices(index, len(images))
    function = _FUNCTIONS[corruption]
    params = _PARAMS[corruption][severity - 1]
    corruption_id = CORRUPTIONS.index(corruption)
    out = np.empty_like(images)
    for k, image in enumerate(images):
        # No severity in the seed: the five severities of an image share their random draws.
        rng = np.random.default_rng([int(seed), corruption_id, int(indices[k])])
        result = function(image, params, rng)
        out[k] = result if result.dtype == np.uint8 else np.uint8(np.clip(result, 0, 255))
        if progress is not None:
            progress(k + 1, len(images))
    return out


def _image_indices(index, count: int) -> np.ndarray:
    if isinstance(index, int | np.integer) and not isinstance(index, bool):
        indices = int(index) + np.arange(count)
    else:
        indices = np.asarray(index)
        if indices.shape != (count,) or not np.issubdtype(indices.dtype, np.integer):
            raise DataError(f"index must be an integer or {count} integers, got {index!r}")
    if count and indices.min() < 0:
        raise DataError(f"image indices must be non-negative, got {indices.min()}")
    return indices


def _check_corruption(corruption: str) -> str:
    corruption = _ALIASES.get(corruption, corruption)
    if corruption not in _PARAMS:
        raise DataError(f"unknown corruption {corruption!r}; choose from {', '.join(CORRUPTIONS)}")
    return corruption


def _check_severity(severity: int) -> int:
    if (
        isinstance(severity, bool)
        or not isinstance(severity, int | np.integer)
        or not 1 <= severity <= 5
    ):
        raise DataError(f"severity must be an integer from 1 to 5, got {severity!r}")
    return int(severity)


# ---------------------------------------------------------------------------------------------
# Helpers. Images inside are float arrays; "unit" means values in [0, 1].


def _gaussian(image: np.ndarray, sigma: float, mode: str = "nearest", truncate: float = 4.0):
    """scikit-image ``gaussian(..., channel_axis=-1)``: blur the spatial axes only."""
    from scipy import ndimage

    sigmas = (sigma, sigma, 0) if image.ndim == 3 else sigma
    return ndimage.gaussian_filter(image, sigmas, mode=mode, truncate=truncate)


def _cv2_gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """``cv2.getGaussianKernel(size, sigma)`` for sigma > 0."""
    taps = np.exp(-((np.arange(size) - (size - 1) / 2) ** 2) / (2 * sigma**2))
    return taps / taps.sum()


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """The script's anti-aliased disk kernel (17x17 for radius <= 8)."""
    from scipy import ndimage

    if radius <= 8:
        coords, ksize = np.arange(-8, 8 + 1), 3
    else:
        coords, ksize = np.arange(-radius, radius + 1), 5
    xx, yy = np.meshgrid(coords, coords)
    disk = np.array(xx**2 + yy**2 <= radius**2, dtype=np.float32)
    disk /= disk.sum()
    taps = _cv2_gaussian_kernel(ksize, alias_blur)
    disk = ndimage.correlate1d(disk, taps, axis=0, mode="mirror")
    return ndimage.correlate1d(disk, taps, axis=1, mode="mirror")


def _motion_blur(image: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """ImageMagick ``MotionBlurImage(radius, sigma, angle)`` on an ``(H, W)`` or ``(H, W, C)``
    float array, edge pixels repeated beyond the border (ImageMagick's default virtual pixels).
    """
    width = int(2 * math.ceil(radius) + 1)
    taps = np.exp(-(np.arange(width, dtype=np.float64) ** 2) / (2 * sigma * sigma))
    taps /= taps.sum()
    point_x = width * math.sin(math.radians(angle))
    point_y = width * math.cos(math.radians(angle))
    norm = math.hypot(point_x, point_y)
    height, cols = image.shape[:2]
    rows_index = np.arange(height)
    cols_index = np.arange(cols)
    out = np.zeros(image.shape, dtype=np.float64)
    for i, weight in enumerate(taps):
        dx = math.ceil(i * point_y / norm - 0.5)
        dy = math.ceil(i * point_x / norm - 0.5)
        rows = np.clip(rows_index + dy, 0, height - 1)
        columns = np.clip(cols_index + dx, 0, cols - 1)
        out += weight * image[rows][:, columns]
    return out


def _imagemagick_8bit(image: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """Motion-blur 8-bit values as the script's Wand call did, with ImageMagick Q16 quantisation:
    pixels scaled by 257, blurred, rounded to 16 bits, written to an 8-bit PNG (``q // 257``)."""
    quantum = np.floor(np.clip(_motion_blur(image * 257.0, radius, sigma, angle), 0, 65535) + 0.5)
    return (quantum // 257).astype(np.uint8)


def _clipped_zoom(image: np.ndarray, zoom_factor: float) -> np.ndarray:
    """Zoom into the centre by ``zoom_factor`` (bilinear) and crop back to the input size."""
    from scipy import ndimage

    height, width = image.shape[:2]
    crop_h = int(np.ceil(height / zoom_factor))
    crop_w = int(np.ceil(width / zoom_factor))
    top = (height - crop_h) // 2
    left = (width - crop_w) // 2
    zoom = (zoom_factor, zoom_factor) + (1,) * (image.ndim - 2)
    zoomed = ndimage.zoom(image[top : top + crop_h, left : left + crop_w], zoom, order=1)
    trim_top = (zoomed.shape[0] - height) // 2
    trim_left = (zoomed.shape[1] - width) // 2
    return zoomed[trim_top : trim_top + height, trim_left : trim_left + width]


def _plasma_fractal(mapsize: int, wibbledecay: float, rng: np.random.Generator) -> np.ndarray:
    """Diamond-square height map in [0, 1] of side ``mapsize`` (a power of two), as the script's
    ``plasma_fractal`` (including its ``wibble * uniform(-wibble, wibble)`` perturbation)."""
    maparray = np.empty((mapsize, mapsize), dtype=np.float64)
    maparray[0, 0] = 0
    stepsize = mapsize
    wibble = 100.0

    def wibbledmean(array):
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while stepsize >= 2:
        half = stepsize // 2
        # squares: centre of each square = mean of its corners + wibble
        corners = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        square = corners + np.roll(corners, shift=-1, axis=0)
        square += np.roll(square, shift=-1, axis=1)
        maparray[half:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(square)
        # diamonds: edge midpoints = mean of the two corners and two centres + wibble
        centres = maparray[half:mapsize:stepsize, half:mapsize:stepsize]
        corners = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        ldrsum = centres + np.roll(centres, 1, axis=0)
        lulsum = corners + np.roll(corners, -1, axis=1)
        maparray[0:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(ldrsum + lulsum)
        tdrsum = centres + np.roll(centres, 1, axis=1)
        tulsum = corners + np.roll(corners, -1, axis=0)
        maparray[half:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(tdrsum + tulsum)
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min()
    return maparray / maparray.max()


def _power_of_two_at_least(size: int) -> int:
    return 1 << max(1, (int(size) - 1).bit_length())


def _affine_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``cv2.getAffineTransform``: the 2x3 matrix mapping three (x, y) points onto three."""
    design = np.hstack([src.astype(np.float64), np.ones((3, 1))])
    return np.linalg.solve(design, dst.astype(np.float64)).T


def _to_gray(image: np.ndarray) -> np.ndarray:
    """``cv2.cvtColor(RGB2GRAY)`` on float RGB."""
    return image @ np.array([0.299, 0.587, 0.114], dtype=image.dtype)


# ---------------------------------------------------------------------------------------------
# Corruptions: (uint8 image (H, W, 3), severity parameters, generator) -> image in [0, 255].


def _gaussian_noise(image, scale, rng):
    x = image / 255.0
    return np.clip(x + rng.normal(size=x.shape, scale=scale), 0, 1) * 255


def _shot_noise(image, photons, rng):
    x = image / 255.0
    return np.clip(rng.poisson(x * photons) / photons, 0, 1) * 255


def _impulse_noise(image, amount, rng):
    # scikit-image random_noise(mode="s&p", amount, salt_vs_pepper=0.5), per channel value
    x = image / 255.0
    flipped = rng.random(x.shape) < amount
    salted = rng.random(x.shape) < 0.5
    x[flipped & salted] = 1.0
    x[flipped & ~salted] = 0.0
    return x * 255


def _defocus_blur(image, params, rng):
    from scipy import ndimage

    radius, alias_blur = params
    kernel = _disk(radius, alias_blur)
    x = image / 255.0
    channels = [ndimage.correlate(x[..., c], kernel, mode="mirror") for c in range(x.shape[-1])]
    return np.clip(np.stack(channels, axis=-1), 0, 1) * 255


def _glass_blur(image, params, rng):
    sigma, max_delta, iterations = params
    if max_delta != 1:  # the gather below is exact only for offsets in {-1, 0}
        raise AssertionError("glass_blur is defined for max_delta == 1")
    x = np.uint8(_gaussian(image / 255.0, sigma) * 255)
    height, width = x.shape[:2]
    rows = np.arange(height - max_delta, max_delta, -1)
    cols = np.arange(width - max_delta, max_delta, -1)
    for _ in range(iterations):
        if not len(rows) or not len(cols):
            break
        # np.random.randint(-1, 1) draws from {-1, 0}
        shifts = rng.integers(-max_delta, max_delta, size=(len(rows), len(cols), 2))
        source_rows = rows[:, None] + shifts[..., 1]
        source_cols = cols[None, :] + shifts[..., 0]
        shuffled = x.copy()
        shuffled[rows[:, None], cols[None, :]] = x[source_rows, source_cols]
        x = shuffled
    return np.clip(_gaussian(x / 255.0, sigma), 0, 1) * 255


def _motion_blur_corruption(image, params, rng):
    radius, sigma = params
    return _imagemagick_8bit(image.astype(np.float64), radius, sigma, rng.uniform(-45, 45))


def _zoom_blur(image, stop, rng):
    x = (image / 255.0).astype(np.float32)
    factors = np.arange(1, stop, 0.01)
    out = np.zeros_like(x)
    for factor in factors:
        out += _clipped_zoom(x, factor)
    return np.clip((x + out) / (len(factors) + 1), 0, 1) * 255


def _snow(image, params, rng):
    loc, scale, zoom, threshold, radius, sigma, weight = params
    x = image.astype(np.float32) / 255.0
    height, width = x.shape[:2]
    layer = rng.normal(size=(height, width), loc=loc, scale=scale)
    layer = _clipped_zoom(layer[..., np.newaxis], zoom)[..., 0]
    layer[layer < threshold] = 0
    layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8)  # the script's 8-bit PNG
    streaks = _imagemagick_8bit(layer.astype(np.float64), radius, sigma, rng.uniform(-135, -45))
    streaks = (streaks / 255.0)[..., np.newaxis]
    gray = _to_gray(x)[..., np.newaxis]
    x = weight * x + (1 - weight) * np.maximum(x, gray * 1.5 + 0.5)
    return np.clip(x + streaks + np.rot90(streaks, k=2), 0, 1) * 255


def frost_texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Procedural stand-in for the frost photographs: float ``(height, width, 3)`` in [0, 255].

    The published frost corruption adds a random 32x32 crop of one of six frost photographs
    (downscaled 5x) to the image. Those photographs are not available here, so this texture
    imitates them: frosted haze (a diamond-square fractal, wibble decay 1.5) plus clusters of
    thin bright ice needles (sparse seeds smeared by the motion-blur kernel along four random
    directions), mixed 55/45, stretched to [0, 1] and tinted pale blue (R, G, B weights
    0.80, 0.90, 1.00). Its mean is about 0.33 of full scale, its standard deviation about 0.15.
    These targets are our choice to look like frost, not measurements of the photographs.
    """
    side = _power_of_two_at_least(max(height, width))
    haze = _plasma_fractal(side, 1.5, rng)[:height, :width]
    seeds = (rng.random((height, width)) < 0.04).astype(np.float64)
    needles = np.zeros((height, width))
    for angle in rng.uniform(0, 360, size=4):
        needles += _motion_blur(seeds, 5, 3, angle)
    needles = _gaussian(needles, 0.5)
    needles /= max(needles.max(), 1e-12)
    texture = 0.55 * haze + 0.45 * needles
    texture = (texture - texture.min()) / max(texture.max() - texture.min(), 1e-12)
    tint = np.array([0.80, 0.90, 1.00])
    return texture[..., np.newaxis] * tint * 255


FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")
FROST_PACKAGE = "imagecorruptions"
_FROST_SHRINK = 5  # the script's cv2.resize(fx=0.2, fy=0.2)
_frost_photos: list[np.ndarray] | None = None
_frost_warned = False


def _frost_folder() -> Path | None:
    """``imagecorruptions/frost`` of the installed wheel, found without importing the package."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(FROST_PACKAGE)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "frost"
        if all((folder / name).is_file() for name in FROST_FILES):
            return folder
    return None


def _shrink_like_cv2(photo: np.ndarray) -> np.ndarray:
    """``cv2.resize(photo, (0, 0), fx=0.2, fy=0.2)`` (bilinear): output size ``round(0.2 n)``,
    and output pixel ``i`` samples source ``(i + 0.5) * 5 - 0.5 = 5 i + 2``, a whole pixel."""
    height, width = (int(round(n / _FROST_SHRINK)) for n in photo.shape[:2])
    start = _FROST_SHRINK // 2
    return photo[start::_FROST_SHRINK, start::_FROST_SHRINK][:height, :width]


def frost_photos() -> list[np.ndarray] | None:
    """The six official frost photographs, shrunk as the CIFAR script does (uint8 RGB), or
    None when ``imagecorruptions`` is not installed."""
    global _frost_photos
    if _frost_photos is None:
        folder = _frost_folder()
        if folder is None:
            return None
        from PIL import Image

        photos = []
        for name in FROST_FILES:
            with Image.open(folder / name) as photo:
                photos.append(_shrink_like_cv2(np.asarray(photo.convert("RGB"))))
        _frost_photos = photos
    return _frost_photos


def frost_source() -> str:
    """``"photographs"`` (the official textures of ``imagecorruptions``) or ``"procedural"``."""
    return "photographs" if frost_photos() is not None else "procedural"


def _frost(image, params, rng):
    global _frost_warned
    image_weight, frost_weight = params
    photos = frost_photos()
    height, width = image.shape[:2]
    if photos is None:
        if not _frost_warned:
            _frost_warned = True
            warnings.warn(
                "frost: the official textures are not installed (pip install --no-deps "
                "imagecorruptions==1.1.2); using the procedural stand-in, whose numbers are "
                "not comparable with the official CIFAR-100-C frost",
                stacklevel=3,
            )
        frost = frost_texture(height, width, rng)
    else:
        photo = photos[rng.integers(5)]  # the script's randint(5): frost6 is never drawn
        if photo.shape[0] <= height or photo.shape[1] <= width:
            raise DataError(
                f"frost: images of {height}x{width} are larger than the frost photographs "
                f"({photo.shape[0]}x{photo.shape[1]} after the script's shrink)"
            )
        top = rng.integers(0, photo.shape[0] - height)
        left = rng.integers(0, photo.shape[1] - width)
        frost = photo[top : top + height, left : left + width].astype(np.float64)
    return np.clip(image_weight * image.astype(np.float64) + frost_weight * frost, 0, 255)


def _fog(image, params, rng):
    strength, wibbledecay = params
    x = image / 255.0
    height, width = x.shape[:2]
    max_val = x.max()
    side = _power_of_two_at_least(max(height, width))
    x = x + strength * _plasma_fractal(side, wibbledecay, rng)[:height, :width, np.newaxis]
    return np.clip(x * max_val / (max_val + strength), 0, 1) * 255


def _rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """scikit-image ``rgb2hsv`` on floats in [0, 1]."""
    value = rgb.max(axis=-1)
    delta = np.ptp(rgb, axis=-1)
    safe_delta = np.where(delta == 0, 1.0, delta)
    saturation = np.where(delta == 0, 0.0, delta / np.where(value == 0, 1.0, value))
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # later rules win where channels tie for the maximum, as in scikit-image
    hue = np.where(red == value, (green - blue) / safe_delta, 0.0)
    hue = np.where(green == value, 2.0 + (blue - red) / safe_delta, hue)
    hue = np.where(blue == value, 4.0 + (red - green) / safe_delta, hue)
    hue = np.where(delta == 0, 0.0, (hue / 6.0) % 1.0)
    return np.stack([hue, saturation, value], axis=-1)


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """scikit-image ``hsv2rgb``."""
    hue, saturation, value = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    sector = np.floor(hue * 6)
    fraction = hue * 6 - sector
    p = value * (1 - saturation)
    q = value * (1 - fraction * saturation)
    t = value * (1 - (1 - fraction) * saturation)
    sector = sector.astype(np.int64) % 6
    choices = np.stack(
        [
            np.stack(channels, axis=-1)
            for channels in (
                (value, t, p),
                (q, value, p),
                (p, value, t),
                (p, q, value),
                (t, p, value),
                (value, p, q),
            )
        ]
    )
    return np.choose(np.repeat(sector[..., np.newaxis], 3, axis=-1), choices)


def _brightness(image, shift, rng):
    hsv = _rgb_to_hsv(image / 255.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + shift, 0, 1)
    return np.clip(_hsv_to_rgb(hsv), 0, 1) * 255


def _contrast(image, factor, rng):
    x = image / 255.0
    means = x.mean(axis=(0, 1), keepdims=True)
    return np.clip((x - means) * factor + means, 0, 1) * 255


def _elastic_transform(image, params, rng):
    from scipy import ndimage

    alpha, sigma, jitter = params
    x = image.astype(np.float32) / 255.0
    height, width = x.shape[:2]
    # random affine: move three points by up to `jitter` pixels (the script's cv2 calls)
    center = np.float32((width, height)) // 2  # (x, y), as cv2 points are
    square = min(height, width) // 3
    src = np.float32([center + square, [center[0] + square, center[1] - square], center - square])
    dst = src + rng.uniform(-jitter, jitter, size=src.shape).astype(np.float32)
    forward = np.vstack([_affine_from_points(src, dst), [0, 0, 1]])
    inverse = np.linalg.inv(forward)  # warpAffine samples the source at M^-1 (x, y)
    cols, rows = np.meshgrid(
        np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)
    )
    src_cols = inverse[0, 0] * cols + inverse[0, 1] * rows + inverse[0, 2]
    src_rows = inverse[1, 0] * cols + inverse[1, 1] * rows + inverse[1, 2]
    x = np.stack(
        [
            ndimage.map_coordinates(x[..., c], [src_rows, src_cols], order=1, mode="mirror")
            for c in range(x.shape[-1])
        ],
        axis=-1,
    )
    # elastic displacement field
    dx = (_gaussian(rng.uniform(-1, 1, size=(height, width)), sigma, "reflect", 3) * alpha).astype(
        np.float32
    )
    dy = (_gaussian(rng.uniform(-1, 1, size=(height, width)), sigma, "reflect", 3) * alpha).astype(
        np.float32
    )
    channels = x.shape[-1]
    coords = (
        np.repeat((rows + dy)[..., np.newaxis], channels, axis=-1),
        np.repeat((cols + dx)[..., np.newaxis], channels, axis=-1),
        np.broadcast_to(np.arange(channels, dtype=np.float64), x.shape),
    )
    warped = ndimage.map_coordinates(x, coords, order=1, mode="reflect")
    return np.clip(warped, 0, 1) * 255


def _pixelate(image, factor, rng):
    from PIL import Image

    height, width = image.shape[:2]
    picture = Image.fromarray(image)
    small = (max(1, int(width * factor)), max(1, int(height * factor)))
    picture = picture.resize(small, Image.Resampling.BOX).resize(
        (width, height), Image.Resampling.BOX
    )
    return np.asarray(picture, dtype=np.uint8)


def _jpeg_compression(image, quality, rng):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as picture:
        return np.asarray(picture.convert("RGB"), dtype=np.uint8)


_FUNCTIONS: dict[str, Callable[[np.ndarray, object, np.random.Generator], np.ndarray]] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur,
    "glass_blur": _glass_blur,
    "motion_blur": _motion_blur_corruption,
    "zoom_blur": _zoom_blur,
    "snow": _snow,
    "frost": _frost,
    "fog": _fog,
    "brightness": _brightness,
    "contrast": _contrast,
    "elastic_transform": _elastic_transform,
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
}
