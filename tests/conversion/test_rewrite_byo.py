"""Bring your own model: classifiers built as keras.io builds them convert, and their int8 MC
mean agrees with Keras on held-out images with the same masks.

Each form is checked twice: the rewritten Keras graph against an independent route (the
user's own layers up to the dropout, then the head written out in numpy with the same masks),
and the int8 file against that Keras graph.
"""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import tfuq  # noqa: E402
from tests._dummies import byo, tiny  # noqa: E402
from tfuq.conversion import rewrite  # noqa: E402
from tfuq.conversion.convert import ConversionError, convert, load_keras_model  # noqa: E402
from tfuq.modeling import byo as byo_form  # noqa: E402
from tfuq.modeling import graph  # noqa: E402
from tfuq.modeling.layers import MCDropout  # noqa: E402

PASSES = 8
# int8 against float Keras, same masks, MC mean of 8 passes over 24 held-out images. Measured
# (2026-11-30, 2-core machine shared by 8 jobs): top-1 agreement 1.0 for each form; mean |dp| of
# the MC mean 0.0008-0.0013, largest single difference 0.008.
MIN_MC_AGREEMENT = 0.95
MEAN_TOLERANCE = 0.01


def softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def masks_like(specs, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 2, s.shape).astype("float32") for s in specs]


def mc_agreement(keras_model, path, images):
    """(MC-mean top-1 agreement, mean |p_keras - p_tflite| of the MC mean) on ``images``."""
    model = tfuq.load(path)
    masked, _ = rewrite.build_masked(keras_model, model.passes)
    agree, diffs = [], []
    for seed, image in enumerate(images):
        feeds = model.masks(seed)
        inputs = [image[None].astype("float32")] + [feeds[s.input].astype("float32") for s in model.mask_specs]
        expected = np.asarray(masked(inputs)).mean(0)
        got = model.run(image, seed=seed)[:, 0].mean(0)
        agree.append(got.argmax() == expected.argmax())
        diffs.append(np.abs(got - expected).mean())
    return float(np.mean(agree)), float(np.mean(diffs))


def convert_and_compare(model, tmp_path, **options):
    calibration, _ = tiny.images(96, seed=3)
    result = convert(model, calibration, passes=PASSES, calibration_samples=80, check_samples=16, **options)
    assert result.summary.full_integer, result.summary.problems
    assert result.check.passed, result.check
    path = tmp_path / f"{model.name}.tflite"
    result.save(path)
    prepared = byo_form.prepare(model, **options).model
    held_out, labels = tiny.images(24, seed=11)
    agreement, diff = mc_agreement(prepared, path, held_out)
    assert agreement >= MIN_MC_AGREEMENT
    assert diff < MEAN_TOLERANCE
    # The uint8 input scale stays pinned at 1: the file takes raw pixels.
    assert tfuq.load(path)._runner.get_input_details()["image"]["quantization"] == (1.0, 0)
    mean = tfuq.load(path).run(held_out, seed=0).mean(0)
    assert np.mean(mean.argmax(-1) == labels) > 0.9  # the model learned the colours
    return result, path


@pytest.fixture(scope="module")
def keras_io_model():
    return byo.fit(byo.keras_io(), logits=True)


@pytest.fixture(scope="module")
def spatial_model():
    return byo.fit(byo.spatial_sequential())


@pytest.fixture(scope="module")
def nested_model():
    return byo.fit(byo.nested())


