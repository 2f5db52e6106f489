"""Rewrite a Keras model with MCDropout layers into the graphs that tfuq converts.

:func:`prepare` first turns a classifier as people build them (ordinary ``Dropout`` or
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
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from tfuq.build.layers import MCDropout, PixelPreprocessing

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


def _trace(model, inputs, call):
    """Run ``model``'s graph on ``inputs`` with ``call(operation, *args, **kwargs)`` per operation.

    A nested model (a backbone used as a layer, a Sequential head) that holds an MCDropout is
    inlined, so ``call`` sees that MCDropout too; any other nested model runs as one layer.
    """
    functional = _functional(model)

    def step(operation, *args, **kwargs):
        if isinstance(operation, keras.Model) and mc_dropout_layers(operation):
            return _trace(operation, args[0], call)
        return call(operation, *args, **kwargs)

    return functional._run_through_graph(inputs, call_fn=step)


def _mask_shape(layer: MCDropout, features: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(mask input shape of one pass, shape it multiplies as) for an MCDropout on ``features``.

    Without a noise shape the mask covers every feature. With one (spatial dropout), only the
    dimensions that are not shared get mask values: one per channel for SpatialDropout2D.
    """
    if layer.noise_shape is None:
        return features, features
    noise = tuple(f if n is None else int(n) for n, f in zip(layer.noise_shape[1:], features, strict=True))
    kept = tuple(d for d in noise if d != 1) or (1,)
    return kept, noise


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
        shape, broadcast = _mask_shape(operation, features)
        name = f"mask_{len(masks)}"
        mask = keras.Input(shape=shape, batch_size=passes, name=name)
        masks.append(mask)
        specs.append(MaskSpec(operation.name, name, (passes, *shape), operation.rate))
        applied = mask if shape == broadcast else keras.ops.reshape(mask, (passes, *broadcast))
        # Batch 1 times batch `passes` broadcasts: the trunk ran once, the head runs T times.
        return keras.ops.multiply(args[0], applied) * (1.0 / (1.0 - operation.rate))

    output = _trace(functional, image, call)
    if output.shape[0] != passes:
        raise ExportError(
            "the model output does not depend on any MCDropout layer; put MCDropout in the head"
        )
    return keras.Model([image, *masks], output, name=f"{model.name}_masked"), specs


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
    functional = _check(model)
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

    output = _trace(functional, image, call)
    return keras.Model(image, output, name=f"{model.name}_in_graph")


def build_deterministic(model) -> keras.Model:
    """Standard inference: image (1, H, W, 3) to (1, classes) with MCDropout as the identity."""
    functional = _check(model)
    image = keras.Input(shape=image_shape(model), batch_size=1, name=IMAGE_INPUT)

    def call(operation, *args, **kwargs):
        return args[0] if isinstance(operation, MCDropout) else operation(*args, **kwargs)

    output = _trace(functional, image, call)
    return keras.Model(image, output, name=f"{model.name}_deterministic")


# -- bring your own model ----------------------------------------------------------------------
MC_CHOICES = ("auto", "dropout", "mcdropout")
# Keras' Dropout and its SpatialDropout1D/2D/3D subclasses: identities at inference.
_ORDINARY_DROPOUT = keras.layers.Dropout
_NAMED_RANGES = {
    "0,1": ((0.0, 1.0), "[0, 1]"),
    "-1,1": ((-1.0, 1.0), "[-1, 1]"),
    "0,255": ((0.0, 255.0), "raw pixels 0-255"),
}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications' "caffe" mode, in B, G, R


