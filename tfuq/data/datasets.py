"""Datasets: specs, ``.npz`` files, folders of images, representative draws.

Everything here works on uint8 RGB images in ``(N, H, W, 3)`` (NHWC) and integer labels.
``import tfuq.data.datasets`` needs numpy only (it runs on a Raspberry Pi); Pillow is imported to
read folders and to resize (by the photo rule of :mod:`tfuq.runtime.photo`, for arrays and photos
alike), tensorflow-datasets to read ``cifar100`` specs, SciPy by the corruptions.

Dataset specs, as the command line takes them: one grammar (:func:`parse_spec`) for both
readers, :func:`load_spec` here (into memory) and the Beam pipelines
(:func:`tfuq.beam.pipeline.sources`, ``--runner``). "Beam only" marks what only they read.

``cifar100:test``, ``cifar100:train``
    CIFAR-100 through ``tfds.load("cifar100")`` (downloaded on first use); tfds slicing such
    as ``cifar100:train[:10%]`` works here (not in Beam).
``cifar100_corrupted/<corruption>_<severity>:test``
    CIFAR-100-C through the :mod:`tfuq.data.cifar100_corrupted` tfds builder: the official files
    when they are in the manual download folder, else generated from the CIFAR-100 test split.
``cifar100_corrupted/*:test``
    all 75 CIFAR-100-C sets (Beam only).
``cifar100_corrupted/<corruption>_<severity>:<spec>``
    any other spec (``npz:...``, ``folder:...``, ``cifar100:...``) corrupted here with
    :func:`tfuq.data.corruptions.corrupt`, e.g. ``cifar100_corrupted/fog_3:npz:test.npz``
    (not in Beam).
``npz:path.npz``, or just ``path.npz``
    ``x``: uint8 ``(N, H, W, 3)`` images, optionally ``y``: integer labels and ``label_names``
    (or ``fine_names``, as the CIFAR-100 files do). Beam takes a glob of them.
``folder:path/``
    one subfolder per class (sorted names are the labels; :func:`class_folder_files`).
``files:<folder or glob>``, ``tfrecord:<glob>``
    image files without labels; TFRecord files tensorflow-datasets wrote (Beam only).
``featureless:<count>``
    ``count`` generated images of nothing (flat colours, gradients, smooth blends:
    :mod:`tfuq.data.featureless`) at the ``size`` asked for, seeded, without labels: "none of
    these" images for outlier exposure (:func:`tfuq.data.outliers.load_outliers`), or an OOD
    set. Generated here, never read by the Beam pipelines.

Image files are read by the photo rule (:mod:`tfuq.runtime.photo`) the caller names, the
model's (``photo.rule_of(model.config)``), and only files with a suffix in
:data:`tfuq.runtime.photo.IMAGE_SUFFIXES` count.

Example::

    >>> from tfuq.data import datasets
    >>> datasets.parse_spec("cifar100_corrupted/fog_3:npz:test.npz")
    Spec(source='npz', target='test.npz', corruption='fog', severity=3)
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tfuq._files import file_kind
from tfuq.data.common import CIFAR100_LABELS, DataError, check_images, check_labels
from tfuq.data.featureless import MAX_COUNT as _FEATURELESS_MAX
from tfuq.data.featureless import featureless
from tfuq.runtime import photo
from tfuq.runtime.photo import IMAGE_SUFFIXES

__all__ = [
    "LabelledImages",
    "Spec",
    "balanced_indices",
    "class_folder_files",
    "load_folder",
    "load_npz",
    "load_spec",
    "parse_spec",
    "representative",
    "resize",
]


_LOCAL_SOURCES = ("npz", "folder")
_BEAM_SOURCES = ("files", "tfrecord")  # read by the Beam pipelines only
FEATURELESS = "featureless"  # generated here (tfuq.data.featureless), never read by Beam
ALL_CORRUPTIONS = "*"  # cifar100_corrupted/*:test, every corruption at every severity
_CIFAR100_SPLITS = ("train", "test")


def load_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Read ``(images, labels or None, label names or None)`` from an ``.npz``.

    Never unpickles: object arrays are refused. Any damage to the file (not a zip, a
    truncated or corrupt member, a plain ``.npy``) is a :class:`DataError`.
    """
    path = Path(path)
    try:
        kind = file_kind(path)
    except (OSError, ValueError):  # not a path at all: too long, a NUL character
        kind = None
    if kind is not None:  # a FIFO would block, a link to /dev/zero never end
        raise DataError(f"data file {path} is {kind}, not a regular file")
    if not _is_file(os.fspath(path)):
        raise DataError(f"data file not found: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except _NPZ_ERRORS as error:
        raise DataError(f"cannot read {path} as .npz: {_reason(error)}") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path} holds a single array (.npy), not an .npz with arrays x and y")
    try:
        with archive as data:
            if "x" not in data:
                raise DataError(f"{path} has no array named 'x'")
            images = data["x"]
            labels = data["y"] if "y" in data else None
            names = next((data[k] for k in ("label_names", "fine_names") if k in data), None)
    except DataError:
        raise
    except _NPZ_ERRORS as error:
        raise DataError(f"cannot read {path} as .npz: {_reason(error)}") from error
    images = check_images(images, f"{path}: x")
    if names is not None and (names.ndim != 1 or names.dtype.kind not in "US"):
        raise DataError(f"{path}: label names must be a vector of strings, got {names.dtype} {names.shape}")
    if labels is not None:
        labels = check_labels(labels, len(images), None if names is None else len(names))
    return images, labels, None if names is None else [str(n) for n in names]


