"""Quantization-aware fine-tuning through tensorflow-model-optimization (tfmot), for Keras 3 models.

    >>> result = finetune(model, images, labels, epochs=2)      # doctest: +SKIP
    >>> tfuq.convert(result.model, images, passes=30)            # doctest: +SKIP

tfmot 0.8.1 quantizes only tf-keras (Keras 2) models and rejects Keras 3 ones, and tfuq's
export builds its masked graph from a Keras 3 model. So this module:

1. rebuilds the model as a *twin* in tf-keras, layer by layer and flattened (tfmot refuses
   nested models), with the same weights; ``tfuq.MCDropout`` becomes a tf-keras dropout
   that also samples at inference and is left unquantized;
2. annotates every layer tfmot's default 8-bit scheme supports (convolutions, dense,
   batch norm, activations, pooling, adds) and fine-tunes the twin with fake quantization,
   so the weights adapt to int8 rounding of weights and activations;
3. copies the fine-tuned weights (and batch-norm statistics) back into the Keras 3 model.

What it does not carry: the activation ranges tfmot learns. ``tfuq.conversion.convert`` calibrates its
own ranges on representative images (post-training quantization of the QAT-adapted
weights), because the masked MC-dropout graph it converts can only be built from the
Keras 3 model.

Supported backbones are those made of Keras layers only: ``small_cnn``, ``resnet50``,
``efficientnetb0``, ``mobilenetv2``. ``mobilenetv3small`` is built with raw ``keras.ops``
arithmetic (its hard-sigmoid is ``ReLU(x + 3) / 6``), which has no tf-keras layer twin.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import time
from dataclasses import dataclass

import numpy as np

from tfuq.data.common import check_images, check_labels
from tfuq.training.train import TrainError, _dataset, stratified_split


@dataclass
class QatResult:
    """What :func:`finetune` did: the Keras 3 model with the QAT weights, and the history."""

    model: object
    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int | None
    quantized_layers: int  # layers of the twin that tfmot wrapped with fake quantization
    seconds: float


def available() -> bool:
    """True when tf-keras and tensorflow-model-optimization are installed."""
    return all(importlib.util.find_spec(m) for m in ("tf_keras", "tensorflow_model_optimization"))


def _modules():
    if not available():
        raise TrainError(
            "quantization-aware training needs tf-keras and tensorflow-model-optimization: "
            "pip install 'tfuq[convert]'"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    return tf, tf_keras, tfmot


@functools.cache
def _twin_dropout_class():
    tf, tf_keras, _ = _modules()

    class TwinMCDropout(tf_keras.layers.Layer):
        """tf-keras twin of tfuq.MCDropout: drops units in every mode."""

        def __init__(self, rate: float, **kwargs):
            super().__init__(**kwargs)
            self.rate = rate

        def call(self, inputs, training=None):
            return tf.nn.dropout(inputs, rate=self.rate)

        def get_config(self):
            return {**super().get_config(), "rate": self.rate}

    return TwinMCDropout


_SUPPORTED = "QAT supports the small_cnn, resnet50, efficientnetb0 and mobilenetv2 backbones"

# Keras 3 options that tf-keras layers lack, at values that mean tf-keras' behaviour.
_DEFAULT_OPTIONS = {
    "data_format": "channels_last",
    "fill_mode": "constant",
    "fill_value": 0.0,
}
_UNKNOWN_ARGUMENT = (
    re.compile(r"unexpected keyword argument '(\w+)'"),
    re.compile(r"not understood:', '(\w+)'"),
)


def _twin_layer(layer, dropout_class):
    """A tf-keras layer with the same configuration as the Keras 3 ``layer``."""
    import keras

    from tfuq.modeling.layers import MCDropout

    _, tf_keras, _ = _modules()
    if isinstance(layer, MCDropout):
        return dropout_class(layer.rate, name=layer.name)
    if not isinstance(layer, keras.layers.Layer):
        raise TrainError(
            f"quantization-aware training: the model computes {type(layer).__name__} with raw "
            f"keras.ops, which has no tf-keras layer; {_SUPPORTED}"
        )
    twin_class = getattr(tf_keras.layers, type(layer).__name__, None)
    if twin_class is None:
        raise TrainError(f"quantization-aware training: tf-keras has no layer {type(layer).__name__}")
    config = dict(layer.get_config())
    if isinstance(config.get("dtype"), dict):  # Keras 3 dtype policy
        config["dtype"] = config["dtype"].get("config", {}).get("name", "float32")
    for key in list(config):
        # Initial values do not matter (the weights are copied) and their configs differ.
        if key.endswith("_initializer"):
            del config[key]
        elif key.endswith(("_regularizer", "_constraint")) and config[key] is not None:
            raise TrainError(f"quantization-aware training: {layer.name} has a {key}, not supported")
    while True:
        try:
            return twin_class.from_config(config)
        except TypeError as error:
            # Keras 3 options tf-keras does not know may go when they are off or default.
            found = next((p.search(str(error)) for p in _UNKNOWN_ARGUMENT if p.search(str(error))), None)
            key = found.group(1) if found else None
            if key not in config or not (
                config[key] in (None, False) or _DEFAULT_OPTIONS.get(key, object()) == config[key]
            ):
                reason = str(error).strip().splitlines()[-1]
                raise TrainError(
                    f"quantization-aware training: tf-keras cannot rebuild layer {layer.name} "
                    f"({reason}); {_SUPPORTED}"
                ) from error
            del config[key]


def tf_keras_twin(model):
    """The tf-keras twin of a functional Keras 3 model, flattened, with the same weights.

    Returns ``(twin, pairs)`` where ``pairs`` lists ``(keras3_layer, twin_layer)``.
    """
    import keras

    _, tf_keras, _ = _modules()
    dropout_class = _twin_dropout_class()
    if not hasattr(model, "_run_through_graph") or len(model.inputs) != 1:
        raise TrainError("quantization-aware training needs a functional model with one input")
    pairs = []

    def call(operation, *args, **kwargs):
        if isinstance(operation, keras.Model):  # a nested backbone: inline its layers
            return operation._run_through_graph(args[0], call_fn=call)
        twin = _twin_layer(operation, dropout_class)
        kwargs.pop("training", None)
        output = twin(*args, **kwargs)
        pairs.append((operation, twin))
        return output

    image = tf_keras.Input(tuple(model.inputs[0].shape[1:]), name=model.inputs[0].name)
    output = model._run_through_graph(image, call_fn=call)
    twin = tf_keras.Model(image, output, name=f"{model.name}_tf_keras")
    for layer, twin_layer in pairs:
        twin_layer.set_weights(layer.get_weights())
        twin_layer.trainable = layer.trainable
    return twin, pairs


def quantize(twin):
    """Annotate the layers tfmot's default 8-bit scheme supports and apply fake quantization."""
    _, tf_keras, tfmot = _modules()
    registry = tfmot.quantization.keras.default_8bit.Default8BitQuantizeRegistry()

    def annotate(layer):
        # Batch norm is folded into the preceding convolution by tfmot's transforms.
        if registry.supports(layer) or isinstance(layer, tf_keras.layers.BatchNormalization):
            return tfmot.quantization.keras.quantize_annotate_layer(layer)
        return layer

    annotated = tf_keras.models.clone_model(twin, clone_function=annotate)
    with tfmot.quantization.keras.quantize_scope({"TwinMCDropout": _twin_dropout_class()}):
        return tfmot.quantization.keras.quantize_apply(annotated)


