"""Check a folder of photos in class subfolders before anything trains.

A training run that fails on its 900th image after the feature cache is built wastes the
user's afternoon: :func:`scan` opens every file's header first (Pillow reads the header only,
so this is cheap), lists every file it cannot read and every class with too few images, and
gives the sizes found so the loader knows whether images must be resized.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tfuq.data.datasets import IMAGE_SUFFIXES

MIN_PER_CLASS = 10  # the four parts of the split need a few images of each class


class FolderError(ValueError):
    """A folder that cannot make a model: the message lists every problem found."""


@dataclass
class FolderScan:
    """What :func:`scan` found: class names (sorted folder names) and their readable files."""

    root: Path
    classes: list[str]
    files: dict[str, list[Path]]
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    sizes: Counter = field(default_factory=Counter)  # (height, width) -> images

    @property
    def images(self) -> int:
        return sum(len(files) for files in self.files.values())

    def one_size(self) -> tuple[int, int] | None:
        """The images' ``(height, width)`` when they all have one size, else None."""
        return next(iter(self.sizes)) if len(self.sizes) == 1 else None


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir()
                  if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES)


def scan(path: str | os.PathLike, min_per_class: int = MIN_PER_CLASS, shown: int = 10) -> FolderScan:
    """Open every image header of ``path/<class>/<image>`` and refuse a folder that cannot train.

    Raises:
        FolderError: no such folder, no class subfolders, unreadable files (the first
            ``shown`` listed, with the count), fewer than two classes, or classes with fewer
            than ``min_per_class`` readable images (each named with its count).
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(path)
    if not root.is_dir():
        raise FolderError(f"image folder not found: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise FolderError(f"{root} has no class subfolders (expected {root}/<class>/<image>)")
    result = FolderScan(root, [p.name for p in folders], {})
    for folder in folders:
        readable = []
        for file in _image_files(folder):
            try:
                with Image.open(file) as image:
                    image.verify()  # header and structure; the pixels are decoded at load
                    width, height = image.size
            except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
                result.unreadable.append((file, str(error).splitlines()[0] if str(error) else type(error).__name__))
                continue
            readable.append(file)
            result.sizes[(height, width)] += 1
        result.files[folder.name] = readable
    problems = []
    if result.unreadable:
        listed = "; ".join(f"{file} ({why})" for file, why in result.unreadable[:shown])
        more = f" and {len(result.unreadable) - shown} more" if len(result.unreadable) > shown else ""
        problems.append(f"{len(result.unreadable)} unreadable file(s): {listed}{more}")
    if len(folders) < 2:
        problems.append(f"one class only ({folders[0].name}); a classifier needs at least two")
    small = [(name, len(files)) for name, files in result.files.items() if len(files) < min_per_class]
    if small:
        listed = ", ".join(f"{name} ({count})" for name, count in small[:shown])
        more = f" and {len(small) - shown} more" if len(small) > shown else ""
        problems.append(f"{len(small)} class(es) with fewer than {min_per_class} images: {listed}{more}")
    if problems:
        raise FolderError(f"{root} cannot train a model: " + " | ".join(problems))
    return result