# What numpy and zipfile raise on a damaged .npz (a pickle refused is a ValueError; zipfile
# raises NotImplementedError for a compression method it lacks, so it is caught, not a stub).
_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
               RuntimeError, KeyError, MemoryError, struct.error, OverflowError)


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def resize(
    images: np.ndarray, size: tuple[int, int], rule: photo.PhotoRule = photo.RULE
) -> np.ndarray:
    """uint8 NHWC images brought to ``(height, width)`` by the photo rule, image by image:
    centre crop to the aspect ratio, then Pillow's bilinear (:mod:`tfuq.runtime.photo`), so an
    array and the same picture saved as a file give the model the same input. ``rule`` is the
    model's (``photo.rule_of(model.config)``; the default is the current rule). A no-op at
    that size. Needs Pillow.
    """
    images = np.asarray(images)
    if images.shape[1:3] == tuple(size):
        return images
    target = _check_size(size)
    try:
        return np.stack([photo.prepare(image, target, rule) for image in images]) if len(images) else (
            np.zeros((0, *target, 3), np.uint8))
    except photo.PhotoError as error:
        raise DataError(f"cannot resize images {images.shape[1:3]} to {target}: {error}") from None


class LabelledImages(NamedTuple):
    """uint8 ``(N, H, W, 3)`` images, int64 labels (or None) and label names (or None)."""

    images: np.ndarray
    labels: np.ndarray | None
    label_names: list[str] | None


@dataclass(frozen=True)
class Spec:
    """A parsed dataset spec: where the images come from and an optional corruption.

    ``source`` is ``cifar100``, ``cifar100_corrupted`` (the tfds builder), ``npz``,
    ``folder``, ``files``, ``tfrecord`` or ``featureless``; ``target`` the split, path, glob
    or (``featureless``) the image count.
    ``corruption``/``severity`` are set for ``cifar100_corrupted/...`` specs, applied by tfds
    for ``source="cifar100_corrupted"`` and here, by :func:`tfuq.data.corruptions.corrupt`,
    for the other sources; ``corruption`` is ``"*"`` (severity None) for every set at once.
    """

    source: str
    target: str
    corruption: str | None = None
    severity: int | None = None

    @property
    def config(self) -> str | None:
        """The ``<corruption>_<severity>`` tfds config name (``*`` for all), or None."""
        if self.corruption is None or self.corruption == ALL_CORRUPTIONS:
            return self.corruption
        return f"{self.corruption}_{self.severity}"