@dataclass(frozen=True)
class Preprocessing:
    """What a model expects of its input, as an affine map of raw RGB pixels 0-255.

    ``expected[..., c] = pixels[..., order[c]] * scale[c] + offset[c]``, where order is RGB
    or BGR. Build it with :meth:`from_options`.
    """

    scale: tuple[float, float, float]
    offset: tuple[float, float, float]
    channel_order: str
    description: str

    @classmethod
    def from_options(
        cls,
        input_range: str | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> Preprocessing | None:
        """From ``--input-range`` (``0,1``, ``-1,1`` or ``tf``, ``LOW,HIGH``, ``caffe``, ``imagenet``
        or ``torch``) and
        per-channel ``--mean``/``--std``, in the units of that range (raw pixels by default).

        ``caffe`` is keras.applications' caffe mode (RGB to BGR, minus the ImageNet mean in
        pixels); ``imagenet`` is torchvision's ([0, 1], minus mean, over std). None when
        nothing is stated: the model takes raw pixels.

        >>> Preprocessing.from_options("-1,1").offset
        (-1.0, -1.0, -1.0)
        """
        if input_range is None and mean is None and std is None:
            return None
        # keras.applications' preprocess_input modes by name: tf is [-1, 1], torch is imagenet.
        input_range = {"tf": "-1,1", "torch": "imagenet"}.get(input_range, input_range)
        if input_range in ("caffe", "imagenet"):
            if mean is not None or std is not None:
                raise ExportError(f"--input-range {input_range} fixes the mean and std; drop --mean/--std")
            if input_range == "caffe":
                offset = tuple(-m for m in CAFFE_MEAN_BGR)
                return cls((1.0, 1.0, 1.0), offset, "BGR", "caffe: BGR, minus the ImageNet mean in pixels")
            scale = tuple(1.0 / (255.0 * s) for s in IMAGENET_STD)
            offset = tuple(-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True))
            return cls(scale, offset, "RGB", "imagenet: [0, 1], minus mean (0.485, 0.456, 0.406), over std (0.229, 0.224, 0.225)")
        low, high, described = 0.0, 255.0, "raw pixels 0-255"
        if input_range is not None:
            key = input_range.replace(" ", "")
            if key in _NAMED_RANGES:
                (low, high), described = _NAMED_RANGES[key]
            else:
                try:
                    low, high = (float(v) for v in key.split(","))
                except ValueError:
                    raise ExportError(
                        f"--input-range must be LOW,HIGH (0,1 or -1,1), caffe or imagenet, got {input_range!r}"
                    ) from None
                if not (np.isfinite(low) and np.isfinite(high) and high > low):
                    raise ExportError(f"--input-range needs finite LOW < HIGH, got {input_range!r}")
                described = f"[{low:g}, {high:g}]"
        mean3 = _per_channel(mean, "--mean", 0.0)
        std3 = _per_channel(std, "--std", 1.0)
        if any(s <= 0 for s in std3):
            raise ExportError(f"--std must be positive, got {std}")
        step = (high - low) / 255.0
        scale = tuple(step / s for s in std3)
        offset = tuple((low - m) / s for m, s in zip(mean3, std3, strict=True))
        if mean is not None or std is not None:
            described += f", minus mean {tuple(mean3)}, over std {tuple(std3)}"
        return cls(scale, offset, "RGB", described)

    def layer(self) -> PixelPreprocessing:
        return PixelPreprocessing(self.scale, self.offset, self.channel_order, name="tfuq_preprocessing")


def _per_channel(values, flag: str, default: float) -> tuple[float, float, float]:
    if values is None:
        return (default,) * 3
    values = [float(v) for v in values]
    if len(values) == 1:
        values *= 3
    if len(values) != 3 or not all(np.isfinite(values)):
        raise ExportError(f"{flag} takes one or three finite numbers (R, G, B), got {values}")
    return tuple(values)


@dataclass
class Prepared:
    """A model in tfuq's form, made by :func:`prepare` from the user's own."""

    model: keras.Model  # raw pixels (H, W, 3) in, probabilities out, MCDropout where asked
    logits_model: keras.Model  # the same before any softmax tfuq added: to check the output
    mc_layers: list[str]  # names of the layers that sample, in graph order
    preprocessing: Preprocessing | None
    output: str  # "softmax", "logits" (softmax added), "sigmoid" or "logit" (two classes made)
    notes: list[str] = field(default_factory=list)


_AUGMENTATION = {
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
    "RandomBrightness", "RandomSaturation", "RandomHue", "RandomSharpness", "RandomShear",
    "RandomGrayscale", "RandomColorJitter", "RandomErasing", "RandomGaussianBlur",
    "RandomInvert", "RandomPosterization", "RandomPerspective", "RandomElasticTransform",
    "Solarization", "RandAugment", "AugMix", "MixUp", "CutMix",
}
_PREPROCESSING = (keras.layers.Rescaling, keras.layers.Normalization, PixelPreprocessing)


def _dropout_kind(layer) -> str | None:
    if isinstance(layer, MCDropout):
        return "mcdropout"
    if isinstance(layer, _ORDINARY_DROPOUT):
        return "spatial" if "SpatialDropout" in type(layer).__name__ else "dropout"
    return None


