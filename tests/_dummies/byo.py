"""Tiny classifiers built as people build them (keras.io style), for the bring-your-own tests.

They learn ``tiny``'s colour classes in a few seconds. None takes raw pixels: the caller scales
images as each says, outside the model, as keras.io's examples do with their datasets.
"""

from __future__ import annotations

import numpy as np

from tests._dummies import tiny


def scaled(images: np.ndarray) -> np.ndarray:
    """Raw pixels to [-1, 1], the external scaling these models are trained with."""
    return images.astype("float32") / 127.5 - 1.0


def keras_io(size: int = tiny.SIZE, classes: int = 4, seed: int = 0):
    """keras.io's "image classification from scratch" shape, small: entry conv, a separable
    residual block, Dropout(0.25) and a Dense with logits (activation=None)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous = x
    x = layers.SeparableConv2D(16, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    residual = layers.Conv2D(16, 1, strides=2, padding="same")(previous)
    x = layers.add([x, residual])
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.25, name="dropout")(x)  # named: Keras numbers default names per session
    outputs = layers.Dense(classes, activation=None)(x)
    return keras.Model(inputs, outputs, name="keras_io")


def spatial_sequential(size: int = tiny.SIZE, seed: int = 0):
    """A Sequential model with SpatialDropout2D in its head, softmax out."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Conv2D(8, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.SpatialDropout2D(0.3, name="channel_drop"),
            layers.Conv2D(12, 1, activation="relu", name="head_conv"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(4, activation="softmax"),
        ],
        name="spatial",
    )


def nested(size: int = tiny.SIZE, seed: int = 0):
    """A backbone model used as one layer, then a Sequential head (Dropout inside) as another."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    trunk_in = keras.Input((size, size, 3))
    trunk = layers.Conv2D(8, 3, activation="relu")(trunk_in)
    trunk = layers.GlobalAveragePooling2D()(trunk)
    backbone = keras.Model(trunk_in, trunk, name="backbone")
    head = keras.Sequential(
        [keras.Input((8,)), layers.Dense(16, activation="relu"), layers.Dropout(0.2, name="head_drop"),
         layers.Dense(4, activation="softmax")],
        name="head",
    )
    inputs = keras.Input((size, size, 3))
    return keras.Model(inputs, head(backbone(inputs)), name="nested")


def caffe(images: np.ndarray) -> np.ndarray:
    """Raw RGB pixels to keras.applications' caffe input: BGR minus the ImageNet mean."""
    return images[..., ::-1].astype("float32") - np.array([103.939, 116.779, 123.68], "float32")


def fit(model, epochs: int = 25, logits: bool = False, binary: bool = False, preprocess=scaled):
    """Fit on 256 easy images preprocessed outside the model ([-1, 1] unless told); returns it."""
    import keras

    x, y = tiny.images(256, seed=1)
    if binary:
        y = (y >= 2).astype("float32")
        loss = keras.losses.BinaryCrossentropy(from_logits=logits)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss)
    model.fit(preprocess(x), y, epochs=epochs, batch_size=32, verbose=0)
    return model
