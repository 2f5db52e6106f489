"""Seeded dropout masks: a counter-based, integer-only generator shared with Kotlin.

Scheme ``splitmix64-counter`` version 1. Everything is unsigned 64-bit arithmetic modulo
2**64, so any language with 64-bit integers reproduces it bit for bit (the Kotlin core in
``android_demo/uqcore`` does, and both read the same test vectors in ``tests/vectors``).

- ``mix(z)`` is the SplitMix64 finalizer (Steele, Lea and Flood, 2014)::

      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
      z = (z ^ (z >> 27)) * 0x94D049BB133111EB
      return z ^ (z >> 31)

- ``stream(key)[i] = mix(key + (i + 1) * 0x9E3779B97F4A7C15)``: the i-th output of the
  SplitMix64 generator whose state starts at ``key``. Any element can be computed directly
  from its index, which is what makes the scheme counter-based.
- A call with run seed ``seed`` gives pass ``p`` the pass seed ``stream(seed)[p]``.
- In pass seed ``s``, the MC-dropout layer number ``l`` (0-based, in the order the model's
  configuration lists them) draws from the key ``stream(s)[l]``.
- Element ``i`` (row-major index within one pass's mask) is kept when
  ``stream(key)[i] >> 40 >= round(rate * 2**24)``: the top 24 bits compared with the rate as
  a 24-bit integer threshold, so the drop probability is that threshold / 2**24.

Masks hold 0 or 1; the exported model applies the ``1 / (1 - rate)`` scale itself.

Per-image seeds (batch inference, ``--seeding per-image``): an image's key is the first 8
bytes, little-endian, of BLAKE2b over its uint8 pixels at the model input size (shape bytes
``height, width, channels`` as three little-endian uint32, then the pixels in row-major
order), and its run seed is ``stream(seed ^ key)[0]``. The key is the content, so the seed,
and the result, do not depend on file names, shards, order or batches.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

import numpy as np

SCHEME = "splitmix64-counter"
SCHEME_VERSION = 1
KEEP_BITS = 24

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_MAX_SEED = 2**64


def mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer on a uint64 array (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _MUL1
        z = (z ^ (z >> np.uint64(27))) * _MUL2
    return z ^ (z >> np.uint64(31))


def stream(key: np.ndarray | int, count: int) -> np.ndarray:
    """The first ``count`` outputs of SplitMix64 started at each ``key``.

    ``key`` may be an array; the result has shape ``key.shape + (count,)``.
    """
    key = np.asarray(key, dtype=np.uint64)[..., None]
    counters = np.arange(1, count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return mix(key + counters * _GAMMA)


def check_seed(seed: int) -> int:
    """Return ``seed`` as a Python int after checking it is an unsigned 64-bit integer."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an integer, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < _MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


def pass_seeds(seed: int, passes: int) -> np.ndarray:
    """The per-pass seeds (uint64, shape ``(passes,)``) that run seed ``seed`` gives."""
    if passes < 1:
        raise ValueError(f"passes must be at least 1, got {passes}")
    return stream(np.uint64(check_seed(seed)), passes)


