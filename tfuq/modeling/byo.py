"""A classifier as people build it, into tfuq's form.

:func:`prepare` turns ordinary ``Dropout`` or ``SpatialDropout*``, Sequential or nested models,
preprocessing outside the graph, a logits output or a dynamic image size into one raw-pixel
image input of fixed size, the chosen dropout layers as MCDropout, probabilities out: the form
:mod:`tfuq.conversion.rewrite` turns into the graphs that are converted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import keras
import numpy as np

from tfuq.modeling.graph import (
    IMAGE_INPUT,
    ExportError,
    activation_name,
    as_functional,
    image_size,
    mc_dropout_layers,
    output_layer,
    per_pass_convolutions,
    rebuild,
)
from tfuq.modeling.layers import MCDropout, PixelPreprocessing

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
    functional = as_functional(model)
    size = image_size(functional, input_size)
    chosen, notes = _choose(functional, mc_dropout, mc_layers)
    image, raw, augmentation = _rebuild_with_mc_dropout(functional, chosen, preprocessing, size)
    if len(raw.shape) != 2:
        raise ExportError(f"the model output must be (batch, classes), got {tuple(raw.shape)}")
    output, kind = _as_probabilities(raw, activation_name(output_layer(functional)), add_softmax, notes)
    try:
        prepared = keras.Model(image, output, name=model.name)
    except ValueError as error:  # nested models inlined with clashing layer names
        raise ExportError(f"cannot rebuild the model: {str(error).splitlines()[0]}") from error
    mc_names = [layer.name for layer in mc_dropout_layers(prepared)]
    notes += _notes_on(prepared, preprocessing, augmentation)
    return Prepared(prepared, keras.Model(image, raw, name=f"{model.name}_raw"), mc_names, preprocessing, kind, notes)


def _rebuild_with_mc_dropout(functional, chosen, preprocessing: Preprocessing | None,
                             size: tuple[int, int]):
    """``(image input, raw output, augmentation layers left out)`` of the model rebuilt on raw
    pixels of ``size``, preprocessing folded in front, the ``chosen`` dropout layers as
    MCDropout with their rate, seed and spatial noise shape."""
    chosen_ids = {id(layer) for layer in chosen}
    image = keras.Input(shape=(*size, 3), name=IMAGE_INPUT)
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

    raw = rebuild(functional, first, replace, chosen_ids, augmentation, size)
    return image, raw, augmentation


def _as_probabilities(raw, activation: str | None, add_softmax: bool, notes: list[str]):
    """``(probabilities output, kind)`` from the model's raw ``(batch, classes)`` output and
    its final activation: kind is ``softmax``, ``sigmoid`` (one unit p as ``[1 - p, p]``),
    ``logits`` or ``logit`` (softmax added); what was read how is added to ``notes``."""
    classes = int(raw.shape[-1])
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
        return keras.layers.Softmax(name="tfuq_softmax")(output), kind
    if classes == 1:
        if activation != "sigmoid":
            raise ExportError(
                "the model has one output unit without a sigmoid: if it is a logit, give --add-softmax"
            )
        notes.append("one sigmoid unit p read as two classes [1 - p, p]")
        return keras.ops.concatenate([1.0 - raw, raw], axis=-1), "sigmoid"
    return raw, "softmax"


def _notes_on(prepared, preprocessing: Preprocessing | None, augmentation: list[str]) -> list[str]:
    """What the user should know about the prepared model: layers left out, the input range,
    convolutions that run once per pass."""
    notes = []
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
    return notes


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