def _spatial_noise_shape(layer) -> tuple[int | None, ...] | None:
    """The MCDropout noise shape that reproduces a Keras dropout layer's."""
    name = type(layer).__name__
    if name == "SpatialDropout1D":
        return (None, 1, None)
    if name in ("SpatialDropout2D", "SpatialDropout3D"):
        spatial = 2 if name == "SpatialDropout2D" else 3
        if getattr(layer, "data_format", "channels_last") == "channels_first":
            return (None, None, *([1] * spatial))
        return (None, *([1] * spatial), None)
    noise = getattr(layer, "noise_shape", None)
    return None if noise is None else tuple(noise)


def _describe(layers) -> str:
    return ", ".join(f"{layer.name} ({type(layer).__name__} {layer.rate:g})" for layer in layers)


def _choose(functional, mc_dropout: str, mc_layers: Sequence[str] | None) -> tuple[list, list[str]]:
    """The ordinary dropout layers that become MC, and notes saying which and why."""
    if mc_dropout not in MC_CHOICES:
        raise ExportError(f"--mc-dropout must be one of {', '.join(MC_CHOICES)}, got {mc_dropout!r}")
    layers = list(functional._flatten_layers(include_self=False, recursive=True))
    own = [layer for layer in layers if _dropout_kind(layer) == "mcdropout"]
    ordinary = [layer for layer in layers if _dropout_kind(layer) in ("dropout", "spatial")]
    notes = []
    if mc_layers:
        by_name = {layer.name: layer for layer in layers}
        chosen = []
        for name in mc_layers:
            if name not in by_name:
                known = ", ".join(layer.name for layer in own + ordinary) or "none"
                raise ExportError(f"--mc-layers: the model has no layer {name!r} (its dropout layers: {known})")
            layer = by_name[name]
            if _dropout_kind(layer) is None:
                raise ExportError(
                    f"--mc-layers: {name!r} is a {type(layer).__name__}; only Dropout, "
                    "SpatialDropout1D/2D/3D and MCDropout layers can sample"
                )
            if _dropout_kind(layer) != "mcdropout":
                chosen.append(layer)
        unnamed = [layer for layer in own if layer.name not in mc_layers]
        if unnamed:
            notes.append(f"MCDropout layers sample whatever --mc-layers says: {', '.join(layer.name for layer in unnamed)}")
    elif mc_dropout == "dropout" or (mc_dropout == "auto" and not own):
        chosen = [layer for layer in ordinary if layer.rate > 0]
        zero = [layer.name for layer in ordinary if layer.rate <= 0]
        if zero:
            notes.append(f"dropout layers with rate 0 stay off: {', '.join(zero)}")
    else:
        chosen = []
        if ordinary and mc_dropout == "auto":
            notes.append(
                f"the model has tfuq.MCDropout, so its Keras dropout layers stay off as at Keras "
                f"inference: {', '.join(layer.name for layer in ordinary)} (--mc-dropout dropout samples them too)"
            )
    for layer in chosen:
        if not 0.0 < layer.rate < 1.0:
            raise ExportError(f"dropout layer {layer.name!r} has rate {layer.rate}, outside (0, 1)")
    if not chosen and not own:
        if ordinary and mc_dropout == "mcdropout":
            raise ExportError(
                f"the model has no tfuq.MCDropout layer; --mc-dropout dropout samples its dropout layers ({_describe(ordinary)})"
            )
        raise ExportError(
            "the model has no tfuq.MCDropout and no Keras dropout layer to sample; add an MC-dropout head with "
            "`tfuq attach MODEL --rate 0.2 --data train.npz --out mc.keras`"
        )
    if chosen:
        how = "picked by --mc-layers" if mc_layers else "no tfuq.MCDropout in the model" if not own else "--mc-dropout dropout"
        notes.insert(0, f"MC dropout from Keras layers ({how}): {_describe(chosen)}")
    return chosen, notes


def _output_layer(functional):
    """The layer that makes the model output, looking inside nested models."""
    operation = functional.outputs[0]._keras_history.operation
    while isinstance(operation, keras.Model):
        inner = _functional(operation)
        operation = inner.outputs[0]._keras_history.operation
    return operation


def _activation_name(layer) -> str | None:
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None)


