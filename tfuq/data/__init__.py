"""Data: dataset specs, ``.npz`` files and folders, representative draws, corruptions, CIFAR-100-C.

numpy (and Pillow for folders of images); TensorFlow Datasets only for the ``cifar100`` specs
and the CIFAR-100-C builder, imported when those are used. Nothing under :mod:`tfuq.runtime`
imports from here.

- :mod:`tfuq.data.common`: the error type and array checks every data module shares.
- :mod:`tfuq.data.datasets`: dataset specs (``npz:``, ``folder:``, ``cifar100:``,
  ``cifar100_corrupted/...``, ``featureless:<count>``), ``.npz`` reading, resizing,
  representative draws.
- :mod:`tfuq.data.outliers`: ``load_outliers``, the "none of these" images for outlier
  exposure from one or more specs (any dataset spec, a flat folder of photos, featureless
  images) as one array: what ``--outliers`` reads in ``tfuq train``, ``attach`` and ``fit``.
- :mod:`tfuq.data.featureless`: generated images of nothing (flat colours, gradients, smooth
  blends), seeded.
- :mod:`tfuq.data.corruptions`: the 15 CIFAR-C corruptions at severities 1-5.
- :mod:`tfuq.data.cifar100_corrupted`: the tfds builder for CIFAR-100-C.

The names below are re-exported from the first three, so ``from tfuq import data`` then
``data.load_spec(...)`` reads as before.
"""

from tfuq.data.common import CIFAR100_LABELS, DataError, check_images, check_labels
from tfuq.data.datasets import (
    IMAGE_SUFFIXES,
    LabelledImages,
    Spec,
    balanced_indices,
    class_folder_files,
    load_folder,
    load_npz,
    load_spec,
    parse_spec,
    representative,
    resize,
)
from tfuq.data.outliers import load_outliers

__all__ = [
    "CIFAR100_LABELS",
    "IMAGE_SUFFIXES",
    "DataError",
    "LabelledImages",
    "Spec",
    "balanced_indices",
    "check_images",
    "class_folder_files",
    "check_labels",
    "load_folder",
    "load_npz",
    "load_outliers",
    "load_spec",
    "parse_spec",
    "representative",
    "resize",
]
