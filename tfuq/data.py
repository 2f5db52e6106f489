"""Image data: ``.npz`` files, validation and resizing (numpy-only at import time).

An ``.npz`` dataset holds ``x``: uint8 ``(N, H, W, 3)`` RGB images, and optionally ``y``:
integer labels and ``label_names`` (or ``fine_names``, as the CIFAR-100 files do).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """Data the user gave cannot be used: missing file, wrong shape or dtype, bad labels."""


def check_images(images: np.ndarray, what: str = "images") -> np.ndarray:
    """Return ``images`` unchanged if it is a non-empty uint8 ``(N, H, W, 3)`` array."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise DataError(f"{what} must be uint8 pixels, got {images.dtype}")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(f"{what} must be (N, H, W, 3) RGB, got shape {images.shape}")
    if len(images) == 0:
        raise DataError(f"{what} hold zero samples")
    return images


def check_labels(labels: np.ndarray, count: int, classes: int | None = None) -> np.ndarray:
    """Return ``labels`` as int64 after checking length, integrality and range."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != count:
        raise DataError(f"labels must be a vector of {count} entries, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"labels must be integers, got {labels.dtype}")
    if count and labels.min() < 0:
        raise DataError(f"labels must be non-negative, found {labels.min()}")
    if classes is not None and count and labels.max() >= classes:
        raise DataError(f"label {labels.max()} is out of range for {classes} classes")
    return labels.astype(np.int64)


def load_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Read ``(images, labels or None, label names or None)`` from an ``.npz``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data:
                raise DataError(f"{path} has no array named 'x'")
            images = data["x"]
            labels = data["y"] if "y" in data else None
            names = next((data[k] for k in ("label_names", "fine_names") if k in data), None)
    except DataError:
        raise
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {path} as .npz: {error}") from error
    images = check_images(images, f"{path}: x")
    if labels is not None:
        labels = check_labels(labels, len(images), None if names is None else len(names))
    return images, labels, None if names is None else [str(n) for n in names]


def resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of uint8 NHWC images to ``(height, width)``; a no-op at that size."""
    if images.shape[1:3] == tuple(size):
        return images
    try:
        import tensorflow as tf
    except ImportError:
        raise DataError(
            f"images are {images.shape[1:3]}, the model takes {tuple(size)}: resize them first "
            "(resizing here needs tensorflow)"
        ) from None
    resized = tf.image.resize(images.astype(np.float32), size, method="bilinear")
    return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)
