"""What every data module shares: the error type, the array checks, CIFAR-100's label names.

Numpy only, and importing nothing else from tfuq, so that the spec reader
(:mod:`tfuq.data.datasets`), the corruptions and the CIFAR-100-C builder can all import it
without importing each other.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CIFAR100_LABELS", "DataError", "check_images", "check_labels"]

# CIFAR-100 fine labels in label order (Krizhevsky, 2009; tfds "cifar100" feature "label").
# fmt: off
CIFAR100_LABELS: tuple[str, ...] = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)
# fmt: on


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
    if count and int(labels.max()) > np.iinfo(np.int64).max:
        raise DataError(f"label {labels.max()} is out of range")
    if count and labels.min() < 0:
        raise DataError(f"labels must be non-negative, found {labels.min()}")
    if classes is not None and count and labels.max() >= classes:
        raise DataError(f"label {labels.max()} is out of range for {classes} classes")
    return labels.astype(np.int64)


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)`` with about ``fraction`` of every class in validation.

    Data sorted by class (CIFAR files, folders of images) would give Keras'
    ``validation_split``, which takes the last rows, a validation set of the last classes
    only; here each class is shuffled and split on its own, and both index sets are then
    shuffled. A class keeps at least one training image. Deterministic for a given ``seed``.
    """
    labels = np.asarray(labels)
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"validation fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    train_parts, validation_parts = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = min(int(round(fraction * len(members))), len(members) - 1)
        validation_parts.append(members[:count])
        train_parts.append(members[count:])
    train = rng.permutation(np.concatenate(train_parts)) if train_parts else np.zeros(0, int)
    validation = (
        rng.permutation(np.concatenate(validation_parts)) if validation_parts else np.zeros(0, int)
    )
    return train.astype(np.int64), validation.astype(np.int64)
