"""Give a trained classifier without dropout an MC-dropout head: an MCDropout before its final
Dense, and that Dense fine-tuned on the user's data with the dropout in place.

    >>> result = attach(model, images, labels, rate=0.2, epochs=5)      # doctest: +SKIP
    >>> save_model(result.model, "mc.keras")                            # doctest: +SKIP

Only the final Dense learns, so the layers before it are run once over the data to get its
input features, and the head trains on those (seconds, not the cost of the whole network per
epoch). Needs TensorFlow. Images are uint8 ``(N, H, W, 3)`` RGB, resized to the model input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import keras
import numpy as np

from tfuq.data.common import check_images, check_labels, stratified_split
from tfuq.data.datasets import resize
from tfuq.modeling import byo, graph
from tfuq.modeling.layers import MCDropout


class AttachError(ValueError):
    """A model or data that ``attach`` cannot work with; the message says what to change."""


@dataclass
class AttachResult:
    """The model with its MC-dropout head, and how fine-tuning went."""

    model: keras.Model
    classifier: str  # name of the Dense that got an MCDropout before it
    history: dict[str, list[float]]
    validation_samples: int
    accuracy_before: float | None  # the original model on the validation images
    accuracy_after: float | None  # MC mean of ``passes`` passes on the same images
    passes: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def _classifier(functional) -> keras.layers.Dense:
    """The Dense that makes the output: the output layer, or the one before a softmax layer."""
    layer = graph.output_layer(functional)
    if isinstance(layer, keras.layers.Softmax | keras.layers.Activation):
        producer = layer._inbound_nodes[0].input_tensors[0]._keras_history.operation
        layer = producer
    if not isinstance(layer, keras.layers.Dense):
        raise AttachError(
            f"the model output comes from a {type(layer).__name__} layer {layer.name!r}; attach "
            "needs a final Dense classifier (optionally followed by a Softmax)"
        )
    return layer


def _loss(kind: str, classes: int):
    if classes == 1:
        return keras.losses.BinaryCrossentropy(from_logits=kind != "sigmoid")
    return keras.losses.SparseCategoricalCrossentropy(from_logits=kind != "softmax")


def attach(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    rate: float = 0.2,
    epochs: int = 5,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    validation_split: float = 0.1,
    preprocessing: byo.Preprocessing | None = None,
    input_size: tuple[int, int] | None = None,
    passes: int = 30,
    seed: int = 0,
    progress=None,
) -> AttachResult:
    """Insert ``MCDropout(rate)`` before the final Dense of ``model`` and fine-tune that Dense.

    Args:
        model: a trained functional or Sequential classifier without tfuq.MCDropout.
        images: uint8 ``(N, H, W, 3)`` training images (raw pixels), resized as needed.
        labels: integer class indices (0/1 for a one-unit binary output).
        rate: the MC-dropout rate, in (0, 1).
        epochs, batch_size, learning_rate: Adam fine-tuning of the final Dense.
        validation_split: share of each class held out to report accuracy before and after
            and to keep the best epoch (0: no validation).
        preprocessing: what the model expects when its preprocessing was outside the graph;
            folded in front, so the result takes raw pixels (and ``tfuq convert`` needs no flag).
        input_size: ``(height, width)`` for a model whose input size is not fixed.
        passes: MC passes for the accuracy after fine-tuning.
        seed: seeds the split, the dropout and the shuffling.
        progress: a callable ``(message)`` for progress lines, or None.

    Raises:
        AttachError (and ExportError, DataError): one line that says what to change.
    """
    say = progress or (lambda message: None)
    if not 0.0 < rate < 1.0:
        raise AttachError(f"rate must be in (0, 1), got {rate}")
    if epochs < 1 or batch_size < 1 or passes < 1:
        raise AttachError("epochs, batch size and passes must be at least 1")
    functional = graph.as_functional(model)
    size = graph.image_size(functional, input_size)
    notes = _check_dropout(functional)
    dense = _classifier(functional)
    classes = int(dense.units)
    activation = graph.activation_name(graph.output_layer(functional))
    kind = activation if activation in ("softmax", "sigmoid") else "logits"
    images = resize(check_images(np.asarray(images), "training images"), size)
    labels = check_labels(np.asarray(labels), len(images), 2 if classes == 1 else classes)

    keras.utils.set_random_seed(seed)
    parts = _insert_mc_dropout(functional, dense, rate, seed, preprocessing, size, notes)
    attached = keras.Model(parts.image, parts.output, name=model.name)
    started = time.monotonic()
    say(f"computing the classifier's input features for {len(images)} images")
    features = np.asarray(parts.trunk.predict(images.astype(np.float32), batch_size=64, verbose=0))
    if validation_split:
        train_index, val_index = stratified_split(labels, validation_split, seed)
    else:
        train_index, val_index = np.arange(len(labels)), np.zeros(0, int)
    before = after = None
    if len(val_index):
        # The original model, preprocessing folded in the same way, without the MCDropout.
        unchanged = graph.rebuild(functional, parts.first, lambda operation, inputs: None, set(), [])
        original = keras.Model(parts.image, unchanged).predict(
            images[val_index].astype(np.float32), batch_size=64, verbose=0)
        before = _accuracy(np.asarray(original), labels[val_index], classes, kind)
    fit = _fit_head(parts.head, features, labels, train_index, val_index, classes, kind,
                    epochs, batch_size, learning_rate, say)
    if len(val_index):
        mean = np.mean([np.asarray(parts.head(features[val_index], training=False))
                        for _ in range(passes)], axis=0)
        after = _accuracy(mean, labels[val_index], classes, kind)
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    return AttachResult(
        attached, dense.name, history, len(val_index), before, after, passes,
        time.monotonic() - started, notes,
    )


def _check_dropout(functional) -> list[str]:
    """Refuse a model that has tfuq.MCDropout already; a note when it has Keras dropout."""
    own = graph.mc_dropout_layers(functional)
    if own:
        raise AttachError(
            f"the model already has tfuq.MCDropout ({', '.join(layer.name for layer in own)}): "
            "convert it with `tfuq convert` directly"
        )
    ordinary = [
        layer for layer in functional._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.Dropout)
    ]
    if not ordinary:
        return []
    return [
        f"the model has Keras dropout layers ({', '.join(layer.name for layer in ordinary)}): "
        "`tfuq convert --mc-dropout dropout` would sample those without attach; they stay off here"
    ]


class _Parts(NamedTuple):
    """The rebuilt graph: its image input, the input after folded preprocessing (``first``),
    the output, and the two halves around the classifier (``trunk`` gives its input
    features, ``head`` is MCDropout then the classifier and what follows it)."""

    image: keras.KerasTensor
    first: keras.KerasTensor
    output: keras.KerasTensor
    trunk: keras.Model
    head: keras.Model


def _insert_mc_dropout(functional, dense, rate: float, seed: int, preprocessing,
                       size: tuple[int, int], notes: list[str]) -> _Parts:
    """Rebuild ``functional`` on raw pixels with ``MCDropout(rate)`` before ``dense``; what
    was left out or folded in is added to ``notes``."""
    taken = {layer.name for layer in functional._flatten_layers(include_self=True, recursive=True)}
    name = next(n for n in ("mc_dropout", *(f"mc_dropout_{i}" for i in range(1, 100))) if n not in taken)
    mc = MCDropout(rate, seed=seed, name=name)
    image = keras.Input(shape=(*size, 3), name=graph.IMAGE_INPUT)
    first = preprocessing.layer()(image) if preprocessing is not None else image
    features = []

    def replace(operation, inputs):
        if operation is not dense:
            return None
        features.append(inputs)
        return dense(mc(inputs))

    skipped: list[str] = []
    output = graph.rebuild(functional, first, replace, {id(dense)}, skipped, size)
    if skipped:
        notes.append(f"data augmentation layers left out (identities at inference): {', '.join(skipped)}")
    if preprocessing is not None:
        notes.append(f"input preprocessing folded into the model ({preprocessing.description}): it takes raw pixels 0-255")
    trunk = keras.Model(image, features[0], name="features")
    head = keras.Model(features[0], output, name="head")
    return _Parts(image, first, output, trunk, head)


def _accuracy(probabilities: np.ndarray, truth: np.ndarray, classes: int, kind: str) -> float:
    """Top-1 accuracy of outputs ``(batch, classes)``; one output unit is thresholded at 0.5
    for a sigmoid, at 0 for logits."""
    if classes == 1:
        predicted = (probabilities[:, 0] > (0.5 if kind == "sigmoid" else 0.0)).astype(int)
    else:
        predicted = probabilities.argmax(-1)
    return float(np.mean(predicted == truth))


def _fit_head(head, features, labels, train_index, val_index, classes: int, kind: str,
              epochs: int, batch_size: int, learning_rate: float, say):
    """Adam on the head alone over the cached features, keeping the best epoch by validation
    loss when there are validation images; Keras' ``History``."""
    head.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=_loss(kind, classes))
    callbacks = [_EpochLines(say, epochs)]
    if len(val_index):
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=epochs, restore_best_weights=True))
    target = labels.astype(np.float32)[:, None] if classes == 1 else labels
    return head.fit(
        features[train_index], target[train_index], epochs=epochs, batch_size=batch_size, verbose=0,
        validation_data=(features[val_index], target[val_index]) if len(val_index) else None,
        shuffle=True, callbacks=callbacks,
    )


class _EpochLines(keras.callbacks.Callback):
    def __init__(self, say, epochs: int):
        super().__init__()
        self.say, self.epochs = say, epochs

    def on_epoch_end(self, epoch, logs=None):
        shown = "  ".join(f"{k} {v:.4f}" for k, v in sorted((logs or {}).items()))
        self.say(f"epoch {epoch + 1}/{self.epochs}: {shown}")

