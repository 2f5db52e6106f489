"""tfuq.modeling.backbones: every backbone builds, preprocessing matches keras.applications, the head is
where it was asked to be, freezing counts, .keras round trip, and clear errors."""

import functools

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from tfuq.conversion import rewrite  # noqa: E402
from tfuq.modeling import graph  # noqa: E402
from tfuq.modeling.backbones import (  # noqa: E402
    ModelError,
    backbone_of,
    build_model,
    freeze,
    weighted_layers,
)
from tfuq.modeling.layers import MCDropout  # noqa: E402

APPLICATIONS = ["resnet50", "efficientnetb0", "mobilenetv2", "mobilenetv3small"]
# small_cnn: 3 stages x 2 convolutions, each with a batch norm.
SMALL_CNN_WEIGHTED_LAYERS = 12


@functools.cache
def application(backbone):
    """One build per backbone for the whole module (ResNet50 takes seconds)."""
    return build_model(backbone, classes=5, input_size=32, weights=None)


def pixels(count=3, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype("float32")


def names(model):
    return [layer.name for layer in model.layers]


@pytest.mark.parametrize("backbone", APPLICATIONS + ["small_cnn"])
def test_each_backbone_builds_for_raw_pixels(backbone):
    model = application(backbone)
    assert len(model.inputs) == 1 and model.inputs[0].name == "image"
    assert tuple(model.inputs[0].shape) == (None, 32, 32, 3)
    assert tuple(model.outputs[0].shape) == (None, 5)
    probabilities = np.asarray(model(pixels()))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    assert [type(layer) for layer in model.layers[-3:]] == [
        keras.layers.GlobalAveragePooling2D, MCDropout, keras.layers.Dense,
    ]
    assert "resize" not in names(model)
    assert graph.image_shape(model) == (32, 32, 3)


def preprocessed(model, images):
    """What the backbone receives: the input of the nested backbone model."""
    backbone = backbone_of(model)
    index = model.layers.index(backbone)
    probe = keras.Model(model.inputs[0], model.layers[index - 1].output)
    return np.asarray(probe(images))


@pytest.mark.parametrize(
    "backbone, reference",
    [
        ("resnet50", keras.applications.resnet50.preprocess_input),
        ("mobilenetv2", keras.applications.mobilenet_v2.preprocess_input),
    ],
)
def test_preprocessing_inside_matches_keras_applications(backbone, reference):
    model = application(backbone)
    images = pixels(4)
    expected = reference(images.copy())  # caffe: BGR minus mean; tf: x / 127.5 - 1
    np.testing.assert_allclose(preprocessed(model, images), expected, atol=1e-3)
    # The caffe conversion must stay fixed while fine-tuning.
    assert not any(layer.trainable_weights for layer in model.layers[:model.layers.index(backbone_of(model))])


@pytest.mark.parametrize("backbone", ["efficientnetb0", "mobilenetv3small"])
def test_backbones_that_preprocess_themselves_get_raw_pixels(backbone):
    # Their preprocess_input is the identity: the rescaling is the backbone's first layer.
    model = application(backbone)
    np.testing.assert_array_equal(preprocessed(model, pixels(2)), pixels(2))
    assert isinstance(backbone_of(model).layers[1], keras.layers.Rescaling)


def test_resizing_sits_inside_when_image_size_differs():
    model = build_model("small_cnn", classes=3, input_size=32, image_size=20, weights=None)
    assert tuple(model.inputs[0].shape) == (None, 20, 20, 3)
    resize = model.get_layer("resize")
    assert tuple(resize.output.shape) == (None, 32, 32, 3)
    rectangular = build_model("small_cnn", classes=3, input_size=(24, 40), image_size=(12, 20), weights=None)
    assert tuple(rectangular.get_layer("resize").output.shape) == (None, 24, 40, 3)


def test_calling_without_training_leaves_batchnorm_statistics_alone():
    # Keras' Resizing defaults to training=True and would otherwise put every later layer
    # in training mode when the model is called as model(images).
    model = build_model("small_cnn", 3, 24, image_size=16, weights=None)
    statistics = backbone_of(model).get_layer("stage3_conv2_bn").moving_variance
    model(pixels(4, 16))
    np.testing.assert_array_equal(statistics.numpy(), np.ones(128))
    model(pixels(4, 16), training=True)  # what fit passes still reaches them
    assert not np.allclose(statistics.numpy(), 1.0)


def test_head_dropout_placement_and_rates():
    one = build_model("small_cnn", 4, 16, weights=None, dense=(16, 8), dropout=0.3)
    head = names(one)[names(one).index("pool"):]
    assert head == ["pool", "dense_1", "dense_2", "mc_dropout_1", "classifier"]
    every = build_model("small_cnn", 4, 16, weights=None, dense=(16, 8), dropout=0.25,
                        dropout_placement="all", pooling="max")
    head = names(every)[names(every).index("pool"):]
    assert head == ["pool", "mc_dropout_1", "dense_1", "mc_dropout_2", "dense_2",
                    "mc_dropout_3", "classifier"]
    assert isinstance(every.get_layer("pool"), keras.layers.GlobalMaxPooling2D)
    assert [layer.rate for layer in graph.mc_dropout_layers(every)] == [0.25] * 3
    assert every.get_layer("dense_1").units == 16 and every.get_layer("dense_2").units == 8
    # The masked export finds each dropout and runs the trunk once: masks follow the head.
    masked, specs = rewrite.build_masked(every, passes=3)
    assert [spec.shape for spec in specs] == [(3, 128), (3, 16), (3, 8)]
    assert tuple(masked.output.shape) == (3, 4)


def test_mc_dropout_samples_at_inference():
    model = build_model("small_cnn", 4, 16, weights=None, dropout=0.5)
    images = pixels(2, 16)
    first, second = np.asarray(model(images, training=False)), np.asarray(model(images, training=False))
    assert not np.allclose(first, second)


def test_freezing_counts_weighted_layers_from_the_end():
    classes = 4
    model = build_model("small_cnn", classes, 16, weights=None, trainable_layers=4)
    backbone = backbone_of(model)
    layers = weighted_layers(backbone)
    assert len(layers) == SMALL_CNN_WEIGHTED_LAYERS
    assert [layer.name for layer in layers if layer.trainable] == [
        "stage3_conv1", "stage3_conv1_bn", "stage3_conv2", "stage3_conv2_bn",
    ]
    # By hand: two 3x3 convolutions 64->128 and 128->128 without bias, two batch norms
    # (gamma, beta), then the classifier 128 -> 4 with bias.
    expected = 3 * 3 * 64 * 128 + 3 * 3 * 128 * 128 + 2 * 2 * 128 + 128 * classes + classes
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == expected

    head_only = build_model("small_cnn", classes, 16, weights=None, trainable_layers=0)
    assert sum(int(np.prod(w.shape)) for w in head_only.trainable_weights) == 128 * classes + classes
    everything = build_model("small_cnn", classes, 16, weights=None)
    assert all(layer.trainable for layer in weighted_layers(backbone_of(everything)))
    # Unfreezing more later: the same function on the built backbone.
    assert freeze(backbone, 6) == 6
    assert sum(layer.trainable for layer in layers) == 6


def test_freezing_an_application_backbone():
    backbone = backbone_of(build_model("mobilenetv2", 3, 32, weights=None, trainable_layers=10))
    layers = weighted_layers(backbone)
    flags = [layer.trainable for layer in layers]
    assert flags == [False] * (len(layers) - 10) + [True] * 10
    assert layers[-1].name == "Conv_1_bn"
    assert freeze(backbone, 10, freeze_batchnorm=True) == 5
    assert [layer.name for layer in layers if layer.trainable] == [
        "block_15_project", "block_16_expand", "block_16_depthwise", "block_16_project", "Conv_1",
    ]


def test_frozen_batchnorm_uses_moving_statistics():
    images = pixels(4, 16)

    def trunk(model):
        return keras.Model(model.inputs[0], model.get_layer("pool").output)

    frozen = trunk(build_model("small_cnn", 3, 16, weights=None, trainable_layers=0))
    np.testing.assert_allclose(frozen(images, training=True), frozen(images, training=False), atol=1e-5)
    scratch = trunk(build_model("small_cnn", 3, 16, weights=None))
    assert not np.allclose(scratch(images, training=True), scratch(images, training=False), atol=1e-3)


def test_weights_file_loads_and_keeps_batchnorm_in_inference(tmp_path):
    source = build_model("small_cnn", 3, 16, weights=None)
    backbone = backbone_of(source)
    backbone.layers[1].kernel.assign(backbone.layers[1].kernel * 3.0 + 0.5)
    path = tmp_path / "backbone.weights.h5"
    backbone.save_weights(path)
    loaded = build_model("small_cnn", 3, 16, weights=path)
    for a, b in zip(backbone.get_weights(), backbone_of(loaded).get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # Pretrained: batch norms among the trainable layers stay frozen, in inference mode.
    assert [layer.name for layer in weighted_layers(backbone_of(loaded)) if layer.trainable] == [
        f"stage{stage}_conv{index}" for stage in (1, 2, 3) for index in (1, 2)
    ]
    trunk = keras.Model(loaded.inputs[0], loaded.get_layer("pool").output)
    images = pixels(4, 16)
    np.testing.assert_allclose(trunk(images, training=True), trunk(images, training=False), atol=1e-5)


def test_keras_round_trip_without_custom_objects(tmp_path):
    from tfuq.conversion.convert import load_keras_model

    model = build_model("mobilenetv3small", 6, 32, image_size=24, weights=None, dense=(8,),
                        dropout=0.2, dropout_placement="all", trainable_layers=5,
                        freeze_batchnorm=True)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = load_keras_model(path)  # what `tfuq convert` does: no custom_objects
    assert names(loaded) == names(model)
    assert [layer.rate for layer in graph.mc_dropout_layers(loaded)] == [0.2, 0.2]
    layers = weighted_layers(backbone_of(loaded))
    expected = [not isinstance(layer, keras.layers.BatchNormalization) for layer in layers[-5:]]
    assert [layer.trainable for layer in layers] == [False] * (len(layers) - 5) + expected
    assert 0 < sum(expected) < 5
    images = pixels(2, 24)
    # The trunk is deterministic: every batch norm is frozen, in the file too.
    trunk = keras.Model(loaded.inputs[0], loaded.get_layer("pool").output)
    original = keras.Model(model.inputs[0], model.get_layer("pool").output)
    np.testing.assert_allclose(trunk(images, training=True), original(images), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backbone": "vgg16"}, "unknown backbone 'vgg16'"),
        ({"dropout": 0.0}, "dropout rate must be in (0, 1)"),
        ({"dropout": 1.0}, "dropout rate must be in (0, 1)"),
        ({"dropout": "half"}, "dropout rate must be in (0, 1)"),
        ({"classes": 1}, "classes must be an integer of at least 2"),
        ({"input_size": 4}, "needs an input size of at least 8"),
        ({"backbone": "mobilenetv2", "input_size": 16}, "needs an input size of at least 32"),
        ({"input_size": (16, 16, 3)}, "input_size must be an integer or (height, width)"),
        ({"image_size": 0}, "image_size must be positive"),
        ({"pooling": "sum"}, "pooling must be one of avg, max"),
        ({"dropout_placement": "first"}, "dropout_placement must be one of classifier, all"),
        ({"dense": (16, 0)}, "dense layer units must be positive integers"),
        ({"trainable_layers": 13}, "between 0 and 12"),
        ({"trainable_layers": -1}, "between 0 and 12"),
        ({"weights": "imagenet"}, "small_cnn has no ImageNet weights"),
        ({"weights": "/nonexistent/w.h5"}, "not found"),
    ],
)
def test_bad_arguments_raise_model_error(kwargs, message):
    arguments = {"backbone": "small_cnn", "classes": 3, "input_size": 16, "weights": None, **kwargs}
    with pytest.raises(ModelError) as error:
        build_model(**arguments)
    assert message in str(error.value)
    assert isinstance(error.value, ValueError)


def test_backbone_of_rejects_foreign_models():
    inputs = keras.Input((4,))
    with pytest.raises(ModelError, match="not a model made by"):
        backbone_of(keras.Model(inputs, keras.layers.Dense(2)(inputs)))