def parse_spec(spec: str) -> Spec:
    """Parse a dataset spec such as ``cifar100:test`` or ``cifar100_corrupted/fog_3:npz:x.npz``.

    A path ending ``.npz`` without a source, or any path to an existing file, reads as
    ``npz:<path>``.

    Raises:
        DataError: unknown source, split, corruption or severity, or an empty path.
    """
    if isinstance(spec, str) and (
        (":" not in spec and spec.endswith(".npz")) or _is_file(spec)
    ):
        return Spec("npz", spec)
    if not isinstance(spec, str) or ":" not in spec:
        raise DataError(
            f"dataset spec {spec!r} is not <source>:<split or path>; try cifar100:test, "
            "npz:data.npz, folder:images/ or cifar100_corrupted/fog_3:test"
        )
    source, _, target = spec.partition(":")
    if source.startswith("cifar100_corrupted/") or source == "cifar100_corrupted":
        from tfuq.data.corruptions import parse_config_name

        config = source.partition("/")[2]
        if not config:
            raise DataError(
                f"dataset spec {spec!r} needs a config: cifar100_corrupted/<corruption>_<severity>"
            )
        if config == ALL_CORRUPTIONS:
            if target != "test":
                raise DataError(f"cifar100_corrupted has only a test split, got {target!r} in {spec!r}")
            return Spec("cifar100_corrupted", target, ALL_CORRUPTIONS)
        corruption, severity = parse_config_name(config)
        inner_source = target.partition(":")[0]
        if inner_source in _LOCAL_SOURCES or inner_source in ("cifar100", FEATURELESS):
            inner = parse_spec(target)
            return Spec(inner.source, inner.target, corruption, severity)
        if inner_source.startswith("cifar100_corrupted"):
            raise DataError(f"dataset spec {spec!r} corrupts twice")
        if _split_name(target) != "test":
            raise DataError(f"cifar100_corrupted has only a test split, got {target!r} in {spec!r}")
        return Spec("cifar100_corrupted", target, corruption, severity)
    if source == "cifar100":
        if _split_name(target) not in _CIFAR100_SPLITS:
            raise DataError(f"cifar100 has splits train and test, got {target!r} in {spec!r}")
        return Spec("cifar100", target)
    if source == FEATURELESS:
        _featureless_count(target, spec)
        return Spec(source, target)
    if source in _LOCAL_SOURCES or source in _BEAM_SOURCES:
        if not target:
            raise DataError(f"dataset spec {spec!r} names no path")
        return Spec(source, target)
    known = ", ".join(["cifar100", "cifar100_corrupted/<corruption>_<severity>", *_LOCAL_SOURCES,
                       *_BEAM_SOURCES, f"{FEATURELESS}:<count>"])
    raise DataError(f"unknown dataset source {source!r} in {spec!r}; known: {known}")


def _featureless_count(target: str, spec: str | None = None) -> int:
    """The image count of a ``featureless:<count>`` spec (``target`` is what follows the
    colon), checked: a whole number in 1..:data:`tfuq.data.featureless.MAX_COUNT`.

    Raises:
        DataError: anything else, in one line naming the spec.
    """
    spec = f"{FEATURELESS}:{target}" if spec is None else spec
    text = target.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= _FEATURELESS_MAX:
        raise DataError(f"dataset spec {spec!r}: featureless takes an image count, a whole number "
                        f"in 1..{_FEATURELESS_MAX:,}, e.g. featureless:500")
    return int(text)


def load_spec(
    spec: str | Spec,
    limit: int | None = None,
    size: tuple[int, int] | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: Callable[[int, int], None] | None = None,
    photo_rule: photo.PhotoRule = photo.RULE,
) -> LabelledImages:
    """Load the images a dataset spec names (see the module docstring for the forms).

    Args:
        spec: e.g. ``"cifar100:test"``, ``"npz:data.npz"``, ``"folder:photos/"``,
            ``"cifar100_corrupted/fog_3:test"``, ``"cifar100_corrupted/fog_3:npz:test.npz"``
            or ``"featureless:500"``.
        limit: keep at most this many images, a seeded uniform draw without replacement kept
            in the original order (files sorted by class stay sorted, but hold all classes).
        size: ``(height, width)`` to bring images to by the photo rule (centre crop, bilinear);
            folders need it when their images differ in size, ``featureless`` specs always.
            Corruptions are applied before resizing, at the size the data comes in.
        seed: seeds the ``limit`` draw, corruptions applied here and featureless images.
            Image ``i`` of the source always gets the same corruption, whatever ``limit``
            keeps; with the default 0 a corrupted ``cifar100:test`` equals what the tfds
            builder generates.
        data_dir: tfds data folder (default: tfds' own, ``~/tensorflow_datasets``).
        download: let tfds download CIFAR-100 when it is not prepared yet.
        progress: ``progress(done, total)`` while corrupting here (per 5,000 32x32 images on
            one core: 1-20 s for most corruptions, up to 90 s for zoom_blur at severity 5).
        photo_rule: how image files and arrays of another size become ``size``: the model's
            (``photo.rule_of(model.config)``); the default is the current rule.

    Returns:
        :class:`LabelledImages` with uint8 NHWC images, int64 labels (None for an ``.npz``
        without ``y`` and for featureless images) and label names (None when the source has
        none).

    Raises:
        DataError: bad spec, unreadable or invalid data, missing tensorflow-datasets, a
            source only the Beam pipelines read.
    """
    parsed = spec if isinstance(spec, Spec) else parse_spec(spec)
    if parsed.source in _BEAM_SOURCES or parsed.corruption == ALL_CORRUPTIONS:
        raise DataError(f"{parsed.source}:{parsed.target} data (or cifar100_corrupted/*) is read "
                        "by the Beam pipelines only: add --runner direct")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1
    ):
        raise DataError(f"limit must be a positive integer, got {limit!r}")
    size = None if size is None else _check_size(size)  # before anything is read
    if parsed.source == FEATURELESS:
        if size is None:
            raise DataError(f"{FEATURELESS}:{parsed.target} images are generated at a size: "
                            "give one (the model's input)")
        loaded = LabelledImages(featureless(_featureless_count(parsed.target), size, seed), None, None)
    elif parsed.source == "npz":
        loaded = LabelledImages(*load_npz(parsed.target))
    elif parsed.source == "folder":
        loaded = load_folder(parsed.target, size=size, photo_rule=photo_rule)
    elif parsed.source == "cifar100":
        loaded = _load_cifar100("cifar100", parsed.target, data_dir, download)
    elif parsed.source == "cifar100_corrupted":
        import tfuq.data.cifar100_corrupted  # noqa: F401  (registers the builder with tfds)

        loaded = _load_cifar100(
            f"cifar100_corrupted/{parsed.config}", parsed.target, data_dir, download
        )
    else:
        raise DataError(f"unknown dataset source {parsed.source!r}")
    keep = _subset(len(loaded.images), limit, seed)
    images = loaded.images if keep is None else loaded.images[keep]
    labels = loaded.labels if keep is None or loaded.labels is None else loaded.labels[keep]
    if parsed.corruption is not None and parsed.source != "cifar100_corrupted":
        from tfuq.data.corruptions import corrupt

        index = np.arange(len(loaded.images)) if keep is None else keep
        images = corrupt(
            images, parsed.corruption, parsed.severity, seed=seed, index=index, progress=progress
        )
    if size is not None:
        images = resize(images, size, photo_rule)
    return LabelledImages(images, labels, loaded.label_names)


