"""The Monte-Carlo dropout layer, the folded input preprocessing and the smoothed training loss
(need Keras; the runtime never imports this module)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np


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
        noise_shape: as for ``keras.layers.Dropout``: the shape of the mask, ``None`` entries
            taken from the input, ``1`` entries shared. ``(None, 1, 1, None)`` drops whole
            channels of an image feature map (``SpatialDropout2D``); ``tfuq convert`` then makes
            one mask value per channel and pass.

    Example:
        >>> layer = MCDropout(0.5, seed=1)
        >>> x = keras.ops.ones((2, 4))
        >>> bool((layer(x) != layer(x)).numpy().any())  # differs between calls
        True
    """

    def __init__(
        self,
        rate: float,
        seed: int | None = None,
        noise_shape: Sequence[int | None] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(rate, int | float) or not 0.0 < float(rate) < 1.0:
            raise ValueError(f"MCDropout rate must be in (0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=None):
        # ``training`` is accepted and ignored on purpose: sampling happens in every mode.
        return keras.random.dropout(
            inputs, self.rate, noise_shape=self._noise_shape(inputs), seed=self.seed_generator
        )

    def _noise_shape(self, inputs):
        if self.noise_shape is None:
            return None
        shape = keras.ops.shape(inputs)
        return tuple(shape[i] if d is None else d for i, d in enumerate(self.noise_shape))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "rate": self.rate,
            "seed": self.seed,
            "noise_shape": None if self.noise_shape is None else list(self.noise_shape),
        }


@keras.saving.register_keras_serializable(package="tfuq")
class PixelPreprocessing(keras.layers.Layer):
    """Raw RGB pixels 0-255 to what a model expects: ``out[..., c] = x[..., order[c]] * scale[c] + offset[c]``.

    ``tfuq convert`` puts it in front of a model whose preprocessing happened outside the graph,
    so the converted file still takes raw pixels. It runs as one 1x1 convolution (one int8
    ``CONV_2D`` after conversion; its per-channel weights hold each scale exactly).

    Args:
        scale: per output channel, three floats.
        offset: per output channel, three floats.
        channel_order: ``"RGB"``, or ``"BGR"`` for models trained on BGR images (caffe).

    Example:
        >>> layer = PixelPreprocessing([1 / 127.5] * 3, [-1.0] * 3)   # [-1, 1]
        >>> [round(float(v), 3) for v in layer(np.array([[[[0.0, 127.5, 255.0]]]]))[0, 0, 0]]
        [-1.0, 0.0, 1.0]
    """

    def __init__(
        self,
        scale: Sequence[float],
        offset: Sequence[float],
        channel_order: str = "RGB",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.scale = [float(v) for v in scale]
        self.offset = [float(v) for v in offset]
        if len(self.scale) != 3 or len(self.offset) != 3:
            raise ValueError("PixelPreprocessing needs three scales and three offsets")
        if not all(np.isfinite(self.scale + self.offset)) or 0.0 in self.scale:
            raise ValueError(f"scales must be finite and non-zero, got {self.scale}")
        if channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be RGB or BGR, got {channel_order!r}")
        self.channel_order = channel_order
        self.built = True

    def kernel(self) -> np.ndarray:
        """The (1, 1, 3, 3) convolution kernel: a scaled permutation."""
        order = [0, 1, 2] if self.channel_order == "RGB" else [2, 1, 0]
        kernel = np.zeros((1, 1, 3, 3), np.float32)
        for out, source in enumerate(order):
            kernel[0, 0, source, out] = self.scale[out]
        return kernel

    def call(self, inputs):
        inputs = keras.ops.cast(inputs, self.compute_dtype)
        outputs = keras.ops.conv(inputs, keras.ops.convert_to_tensor(self.kernel()), padding="valid")
        return outputs + keras.ops.convert_to_tensor(np.asarray(self.offset, np.float32))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "scale": self.scale,
            "offset": self.offset,
            "channel_order": self.channel_order,
        }


@keras.saving.register_keras_serializable(package="tfuq")
class SmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels against probabilities with label smoothing: the target
    is ``1 - smoothing`` on the label plus ``smoothing / classes`` on every class, as
    ``keras.losses.CategoricalCrossentropy(label_smoothing=...)`` computes it for one-hot
    labels (Keras' sparse cross-entropy has no smoothing).
    """

    def __init__(self, smoothing: float = 0.1, name: str = "smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smoothing = float(smoothing)

    def call(self, y_true, y_pred):
        classes = y_pred.shape[-1]
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        target = keras.ops.one_hot(labels, classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(target, y_pred, label_smoothing=self.smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "smoothing": self.smoothing}


@keras.saving.register_keras_serializable(package="tfuq")
class OutlierExposureLoss(keras.losses.Loss):
    """Outlier exposure (Hendrycks et al., ICLR 2019): cross-entropy on the labelled images plus
    ``outlier_weight`` times the cross-entropy from the uniform distribution on "none of these"
    images, which teaches the model to spread its probability over all classes there:

        loss = mean_in CE(smoothed one-hot, p) + outlier_weight * mean_out (-1/K sum_k log p_k)

    Outliers are marked by a negative label in the same batch. Each part is averaged over its
    own images (a batch without outliers gives the first term alone), so the weight means the
    same whatever the share of outliers in a batch.

    >>> import numpy as np
    >>> loss = OutlierExposureLoss(smoothing=0.0, outlier_weight=0.5)
    >>> p = np.array([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]], "float32")
    >>> round(float(loss(np.array([0, -1]), p)), 4)  # -ln 0.5 + 0.5 * -(ln .5 + 2 ln .25) / 3
    1.2708
    """

    def __init__(self, smoothing: float = 0.0, outlier_weight: float = 0.5,
                 name: str = "outlier_exposure", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smoothing = float(smoothing)
        self.outlier_weight = float(outlier_weight)

    def call(self, y_true, y_pred):
        ops = keras.ops
        classes = y_pred.shape[-1]
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        inside = ops.cast(labels >= 0, y_pred.dtype)
        target = ops.one_hot(ops.maximum(labels, 0), classes, dtype=y_pred.dtype)
        labelled = keras.losses.categorical_crossentropy(target, y_pred, label_smoothing=self.smoothing)
        epsilon = keras.backend.epsilon()
        uniform = -ops.mean(ops.log(ops.clip(y_pred, epsilon, 1.0)), axis=-1)
        count = ops.cast(ops.shape(labels)[0], y_pred.dtype)
        n_in = ops.maximum(ops.sum(inside), 1.0)
        n_out = ops.maximum(count - ops.sum(inside), 1.0)
        # Keras averages the returned values over the batch: scale each part so that the
        # average is mean_in + weight * mean_out.
        return count * (inside * labelled / n_in + (1.0 - inside) * self.outlier_weight * uniform / n_out)

    def get_config(self) -> dict:
        return {**super().get_config(), "smoothing": self.smoothing, "outlier_weight": self.outlier_weight}
