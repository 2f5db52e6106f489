"""The masked, pass-batched graph against a NumPy re-implementation of the tiny model."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tests._dummies import tiny  # noqa: E402
from tfuq import MCDropout  # noqa: E402
from tfuq.conversion import rewrite  # noqa: E402
from tfuq.modeling import graph  # noqa: E402


def numpy_tiny(model, image: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """The tiny model's forward pass written out by hand: (passes, classes) probabilities."""
    conv, dense1, dense2, dense3 = (model.get_layer(index=i) for i in (2, 4, 6, 8))
    x = image.astype(np.float64) / 127.5 - 1.0
    kernel, bias = conv.get_weights()
    height, width = x.shape[0] - 2, x.shape[1] - 2
    patches = np.stack(
        [x[i : i + height, j : j + width] for i in range(3) for j in range(3)], axis=2
    )  # (h, w, 9, 3) in kernel order (row, col)
    feature = np.einsum("hwkc,kco->hwo", patches, kernel.reshape(9, 3, -1)) + bias
    pooled = np.maximum(feature, 0).mean(axis=(0, 1))
    w, b = dense1.get_weights()
    h = np.maximum(pooled @ w + b, 0)[None] * masks[0] / (1 - 0.2)
    w, b = dense2.get_weights()
    h = np.maximum(h @ w + b, 0) * masks[1] / (1 - 0.3)
    w, b = dense3.get_weights()
    logits = h @ w + b
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_masked_graph_equals_the_hand_written_model(tiny_keras):
    passes = 5
    masked, specs = rewrite.build_masked(tiny_keras, passes)
    assert [(s.input, s.shape, s.rate) for s in specs] == [
        ("mask_0", (5, 32), 0.2),
        ("mask_1", (5, 16), 0.3),
    ]
    image, _ = tiny.images(1, seed=9)
    rng = np.random.default_rng(0)
    masks = [rng.integers(0, 2, s.shape).astype("float32") for s in specs]
    got = np.asarray(masked([image.astype("float32"), *masks]))
    assert got.shape == (passes, 4)
    np.testing.assert_allclose(got, numpy_tiny(tiny_keras, image[0], masks), atol=1e-5)


def test_masked_graph_shares_weights_with_the_original(tiny_keras):
    masked, _ = rewrite.build_masked(tiny_keras, 2)
    original = {id(v) for v in tiny_keras.weights}
    assert {id(v) for v in masked.weights} == original


def _head_model(head):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(head(x)))


def test_model_without_mc_dropout_is_refused():
    with pytest.raises(graph.ExportError, match="no tfuq.MCDropout"):
        rewrite.build_masked(_head_model(keras.layers.Dropout(0.5)), 3)


def test_subclassed_model_is_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.drop = MCDropout(0.5)
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(self.drop(x))

    with pytest.raises(graph.ExportError, match="subclassed"):
        rewrite.build_masked(Net(), 3)


def test_rate_outside_unit_interval_is_refused():
    model = _head_model(MCDropout(0.5))
    model.layers[2].rate = 1.0  # as a hand-edited config could leave it
    with pytest.raises(graph.ExportError, match="outside"):
        rewrite.build_masked(model, 3)


def test_zero_passes_refused():
    with pytest.raises(graph.ExportError, match="passes"):
        rewrite.build_masked(_head_model(MCDropout(0.5)), 0)


@pytest.mark.parametrize("rate", [0.25, 0.6])
def test_in_graph_dropout_keeps_1_minus_rate_and_scales_by_its_inverse(rate):
    # The model is Flatten then MCDropout: with an all-ones image every output value is the
    # dropout itself, 0 (dropped) or 1 / (1 - rate) (kept), 49,152 draws in one call.
    inputs = keras.Input((128, 128, 3))
    model = keras.Model(inputs, MCDropout(rate)(keras.layers.Flatten()(inputs)))
    in_graph = rewrite.build_in_graph(model)
    out = np.asarray(in_graph(np.ones((1, 128, 128, 3), np.float32)))[0]
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1 / (1 - rate), rtol=1e-6)
    # Keep share 1 - rate within 4 binomial standard deviations (0.8% and 0.9% here).
    assert abs(kept.mean() - (1 - rate)) < 4 * np.sqrt(rate * (1 - rate) / out.size)
    # So the mean activation is preserved, as in training.
    assert abs(out.mean() - 1.0) < 4 * np.sqrt(rate / (1 - rate) / out.size)
