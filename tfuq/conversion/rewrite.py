"""Rewrite a Keras model with MCDropout layers into the graphs that tfuq converts.

:func:`tfuq.modeling.byo.prepare` first turns a classifier as people build them (ordinary ``Dropout`` or
``SpatialDropout*``, Sequential or nested models, preprocessing outside the graph, a logits
output, a dynamic image size) into the form below: one raw-pixel image input of fixed size,
the chosen dropout layers as MCDropout, probabilities out. Then three forms, all sharing the
model's layers and weights:

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

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import tensorflow as tf

from tfuq.modeling.graph import (
    IMAGE_INPUT,
    ExportError,
    activation_name,
    check_classifier,
    image_shape,
    mask_shape,
    output_layer,
    trace,
)
from tfuq.modeling.layers import MCDropout


@dataclass(frozen=True)
class MaskSpec:
    """One mask input of the masked graph."""

    layer: str  # name of the MCDropout layer it replaces
    input: str  # name of the model input that receives it
    shape: tuple[int, ...]  # (passes, *features)
    rate: float


# Out-of-distribution scores the masked graph can return beside the probabilities, each a
# model output named SCORE_PREFIX + name of shape (1, 1), larger = more like the training data.
SCORE_PREFIX = "score_"
SCORES = {
    "energy": "logsumexp over the classes of the mean over the passes of the logits: the negative "
    "free energy (Liu et al. 2020) of the MC-mean logits",
}


def build_masked(model, passes: int, scores: Sequence[str] = ()) -> tuple[keras.Model, list[MaskSpec]]:
    """The masked, pass-batched graph: inputs ``image`` (1, H, W, 3) and one mask per MCDropout.

    The returned model maps ``[image, mask_0, ...]`` to ``(passes, classes)`` probabilities;
    with ``scores`` (names of :data:`SCORES`) to a dict of them under ``"probabilities"`` and
    each score under ``SCORE_PREFIX + name``, ``(1, 1)``. The scores read the logits of the
    output layer (a softmax dense layer or a softmax after the last layer), computed once for
    all passes: the trunk still runs once, and a score costs a few operations on
    ``(passes, classes)`` values.
    """
    if passes < 1:
        raise ExportError(f"passes must be at least 1, got {passes}")
    unknown = [name for name in scores if name not in SCORES]
    if unknown:
        raise ExportError(f"unknown score {unknown[0]!r}; known: {', '.join(SCORES)}")
    functional = check_classifier(model)
    image = keras.Input(shape=image_shape(model), batch_size=1, name=IMAGE_INPUT)
    masks: list[keras.KerasTensor] = []
    specs: list[MaskSpec] = []
    last = output_layer(functional)
    logits: list = []

    def call(operation, *args, **kwargs):
        if scores and operation is last:
            return _softmax_keeping_logits(operation, args[0], logits)
        if not isinstance(operation, MCDropout):
            return operation(*args, **kwargs)
        features = tuple(int(d) for d in args[0].shape[1:])
        shape, broadcast = mask_shape(operation, features)
        name = f"mask_{len(masks)}"
        mask = keras.Input(shape=shape, batch_size=passes, name=name)
        masks.append(mask)
        specs.append(MaskSpec(operation.name, name, (passes, *shape), operation.rate))
        applied = mask if shape == broadcast else keras.ops.reshape(mask, (passes, *broadcast))
        # Batch 1 times batch `passes` broadcasts: the trunk ran once, the head runs T times.
        return keras.ops.multiply(args[0], applied) * (1.0 / (1.0 - operation.rate))

    output = trace(functional, image, call)
    if output.shape[0] != passes:
        raise ExportError(
            "the model output does not depend on any MCDropout layer; put MCDropout in the head"
        )
    if not scores:
        return keras.Model([image, *masks], output, name=f"{model.name}_masked"), specs
    if len(logits) != 1:
        raise ExportError(f"the output layer {last.name} was not reached as one layer: cannot read logits for OOD scores")
    outputs = {"probabilities": output}
    mean_logits = keras.ops.mean(logits[0], axis=0, keepdims=True)  # (1, classes)
    for name in scores:
        outputs[SCORE_PREFIX + name] = _score(name, mean_logits)
    return keras.Model([image, *masks], outputs, name=f"{model.name}_scored"), specs


def _softmax_keeping_logits(layer, x, logits: list):
    """The output layer's softmax, with its logits appended to ``logits``."""
    if activation_name(layer) != "softmax":
        raise ExportError(f"the output layer {layer.name} is not a softmax: cannot read logits for OOD scores")
    if isinstance(layer, keras.layers.Dense):
        z = keras.ops.matmul(x, layer.kernel)
        if layer.use_bias:
            z = z + layer.bias
    elif isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
        z = x
    else:
        raise ExportError(f"OOD scores need a Dense or Softmax output layer, found {type(layer).__name__}")
    logits.append(z)
    return keras.ops.softmax(z, axis=-1)


