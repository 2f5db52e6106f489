"""The Monte-Carlo dropout layer (needs Keras; the runtime never imports this module)."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="tfuq")
class MCDropout(keras.layers.Layer):
    """Dropout that stays on at inference, so repeated passes sample the model posterior.

    Keras' ``Dropout`` is the identity unless ``training=True``; this layer drops units on
    every call (Gal and Ghahramani, 2016). Kept units are scaled by ``1 / (1 - rate)`` so the
    expected activation is unchanged.

    For deployment ``tfuq convert`` replaces each MCDropout by a multiplication with a mask
    that the runtime feeds from per-pass seeds (see ``tfuq.runtime.masks``), so the layer's own
    random generator is used only in Keras.

    Args:
        rate: fraction of units to drop, in (0, 1).
        seed: optional integer seed for reproducible sampling in tests.

    Example:
        >>> layer = MCDropout(0.5, seed=1)
        >>> x = keras.ops.ones((2, 4))
        >>> bool((layer(x) != layer(x)).numpy().any())  # differs between calls
        True
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(rate, int | float) or not 0.0 < float(rate) < 1.0:
            raise ValueError(f"MCDropout rate must be in (0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=None):
        # ``training`` is accepted and ignored on purpose: sampling happens in every mode.
        return keras.random.dropout(inputs, self.rate, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "rate": self.rate,
            "seed": self.seed,
        }