def test_keras_io_rewrite_equals_the_users_layers(keras_io_model):
    """Folded [-1, 1], Dropout as MC, softmax added: against the model's own trunk plus numpy."""
    prepared = byo_form.prepare(
        keras_io_model, preprocessing=byo_form.Preprocessing.from_options("-1,1"), add_softmax=True
    )
    assert prepared.mc_layers == ["dropout"] and prepared.output == "logits"
    assert "dropout (Dropout 0.25)" in prepared.notes[0]
    masked, specs = rewrite.build_masked(prepared.model, 5)
    assert [(s.layer, s.shape, s.rate) for s in specs] == [("dropout", (5, 16), 0.25)]
    image, _ = tiny.images(1, seed=9)
    masks = masks_like(specs)
    got = np.asarray(masked([image.astype("float32"), *masks]))
    trunk = keras.Model(keras_io_model.input, keras_io_model.get_layer("dropout").input)
    features = np.asarray(trunk(byo.scaled(image), training=False))  # scaled outside, as trained
    kernel, bias = keras_io_model.layers[-1].get_weights()
    expected = softmax((features * masks[0] / 0.75) @ kernel + bias)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_keras_io_converts_and_agrees(keras_io_model, tmp_path):
    result, path = convert_and_compare(
        keras_io_model, tmp_path, preprocessing=byo_form.Preprocessing.from_options("-1,1"), add_softmax=True
    )
    config = tfuq.read_config(path)
    assert config.input.preprocessing == "folded into the model ([-1, 1]): feed raw pixels 0-255"
    assert [m.layer for m in config.mc_dropout] == ["dropout"]
    assert any("dropout (Dropout 0.25)" in note for note in result.notes)


def test_spatial_dropout_has_one_mask_value_per_channel(spatial_model):
    prepared = byo_form.prepare(spatial_model, preprocessing=byo_form.Preprocessing.from_options("-1,1"))
    masked, specs = rewrite.build_masked(prepared.model, 4)
    assert [(s.layer, s.shape) for s in specs] == [("channel_drop", (4, 8))]
    image, _ = tiny.images(1, seed=9)
    masks = masks_like(specs, seed=1)
    got = np.asarray(masked([image.astype("float32"), *masks]))
    trunk = keras.Model(spatial_model.inputs[0], spatial_model.get_layer("channel_drop").input)
    features = np.asarray(trunk(byo.scaled(image)))  # (1, 7, 7, 8)
    dropped = features * masks[0][:, None, None, :] / 0.7  # a whole channel per mask value
    kernel, bias = spatial_model.get_layer("head_conv").get_weights()
    pooled = np.maximum(np.einsum("phwc,co->phwo", dropped, kernel[0, 0]) + bias, 0).mean(axis=(1, 2))
    w, b = spatial_model.layers[-1].get_weights()
    np.testing.assert_allclose(got, softmax(pooled @ w + b), atol=1e-5)
    assert "head_conv" in prepared.notes[-1]  # it runs once per pass, and the notice says so


def test_spatial_sequential_converts_and_agrees(spatial_model, tmp_path):
    convert_and_compare(spatial_model, tmp_path, preprocessing=byo_form.Preprocessing.from_options("-1,1"))


def test_nested_models_are_inlined_where_dropout_is(nested_model):
    prepared = byo_form.prepare(nested_model, preprocessing=byo_form.Preprocessing.from_options("-1,1"))
    masked, specs = rewrite.build_masked(prepared.model, 3)
    assert [(s.layer, s.shape) for s in specs] == [("head_drop", (3, 16))]
    assert "backbone" in [layer.name for layer in masked.layers]  # no dropout inside: one layer
    image, _ = tiny.images(1, seed=9)
    masks = masks_like(specs, seed=2)
    features = np.asarray(nested_model.get_layer("backbone")(byo.scaled(image)))
    head = nested_model.get_layer("head")
    (w1, b1), (w2, b2) = head.layers[0].get_weights(), head.layers[2].get_weights()
    hidden = np.maximum(features @ w1 + b1, 0) * masks[0] / 0.8
    got = np.asarray(masked([image.astype("float32"), *masks]))
    np.testing.assert_allclose(got, softmax(hidden @ w2 + b2), atol=1e-5)


def test_nested_converts_and_agrees(nested_model, tmp_path):
    convert_and_compare(nested_model, tmp_path, preprocessing=byo_form.Preprocessing.from_options("-1,1"))


def test_caffe_preprocessing_converts_and_agrees(tmp_path):
    """BGR and mean subtraction folded in: a model trained on caffe input takes raw RGB."""
    model = byo.fit(byo.nested(seed=1), preprocess=byo.caffe)
    model.name = "caffe_nested"
    _, path = convert_and_compare(model, tmp_path, preprocessing=byo_form.Preprocessing.from_options("caffe"))
    assert "BGR" in tfuq.read_config(path).input.preprocessing


