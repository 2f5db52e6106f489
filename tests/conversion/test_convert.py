"""Conversion: full-integer by reading the flatbuffer, TFLite equals Keras with the same masks."""

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import tfuq  # noqa: E402
from tests._dummies import tiny  # noqa: E402
from tfuq.conversion import rewrite
from tfuq.conversion.convert import ConversionError, convert  # noqa: E402
from tfuq.data import DataError  # noqa: E402
from tfuq.runtime import modelfile  # noqa: E402
from tfuq.runtime.tflite_graph import operator_outputs, random_seed_offsets, summarize  # noqa: E402

# int8 activations and a softmax output quantized in steps of 1/256: a probability can be off
# by a few steps after three quantized layers. Measured on this model: mean 0.002, max 0.03.
MEAN_TOLERANCE = 0.01
MAX_TOLERANCE = 0.08


def test_every_tensor_and_operator_is_integer(tiny_tflite):
    flatbuffer, config = modelfile.read(tiny_tflite)
    summary = summarize(flatbuffer)
    assert summary.full_integer, summary.problems
    assert not summary.float_tensors
    assert set(summary.tensor_types) <= {"INT8", "UINT8", "INT32"}
    assert "RANDOM_UNIFORM" not in summary.operators and "DEQUANTIZE" not in summary.operators
    assert not summary.custom_ops


def test_trunk_runs_once_and_the_head_once_per_pass(tiny_tflite):
    flatbuffer, _ = modelfile.read(tiny_tflite)
    shapes = operator_outputs(flatbuffer)
    first_mul = [name for name, _ in shapes].index("MUL")
    # Everything before the first mask multiplication has batch 1: the trunk runs once.
    # (The QUANTIZE operators turn the uint8 inputs, masks included, into int8.)
    assert all(shape[0] == 1 for name, shape in shapes[:first_mul] if name != "QUANTIZE")
    assert ("CONV_2D", (1, 14, 14, 8)) in shapes[:first_mul]
    # From the first mask on, the head carries all 8 passes as its batch.
    assert shapes[first_mul][1] == (8, 32)
    assert shapes[-1] == ("SOFTMAX", (8, 4))


def test_tflite_equals_keras_with_the_same_masks(tiny_keras, tiny_tflite, tiny_images):
    model = tfuq.load(tiny_tflite)
    masked, _ = rewrite.build_masked(tiny_keras, model.passes)
    images, _ = tiny_images
    worst, total, agree = 0.0, 0.0, 0.0
    for seed, image in enumerate(images[:16]):
        feeds = model.masks(seed)
        expected = np.asarray(masked([image[None].astype("float32")] + [feeds[f"mask_{i}"].astype("float32") for i in range(2)]))
        got = model.run(image, seed=seed)[:, 0]
        diff = np.abs(got - expected)
        worst, total = max(worst, diff.max()), total + diff.mean()
        agree += np.mean(got.argmax(-1) == expected.argmax(-1)) / 16
        # The MC mean decides; single passes near a tie may flip under int8.
        assert got.mean(0).argmax() == expected.mean(0).argmax()
    assert agree > 0.9
    assert total / 16 < MEAN_TOLERANCE
    assert worst < MAX_TOLERANCE