def _trained_values(quantized, name: str) -> dict[str, np.ndarray]:
    """The trained variables of layer ``name`` in the quantized twin, by short name.

    A QuantizeWrapper owns the variables of the layer it wraps (the wrapped layer may list
    none, since quantized kernels replace its attributes) next to its own quantizer state;
    the layer's variables are the ones named ``<name>/...``.
    """
    for candidate in (f"quant_{name}", name):
        try:
            layer = quantized.get_layer(candidate)
        except ValueError:
            continue
        return {
            w.name.split("/")[-1].split(":")[0]: w.numpy()
            for w in layer.weights
            if w.name.startswith(f"{name}/")
        }
    raise TrainError(f"quantization-aware training lost layer {name}")


# Variables that tf-keras names differently from Keras 3.
_TF_KERAS_NAMES = {("DepthwiseConv2D", "kernel"): "depthwise_kernel"}


def _copy_back(pairs, quantized) -> None:
    for layer, twin_layer in pairs:
        if not layer.weights:
            continue
        values = _trained_values(quantized, twin_layer.name)
        names = [_TF_KERAS_NAMES.get((type(layer).__name__, w.name), w.name) for w in layer.weights]
        missing = [name for name in names if name not in values]
        if missing:
            raise TrainError(f"quantization-aware training: no trained {', '.join(missing)} for {layer.name}")
        layer.set_weights([values[name] for name in names])


