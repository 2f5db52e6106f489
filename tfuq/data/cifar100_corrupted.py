"""CIFAR-100-C as a tensorflow-datasets builder: ``tfds.load("cifar100_corrupted/fog_3")``.

tfds ships ``cifar10_corrupted`` but no CIFAR-100 counterpart. Importing this module registers
``cifar100_corrupted`` with one config per corruption and severity, ``<corruption>_<severity>``
(75 configs, names in :data:`tfuq.data.corruptions.CORRUPTIONS`), each with a ``test`` split of
uint8 32x32 RGB ``image`` and fine ``label`` (100 classes), in the order of the CIFAR-100 test
split (shuffling is disabled so that corrupted and clean images line up).

Where the images come from, decided when the dataset is prepared:

1. **Official files** (Hendrycks & Dietterich, ICLR 2019; https://zenodo.org/record/3555552),
   when the manual download folder (``<data_dir>/downloads/manual/`` by default, or
   ``DownloadConfig(manual_dir=...)``) holds ``labels.npy`` and ``<corruption>.npy``, directly
   or in a ``CIFAR-100-C/`` subfolder. Each ``<corruption>.npy`` stacks the test split five
   times, severity 1 first.
2. **Generated** otherwise: the CIFAR-100 test split (``tfds.load("cifar100")``, downloaded
   if needed) corrupted by :func:`tfuq.data.corruptions.corrupt` with seed :data:`GENERATION_SEED`.
   Deterministic, but not the official pixels, and frost uses a procedural texture.

``info.metadata["source"]`` records which one was used. Both give the same features, so a
prepared dataset does not say by its version which source it came from: prepare into separate
``data_dir`` folders if you need both.

:func:`generate_examples` is the generation path on arrays you give it, and
``tfuq.data.load_spec("cifar100_corrupted/fog_3:npz:test.npz")`` applies the same corruption
to local files without tfds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from tfuq.data.common import CIFAR100_LABELS, DataError, check_images, check_labels
from tfuq.data.corruptions import CORRUPTIONS, SEVERITIES, config_name, corrupt

__all__ = [
    "GENERATION_SEED",
    "Cifar100Corrupted",
    "Cifar100CorruptedConfig",
    "generate_examples",
    "read_official",
]

GENERATION_SEED = 0
OFFICIAL_URL = "https://zenodo.org/record/3555552/files/CIFAR-100-C.tar"
_OFFICIAL_SUBFOLDER = "CIFAR-100-C"
_LABELS_FILE = "labels.npy"
_CHUNK = 500  # images corrupted per step while generating

_CITATION = """\
@inproceedings{hendrycks2019benchmarking,
  title={Benchmarking Neural Network Robustness to Common Corruptions and Perturbations},
  author={Dan Hendrycks and Thomas Dietterich},
  booktitle={International Conference on Learning Representations},
  year={2019},
  url={https://openreview.net/forum?id=HJz6tiCqYm},
}
"""


class Cifar100CorruptedConfig(tfds.core.BuilderConfig):
    """One corruption at one severity (1-5)."""

    def __init__(self, *, corruption: str, severity: int, **kwargs):
        super().__init__(**kwargs)
        self.corruption = corruption
        self.severity = severity


def _configs() -> list[Cifar100CorruptedConfig]:
    return [
        Cifar100CorruptedConfig(
            name=config_name(corruption, severity),
            description=f"{corruption} at severity {severity} of 5",
            corruption=corruption,
            severity=severity,
        )
        for corruption in CORRUPTIONS
        for severity in SEVERITIES
    ]


class Cifar100Corrupted(tfds.core.GeneratorBasedBuilder):
    """CIFAR-100-C: the CIFAR-100 test split under 15 corruptions at 5 severities."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Official CIFAR-100-C files, or tfuq.data.corruptions generation."}
    BUILDER_CONFIGS = _configs()
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Optional. For the official CIFAR-100-C images, download {OFFICIAL_URL}, extract it and put
`labels.npy` and the `<corruption>.npy` files (or the `CIFAR-100-C/` folder holding them) in the
manual folder. Without them, the corruptions are generated from the CIFAR-100 test split.
"""

    # tfds looks a builder's folder up through `importlib_resources`, which it does not
    # install on Python >= 3.9; without it preparing fails. The answer is this file.
    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        return epath.Path(__file__)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "CIFAR-100 test images under the 15 common corruptions of Hendrycks & "
                "Dietterich (2019): the official CIFAR-100-C files when given, else generated "
                "by tfuq.data.corruptions (see metadata['source'])."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(32, 32, 3)),
                    "label": tfds.features.ClassLabel(names=list(CIFAR100_LABELS)),
                }
            ),
            supervised_keys=("image", "label"),
            # keep the CIFAR-100 test order, so corrupted and clean images line up
            disable_shuffling=True,
            homepage="https://github.com/hendrycks/robustness",
            citation=_CITATION,
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager):
        folder = _official_folder(dl_manager)
        if folder is not None:
            self.info.metadata["source"] = f"official CIFAR-100-C files ({OFFICIAL_URL})"
        else:
            self.info.metadata["source"] = (
                f"generated by tfuq.data.corruptions from tfds cifar100 test, seed {GENERATION_SEED}"
            )
        return {"test": self._generate_examples(folder)}

    def _generate_examples(self, folder: Path | None) -> Iterator[tuple[int, dict]]:
        config = self.builder_config
        if folder is None:
            images, labels = _clean_test_split(os.fspath(self.data_dir_root))
            yield from generate_examples(images, labels, config.corruption, config.severity)
            return
        images, labels = read_official(folder, config.corruption, config.severity)
        for key, (image, label) in enumerate(zip(images, labels, strict=True)):
            yield key, {"image": image, "label": label}


def generate_examples(
    images: np.ndarray,
    labels: np.ndarray,
    corruption: str,
    severity: int,
    seed: int = GENERATION_SEED,
) -> Iterator[tuple[int, dict]]:
    """Yield ``(index, {"image", "label"})`` for clean test arrays corrupted in chunks.

    The builder's generation path, usable on any uint8 ``(N, 32, 32, 3)`` images: example
    ``i`` is ``tfuq.data.corruptions.corrupt(images, corruption, severity, seed)[i]``.
    """
    images = check_images(images, "clean test images")
    labels = check_labels(labels, len(images), len(CIFAR100_LABELS))
    for start in range(0, len(images), _CHUNK):
        chunk = corrupt(
            images[start : start + _CHUNK], corruption, severity, seed=seed, index=start
        )
        for offset, image in enumerate(chunk):
            yield start + offset, {"image": image, "label": labels[start + offset]}


def read_official(
    folder: str | os.PathLike, corruption: str, severity: int
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one severity from the official ``<corruption>.npy``/``labels.npy``.

    Raises:
        DataError: a file is missing, or the arrays are not 5 stacked copies of one split.
    """
    folder = Path(folder)
    path = folder / f"{corruption}.npy"
    if not path.is_file():
        raise DataError(
            f"{folder} holds {_LABELS_FILE} but not {path.name}: add it, or remove the folder "
            "to generate the corruption instead"
        )
    try:
        stacked = np.load(path, mmap_mode="r", allow_pickle=False)
        all_labels = np.load(folder / _LABELS_FILE, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read CIFAR-100-C files in {folder}: {error}") from error
    if stacked.ndim != 4 or stacked.shape[1:] != (32, 32, 3) or len(stacked) % 5:
        raise DataError(
            f"{path} must hold 5 severities of (N, 32, 32, 3) images, got shape {stacked.shape}"
        )
    per_severity = len(stacked) // 5
    if len(all_labels) == len(stacked):  # the official labels.npy repeats the labels 5 times
        all_labels = all_labels[(severity - 1) * per_severity : severity * per_severity]
    elif len(all_labels) != per_severity:
        raise DataError(
            f"{folder / _LABELS_FILE} has {len(all_labels)} labels for {len(stacked)} images"
        )
    images = np.asarray(stacked[(severity - 1) * per_severity : severity * per_severity])
    images = check_images(images, str(path))
    labels = check_labels(all_labels, per_severity, len(CIFAR100_LABELS))
    return images, labels


def _official_folder(dl_manager) -> Path | None:
    """The folder with the official files, or None when the manual folder has none."""
    try:
        manual = Path(os.fspath(dl_manager.manual_dir))
    except AssertionError:  # tfds: manual folder missing or empty
        return None
    for folder in (manual, manual / _OFFICIAL_SUBFOLDER):
        if (folder / _LABELS_FILE).is_file():
            return folder
    return None


def _clean_test_split(data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The CIFAR-100 test split from tfds (prepared in ``data_dir``, downloaded if needed)."""
    dataset = tfds.load("cifar100", split="test", as_supervised=True, data_dir=data_dir)
    images, labels = [], []
    for image_batch, label_batch in tfds.as_numpy(dataset.batch(1000)):
        images.append(image_batch)
        labels.append(label_batch)
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)