def test_keras_applications_backbone_runs_once():
    base = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(32, 32, 3), alpha=0.35, pooling="avg"
    )
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Dropout(0.2)(base(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    prepared = byo_form.prepare(model, preprocessing=byo_form.Preprocessing.from_options("-1,1"))
    assert graph.per_pass_convolutions(prepared.model) == []  # the whole backbone runs once
    masked, specs = rewrite.build_masked(prepared.model, 6)
    assert specs[0].shape == (6, base.output.shape[-1]) and masked.output.shape == (6, 3)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_and_h5_files_load_and_prepare(keras_io_model, tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    keras_io_model.save(path)
    loaded = load_keras_model(path)
    options = {"preprocessing": byo_form.Preprocessing.from_options("-1,1"), "add_softmax": True}
    image, _ = tiny.images(2, seed=5)
    a = rewrite.build_deterministic(byo_form.prepare(keras_io_model, **options).model)
    b = rewrite.build_deterministic(byo_form.prepare(loaded, **options).model)
    for one in image:
        np.testing.assert_allclose(np.asarray(a(one[None].astype("float32"))),
                                   np.asarray(b(one[None].astype("float32"))), atol=1e-6)


def test_dynamic_input_size_needs_a_size():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Dropout(0.5)(x)))
    with pytest.raises(graph.ExportError, match="not fixed.*--input-size"):
        byo_form.prepare(model)
    prepared = byo_form.prepare(model, input_size=(20, 24))
    assert graph.image_shape(prepared.model) == (20, 24, 3)
    with pytest.raises(graph.ExportError, match="fixed at 20x24"):
        byo_form.prepare(prepared.model, input_size=(32, 32))


# -- preprocessing: the folded layer against the formulas written out ------------------------
PIXELS = np.array([[[[0, 0, 0], [255, 255, 255], [10, 128, 250]]]], np.float32)


@pytest.mark.parametrize(
    "options, expected",
    [
        (("0,1", None, None), PIXELS / 255),
        (("-1,1", None, None), PIXELS / 127.5 - 1),
        (("tf", None, None), PIXELS / 127.5 - 1),
        (("torch", None, None), (PIXELS / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]),
        (("caffe", None, None), PIXELS[..., ::-1] - np.array([103.939, 116.779, 123.68])),
        (("imagenet", None, None), (PIXELS / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]),
        ((None, [120.0, 110.0, 100.0], [60.0, 50.0, 40.0]), (PIXELS - [120, 110, 100]) / [60, 50, 40]),
        (("0,1", [0.5], [0.25]), (PIXELS / 255 - 0.5) / 0.25),
    ],
)
def test_preprocessing_matches_its_formula(options, expected):
    layer = byo_form.Preprocessing.from_options(*options).layer()
    np.testing.assert_allclose(np.asarray(layer(PIXELS)), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "options, message",
    [
        (("0-1", None, None), "LOW,HIGH"),
        (("1,0", None, None), "LOW < HIGH"),
        (("caffe", [1.0], None), "drop --mean"),
        ((None, [1.0, 2.0], None), "one or three"),
        ((None, None, [0.0]), "positive"),
    ],
)
def test_bad_preprocessing(options, message):
    with pytest.raises(graph.ExportError, match=message):
        byo_form.Preprocessing.from_options(*options)


def test_preprocessing_layer_round_trips(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, byo_form.Preprocessing.from_options("caffe").layer()(inputs))
    model.save(tmp_path / "p.keras")
    again = keras.models.load_model(tmp_path / "p.keras")
    np.testing.assert_allclose(np.asarray(again(np.ones((1, 4, 4, 3)) * PIXELS[0, 0, 2])),
                               np.asarray(model(np.ones((1, 4, 4, 3)) * PIXELS[0, 0, 2])))


# -- which layers sample -----------------------------------------------------------------------
def _two_dropouts(mc=False):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    x = keras.layers.Dense(6, activation="relu")(keras.layers.Dropout(0.1, name="early")(x))
    x = (MCDropout(0.3, name="mine") if mc else keras.layers.Dropout(0.4, name="late"))(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def test_mc_layers_picks_by_name():
    assert byo_form.prepare(_two_dropouts(), mc_layers=["late"]).mc_layers == ["late"]
    assert byo_form.prepare(_two_dropouts()).mc_layers == ["early", "late"]  # auto: all of them
    assert byo_form.prepare(_two_dropouts(mc=True)).mc_layers == ["mine"]  # auto: MCDropout only
    assert byo_form.prepare(_two_dropouts(mc=True), mc_dropout="dropout").mc_layers == ["early", "mine"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"mc_layers": ["nope"]}, "no layer 'nope'.*early, late"),
        ({"mc_layers": ["dense"]}, "is a Dense"),
        ({"mc_dropout": "mcdropout"}, "no tfuq.MCDropout.*--mc-dropout dropout"),
        ({"mc_dropout": "some"}, "must be one of"),
    ],
)
def test_bad_layer_choices(options, message):
    model = _two_dropouts()
    model.layers[3].name = "dense"  # a stable name to refer to
    with pytest.raises(graph.ExportError, match=message):
        byo_form.prepare(model, **options)