def drop_threshold(rate: float) -> int:
    """The 24-bit integer threshold below which an element is dropped."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"dropout rate must be in (0, 1), got {rate}")
    return int(round(rate * 2**KEEP_BITS))


def layer_mask(
    seeds: np.ndarray, layer: int, shape: Sequence[int], rate: float
) -> np.ndarray:
    """Keep bits (uint8, 0 or 1) for MC-dropout layer ``layer`` in each pass.

    Args:
        seeds: per-pass seeds, uint64 of shape ``(passes,)``.
        layer: 0-based index of the layer among the model's MC-dropout layers.
        shape: the mask shape of one pass (the layer's input shape without batch).
        rate: the layer's dropout rate, in (0, 1).

    Returns:
        An array of shape ``(passes, *shape)``.

    >>> layer_mask(pass_seeds(0, 2), 0, (4,), 0.5).shape
    (2, 4)
    """
    seeds = np.asarray(seeds, dtype=np.uint64).reshape(-1)
    shape = tuple(int(d) for d in shape)
    if any(d < 1 for d in shape):
        raise ValueError(f"mask shape must be positive, got {shape}")
    threshold = np.uint64(drop_threshold(rate))
    keys = stream(seeds, layer + 1)[:, layer]
    bits = stream(keys, int(np.prod(shape, dtype=np.int64))) >> np.uint64(64 - KEEP_BITS)
    return (bits >= threshold).astype(np.uint8).reshape((len(seeds), *shape))


def masks_for(
    seed: int, passes: int, layers: Sequence[tuple[Sequence[int], float]]
) -> list[np.ndarray]:
    """Masks for every MC-dropout layer of one run, drawn in one vectorized sweep.

    Every element of every layer and pass is one SplitMix64 output computed from its index,
    so all of them are one uint64 array ``(passes, elements of all layers)``: one pass of the
    finalizer over it (in place, wrapping) instead of one per layer. The bits are those of
    :func:`layer_mask` for each layer.

    Args:
        seed: the run seed, an integer in [0, 2**64).
        passes: number of MC passes T.
        layers: for each MC-dropout layer in order, ``(shape_of_one_pass, rate)``.

    Returns:
        One uint8 array of shape ``(passes, *shape)`` per layer.
    """
    seeds = pass_seeds(seed, passes)
    shapes = [tuple(int(d) for d in shape) for shape, _ in layers]
    if any(d < 1 for shape in shapes for d in shape):
        raise ValueError(f"mask shapes must be positive, got {shapes}")
    thresholds = [drop_threshold(rate) for _, rate in layers]
    if not shapes:
        return []
    sizes = tuple(int(np.prod(shape, dtype=np.int64)) for shape in shapes)
    counters = _counters(max(sizes))
    keys = stream(seeds, len(sizes))  # (passes, layers): each layer's key in each pass
    state = np.empty((passes, sum(sizes)), dtype=np.uint64)
    scratch = np.empty_like(state)
    with np.errstate(over="ignore"):
        start = 0
        for layer, size in enumerate(sizes):  # key + (i + 1) * GAMMA, wrapping
            np.add(keys[:, layer, None], counters[:size], out=state[:, start : start + size])
            start += size
        for shift, multiplier in ((30, _MUL1), (27, _MUL2)):
            np.right_shift(state, np.uint64(shift), out=scratch)
            np.bitwise_xor(state, scratch, out=state)
            np.multiply(state, multiplier, out=state)
    # mix ends with z ^ (z >> 31), which leaves the top 33 bits of z as they are: the kept
    # test on the top 24 bits, (mix >> 40) >= threshold, is z >= threshold << 40 here.
    out, start = [], 0
    for shape, size, threshold in zip(shapes, sizes, thresholds, strict=True):
        kept = state[:, start : start + size] >= np.uint64(threshold << (64 - KEEP_BITS))
        out.append(kept.view(np.uint8).reshape((passes, *shape)))
        start += size
    return out


@functools.lru_cache(maxsize=4)
def _counters(count: int) -> np.ndarray:
    """``(i + 1) * GAMMA`` for ``i < count`` (uint64, wrapping, read-only): the counter term."""
    with np.errstate(over="ignore"):
        counters = np.arange(1, count + 1, dtype=np.uint64) * _GAMMA
    counters.setflags(write=False)
    return counters


def image_key(image: np.ndarray) -> int:
    """The stable key of one uint8 ``(H, W, 3)`` image: a 64-bit hash of its pixels."""
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"image must be uint8 (H, W, channels), got {image.dtype} {image.shape}")
    digest = hashlib.blake2b(digest_size=8)
    digest.update(np.asarray(image.shape, dtype="<u4").tobytes())
    digest.update(image.tobytes())
    return int.from_bytes(digest.digest(), "little")


def image_seed(seed: int, image: np.ndarray) -> int:
    """The run seed of one image under per-image seeding: ``stream(seed ^ image_key)[0]``.

    >>> pixels = np.zeros((2, 2, 3), np.uint8)
    >>> image_seed(0, pixels) == image_seed(0, pixels.copy()) != image_seed(1, pixels)
    True
    """
    key = np.uint64(check_seed(seed) ^ image_key(image))
    return int(stream(key, 1)[0])
