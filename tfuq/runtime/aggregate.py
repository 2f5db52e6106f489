"""From MC-dropout passes to per-image numbers: mean, spread, prediction and uncertainty.

NumPy only, so it runs on a Raspberry Pi beside the interpreter; the Kotlin core in
``android_demo/uqcore`` computes the same numbers from the definitions below, and both read the
vectors in ``tests/vectors/aggregate.json``.

MC outputs are ``(passes, batch, classes)``, or ``(passes, classes)`` for a single image.
With ``T`` passes and probabilities ``p[t, c]`` of one image (natural logarithms,
``0 * ln 0 = 0``, ties going to the lowest class index):

- ``mean[c]`` = mean over passes of ``p[t, c]``; ``std[c]`` = population standard deviation
  over passes (divide by ``T``, so one pass gives 0).
- ``predicted`` = argmax of ``mean``; ``max_probability`` = max of ``mean``.
- ``predictive_entropy`` = ``-sum_c mean[c] ln mean[c]``;
  ``expected_entropy`` = mean over passes of ``-sum_c p[t, c] ln p[t, c]``;
  ``mutual_information`` (BALD) = ``predictive_entropy - expected_entropy``.
- ``variation_ratio`` = 1 - (passes whose argmax is the mode of the per-pass argmaxes) / T.
- ``lower[c]`` = ``mean[c] - conf_factor * std[c]``; ``upper[c]`` = ``mean[c] + conf_factor * std[c]``.

Probabilities are used as given: they are not renormalized, because an int8 softmax output
sums to 1 only within its quantization step.

    >>> import numpy as np
    >>> two_passes = np.array([[1.0, 0.0], [0.0, 1.0]])     # (passes, classes)
    >>> result = aggregate(two_passes)
    >>> round(float(result.mutual_information), 6)           # ln 2
    0.693147
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

SCORES = ("max_probability", "predictive_entropy", "mutual_information", "variation_ratio")
# The per-image arrays of an Aggregate, batch axis first, in field order; the last two follow
# from mean, std and conf_factor, so records (Beam's) need not store them.
COLUMNS = (
    "mean",
    "std",
    "predicted",
    "max_probability",
    "predictive_entropy",
    "expected_entropy",
    "mutual_information",
    "variation_ratio",
    "lower",
    "upper",
)
DERIVED_COLUMNS = ("lower", "upper")

# Softmax outputs in float32 may exceed 1 by a rounding step; anything more is not a probability.
_ABOVE_ONE_TOLERANCE = 1e-6
# float64 values per block of work (2 MB): small enough that the temporaries stay in cache,
# which measured about twice as fast as 6 MB blocks at T=30, C=100.
_BLOCK_ELEMENTS = 2**18


@dataclass(frozen=True)
class Aggregate:
    """Per-image summaries of MC passes.

    Every array has the batch as its first axis when the input was ``(passes, batch,
    classes)``; for a single image ``(passes, classes)`` the batch axis is absent (the
    per-class arrays are ``(classes,)``, the scores are 0-d arrays). Floats are float64,
    ``predicted`` is int64.
    """

    mean: np.ndarray  # (batch, classes)
    std: np.ndarray  # (batch, classes), population standard deviation over passes
    predicted: np.ndarray  # (batch,)
    max_probability: np.ndarray  # (batch,)
    predictive_entropy: np.ndarray  # (batch,)
    expected_entropy: np.ndarray  # (batch,)
    mutual_information: np.ndarray  # (batch,)
    variation_ratio: np.ndarray  # (batch,)
    lower: np.ndarray  # (batch, classes): mean - conf_factor * std
    upper: np.ndarray  # (batch, classes): mean + conf_factor * std
    passes: int
    conf_factor: float

    @property
    def classes(self) -> int:
        return int(self.mean.shape[-1])

    def score(self, name: str) -> np.ndarray:
        """The uncertainty score ``name``, one of :data:`SCORES`."""
        if name not in SCORES:
            raise ValueError(f"unknown score {name!r}; choose one of {', '.join(SCORES)}")
        return getattr(self, name)

    def interval(self, conf_factor: float) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` = ``mean -/+ conf_factor * std`` for another factor."""
        conf_factor = _check_conf_factor(conf_factor)
        spread = conf_factor * self.std
        return self.mean - spread, self.mean + spread

    def columns(self, derived: bool = True) -> dict[str, np.ndarray]:
        """The per-image arrays by name, in :data:`COLUMNS` order; without ``lower`` and
        ``upper`` when ``derived`` is False (:meth:`from_columns` recomputes them)."""
        return {
            name: getattr(self, name)
            for name in COLUMNS
            if derived or name not in DERIVED_COLUMNS
        }

    @classmethod
    def from_columns(
        cls, columns: Mapping[str, np.ndarray], *, passes: int, conf_factor: float
    ) -> Aggregate:
        """The inverse of :meth:`columns`: arrays (or nested lists) by name.

        ``lower`` and ``upper`` are taken when both are given, else computed as
        ``mean -/+ conf_factor * std``. Raises ValueError naming a missing column.
        """
        missing = [
            name for name in COLUMNS if name not in DERIVED_COLUMNS and name not in columns
        ]
        if missing:
            raise ValueError(f"aggregate columns missing: {', '.join(missing)}")
        values = {
            name: np.asarray(columns[name], dtype=np.int64 if name == "predicted" else np.float64)
            for name in COLUMNS
            if name not in DERIVED_COLUMNS
        }
        if all(name in columns for name in DERIVED_COLUMNS):
            lower = np.asarray(columns["lower"], dtype=np.float64)
            upper = np.asarray(columns["upper"], dtype=np.float64)
        else:
            spread = conf_factor * values["std"]
            lower, upper = values["mean"] - spread, values["mean"] + spread
        return cls(**values, lower=lower, upper=upper, passes=passes, conf_factor=conf_factor)

    def take(self, index) -> Aggregate:
        """The images at ``index`` along the batch axis: a boolean mask, indices or a slice
        give a batch, an int gives one image (0-d scores, ``(classes,)`` arrays)."""
        return Aggregate(
            **{name: value[index, ...] for name, value in self.columns().items()},
            passes=self.passes,
            conf_factor=self.conf_factor,
        )