def class_folder_files(path: str | os.PathLike) -> tuple[list[tuple[Path, int]], list[str]]:
    """``([(image file, label)], class names)`` of a folder with one subfolder per class.

    Labels follow the sorted names of the subfolders; the files are those directly in each,
    sorted, whose suffix is in :data:`~tfuq.runtime.photo.IMAGE_SUFFIXES`. Hidden folders and
    files (a leading dot) are skipped. The one folder reader: :func:`load_folder` and the Beam
    pipelines (``folder:`` data) both list files with it.

    Raises:
        DataError: no such folder, no class subfolders, or a class without images.
    """
    root = Path(path)
    try:
        found = root.is_dir()
    except (OSError, ValueError):  # a name too long for the file system, a NUL character
        found = False
    if not found:
        raise DataError(f"image folder not found: {root}")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no class subfolders (expected {root}/<class>/<image>)")
    found = []
    for label, folder in enumerate(classes):
        files = sorted(
            f
            for f in folder.iterdir()
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DataError(f"class folder {folder} holds no images")
        found += [(file, label) for file in files]
    return found, [p.name for p in classes]


def load_folder(
    path: str | os.PathLike,
    size: tuple[int, int] | None = None,
    photo_rule: photo.PhotoRule = photo.RULE,
) -> LabelledImages:
    """Read a folder with one subfolder of images per class; labels follow sorted folder names.

    Images become model inputs by ``photo_rule`` (:mod:`tfuq.runtime.photo`, the model's, as
    ``tfuq predict`` reads them): decoded with Pillow, turned upright by their EXIF
    orientation, alpha over white and, when ``size`` (``(height, width)``) is given, brought
    to it (the current rule: centre-cropped to its aspect ratio and resized bilinearly). The
    files are those :func:`class_folder_files` lists.

    Raises:
        DataError: no such folder, no class subfolders, a class without images, an unreadable
            image, or images of different sizes without ``size``.
    """
    files, classes = class_folder_files(path)
    target = None if size is None else _check_size(size)
    images, labels = [], []
    for file, label in files:
        try:
            images.append(photo.read(file, target, photo_rule))
        except photo.PhotoError as error:
            raise DataError(f"cannot read image {file}: {error}") from error
        labels.append(label)
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise DataError(
            f"images in {path} differ in size ({len(shapes)} sizes); give a size to resize them to"
        )
    return LabelledImages(np.stack(images), np.asarray(labels, dtype=np.int64), classes)


def balanced_indices(labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Indices of ``count`` samples drawn class by class, seeded, without replacement.

    Classes take turns in a seeded order, each giving a random sample it has not given yet, so
    every prefix of the result is balanced too: per-class counts differ by at most one, until
    a class runs out of samples and the others fill in.

    Example:
        >>> labels = np.array([0, 0, 0, 0, 1, 1, 2])
        >>> np.bincount(labels[balanced_indices(labels, 5)], minlength=3).tolist()
        [2, 2, 1]

    Raises:
        DataError: ``count`` is not positive or exceeds the number of samples.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"labels must be an integer vector, got {labels.dtype} {labels.shape}")
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise DataError(f"count must be a positive integer, got {count!r}")
    if count > len(labels):
        raise DataError(f"cannot draw {count} samples from {len(labels)}")
    rng = np.random.default_rng(seed)
    classes = rng.permutation(np.unique(labels))
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    deepest = max(len(pool) for pool in pools)
    # turn t takes the t-th sample of every class that still has one, classes in seeded order
    table = np.full((deepest, len(pools)), -1, dtype=np.int64)
    for column, pool in enumerate(pools):
        table[: len(pool), column] = pool
    order = table.ravel()
    return order[order >= 0][:count]


def representative(
    spec: str = "cifar100:train",
    count: int = 200,
    seed: int = 0,
    size: tuple[int, int] | None = None,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> LabelledImages:
    """A class-balanced, seeded draw of ``count`` images for int8 calibration.

    The images come from the spec (by default the CIFAR-100 training split) and are drawn by
    :func:`balanced_indices`, so any prefix is balanced as well (``tfuq.conversion.convert`` calibrates
    on the first images and checks on the rest). A spec without labels (an ``.npz`` without
    ``y``) gives a seeded uniform draw.

    Example (needs the file)::

        calibration = representative("npz:train.npz", count=500, size=(224, 224))
        calibration.images.shape  # (500, 224, 224, 3), 5 per class for 100 classes
    """
    loaded = load_spec(spec, seed=seed, data_dir=data_dir, download=download)
    if loaded.labels is None:
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
            raise DataError(f"count must be a positive integer, got {count!r}")
        if count > len(loaded.images):
            raise DataError(f"cannot draw {count} samples from {len(loaded.images)}")
        chosen = np.random.default_rng(seed).permutation(len(loaded.images))[:count]
    else:
        chosen = balanced_indices(loaded.labels, count, seed)
    images = loaded.images[chosen]
    if size is not None:
        images = resize(images, _check_size(size))
    labels = None if loaded.labels is None else loaded.labels[chosen]
    return LabelledImages(images, labels, loaded.label_names)


def _is_file(path: str) -> bool:
    """Whether ``path`` names an existing file; False for what cannot be a path at all (a
    name too long for the file system, a NUL character)."""
    try:
        return bool(path) and Path(path).is_file()
    except (OSError, ValueError):
        return False


def _split_name(split: str) -> str:
    """``"train[:10%]"`` -> ``"train"``."""
    return split.partition("[")[0].strip()


_MAX_SIDE = 16384  # pixels, as tfuq.runtime.modelfile allows for a model input


def _check_size(size) -> tuple[int, int]:
    try:
        height, width = size
    except (TypeError, ValueError):
        raise DataError(f"size must be (height, width), got {size!r}") from None
    for side in (height, width):
        if isinstance(side, bool) or not isinstance(side, int | np.integer):
            raise DataError(f"size must be two whole numbers of pixels, got {size!r}")
        if not 1 <= side <= _MAX_SIDE:
            raise DataError(f"size must be in [1, {_MAX_SIDE}] pixels, got {size!r}")
    return int(height), int(width)


def _subset(total: int, limit: int | None, seed: int) -> np.ndarray | None:
    """Sorted indices of a seeded draw of ``limit`` out of ``total``, None for all."""
    if limit is None or limit >= total:
        return None
    return np.sort(np.random.default_rng(seed).choice(total, size=limit, replace=False))


def _load_cifar100(
    name: str, split: str, data_dir: str | os.PathLike | None, download: bool
) -> LabelledImages:
    """Read a whole split of a CIFAR-100-labelled tfds dataset into memory."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError(f"{name} needs tensorflow-datasets: pip install 'tfuq[convert]'") from None
    try:
        dataset = tfds.load(
            name, split=split, as_supervised=True, data_dir=data_dir, download=download
        )
        images, labels = [], []
        for image_batch, label_batch in tfds.as_numpy(dataset.batch(1024)):
            images.append(image_batch)
            labels.append(label_batch)
    except Exception as error:  # tfds raises many types; the user needs the first line
        message = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DataError(f"cannot load {name} split {split!r}: {message}") from error
    if not images:
        raise DataError(f"{name} split {split!r} holds zero samples")
    images = check_images(np.concatenate(images), f"{name}:{split}")
    labels = check_labels(
        np.concatenate(labels).astype(np.int64), len(images), len(CIFAR100_LABELS)
    )
    return LabelledImages(images, labels, list(CIFAR100_LABELS))