def test_configuration_is_carried(tiny_tflite):
    config = tfuq.read_config(tiny_tflite)
    assert config.labels == tuple(tiny.LABELS)
    assert config.passes == 8
    assert config.input.to_dict() == {
        "name": "image", "height": 16, "width": 16, "channels": 3, "pixel_format": "RGB",
        "dtype": "uint8", "preprocessing": "inside the model: feed raw pixels 0-255",
        "photo_rule": {"name": "center-crop-bilinear", "version": 2},  # photo.RULE
    }
    assert [(m.input, m.shape, m.rate) for m in config.mc_dropout] == [
        ("mask_0", (8, 32), 0.2), ("mask_1", (8, 16), 0.3)]
    assert config.seed_scheme.name == "splitmix64-counter"
    # The default rule: the paper's interval rule and a floor on the top probability.
    assert config.decision.to_dict() == {"rule": "all", "rules": [
        {"rule": "interval", "conf_factor": 1.0},
        {"rule": "threshold", "score": "max_probability", "threshold": 0.5}]}
    # The whole file, as written, with the keys set at conversion time; every key is typed.
    written = config.to_dict()
    source = written.pop("source")
    assert set(source) == {"keras_model", "tensorflow", "created", "calibration_samples"}
    assert written == {
        "format": "tfuq-model", "format_version": 1, "mode": "masked", "passes": 8,
        "labels": list(tiny.LABELS), "input": config.input.to_dict(),
        "output": {"name": config.output.name, "kind": "probabilities", "layout": "(passes, classes)"},
        "mc_dropout": [{"layer": m.layer, "input": m.input, "shape": list(m.shape), "rate": m.rate}
                       for m in config.mc_dropout],
        "seed_scheme": {"name": "splitmix64-counter", "version": 1, "keep_bits": 24,
                        "mask_values": "0 or 1; the model scales kept units by 1/(1-rate)"},
        "decision": config.decision.to_dict(),
    }


def test_image_input_takes_raw_pixels(tiny_tflite):
    model = tfuq.load(tiny_tflite)
    detail = model._runner.get_input_details()["image"]
    assert detail["dtype"] == np.uint8
    assert detail["quantization"] == (1.0, 0)


def test_in_graph_form_keeps_random_uniform(tiny_in_graph_tflite):
    flatbuffer, config = modelfile.read(tiny_in_graph_tflite)
    summary = summarize(flatbuffer)
    assert config.mode == "in-graph"
    assert all(m.input is None and m.shape is None for m in config.mc_dropout)
    assert summary.operators["RANDOM_UNIFORM"] == 2
    assert not summary.full_integer  # the seed paper's form has float islands
    assert len(random_seed_offsets(flatbuffer)) == 2


def test_self_check_reports_agreement(tiny_keras):
    images, _ = tiny.images(40, seed=4)
    result = convert(tiny_keras, images, passes=4, calibration_samples=20, check_samples=10)
    assert result.check.images == 10 and result.check.held_out
    assert result.check.passed and result.check.agreement > 0.9


def test_resizes_representative_images(tiny_keras):
    images, _ = tiny.images(12, seed=4, size=24)
    result = convert(tiny_keras, images, passes=2, calibration_samples=8, check_samples=0)
    assert result.config.input.height == 16


def test_iterable_representative_data(tiny_keras):
    images, _ = tiny.images(12, seed=4)
    result = convert(tiny_keras, iter(list(images)), passes=2, calibration_samples=8, check_samples=0)
    assert result.config.source.calibration_samples == 8


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((0, 16, 16, 3), np.uint8), "zero samples"),
        (np.zeros((4, 16, 16, 3), np.float32), "uint8"),
        (np.zeros((4, 16, 16), np.uint8), r"\(N, H, W, 3\)"),
    ],
)
def test_bad_representative_data(tiny_keras, images, message):
    with pytest.raises(DataError, match=message):
        convert(tiny_keras, images, passes=2)


def test_bad_passes_and_mode(tiny_keras):
    images, _ = tiny.images(8)
    with pytest.raises(ConversionError, match="passes"):
        convert(tiny_keras, images, passes=0)
    with pytest.raises(ConversionError, match="mode"):
        convert(tiny_keras, images, mode="fast")


def test_deterministic_form_is_one_integer_pass(tiny_keras, tiny_images, tmp_path):
    calibration, _ = tiny.images(40, seed=5)
    result = convert(tiny_keras, calibration, mode="deterministic", calibration_samples=30, check_samples=10)
    assert result.summary.full_integer and result.check.passed
    result.save(tmp_path / "d.tflite")
    model = tfuq.load(tmp_path / "d.tflite")
    images, labels = tiny_images
    out = model.run(images[:6], seed=0)
    assert out.shape == (1, 6, 4)
    assert np.array_equal(out, model.run(images[:6], seed=99))  # no randomness at all
    assert (out[0].argmax(-1) == labels[:6]).all()
