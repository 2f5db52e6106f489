"""Out-of-distribution image sets that need no download: made here or shipped with packages.

No CIFAR-100 training image resembles these, so a model should abstain on all of them:

- ``blank``: constant images (black, white, 8 greys, 90 random single colours);
- ``uniform_noise``: every pixel uniform in 0-255; ``gaussian_noise``: mean 128, sd 40;
- ``digits``: scikit-learn's 8x8 handwritten digits (1,797 shipped; 300 drawn), ink 0-16
  scaled to 0-255, white on black, upsampled bilinearly, grey;
- ``photos``: scikit-image's sample images that show no CIFAR-100 class (so not
  ``astronaut``/``camera`` (people), ``rocket``, ``clock``, ``coffee`` (a cup)): the whole
  image and 9 random square crops of each, resized to the model's size;
- ``text``: 1-3 random words or letters in random colours on a plain background (Pillow's
  built-in font).

``make(name, size, seed)`` returns uint8 ``(N, H, W, 3)``; the same seed gives the same images.
"""

from __future__ import annotations

import numpy as np

NAMES = ("blank", "uniform_noise", "gaussian_noise", "digits", "photos", "text")
PHOTOS = (
    "chelsea", "coins", "hubble_deep_field", "immunohistochemistry", "moon", "page", "text",
    "logo", "checkerboard", "grass", "gravel", "brick", "colorwheel", "cell", "retina",
)
WORDS = ("tfuq", "hello", "STOP", "exit", "42", "A", "Q", "xyz", "lorem", "ipsum", "EXIT", "page 3")


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.asarray(Image.fromarray(image[..., :3]).resize(size[::-1], Image.BILINEAR))


def _blank(size, rng):
    colours = [np.zeros(3), np.full(3, 255)] + [np.full(3, g) for g in np.linspace(28, 227, 8)]
    colours += list(rng.integers(0, 256, (90, 3)))
    return np.stack([np.broadcast_to(np.asarray(c, np.uint8), (*size, 3)) for c in colours])


def _digits(size, rng):
    from sklearn.datasets import load_digits

    digits = load_digits().images
    chosen = rng.choice(len(digits), 300, replace=False)
    return np.stack([_resize(np.uint8(np.round(digits[k] * 255 / 16)), size) for k in chosen])


def _photos(size, rng):
    import skimage.data

    out = []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        if image.dtype == bool:
            image = image.astype(np.uint8) * 255
        out.append(_resize(image, size))
        side = min(image.shape[:2])
        for _ in range(9):
            crop = int(rng.integers(side // 4, side + 1))
            top = int(rng.integers(0, image.shape[0] - crop + 1))
            left = int(rng.integers(0, image.shape[1] - crop + 1))
            out.append(_resize(np.ascontiguousarray(image[top : top + crop, left : left + crop]), size))
    return np.stack(out)


def _text(size, rng):
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    out = []
    for _ in range(200):
        background = tuple(int(v) for v in rng.integers(0, 256, 3))
        ink = tuple(255 - v for v in background)
        image = Image.new("RGB", (size[1] * 2, size[0] * 2), background)
        draw = ImageDraw.Draw(image)
        for line in range(int(rng.integers(1, 4))):
            word = WORDS[int(rng.integers(len(WORDS)))]
            draw.text((int(rng.integers(0, size[1])), 4 + line * 18), word, fill=ink, font=font)
        out.append(np.asarray(image.resize(size[::-1], Image.BILINEAR)))
    return np.stack(out)


def make(name: str, size: tuple[int, int] = (32, 32), seed: int = 0) -> np.ndarray:
    """The set ``name`` (one of :data:`NAMES`) at ``size``, uint8 ``(N, H, W, 3)``."""
    if name not in NAMES:
        raise ValueError(f"unknown out-of-distribution set {name!r}; choose one of {', '.join(NAMES)}")
    rng = np.random.default_rng([seed, NAMES.index(name)])
    size = tuple(int(v) for v in size)
    if name == "blank":
        return _blank(size, rng)
    if name == "uniform_noise":
        return rng.integers(0, 256, (200, *size, 3), dtype=np.uint8)
    if name == "gaussian_noise":
        return np.uint8(np.clip(np.round(rng.normal(128, 40, (200, *size, 3))), 0, 255))
    if name == "digits":
        return _digits(size, rng)
    if name == "photos":
        return _photos(size, rng)
    return _text(size, rng)
