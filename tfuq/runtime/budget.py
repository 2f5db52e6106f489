"""How much memory a model may make tfuq allocate, checked before anything is allocated.

A model file states its own sizes: the input (height x width x 3 uint8 pixels per image, up to
16384 x 16384 by the schema) and the output (passes x classes float32 per image, from the
flatbuffer). A hostile or broken file can state sizes no run could hold; ``tfuq predict``
would then fail deep inside numpy or the interpreter, and ``tfuq evaluate`` only after reading
all its data. So the sizes are checked when the model is loaded (:func:`check_model`) and,
for a run over many images, when their number is known (:func:`check_run`), each refusal one
line naming the number.

The limits are stated, not measured from the machine, so a model refused here is refused on
every machine:

- one image's input tensor and one invoke's output: :data:`PER_IMAGE_BYTES` (256 MiB) each;
  a 8192 x 8192 input (192 MiB) fits, 16384 x 16384 (768 MiB) does not;
- the ``(passes, images, classes)`` float32 array ``tfuq evaluate`` and ``tfuq calibrate``
  keep: :data:`RUN_BYTES` (4 GiB), e.g. 30 passes x 10,000 images x 1,000 classes = 1.1 GiB.
"""

from __future__ import annotations

import math

PER_IMAGE_BYTES = 1 << 28
RUN_BYTES = 1 << 32


class BudgetError(ValueError):
    """A model or a run that would need more memory than tfuq allows."""


def _gib(size: int) -> str:
    return f"{size / 2**30:,.2f} GiB" if size >= 2**30 else f"{size / 2**20:,.1f} MiB"


def check_model(name: str, input_shape, output_shape) -> None:
    """Refuse a model whose one image or one invoke's output exceeds :data:`PER_IMAGE_BYTES`.

    ``input_shape`` is the uint8 image tensor's shape, ``output_shape`` the float32 (after
    dequantizing) probabilities' shape of one invoke, e.g. ``(passes, classes)``.

    Raises:
        BudgetError: with the size asked and the limit.
    """
    pixels = math.prod(int(d) for d in input_shape)
    if pixels > PER_IMAGE_BYTES:
        raise BudgetError(f"{name}: an input of {tuple(int(d) for d in input_shape)} takes "
                          f"{_gib(pixels)} per image, more than the {_gib(PER_IMAGE_BYTES)} "
                          "tfuq allows")
    values = math.prod(int(d) for d in output_shape) * 4
    if values > PER_IMAGE_BYTES:
        raise BudgetError(f"{name}: an output of {tuple(int(d) for d in output_shape)} takes "
                          f"{_gib(values)} per image as float32, more than the "
                          f"{_gib(PER_IMAGE_BYTES)} tfuq allows")


def check_run(name: str, passes: int, images: int, classes: int) -> None:
    """Refuse a run whose ``(passes, images, classes)`` float32 array exceeds :data:`RUN_BYTES`.

    Raises:
        BudgetError: naming the size, with the number of images that would fit.
    """
    size = int(passes) * int(images) * int(classes) * 4
    if size > RUN_BYTES:
        fits = RUN_BYTES // max(1, int(passes) * int(classes) * 4)
        raise BudgetError(f"{name}: {passes} passes x {images:,} images x {classes:,} classes take "
                          f"{_gib(size)} as float32, more than the {_gib(RUN_BYTES)} tfuq allows; "
                          f"use --limit {fits:,} or fewer images")