def test_sampling_the_trained_rate():
    prepared = byo_form.prepare(_two_dropouts(), mc_layers=["late"])
    (layer,) = graph.mc_dropout_layers(prepared.model)
    assert isinstance(layer, MCDropout) and layer.rate == 0.4 and layer.name == "late"


# -- what cannot be converted ------------------------------------------------------------------
def test_refusals_say_what_to_change():
    a, b = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.add([a, b]))
    two_inputs = keras.Model([a, b], keras.layers.Dense(2, activation="softmax")(keras.layers.Dropout(0.5)(pooled)))
    with pytest.raises(graph.ExportError, match="2 inputs.*image input only"):
        byo_form.prepare(two_inputs)
    plain_in = keras.Input((8, 8, 3))
    no_dropout = keras.Model(plain_in, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(plain_in)))
    with pytest.raises(graph.ExportError, match="tfuq attach"):
        byo_form.prepare(no_dropout)
    gray_in = keras.Input((8, 8, 1))
    gray = keras.Model(gray_in, keras.layers.Dense(2)(keras.layers.Dropout(0.5)(keras.layers.Flatten()(gray_in))))
    with pytest.raises(graph.ExportError, match=r"RGB image \(H, W, 3\)"):
        byo_form.prepare(gray)

    multi_label = keras.Model(plain_in, keras.layers.Dense(3, activation="sigmoid")(
        keras.layers.Dropout(0.5)(keras.layers.Flatten()(plain_in))))
    with pytest.raises(graph.ExportError, match="multi-label"):
        byo_form.prepare(multi_label)

    class Net(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(graph.ExportError, match="subclassed.*functional API"):
        byo_form.prepare(Net())


def test_logits_without_add_softmax_are_refused(keras_io_model):
    images, _ = tiny.images(20, seed=4)
    with pytest.raises(ConversionError, match="--add-softmax"):
        convert(keras_io_model, images, passes=2, calibration_samples=8, check_samples=0,
                preprocessing=byo_form.Preprocessing.from_options("-1,1"))


def test_add_softmax_on_probabilities_is_refused(spatial_model):
    with pytest.raises(graph.ExportError, match="already ends in softmax"):
        byo_form.prepare(spatial_model, add_softmax=True)


def test_binary_outputs_become_two_classes():
    """One sigmoid unit p gives [1 - p, p]; one logit z with --add-softmax the same."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Dropout(0.5)(keras.layers.GlobalAveragePooling2D()(inputs))
    sigmoid = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    logit = keras.Model(inputs, keras.layers.Dense(1)(x))
    logit.layers[-1].set_weights(sigmoid.layers[-1].get_weights())
    image = np.random.default_rng(0).uniform(0, 255, (1, 8, 8, 3)).astype("float32")
    z = float(np.asarray(logit(image))[0, 0])
    p = 1 / (1 + np.exp(-z))
    for model, options in ((sigmoid, {}), (logit, {"add_softmax": True})):
        prepared = byo_form.prepare(model, **options)
        out = np.asarray(rewrite.build_deterministic(prepared.model)(image))
        np.testing.assert_allclose(out, [[1 - p, p]], atol=1e-5)
    with pytest.raises(graph.ExportError, match="one output unit without a sigmoid"):
        byo_form.prepare(logit)
