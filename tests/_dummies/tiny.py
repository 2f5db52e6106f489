"""Easy synthetic images and a tiny MC-dropout CNN that learns them in seconds.

Class ``k`` of ``COLOURS`` is an image whose mean colour is that colour, with pixel noise, so
a trained model is confident and Keras-vs-TFLite agreement is meaningful (an untrained model
gives near-uniform probabilities whose argmax is noise).
"""

from __future__ import annotations

import numpy as np

COLOURS = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]], dtype=np.float64)
LABELS = ["red", "green", "blue", "yellow"]
SIZE = 16


def images(count: int, seed: int = 0, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``count`` uint8 (N, size, size, 3) images and their labels, classes in turn."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(COLOURS)
    noise = rng.normal(0, 30, (count, size, size, 3))
    pixels = COLOURS[labels][:, None, None, :] + noise
    return np.clip(pixels, 0, 255).astype(np.uint8), labels


def model(size: int = SIZE, rates=(0.2, 0.3), seed: int = 0):
    """Rescaling, one conv, pooling, then Dense-MCDropout-Dense-MCDropout-softmax."""
    import keras

    from tfuq import MCDropout

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(32, activation="relu")(x)
    x = MCDropout(rates[0], seed=seed)(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    x = MCDropout(rates[1], seed=seed + 1)(x)
    outputs = keras.layers.Dense(len(COLOURS), activation="softmax")(x)
    return keras.Model(inputs, outputs, name="tiny")


def trained_model(epochs: int = 30):
    """The tiny model fitted on 256 easy images (a few seconds on one core)."""
    x, y = images(256, seed=1)
    net = model()
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    net.fit(x.astype("float32"), y, epochs=epochs, batch_size=32, verbose=0)
    return net
