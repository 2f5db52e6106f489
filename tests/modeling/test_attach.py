"""attach: an MCDropout before the final Dense, only that Dense learns, the rest is untouched."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tests._dummies import byo, tiny  # noqa: E402
from tfuq.conversion import rewrite  # noqa: E402
from tfuq.modeling import byo as byo_form  # noqa: E402
from tfuq.modeling.attach import AttachError, attach  # noqa: E402
from tfuq.modeling.layers import MCDropout, PixelPreprocessing  # noqa: E402


def _classifier(head):
    """Conv trunk, then ``head(x)`` for the output; seeded, untrained."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((tiny.SIZE, tiny.SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inputs))
    return keras.Model(inputs, head(x))


@pytest.mark.parametrize(
    "head, classes",
    [
        (lambda x: keras.layers.Dense(4, name="top")(x), 4),  # logits
        (lambda x: keras.layers.Softmax()(keras.layers.Dense(4, name="top")(x)), 4),  # softmax layer after
        (lambda x: keras.layers.Dense(1, activation="sigmoid", name="top")(x), 1),  # binary
    ],
)
def test_head_goes_before_the_final_dense(head, classes):
    model = _classifier(head)
    images, labels = tiny.images(40, seed=1)
    if classes == 1:
        labels = (labels >= 2).astype(int)
    conv_before = [w.copy() for w in model.get_layer("conv").get_weights()]
    top_before = [w.copy() for w in model.get_layer("top").get_weights()]
    result = attach(model, images, labels, rate=0.3, epochs=2, validation_split=0.2, passes=4)
    assert result.classifier == "top" and result.validation_samples == 8
    assert 0.0 <= result.accuracy_before <= 1.0 and 0.0 <= result.accuracy_after <= 1.0
    layers = result.model.layers
    index = [layer.name for layer in layers].index("top")
    assert isinstance(layers[index - 1], MCDropout) and layers[index - 1].rate == 0.3
    for got, was in zip(result.model.get_layer("conv").get_weights(), conv_before, strict=True):
        assert np.array_equal(got, was)
    assert not np.array_equal(result.model.get_layer("top").get_weights()[0], top_before[0])
    # Without its dropout the attached graph is the original graph with the new Dense weights.
    model.get_layer("top").set_weights(result.model.get_layer("top").get_weights())
    image = images[:1].astype("float32")
    np.testing.assert_allclose(np.asarray(rewrite.build_deterministic(result.model)(image)),
                               np.asarray(model(image)), atol=1e-6)


def test_folded_preprocessing_makes_it_take_raw_pixels():
    model = byo.fit(_classifier(lambda x: keras.layers.Dense(4, activation="softmax", name="top")(x)), epochs=10)
    images, labels = tiny.images(40, seed=1)
    result = attach(model, images, labels, rate=0.2, epochs=1, validation_split=0.25,
                    preprocessing=byo_form.Preprocessing.from_options("-1,1"))
    assert isinstance(result.model.layers[1], PixelPreprocessing)
    assert any("folded" in note for note in result.notes)
    # Before: the original model fed [-1, 1] as it was trained; it learned the colours.
    assert result.accuracy_before == 1.0


@pytest.mark.parametrize(
    "model, message",
    [
        (lambda: _classifier(lambda x: x), "final Dense"),
        (lambda: _classifier(lambda x: keras.layers.Dense(2, activation="softmax")(MCDropout(0.2)(x))), "already has tfuq.MCDropout"),
    ],
)
def test_refusals(model, message):
    images, labels = tiny.images(8)
    with pytest.raises(AttachError, match=message):
        attach(model(), images, labels, rate=0.2)


def test_bad_rate_and_labels():
    model = _classifier(lambda x: keras.layers.Dense(4, name="top")(x))
    images, labels = tiny.images(8)
    with pytest.raises(AttachError, match="rate"):
        attach(model, images, labels, rate=0.0)
    with pytest.raises(ValueError, match="out of range for 4 classes"):
        attach(model, images, labels + 4, rate=0.2)
