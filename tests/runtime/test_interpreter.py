"""The runtime: seeded, one invoke per image, validated inputs, and no TensorFlow import."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

import tfuq
from tfuq.runtime import modelfile


@pytest.fixture(scope="module")
def model(tiny_tflite):
    return tfuq.load(tiny_tflite, threads=1)


def test_shapes(model, tiny_images):
    images, _ = tiny_images
    assert model.run(images[:5], seed=0).shape == (8, 5, 4)
    single = model.run(images[0], seed=0)
    assert single.shape == (8, 1, 4) and single.dtype == np.float32


def test_one_invoke_returns_every_pass(model, tiny_images, monkeypatch):
    calls = []
    runner = model._runner
    monkeypatch.setattr(model, "_runner", lambda **feeds: calls.append(feeds) or runner(**feeds))
    images, _ = tiny_images
    out = model.run(images[:3], seed=1)
    assert len(calls) == 3  # one invoke per image, not per pass
    assert out.shape[0] == model.passes


def test_same_seed_bit_identical_other_seed_different(model, tiny_images):
    images, _ = tiny_images
    a, b, c = model.run(images[:4], seed=3), model.run(images[:4], seed=3), model.run(images[:4], seed=4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1])  # passes differ


def test_result_for_an_image_does_not_depend_on_its_batch(model, tiny_images):
    images, _ = tiny_images
    alone = model.run(images[2], seed=5)[:, 0]
    in_batch = model.run(images[:4], seed=5)[:, 2]
    assert np.array_equal(alone, in_batch)


def test_probabilities_are_mostly_right_and_normalized(model, tiny_images):
    images, labels = tiny_images
    probs = model.run(images, seed=0)
    assert np.allclose(probs.sum(-1), 1.0, atol=0.02)
    assert (probs.mean(0).argmax(-1) == labels).mean() > 0.95


def test_backends_agree(tiny_tflite, tiny_images):
    images, _ = tiny_images
    reference = tfuq.load(tiny_tflite, backend="ai_edge_litert").run(images[:3], seed=2)
    pytest.importorskip("tensorflow")
    other = tfuq.load(tiny_tflite, backend="tensorflow").run(images[:3], seed=2)
    np.testing.assert_array_equal(reference, other)


def test_in_graph_seeds_are_reproducible(tiny_in_graph_tflite, tiny_images):
    images, labels = tiny_images
    model = tfuq.load(tiny_in_graph_tflite)
    a, b, c = (model.run(images[:2], seed=s) for s in (1, 1, 2))
    assert a.shape == (8, 2, 4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1])


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((1, 15, 16, 3), np.uint8), "resize"),
        (np.zeros((1, 16, 16, 3), np.float32), "uint8"),
        (np.zeros((16, 16), np.uint8), "batch"),
    ],
)
def test_bad_images(model, images, message):
    with pytest.raises(ValueError, match=message):
        model.run(images)


def test_bad_options(tiny_tflite):
    with pytest.raises(ValueError, match="threads"):
        tfuq.load(tiny_tflite, threads=0)
    with pytest.raises(ValueError, match="backend"):
        tfuq.load(tiny_tflite, backend="onnx")


def test_truncated_and_unconfigured_files(tiny_tflite, tmp_path):
    data = open(tiny_tflite, "rb").read()
    truncated = tmp_path / "t.tflite"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(modelfile.ModelFileError, match="truncated"):
        tfuq.load(truncated)
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(modelfile.read(tiny_tflite)[0])
    with pytest.raises(modelfile.ModelFileError, match="no tfuq configuration"):
        tfuq.load(bare)


def test_configuration_that_does_not_match_the_graph(tiny_tflite, tmp_path):
    flatbuffer, config = modelfile.read(tiny_tflite)
    lie = dataclasses.replace(config.mc_dropout[0], shape=(8, 31))
    path = tmp_path / "lie.tflite"
    modelfile.write(path, flatbuffer, dataclasses.replace(config, mc_dropout=(lie,)))
    with pytest.raises(modelfile.ModelFileError, match="mask_0"):
        tfuq.load(path)


@pytest.mark.parametrize("labels", [("red", "green", "blue"), ("red", "green", "blue", "yellow", "pink")])
def test_labels_name_every_class_or_none(tiny_tflite, tmp_path, labels):
    # The configuration alone cannot know the class count (the flatbuffer's output says 4);
    # `labels: []` is refused when read (tests/runtime/test_config.py), other counts here.
    flatbuffer, config = modelfile.read(tiny_tflite)
    path = tmp_path / "labels.tflite"
    modelfile.write(path, flatbuffer, dataclasses.replace(config, labels=labels))
    with pytest.raises(modelfile.ModelFileError, match=f"{len(labels)} labels for 4 classes"):
        tfuq.load(path)
    modelfile.write(path, flatbuffer, dataclasses.replace(config, labels=None))
    assert tfuq.load(path).labels == []


def test_import_tfuq_and_run_without_tensorflow(tiny_tflite):
    code = (
        "import sys, numpy as np, tfuq\n"
        f"m = tfuq.load({tiny_tflite!r})\n"
        "m.run(np.zeros((1, 16, 16, 3), np.uint8), seed=0)\n"
        "bad = [n for n in ('tensorflow', 'keras', 'tensorflow_datasets') if n in sys.modules]\n"
        "assert not bad, bad\n"
        "print(m.backend)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ai_edge_litert"


def test_run_each_gives_every_image_its_own_seed(model, tiny_images):
    images, _ = tiny_images
    seeds = [3, 2**64 - 1, 3, 40]
    out = model.run_each(images[:4], seeds)
    for index, seed in enumerate(seeds):
        np.testing.assert_array_equal(out[:, index], model.run(images[index], seed)[:, 0])
    assert not np.array_equal(out[:, 0], model.run(images[0], 40)[:, 0])
    with pytest.raises(ValueError, match="2 seeds for 4 images"):
        model.run_each(images[:4], [1, 2])


def test_run_one_equals_the_explicit_masks_and_draws_once_per_seed(model, tiny_images, monkeypatch):
    from tfuq.runtime import masks as masks_module

    images, _ = tiny_images
    explicit = model.masks(9)  # drawn before counting: the uncached route run_with_masks takes
    draws = []
    real = masks_module.masks_for
    monkeypatch.setattr(masks_module, "masks_for", lambda *a: draws.append(a[0]) or real(*a))
    model._cached_feeds = None
    first = model.run_one(images[0], 9)
    assert first.shape == (model.passes, model.classes) and first.dtype == np.float32
    assert draws == [9]
    for image in images[:4]:  # the same seed again: the kept masks, nothing drawn
        np.testing.assert_array_equal(model.run_one(image, 9), model.run_with_masks(image, explicit))
    assert draws == [9]
    other = model.run_one(images[0], 10)  # a new seed draws, and replaces the kept masks
    assert draws == [9, 10] and not np.array_equal(other, first)
    np.testing.assert_array_equal(model.run_one(images[0], 9), first)
    assert draws == [9, 10, 9]


def test_run_one_checks_its_image(model, tiny_images):
    images, _ = tiny_images
    with pytest.raises(ValueError, match="one image"):
        model.run_one(images[:2], 0)
    with pytest.raises(ValueError, match="seed"):
        model.run_one(images[0], -1)


def test_run_one_in_graph_equals_run(tiny_in_graph_tflite, tiny_images):
    images, _ = tiny_images
    model = tfuq.load(tiny_in_graph_tflite)
    np.testing.assert_array_equal(model.run_one(images[1], 4), model.run(images[1], 4)[:, 0])


def test_pixels_by_table_equal_quantize():
    from tfuq.runtime.interpreter import _pixel_table, _quantize

    assert _pixel_table({"quantization": (1.0, 0), "dtype": np.uint8}) is None
    assert _pixel_table({"quantization": (0.0, 0), "dtype": np.uint8}) is None
    image = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)[..., None].repeat(3, -1)
    for detail in ({"quantization": (1.0, -128), "dtype": np.int8},
                   {"quantization": (0.7, 3), "dtype": np.int8},
                   {"quantization": (0.0, 0), "dtype": np.float32}):
        table = _pixel_table(detail)
        looked_up = table[image]
        assert looked_up.dtype == np.dtype(detail["dtype"])
        np.testing.assert_array_equal(looked_up, _quantize(image, detail))
    # by hand: (0.7, 3) maps 7 to round(10) + 3 = 13 and 255 to round(364.29) + 3 = 367 -> 127
    table = _pixel_table({"quantization": (0.7, 3), "dtype": np.int8})
    assert int(table[7]) == 13 and int(table[255]) == 127