def _score(name: str, mean_logits):
    if name == "energy":
        # logsumexp(z) = max(z) - max(log_softmax(z)): the same number, written with operators
        # that have int8 kernels in every interpreter tfuq supports (tflite-runtime 2.14 has
        # no int8 LOG, and an int8 LOG_SOFTMAX output has a fixed 1/16 step, fine for a score).
        top = keras.ops.max(mean_logits, axis=-1, keepdims=True)
        return top - keras.ops.max(keras.ops.log_softmax(mean_logits, axis=-1), axis=-1, keepdims=True)
    raise ExportError(f"unknown score {name!r}")


_IN_GRAPH_SEED = 0x7F5EED  # any non-zero value; the runtime overwrites it per run


class _RandomUniformDropout(keras.layers.Layer):
    """Dropout through tf.random.uniform, which TFLite runs as the builtin RANDOM_UNIFORM."""

    def __init__(self, rate: float, seed: int, noise_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = seed
        self.noise_shape = noise_shape

    def call(self, inputs):
        # Both seed attributes set explicitly and non-zero (tf.random.uniform would take the
        # global seed, which may be 0): the converter then writes both fields into the
        # flatbuffer, where the runtime patches them in place for per-run seeds.
        shape = tf.shape(inputs)
        if self.noise_shape is not None:
            shape = tf.stack([shape[i] if d is None else d for i, d in enumerate(self.noise_shape)])
        noise = tf.raw_ops.RandomUniform(
            shape=shape, dtype=inputs.dtype, seed=_IN_GRAPH_SEED, seed2=self.seed
        )
        keep = tf.cast(noise >= self.rate, inputs.dtype)
        return inputs * keep * (1.0 / (1.0 - self.rate))


def build_in_graph(model) -> keras.Model:
    """The seed paper's form: image (1, H, W, 3) to (1, classes), dropout drawn in the graph."""
    functional = check_classifier(model)
    image = keras.Input(shape=image_shape(model), batch_size=1, name=IMAGE_INPUT)
    count = [0]

    def call(operation, *args, **kwargs):
        if not isinstance(operation, MCDropout):
            return operation(*args, **kwargs)
        count[0] += 1
        return _RandomUniformDropout(
            operation.rate, seed=count[0], noise_shape=operation.noise_shape,
            name=f"random_{operation.name}",
        )(args[0])

    output = trace(functional, image, call)
    return keras.Model(image, output, name=f"{model.name}_in_graph")


def build_deterministic(model) -> keras.Model:
    """Standard inference: image (1, H, W, 3) to (1, classes) with MCDropout as the identity."""
    functional = check_classifier(model)
    image = keras.Input(shape=image_shape(model), batch_size=1, name=IMAGE_INPUT)

    def call(operation, *args, **kwargs):
        return args[0] if isinstance(operation, MCDropout) else operation(*args, **kwargs)

    output = trace(functional, image, call)
    return keras.Model(image, output, name=f"{model.name}_deterministic")