def image_size(model, input_size: tuple[int, int] | None = None) -> tuple[int, int]:
    """(height, width) a one-image, one-output classifier takes; ``input_size`` for a dynamic one.

    Raises ExportError, in one line that says what to change, for anything else.
    """
    functional = _functional(model)
    if len(functional.inputs) != 1:
        names = ", ".join(t.name for t in functional.inputs)
        raise ExportError(
            f"the model takes {len(functional.inputs)} inputs ({names}); tfuq feeds one RGB image: "
            "export a model with the image input only"
        )
    if len(functional.outputs) != 1:
        raise ExportError(
            f"the model has {len(functional.outputs)} outputs; tfuq needs one class-probability "
            "output: export a model with that output only"
        )
    shape = tuple(functional.inputs[0].shape[1:])
    if len(shape) != 3 or shape[-1] != 3:
        raise ExportError(f"the model input must be an RGB image (H, W, 3) in channels-last order, got {shape}")
    if None in shape[:2]:
        if input_size is None:
            raise ExportError(
                f"the model input size is not fixed {shape}: give the size it was trained at, e.g. --input-size 224"
            )
        height, width = (int(v) for v in input_size)
    else:
        height, width = int(shape[0]), int(shape[1])
        if input_size is not None and tuple(int(v) for v in input_size) != (height, width):
            raise ExportError(f"the model input is fixed at {height}x{width}; drop --input-size")
    if height < 1 or width < 1:
        raise ExportError(f"--input-size must be positive, got {height}x{width}")
    return height, width


def rebuild(functional, inputs, replace, inline: set[int], skipped: list[str], size=None):
    """Run ``functional``'s graph on ``inputs`` for inference, swapping layers on the way.

    ``replace(operation, tensor)`` returns the new output for an operation it swaps, else
    None. Nested models that hold a layer whose id is in ``inline`` are inlined so their
    layers can be swapped; data augmentation layers are left out (their names go to
    ``skipped``); every other layer is called with ``training=False``.
    """

    def call(operation, *args, **kwargs):
        swapped = replace(operation, args[0])
        if swapped is not None:
            return swapped
        if isinstance(operation, keras.Model) and any(
            id(layer) in inline for layer in operation._flatten_layers(include_self=False, recursive=True)
        ):
            return _functional(operation)._run_through_graph(args[0], call_fn=call)
        if type(operation).__name__ in _AUGMENTATION:
            skipped.append(operation.name)
            return args[0]
        if isinstance(operation, keras.layers.Layer) and "training" not in kwargs:
            # Keras 3.15's image preprocessing layers default to training=True when called
            # without it; the deployed graph is inference.
            kwargs["training"] = False
        return operation(*args, **kwargs)

    try:
        return functional._run_through_graph(inputs, call_fn=call)
    except ValueError as error:
        where = f" at {size[0]}x{size[1]}" if size else ""
        raise ExportError(f"cannot run the model graph{where}: {str(error).splitlines()[0]}") from error


