"""Rewrite a Keras model with MCDropout layers into the graphs that tfuq converts.

Two forms, both sharing the original model's layers and weights:

- ``masked`` (the default): each MCDropout becomes ``x * mask / (1 - rate)`` where ``mask``
  is a new model input of shape ``(passes, *features)``. The image input has batch 1, so
  everything before the first MCDropout runs once, and the multiplication broadcasts the
  single row to ``passes`` rows. The result is a pure integer graph after quantization.
- ``deterministic``: each MCDropout becomes the identity (standard inference, the baseline
  that MC passes are measured against).
- ``in-graph`` (the seed paper's form): each MCDropout draws its own mask with
  ``tf.random.uniform``, which TFLite runs as the builtin ``RANDOM_UNIFORM``; each pass is a
  separate invoke.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

from tfuq.build.layers import MCDropout

IMAGE_INPUT = "image"
OUTPUT_NAME = "probabilities"


class ExportError(ValueError):
    """The Keras model cannot be rewritten for tfuq."""


@dataclass(frozen=True)
class MaskSpec:
    """One mask input of the masked graph."""

    layer: str  # name of the MCDropout layer it replaces
    input: str  # name of the model input that receives it
    shape: tuple[int, ...]  # (passes, *features)
    rate: float


def _functional(model) -> keras.Model:
    if isinstance(model, keras.Sequential):
        if not model.built or getattr(model, "_functional", None) is None:
            raise ExportError("the Sequential model is not built; give it an Input first")
        return model._functional
    if not isinstance(model, keras.Model) or not hasattr(model, "_run_through_graph"):
        raise ExportError(
            f"{type(model).__name__} is a subclassed model that tfuq cannot trace; "
            "build it with the functional API (keras.Model(inputs, outputs))"
        )
    return model


def mc_dropout_layers(model) -> list[MCDropout]:
    """The MCDropout layers of ``model``, nested models included, in graph order."""
    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, MCDropout):
            found.append(layer)
    return found


def _check(model) -> keras.Model:
    functional = _functional(model)
    if len(functional.inputs) != 1:
        raise ExportError(f"the model must take one image input, it takes {len(functional.inputs)}")
    shape = tuple(functional.inputs[0].shape[1:])
    if len(shape) != 3 or shape[-1] != 3 or None in shape:
        raise ExportError(f"the model input must be a fixed-size RGB image (H, W, 3), got {shape}")
    if len(functional.outputs) != 1:
        raise ExportError(f"the model must have one output, it has {len(functional.outputs)}")
    layers = mc_dropout_layers(functional)
    if not layers:
        raise ExportError("the model has no tfuq.MCDropout layer; add one to the head")
    for layer in layers:
        if not 0.0 < layer.rate < 1.0:
            raise ExportError(f"MCDropout {layer.name!r} has rate {layer.rate}, outside (0, 1)")
    return functional


def image_shape(model) -> tuple[int, int, int]:
    """(height, width, channels) of the model's image input."""
    return tuple(int(d) for d in _check(model).inputs[0].shape[1:])


def build_masked(model, passes: int) -> tuple[keras.Model, list[MaskSpec]]:
    """The masked, pass-batched graph: inputs ``image`` (1, H, W, 3) and one mask per MCDropout.

    The returned model maps ``[image, mask_0, ...]`` to ``(passes, classes)``.
    """
    if passes < 1:
        raise ExportError(f"passes must be at least 1, got {passes}")
    functional = _check(model)
    image = keras.Input(shape=image_shape(model), batch_size=1, name=IMAGE_INPUT)
    masks: list[keras.KerasTensor] = []
    specs: list[MaskSpec] = []

    def call(operation, *args, **kwargs):
        if not isinstance(operation, MCDropout):
            return operation(*args, **kwargs)
        features = tuple(int(d) for d in args[0].shape[1:])
        name = f"mask_{len(masks)}"
        mask = keras.Input(shape=features, batch_size=passes, name=name)
        masks.append(mask)
        specs.append(MaskSpec(operation.name, name, (passes, *features), operation.rate))
        # Batch 1 times batch `passes` broadcasts: the trunk ran once, the head runs T times.
        return keras.ops.multiply(args[0], mask) * (1.0 / (1.0 - operation.rate))

    output = functional._run_through_graph(image, call_fn=call)
    if output.shape[0] != passes:
        raise ExportError(
            "the model output does not depend on any MCDropout layer; put MCDropout in the head"
        )
    return keras.Model([image, *masks], output, name=f"{model.name}_masked"), specs


_IN_GRAPH_SEED = 0x7F5EED  # any non-zero value; the runtime overwrites it per run


class _RandomUniformDropout(keras.layers.Layer):
    """Dropout through tf.random.uniform, which TFLite runs as the builtin RANDOM_UNIFORM."""

    def __init__(self, rate: float, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = seed

    def call(self, inputs):
        # Both seed attributes set explicitly and non-zero (tf.random.uniform would take the
        # global seed, which may be 0): the converter then writes both fields into the
        # flatbuffer, where the runtime patches them in place for per-run seeds.
        noise = tf.raw_ops.RandomUniform(
            shape=tf.shape(inputs), dtype=inputs.dtype, seed=_IN_GRAPH_SEED, seed2=self.seed
        )
        keep = tf.cast(noise >= self.rate, inputs.dtype)
        return inputs * keep * (1.0 / (1.0 - self.rate))


def build_in_graph(model) -> keras.Model:
    """The seed paper's form: image (1, H, W, 3) to (1, classes), dropout drawn in the graph."""
    functional = _check(model)
    image = keras.Input(shape=image_shape(model), batch_size=1, name=IMAGE_INPUT)
    count = [0]

    def call(operation, *args, **kwargs):
        if not isinstance(operation, MCDropout):
            return operation(*args, **kwargs)
        count[0] += 1
        return _RandomUniformDropout(operation.rate, seed=count[0], name=f"random_{operation.name}")(
            args[0]
        )

    output = functional._run_through_graph(image, call_fn=call)
    return keras.Model(image, output, name=f"{model.name}_in_graph")


def build_deterministic(model) -> keras.Model:
    """Standard inference: image (1, H, W, 3) to (1, classes) with MCDropout as the identity."""
    functional = _check(model)
    image = keras.Input(shape=image_shape(model), batch_size=1, name=IMAGE_INPUT)

    def call(operation, *args, **kwargs):
        return args[0] if isinstance(operation, MCDropout) else operation(*args, **kwargs)

    output = functional._run_through_graph(image, call_fn=call)
    return keras.Model(image, output, name=f"{model.name}_deterministic")
