"""Outlier images: the "none of these" set for outlier exposure, from one or more specs.

``tfuq train``, ``tfuq attach`` and ``tfuq fit`` all take ``--outliers SPEC`` (repeatable) and
read it here, into one uint8 array at the size the training images have. A spec is any of:

- a dataset spec of :func:`tfuq.data.load_spec` (``npz:other.npz``, ``folder:photos/``,
  ``cifar100:test``, ...), its labels ignored;
- a flat folder of photos, without class subfolders (``folder:PATH/``, ``files:PATH/`` or the
  bare ``PATH/``), the files directly in it whose suffix is in
  :data:`~tfuq.runtime.photo.IMAGE_SUFFIXES`; ``files:`` also takes a glob
  (``files:shots/*.jpg``);
- ``featureless:<count>``: that many generated images of nothing (:mod:`tfuq.data.featureless`).

Photos are read by the photo rule the caller names (the model's), brought to ``size`` as
``tfuq predict`` brings them to the model. Example::

    >>> from tfuq.data.outliers import load_outliers
    >>> load_outliers(["featureless:6"], (32, 32), seed=0).shape
    (6, 32, 32, 3)
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfuq.data.common import DataError
from tfuq.data.datasets import ALL_CORRUPTIONS, FEATURELESS, _check_size, load_spec, parse_spec
from tfuq.runtime import photo
from tfuq.runtime.photo import IMAGE_SUFFIXES

__all__ = ["MAX_BYTES", "load_outliers"]

MAX_BYTES = 4 * 2**30  # of outlier pixels in memory: 80,000 images at 128x128, 28,000 at 224x224


def load_outliers(
    specs: str | Sequence[str],
    size: tuple[int, int],
    seed: int = 0,
    photo_rule: photo.PhotoRule = photo.RULE,
    data_dir: str | os.PathLike | None = None,
) -> np.ndarray:
    """The images of every spec in ``specs``, in the order given, as one uint8 array
    ``(N, height, width, 3)`` at ``size``.

    Args:
        specs: one spec or several (see the module docstring); a spec given twice is refused.
        size: ``(height, width)`` of the training images: every spec is brought to it.
        seed: seeds featureless images and anything :func:`~tfuq.data.load_spec` draws.
        photo_rule: how photos become ``size`` (the model's, ``photo.rule_of(model.config)``).
        data_dir: tfds data folder for ``cifar100`` specs.

    Raises:
        DataError: no spec, a spec given twice, or a spec that cannot be read; one line that
            starts with the spec.
    """
    specs = [specs] if isinstance(specs, str) else list(specs)
    if not specs:
        raise DataError("no outlier spec given")
    size = _check_size(size)
    seen = set()
    parts = []
    for spec in specs:
        if not isinstance(spec, str) or not spec:
            raise DataError(f"an outlier spec must be a non-empty string, got {spec!r}")
        if spec in seen:
            raise DataError(f"outliers {spec}: given twice")
        seen.add(spec)
        try:
            parts.append(_load_one(spec, size, seed, photo_rule, data_dir,
                                   MAX_BYTES - sum(part.nbytes for part in parts)))
        except DataError as error:
            raise DataError(f"outliers {spec}: {error}") from None
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _photo_files(spec: str) -> list[Path] | None:
    """The photo files an unlabelled spec names, sorted; None when ``spec`` is not one (a
    folder with class subfolders, or another source).

    ``folder:PATH`` and a bare ``PATH`` without class subfolders: the photos directly in it.
    ``files:``: as the Beam pipelines read it, a folder (recursively), one file or a glob.

    Raises:
        DataError: nothing to read there, or no photos.
    """
    source, _, target = spec.partition(":")
    if source == "files":
        if any(char in target for char in "*?["):
            files = sorted(Path(p) for p in glob.glob(target, recursive=True))
        elif Path(target).is_file():
            files = [Path(target)]
        elif Path(target).is_dir():
            files = sorted(Path(target).rglob("*"))
        else:
            raise DataError(f"not a folder, file or glob pattern: {target}")
    else:
        folder = Path(target if source == "folder" else spec)
        if (source != "folder" and ":" in spec) or not _is_dir(folder):
            return None
        entries = sorted(folder.iterdir())
        if any(p.is_dir() and not p.name.startswith(".") for p in entries):
            return None  # class subfolders: a labelled folder, read by load_spec
        files = entries
    files = [p for p in files
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DataError(f"no images in {target or spec} (suffixes {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long for the file system, a NUL character
        return False


def _load_one(spec, size, seed, photo_rule, data_dir, budget) -> np.ndarray:
    """One spec's images at ``size``; ``budget`` is how many more bytes of pixels may be held."""
    files = _photo_files(spec)
    if files is None:
        parsed = parse_spec(f"folder:{spec}" if ":" not in spec and _is_dir(Path(spec)) else spec)
        if parsed.source == "tfrecord" or parsed.corruption == ALL_CORRUPTIONS:
            raise DataError("only the Beam pipelines read this source; outliers are read into memory")
        if parsed.source == FEATURELESS:  # known before anything is made
            _check_budget(int(parsed.target) * size[0] * size[1] * 3, budget)
        images = load_spec(parsed, size=size, seed=seed, data_dir=data_dir, photo_rule=photo_rule).images
        _check_budget(images.nbytes, budget)
        return images
    _check_budget(len(files) * size[0] * size[1] * 3, budget)
    images = np.empty((len(files), *size, 3), np.uint8)
    for index, file in enumerate(files):
        try:
            images[index] = photo.read(file, size, photo_rule)
        except photo.PhotoError as error:
            raise DataError(f"cannot read image {file}: {error}") from None
    return images


def _check_budget(needed: int, budget: int) -> None:
    if needed > budget:
        raise DataError(f"{needed / 2**30:.1f} GiB of pixels at this size is more than the "
                        f"{MAX_BYTES / 2**30:.0f} GiB all outliers may hold; use fewer images")
