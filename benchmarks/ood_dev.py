"""The shared real out-of-distribution photos (``../shared/data/ood_dev/``), split as the OOD
experiment uses them.

- ``cifar10``: 1,000 CIFAR-10 test images (near OOD for CIFAR-100), for measuring only.
- Tiny-ImageNet validation images of classes 0-99, at 32 px like CIFAR (the ``x32`` array, as
  the held-back check set is made), split **by class**: ``OUTLIER_CLASSES`` (classes 0-49
  without the 15 that are CIFAR-100 classes, :data:`CIFAR100_CLASS_OF`) teach outlier
  exposure, classes 50-99 (``tinyimagenet_unseen``) are far OOD for measuring, so no class of
  the measured photos was ever shown in training; 12 of those 50 are CIFAR-100 classes too
  (bee, tractor, ...), so scores are also reported on the other 38 (``UNSEEN_DISJOINT``).

    >>> outliers = tinyimagenet(OUTLIER_CLASSES)          # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED_OOD = Path(__file__).resolve().parents[2] / "shared" / "data" / "ood_dev"
CIFAR10 = "cifar10_test_100_per_class.npz"
TINY = "tinyimagenet_val_classes_0_99.npz"
# Tiny-ImageNet classes (of 0-99) that are a kind of a CIFAR-100 class: photos of them are *in*
# distribution, so outlier exposure must not teach "none of these" on them (Hendrycks et al.
# removed CIFAR's classes from their outlier set the same way), and a share of them "answered"
# is not an error. By hand, from the class names: the ImageNet class is a hyponym of (or the same
# as) the CIFAR-100 class.
CIFAR100_CLASS_OF = {
    3: "chair",  # rocking chair
    12: "table",  # dining table
    13: "butterfly",  # monarch
    14: "bear",  # brown bear
    15: "bus",  # school bus
    22: "aquarium_fish",  # goldfish
    25: "sea",  # seashore
    26: "keyboard",  # computer keyboard
    27: "camel",  # Arabian camel
    33: "snail",
    42: "butterfly",  # sulphur butterfly
    43: "spider",  # tarantula
    45: "bottle",  # pop bottle
    48: "cockroach",
    49: "rocket",  # projectile, missile
    50: "bottle",  # beer bottle
    52: "train",  # freight car
    57: "chimpanzee",
    58: "telephone",  # pay-phone
    60: "mountain",  # alp
    61: "lamp",  # lampshade
    69: "train",  # bullet train
    75: "tractor",
    76: "beetle",  # ladybug
    87: "bee",
    89: "lobster",  # spiny lobster
    98: "bottle",  # pill bottle
}
# trained on (outlier exposure): classes 0-49 that are none of CIFAR-100's
OUTLIER_CLASSES = tuple(c for c in range(0, 50) if c not in CIFAR100_CLASS_OF)
UNSEEN_CLASSES = tuple(range(50, 100))  # measured on, never trained on (all 50, as before)
UNSEEN_DISJOINT = tuple(c for c in UNSEEN_CLASSES if c not in CIFAR100_CLASS_OF)  # the truly OOD ones


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