def finetune(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int = 2,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    validation_split: float = 0.1,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    patience: int | None = 2,
    seed: int = 0,
    progress: bool = True,
) -> QatResult:
    """Quantization-aware fine-tuning of a trained Keras 3 model, in place.

    The model's frozen layers stay frozen. After fine-tuning, the Keras 3 model holds the
    QAT-adapted weights (the best epoch's, by validation loss, when there is validation
    data) and converts with ``tfuq.conversion.convert`` as before.

    Args:
        model: a functional Keras 3 model, e.g. from ``tfuq.modeling.backbones.build_model``.
        images, labels: uint8 ``(N, H, W, 3)`` images and integer labels.
        epochs: fine-tuning epochs (QAT usually needs a few at a low learning rate).
        batch_size, learning_rate, validation_split, validation, patience, seed: as in
            :func:`tfuq.training.train.train`.
        progress: Keras' progress bar (tf-keras prints it to stdout).
    """
    _, tf_keras, _ = _modules()
    images = check_images(images, "training images")
    classes = int(model.outputs[0].shape[-1])
    labels = check_labels(labels, len(images), classes)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise TrainError(f"QAT epochs must be a positive integer, got {epochs!r}")
    if validation is not None:
        train_images, train_labels = images, labels
        val_images = check_images(validation[0], "validation images")
        val_labels = check_labels(validation[1], len(val_images), classes)
    elif validation_split > 0:
        train_index, val_index = stratified_split(labels, validation_split, seed)
        train_images, train_labels = images[train_index], labels[train_index]
        val_images, val_labels = images[val_index], labels[val_index]
    else:
        train_images, train_labels, val_images, val_labels = images, labels, None, None

    twin, pairs = tf_keras_twin(model)
    quantized = quantize(twin)
    wrapped = sum(type(layer).__name__.startswith("QuantizeWrapper") for layer in quantized.layers)
    quantized.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    callbacks = []
    has_validation = val_images is not None and len(val_images) > 0
    if has_validation and patience is not None:
        callbacks.append(tf_keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True))
    started = time.perf_counter()
    fitted = quantized.fit(
        _dataset(train_images, train_labels, batch_size, shuffle_seed=seed),
        validation_data=_dataset(val_images, val_labels, batch_size, None) if has_validation else None,
        epochs=epochs,
        callbacks=callbacks,
        verbose=1 if progress else 0,
    )
    seconds = time.perf_counter() - started
    _copy_back(pairs, quantized)
    history = {key: [float(v) for v in values] for key, values in fitted.history.items()}
    best = int(np.argmin(history["val_loss"])) + 1 if "val_loss" in history else None
    return QatResult(model, history, len(history.get("loss", [])), best, wrapped, seconds)
