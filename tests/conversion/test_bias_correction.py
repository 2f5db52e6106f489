"""tfuq.conversion.bias_correction and ``convert(..., bias_correction=N)``: a bias shifted on
purpose is found and undone, only bias values change, and the bad options are refused."""

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.lite.tools import flatbuffer_utils  # noqa: E402

from tests._dummies import tiny  # noqa: E402
from tfuq.conversion import bias_correction  # noqa: E402
from tfuq.conversion.convert import ConversionError, convert  # noqa: E402


def _plain_model():
    """Image -> 3x3 conv (no activation) -> ReLU6 conv -> pooling -> softmax."""
    keras.utils.set_random_seed(3)
    image = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Rescaling(1 / 255)(image)
    x = keras.layers.Conv2D(6, 3, padding="same", name="linear_conv")(x)
    x = keras.layers.Conv2D(8, 1, activation="relu6", name="relu6_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(4, activation="softmax", name="classifier")(x))


def _images(count, seed):
    return np.random.default_rng(seed).integers(0, 256, (count, 8, 8, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def plain():
    """The model, its full-integer flatbuffer and its float twin."""
    model = _plain_model()
    calibration = _images(64, seed=1)

    def representative():
        for k in range(len(calibration)):
            yield {"image": calibration[k : k + 1]}

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    quantized = converter.convert()
    floating = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    return quantized, floating


def _bias(flatbuffer, layer):
    """(int32 bias values, their scales) of the operator whose output names ``layer``."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    for op in graph.operators:
        if layer in graph.tensors[op.outputs[0]].name.decode() and len(op.inputs) > 2:
            tensor = graph.tensors[op.inputs[2]]
            values = np.frombuffer(bytes(bytearray(model.buffers[tensor.buffer].data)), dtype=np.int32)
            return values.copy(), np.asarray(tensor.quantization.scale)
    raise AssertionError(f"no operator writes {layer}")


def _with_bias(flatbuffer, layer, values):
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    for op in graph.operators:
        if layer in graph.tensors[op.outputs[0]].name.decode() and len(op.inputs) > 2:
            tensor = graph.tensors[op.inputs[2]]
            model.buffers[tensor.buffer].data = values.astype("<i4").view(np.uint8)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _feeds(count, seed):
    return [{"image": image[None]} for image in _images(count, seed)]


def test_a_bias_shifted_on_purpose_is_found_and_undone(plain):
    quantized, floating = plain
    original, scales = _bias(quantized, "linear_conv")
    # Shift channel 2 of the linear conv by 0.4 in its output units (about 1 000 bias steps).
    shift = int(round(0.4 / scales[2]))
    broken = original.copy()
    broken[2] += shift
    fixed = bias_correction.correct(_with_bias(quantized, "linear_conv", broken), floating, _feeds(24, seed=2))
    # The two convolutions; the classifier has no bias (zeros at init: the converter drops it).
    assert fixed.layers == 2 and fixed.skipped == 0 and fixed.images == 24
    repaired, _ = _bias(fixed.flatbuffer, "linear_conv")
    # Back to where the converter had it, up to the small mean error it had left itself.
    assert abs(int(repaired[2]) - int(original[2])) < 0.1 * shift
    others = np.delete(np.arange(len(original)), 2)
    assert np.all(np.abs(repaired[others].astype(np.int64) - original[others]) < 0.1 * shift)


def test_under_relu6_only_unclipped_positions_count(plain):
    quantized, floating = plain
    original, scales = _bias(quantized, "relu6_conv")
    shift = np.round(0.3 / scales).astype(np.int32)  # every channel 0.3 too high
    fixed = bias_correction.correct(_with_bias(quantized, "relu6_conv", original + shift), floating, _feeds(24, seed=2))
    repaired, _ = _bias(fixed.flatbuffer, "relu6_conv")
    # Where the float output is clipped at 0 the int8 one is too, or only a little above: those
    # positions would dilute the mean and leave most of the shift in place.
    assert np.all(np.abs(repaired.astype(np.int64) - original) < 0.15 * shift)


def test_correction_lowers_the_mean_error_on_other_images(plain):
    quantized, floating = plain
    original, scales = _bias(quantized, "linear_conv")
    broken = original + np.round(0.3 / scales).astype(np.int32)  # every channel off by 0.3
    broken_model = _with_bias(quantized, "linear_conv", broken)
    fixed = bias_correction.correct(broken_model, floating, _feeds(24, seed=2)).flatbuffer
    tensor = "classifier"

    def mean_error(flatbuffer):
        int8 = bias_correction.tensor_interpreter(flatbuffer)
        reference = bias_correction.tensor_interpreter(floating)
        name = next(t["name"] for t in reference.get_tensor_details()  # the logits, not the weights
                    if tensor in t["name"] and tuple(t["shape"]) == (1, 4))
        errors = [bias_correction.run_tensors(int8, feed, [name])[0] - bias_correction.run_tensors(reference, feed, [name])[0]
                  for feed in _feeds(16, seed=9)]
        return np.abs(np.mean(errors, axis=0)).mean()

    assert mean_error(fixed) < 0.5 * mean_error(broken_model)


def test_convert_with_bias_correction_changes_only_bias_values():
    model = tiny.model()
    images, _ = tiny.images(60, seed=4)
    plain = convert(model, images, passes=4, calibration_samples=40, check_samples=0)
    fixed = convert(model, images, passes=4, calibration_samples=40, check_samples=0, bias_correction=8)
    source = fixed.config.source.bias_correction
    assert source.images == 8 and source.layers >= 1
    assert any("bias correction on 8 calibration images" in note for note in fixed.notes)
    assert plain.config.source.bias_correction is None and "bias_correction" not in plain.config.to_dict()["source"]
    before = flatbuffer_utils.convert_bytearray_to_object(bytearray(plain.flatbuffer))
    after = flatbuffer_utils.convert_bytearray_to_object(bytearray(fixed.flatbuffer))
    graph = before.subgraphs[0]
    bias_buffers = {graph.tensors[op.inputs[2]].buffer for op in graph.operators
                    if len(op.inputs) > 2 and op.inputs[2] >= 0
                    and graph.tensors[op.inputs[2]].type == 2}  # INT32
    changed = set()
    for index, (one, two) in enumerate(zip(before.buffers, after.buffers, strict=True)):
        same = (one.data is None and two.data is None) or (
            one.data is not None and two.data is not None and bytes(bytearray(one.data)) == bytes(bytearray(two.data)))
        if not same:
            changed.add(index)
    assert changed and changed <= bias_buffers


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bias_correction": -1}, "bias correction images must be 0 or more"),
        ({"bias_correction": True}, "bias correction images must be 0 or more"),
        ({"bias_correction": 4, "mode": "in-graph"}, "bias correction needs a full-integer model"),
    ],
)
def test_bad_bias_correction_options(options, message):
    images, _ = tiny.images(8)
    with pytest.raises(ConversionError, match=message):
        convert(tiny.model(), images, passes=2, calibration_samples=4, check_samples=0, **options)


def test_models_that_do_not_match_are_refused(plain):
    quantized, _ = plain
    image = keras.Input((8, 8, 3), name="image")
    unrelated = keras.Model(image, keras.layers.Dense(2, name="elsewhere")(keras.layers.Flatten()(image)))
    other = tf.lite.TFLiteConverter.from_keras_model(unrelated).convert()
    with pytest.raises(bias_correction.BiasCorrectionError, match="no layer of the int8 model has a float twin"):
        bias_correction.correct(quantized, other, _feeds(2, seed=1))
    with pytest.raises(bias_correction.BiasCorrectionError, match="at least one image"):
        bias_correction.correct(quantized, quantized, [])
    small = [{"image": np.zeros((1, 4, 4, 3), np.float32)}]  # the runner would resize the model
    with pytest.raises(bias_correction.BiasCorrectionError, match=r"input image is \(1, 4, 4, 3\), the model takes \(1, 8, 8, 3\)"):
        bias_correction.correct(quantized, plain[1], small)


def test_float_twin_computes_the_masked_graph_and_names_the_int8_tensors():
    from tfuq.conversion import rewrite
    from tfuq.conversion.convert import float_twin
    from tfuq.runtime import masks

    model = tiny.model()
    images, _ = tiny.images(24, seed=2)
    twin = float_twin(model, passes=3)
    converted = convert(model, images, passes=3, calibration_samples=16, check_samples=0)
    names = {t["name"] for t in bias_correction.tensor_interpreter(twin).get_tensor_details()}
    int8_names = {t["name"] for t in bias_correction.tensor_interpreter(converted.flatbuffer).get_tensor_details()}
    assert len(names & int8_names) >= 3
    masked, specs = rewrite.build_masked(model, 3)
    drawn = masks.masks_for(1, 3, [(s.shape[1:], s.rate) for s in specs])
    feed = {"image": images[:1].astype(np.float32)} | {
        s.input: m.astype(np.float32) for s, m in zip(specs, drawn, strict=True)}
    (got,) = bias_correction.tensor_interpreter(twin).get_signature_runner()(**feed).values()
    expected = np.asarray(masked([feed["image"], *(feed[s.input] for s in specs)]))
    np.testing.assert_allclose(got, expected, atol=1e-5)
