"""The per-class seeded split into train / validation / calibration / test, made once.

The calibration images must be ones the model never saw (the guarantee of
:func:`tfuq.runtime.abstain.calibrate` needs it) and the test images ones that neither
training nor calibration saw, so the split happens before anything trains and is saved
(``split.json``) so a resumed run, and the user, see the same one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

PARTS = ("train", "validation", "calibration", "test")
FRACTIONS = {"train": 0.6, "validation": 0.1, "calibration": 0.15, "test": 0.15}
SPLIT_FORMAT = "tfuq-split"


def check_fractions(fractions: dict[str, float]) -> dict[str, float]:
    """The shares of the four parts, each in (0, 1), summing to 1 (within 1e-6)."""
    if set(fractions) != set(PARTS):
        raise ValueError(f"the split needs shares for {', '.join(PARTS)}, got {', '.join(fractions)}")
    for name, share in fractions.items():
        if not 0.0 < share < 1.0:
            raise ValueError(f"the {name} share must be in (0, 1), got {share}")
    if abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ValueError(f"the split shares must sum to 1, got {sum(fractions.values()):.4f}")
    return {name: float(fractions[name]) for name in PARTS}


def counts_for(size: int, fractions: dict[str, float]) -> dict[str, int]:
    """Images of one class of ``size`` in each part.

    Validation, calibration and test each get ``round(share * size)`` but at least one image;
    training gets the rest. A class of ``size`` < 4 cannot fill the four parts.

    >>> counts_for(30, FRACTIONS)
    {'train': 19, 'validation': 3, 'calibration': 4, 'test': 4}
    >>> counts_for(4, FRACTIONS)
    {'train': 1, 'validation': 1, 'calibration': 1, 'test': 1}
    """
    if size < len(PARTS):
        raise ValueError(f"a class needs at least {len(PARTS)} images for the four parts, got {size}")
    held = {name: max(1, int(round(fractions[name] * size))) for name in PARTS[1:]}
    # A small class keeps at least one training image: take back from the largest part.
    while size - sum(held.values()) < 1:
        largest = max(held, key=lambda name: (held[name], name))
        held[largest] -= 1
    return {"train": size - sum(held.values()), **held}


def split(labels: np.ndarray, fractions: dict[str, float] | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Sorted indices of each part; every class is shuffled (seeded) and cut on its own.

    >>> parts = split(np.repeat([0, 1], 10), seed=0)
    >>> {name: len(index) for name, index in parts.items()}
    {'train': 10, 'validation': 2, 'calibration': 4, 'test': 4}
    """
    fractions = check_fractions(fractions or FRACTIONS)
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 7])
    parts: dict[str, list[np.ndarray]] = {name: [] for name in PARTS}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        counts = counts_for(len(members), fractions)
        ends = np.cumsum([counts[name] for name in PARTS])[:-1]
        for name, chunk in zip(PARTS, np.split(members, ends), strict=True):
            parts[name].append(chunk)
    return {name: np.sort(np.concatenate(chunks)).astype(np.int64) for name, chunks in parts.items()}


def save(path: str | os.PathLike, parts: dict[str, np.ndarray], labels: np.ndarray,
         names: list[str], files: list[str] | None = None, **extra) -> None:
    """Write the split as JSON: per part the indices, and the file names when given."""
    from tfuq.runtime.modelfile import atomic_output

    payload = {"format": SPLIT_FORMAT, "classes": list(names), **extra, "parts": {}}
    for name, index in parts.items():
        entry = {"count": int(len(index)), "per_class": np.bincount(labels[index], minlength=len(names)).tolist(),
                 "indices": index.tolist()}
        if files is not None:
            entry["files"] = [files[i] for i in index]
        payload["parts"][name] = entry
    with atomic_output(Path(path), "w") as handle:
        json.dump(payload, handle, indent=1)
        handle.write("\n")


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The part indices of a split written by :func:`save`."""
    payload = json.loads(Path(path).read_text())
    if payload.get("format") != SPLIT_FORMAT:
        raise ValueError(f"{path} is not a tfuq split file")
    return {name: np.asarray(payload["parts"][name]["indices"], dtype=np.int64) for name in PARTS}
