"""The shared real out-of-distribution photos (``../shared/data/ood_dev/``), split as the OOD
experiment uses them.

- ``cifar10``: 1,000 CIFAR-10 test images (near OOD for CIFAR-100), for measuring only.
- Tiny-ImageNet validation images of classes 0-99, at 32 px like CIFAR (the ``x32`` array, as
  the held-back check set is made), split **by class**: ``OUTLIER_CLASSES`` teach outlier
  exposure, the others (``tinyimagenet_unseen``) are far OOD for measuring, so no class of the
  measured photos was ever shown in training.

    >>> outliers = tinyimagenet(OUTLIER_CLASSES)          # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED_OOD = Path(__file__).resolve().parents[2] / "shared" / "data" / "ood_dev"
CIFAR10 = "cifar10_test_100_per_class.npz"
TINY = "tinyimagenet_val_classes_0_99.npz"
OUTLIER_CLASSES = tuple(range(0, 50))  # trained on (outlier exposure)
UNSEEN_CLASSES = tuple(range(50, 100))  # measured on, never trained on


def available(folder: str | Path = SHARED_OOD) -> bool:
    return (Path(folder) / CIFAR10).is_file() and (Path(folder) / TINY).is_file()


def cifar10(folder: str | Path = SHARED_OOD) -> np.ndarray:
    """uint8 ``(1000, 32, 32, 3)``."""
    with np.load(Path(folder) / CIFAR10) as data:
        return np.asarray(data["x"], dtype=np.uint8)


def tinyimagenet(classes, folder: str | Path = SHARED_OOD) -> np.ndarray:
    """uint8 ``(50 * len(classes), 32, 32, 3)``: the 32-px images of the Tiny-ImageNet ``classes``."""
    with np.load(Path(folder) / TINY) as data:
        chosen = np.isin(np.asarray(data["y"]), np.asarray(classes))
        return np.asarray(data["x32"], dtype=np.uint8)[chosen]


def measured_sets(folder: str | Path = SHARED_OOD) -> dict[str, np.ndarray]:
    """The real OOD sets the experiment measures on: name -> images."""
    return {"cifar10": cifar10(folder), "tinyimagenet_unseen": tinyimagenet(UNSEEN_CLASSES, folder)}