def _check_conf_factor(conf_factor: float) -> float:
    """Return ``conf_factor`` as a float after checking it is finite and non-negative."""
    if isinstance(conf_factor, bool) or not isinstance(conf_factor, int | float | np.number):
        raise ValueError(f"conf_factor must be a number, got {type(conf_factor).__name__}")
    conf_factor = float(conf_factor)
    if not np.isfinite(conf_factor) or conf_factor < 0:
        raise ValueError(f"conf_factor must be finite and non-negative, got {conf_factor}")
    return conf_factor


def check_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Return MC probabilities as a ``(passes, batch, classes)`` float array.

    Accepts ``(passes, batch, classes)`` or, for one image, ``(passes, classes)`` (which gains
    a batch axis of 1). Raises ValueError naming the problem: wrong rank, an empty axis,
    non-numbers, NaN or Inf, values below 0 or above 1.
    """
    array = np.asarray(probabilities)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ) or array.dtype == bool:
        raise ValueError(f"probabilities must be a numeric array, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[:, None, :]
    if array.ndim != 3:
        raise ValueError(
            "probabilities must be (passes, batch, classes) or (passes, classes) for one "
            f"image, got shape {np.shape(probabilities)}"
        )
    passes, batch, classes = array.shape
    for size, axis in ((passes, "passes"), (batch, "batch"), (classes, "classes")):
        if size == 0:
            raise ValueError(f"probabilities have no {axis} (shape {np.shape(probabilities)})")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    low, high = array.min(), array.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        bad = "NaN" if np.isnan(array).any() else "Inf"
        raise ValueError(f"probabilities contain {bad}")
    if low < 0:
        raise ValueError(f"probabilities must be >= 0, found {float(low):.6g}")
    if high > 1 + _ABOVE_ONE_TOLERANCE:
        raise ValueError(
            f"probabilities must be <= 1, found {float(high):.6g} (logits instead of softmax?)"
        )
    return array


# np.finfo(dtype).tiny, the smallest normal number, written out: under flush-to-zero (which
# importing tflite-runtime turns on for the whole process on aarch64) numpy 1.x warns "The
# value of the smallest subnormal ... is zero" wherever np.finfo is first asked for a type.
_SMALLEST_NORMAL = {np.dtype(np.float16): 2.0**-14, np.dtype(np.float32): 2.0**-126,
                    np.dtype(np.float64): 2.0**-1022}


def entropy(probabilities: np.ndarray, axis: int = -1) -> np.ndarray:
    """``-sum p ln p`` along ``axis`` with ``0 ln 0 = 0`` (natural log, in nats)."""
    p = np.asarray(probabilities)
    dtype = p.dtype if np.issubdtype(p.dtype, np.floating) else np.dtype(np.float64)
    tiny = _tiny(dtype)
    # ln(max(p, tiny)) keeps log finite; where p == 0 the product is 0 * finite = 0. The
    # logarithm is taken only where p >= tiny, the rest get ln(tiny) by the same ufunc: the
    # same values, but an int8 softmax output of 1000 classes is ~95% zeros, and ln is the
    # costly part (this is what `predict` pays per photo).
    logs = np.full(p.shape, _log_tiny(dtype), dtype=dtype)
    np.log(p, out=logs, where=p >= tiny)
    logs *= p
    return -np.sum(logs, axis=axis)


@functools.cache
def _log_tiny(dtype: np.dtype) -> np.floating:
    """``np.log`` of the smallest normal number of ``dtype``, by the ufunc that takes the
    other logarithms (a pure function of the dtype, so kept)."""
    return np.log(np.full(1, _tiny(dtype), dtype=dtype))[0]


def _tiny(dtype: np.dtype) -> np.floating:
    """The smallest normal number of ``dtype``."""
    return _SMALLEST_NORMAL[dtype] if dtype in _SMALLEST_NORMAL else np.finfo(dtype).tiny


def _mean_over_passes(values: np.ndarray) -> np.ndarray:
    """Mean over axis 0, summed pass after pass, so an image's numbers never depend on its batch.

    ``np.mean(axis=0)`` sums a contiguous axis pairwise but a strided one in order, so one
    image alone, ``(passes, 1)``, and the same image in a batch, ``(passes, batch)``, rounded
    differently in the last bit; this order is the same for every batch size (and is the
    order ``np.mean`` used for batches, so batched results are unchanged).
    """
    total = values[0].copy()
    for row in values[1:]:
        total += row
    return total / len(values)


def aggregate(probabilities: np.ndarray, conf_factor: float = 1.0) -> Aggregate:
    """Summarize MC passes per image, vectorized over the batch.

    Args:
        probabilities: softmax outputs of the passes, ``(passes, batch, classes)``, or
            ``(passes, classes)`` for a single image. float32 or float64, each in [0, 1].
        conf_factor: ``Z`` of the per-class interval ``mean -/+ Z * std``.

    Returns:
        An :class:`Aggregate`; arrays are ``(batch, ...)``, or without the batch axis when a
        single image ``(passes, classes)`` was given.

    Raises:
        ValueError: bad shape, NaN/Inf, values outside [0, 1], or a bad ``conf_factor``.

    Example:
        >>> import numpy as np
        >>> passes = np.array([[[0.5, 0.5]], [[0.5, 0.5]]])  # T=2, one image, 2 classes
        >>> result = aggregate(passes)
        >>> result.predicted.tolist(), result.mutual_information.tolist()
        ([0], [0.0])
    """
    conf_factor = _check_conf_factor(conf_factor)
    single = np.ndim(probabilities) == 2
    p = check_probabilities(probabilities)
    passes, batch, classes = p.shape

    # float64 throughout (int8 outputs arrive as float32; the Kotlin side uses doubles),
    # in blocks of images so the float64 temporaries stay in cache instead of costing
    # gigabytes: the loop is over blocks of images, the work inside is vectorized.
    mean = np.empty((batch, classes))
    std = np.empty((batch, classes))
    expected_entropy = np.empty(batch)
    modal_votes = np.empty(batch, dtype=np.int64)
    images_per_block = max(1, _BLOCK_ELEMENTS // (passes * classes))
    for start in range(0, batch, images_per_block):
        block = p[:, start : start + images_per_block].astype(np.float64, copy=False)
        size = block.shape[1]
        block_mean = _mean_over_passes(block)
        mean[start : start + size] = block_mean
        std[start : start + size] = np.sqrt(_mean_over_passes(np.square(block - block_mean)))
        expected_entropy[start : start + size] = _mean_over_passes(entropy(block))
        # Votes per class: one bincount over (image, class) pairs, no loop over images.
        votes = np.argmax(block, axis=-1) + classes * np.arange(size)[None, :]
        counts = np.bincount(votes.ravel(), minlength=size * classes)
        modal_votes[start : start + size] = counts.reshape(size, classes).max(axis=-1)
    predicted = np.argmax(mean, axis=-1)
    max_probability = np.take_along_axis(mean, predicted[:, None], axis=-1)[:, 0]
    predictive_entropy = entropy(mean)
    mutual_information = predictive_entropy - expected_entropy
    variation_ratio = 1.0 - modal_votes / passes

    spread = conf_factor * std
    result = Aggregate(
        mean=mean,
        std=std,
        predicted=predicted.astype(np.int64),
        max_probability=max_probability,
        predictive_entropy=predictive_entropy,
        expected_entropy=expected_entropy,
        mutual_information=mutual_information,
        variation_ratio=variation_ratio,
        lower=mean - spread,
        upper=mean + spread,
        passes=passes,
        conf_factor=conf_factor,
    )
    return result.take(0) if single else result