def prepare(
    model,
    *,
    mc_dropout: str = "auto",
    mc_layers: Sequence[str] | None = None,
    preprocessing: Preprocessing | None = None,
    input_size: tuple[int, int] | None = None,
    add_softmax: bool = False,
) -> Prepared:
    """Rewrite a classifier into tfuq's form, sharing its layers and weights.

    Args:
        model: a functional or Sequential Keras classifier (nested models are fine).
        mc_dropout: which dropout layers sample. ``auto``: the tfuq.MCDropout layers, or, when
            there are none, every Keras ``Dropout``/``SpatialDropout*``; ``dropout``: both;
            ``mcdropout``: only tfuq.MCDropout.
        mc_layers: names of Keras dropout layers that sample (instead of ``mc_dropout``);
            tfuq.MCDropout layers always sample.
        preprocessing: what the model expects when its preprocessing is outside the graph;
            folded in front, so the result takes raw pixels 0-255.
        input_size: ``(height, width)`` for a model whose input size is not fixed.
        add_softmax: the model outputs logits; append a softmax (one logit: two classes
            ``[1 - sigmoid(z), sigmoid(z)]``).

    Raises:
        ExportError: one line saying what to change.
    """
    functional = _functional(model)
    height, width = image_size(functional, input_size)
    chosen, notes = _choose(functional, mc_dropout, mc_layers)
    chosen_ids = {id(layer) for layer in chosen}

    image = keras.Input(shape=(height, width, 3), name=IMAGE_INPUT)
    first = preprocessing.layer()(image) if preprocessing is not None else image
    replaced, augmentation = {}, []

    def replace(operation, inputs):
        if id(operation) not in chosen_ids:
            return None
        if id(operation) not in replaced:
            replaced[id(operation)] = MCDropout(
                operation.rate, seed=operation.seed, noise_shape=_spatial_noise_shape(operation),
                name=operation.name,
            )
        return replaced[id(operation)](inputs)

    raw = rebuild(functional, first, replace, chosen_ids, augmentation, (height, width))
    if len(raw.shape) != 2:
        raise ExportError(f"the model output must be (batch, classes), got {tuple(raw.shape)}")
    classes = int(raw.shape[-1])
    activation = _activation_name(_output_layer(functional))
    if activation == "sigmoid" and classes > 1:
        raise ExportError(
            f"the model ends in a sigmoid over {classes} units (multi-label); tfuq picks one class "
            "of many: export a softmax (or logits with --add-softmax) output"
        )
    if add_softmax:
        if activation in ("softmax", "sigmoid"):
            raise ExportError(f"the model already ends in {activation}; drop --add-softmax")
        if classes == 1:
            output = keras.ops.concatenate([raw * -0.5, raw * 0.5], axis=-1)
            notes.append("one logit z read as two classes [1 - sigmoid(z), sigmoid(z)]")
            kind = "logit"
        else:
            kind = "logits"
            output = raw
        output = keras.layers.Softmax(name="tfuq_softmax")(output)
    elif classes == 1:
        if activation != "sigmoid":
            raise ExportError(
                "the model has one output unit without a sigmoid: if it is a logit, give --add-softmax"
            )
        output = keras.ops.concatenate([1.0 - raw, raw], axis=-1)
        notes.append("one sigmoid unit p read as two classes [1 - p, p]")
        kind = "sigmoid"
    else:
        output, kind = raw, "softmax"
    try:
        prepared = keras.Model(image, output, name=model.name)
    except ValueError as error:  # nested models inlined with clashing layer names
        raise ExportError(f"cannot rebuild the model: {str(error).splitlines()[0]}") from error
    mc_names = [layer.name for layer in mc_dropout_layers(prepared)]
    if augmentation:
        notes.append(f"data augmentation layers left out (identities at inference): {', '.join(augmentation)}")
    if preprocessing is not None:
        notes.append(f"input preprocessing folded into the model ({preprocessing.description}): it takes raw pixels 0-255")
    elif not any(
        isinstance(layer, _PREPROCESSING) or "preprocess" in layer.name
        for layer in prepared._flatten_layers(include_self=False, recursive=True)
    ):
        notes.append(
            "no Rescaling or Normalization layer in the model: tfuq feeds it raw pixels 0-255; "
            "if it expects [0, 1], [-1, 1] or mean/std, say so with --input-range/--mean/--std"
        )
    costly = per_pass_convolutions(prepared)
    if costly:
        notes.append(
            f"{len(costly)} convolution layer(s) after the first MC dropout run once per pass: "
            f"{', '.join(costly[:3])}{' ...' if len(costly) > 3 else ''}; MC dropout later in the network is cheaper"
        )
    return Prepared(prepared, keras.Model(image, raw, name=f"{model.name}_raw"), mc_names, preprocessing, kind, notes)


_CONVOLUTIONS = (
    keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D, keras.layers.Conv2DTranspose,
)


def per_pass_convolutions(model) -> list[str]:
    """Names of the convolution layers that the masked graph runs once per pass (not once)."""
    functional = _check(model)
    image = keras.Input(shape=image_shape(model), batch_size=1)
    found = []

    def call(operation, *args, **kwargs):
        if isinstance(operation, MCDropout):
            features = tuple(int(d) for d in args[0].shape[1:])
            _, broadcast = _mask_shape(operation, features)
            return keras.ops.multiply(args[0], keras.ops.ones((2, *broadcast)))
        outputs = operation(*args, **kwargs)
        if isinstance(operation, _CONVOLUTIONS) and outputs.shape[0] == 2:
            found.append(operation.name)
        return outputs

    _trace(functional, image, call)
    return found


def check_output(prepared: Prepared, images: np.ndarray) -> None:
    """Run the model on a few images: its output must be probabilities (or logits if told).

    Raises ExportError when logits come without ``add_softmax``, or probabilities with it.
    """
    if prepared.output in ("sigmoid", "logit"):
        return
    raw = np.asarray(prepared.logits_model(np.asarray(images[:8], np.float32), training=False))
    probabilities = bool(np.all(raw >= -1e-6) and np.allclose(raw.sum(-1), 1.0, atol=1e-3))
    if prepared.output == "logits" and probabilities:
        raise ExportError("the model output is already probabilities (rows sum to 1); drop --add-softmax")
    if prepared.output == "softmax" and not probabilities:
        raise ExportError("the model output is not probabilities (rows do not sum to 1): if it gives logits, add --add-softmax")
