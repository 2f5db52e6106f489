"""Tests of tfuq.training.cached: the cut, the augmentation, training on cached features, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from tests._dummies import tiny  # noqa: E402
from tfuq.cli.main import main  # noqa: E402
from tfuq.modeling import backbones  # noqa: E402
from tfuq.training import cached
from tfuq.training.train import TrainError  # noqa: E402

SIZE = 16
ALMOST_NO_DROPOUT = 1e-7  # MCDropout samples in every call; at this rate it keeps every unit


def _small_cnn(trainable_layers, dropout=ALMOST_NO_DROPOUT):
    keras.utils.set_random_seed(0)
    return backbones.build_model("small_cnn", 4, input_size=SIZE, weights=None, dropout=dropout,
                              trainable_layers=trainable_layers, freeze_batchnorm=False)


def test_split_model_cuts_before_the_first_trainable_layer_and_composes_to_the_model():
    model = _small_cnn(trainable_layers=2)  # stage3_conv2 and its batch norm
    split = cached.split_model(model)
    assert split.cut == "stage3_conv2"
    assert split.feature_shape == (4, 4, 128)  # 16 pooled twice, 128 filters of stage 3
    assert split.trunk.trainable_weights == []
    assert {w.path for w in split.rest.trainable_weights} == {w.path for w in model.trainable_weights}
    x = np.random.default_rng(0).integers(0, 256, (5, SIZE, SIZE, 3)).astype(np.float32)
    whole = model.predict(x, verbose=0)
    parts = split.rest.predict(split.trunk.predict(x, verbose=0), verbose=0)
    np.testing.assert_allclose(parts, whole, atol=1e-5)


def test_split_model_with_a_frozen_backbone_cuts_at_its_output():
    model = _small_cnn(trainable_layers=0)
    split = cached.split_model(model)
    assert split.cut == "" and split.feature_shape == (4, 4, 128)
    assert [w.path for w in split.rest.trainable_weights] == [w.path for w in model.trainable_weights]


def test_split_model_moves_the_cut_out_of_a_residual_branch():
    inputs = keras.Input((8, 8, 3))
    start = keras.layers.Conv2D(4, 1, name="start", trainable=False)(inputs)
    inner = keras.layers.Conv2D(4, 3, padding="same", name="inner", trainable=False)(start)
    tuned = keras.layers.Conv2D(4, 3, padding="same", name="tuned")(inner)
    x = keras.layers.Add(name="skip")([start, tuned])  # `start` crosses a cut before `tuned`
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(x)
    model = keras.Model(inputs, outputs)
    split = cached.split_model(model)
    assert split.cut == "inner"  # the first cut whose one tensor feeds everything after it
    x = np.random.default_rng(1).normal(size=(3, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(split.rest.predict(split.trunk.predict(x, verbose=0), verbose=0),
                               model.predict(x, verbose=0), atol=1e-6)


def test_split_model_refuses_a_model_with_nothing_to_train():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, trainable=False)(inputs))
    with pytest.raises(TrainError, match="no trainable layer"):
        cached.split_model(model)


def test_augment_is_a_seeded_crop_of_the_reflect_padded_image_possibly_flipped():
    image = np.arange(16 * 16 * 3).reshape(1, 16, 16, 3).astype(np.uint8)
    images = np.repeat(image, 40, axis=0)
    out = cached.augment(images, np.random.default_rng(3))
    assert np.array_equal(out, cached.augment(images, np.random.default_rng(3)))
    padded = np.pad(image[0], ((2, 2), (2, 2), (0, 0)), mode="reflect")  # 16 // 8 = 2
    crops = [padded[t : t + 16, s : s + 16] for t in range(5) for s in range(5)]
    candidates = crops + [c[:, ::-1] for c in crops]
    flipped = 0
    for view in out:
        matches = [k for k, c in enumerate(candidates) if np.array_equal(c, view)]
        assert matches, "a view is not a crop (or flipped crop) of the padded image"
        flipped += matches[0] >= len(crops)
    assert 5 <= flipped <= 35  # about half of 40 flipped


def test_train_cached_learns_keeps_the_trunk_and_reuses_the_cache(tmp_path):
    images, labels = tiny.images(160, seed=4)
    model = _small_cnn(trainable_layers=2, dropout=0.2)
    trunk_before = [w.numpy().copy() for w in cached.split_model(model).trunk.weights]
    tuned_before = model.get_layer("small_cnn").get_layer("stage3_conv2").get_weights()[0].copy()
    lines: list[str] = []
    result = cached.train_cached(model, images, labels, cache=tmp_path, views=2, epochs=4,
                                 batch_size=16, learning_rate=3e-3, say=lines.append)
    assert result.model is model and result.train_samples == 144 and result.validation_samples == 16
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert result.history["val_accuracy"][result.best_epoch - 1] > 0.5  # 4 classes: chance is 0.25
    assert sum("view 2/2" in line for line in lines) >= 1
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1 and {p.name for p in folders[0].iterdir()} == {
        "cache.json", "view_0.npy", "view_1.npy", "validation.npy"}
    assert json.loads((folders[0] / "cache.json").read_text())["cut"] == "stage3_conv2"
    for before, after in zip(trunk_before, cached.split_model(model).trunk.weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())
    tuned_after = model.get_layer("small_cnn").get_layer("stage3_conv2").get_weights()[0]
    assert not np.allclose(tuned_before, tuned_after)
    # The model that comes back is the whole trained classifier: it classifies raw images.
    test_images, test_labels = tiny.images(64, seed=9)
    assert np.mean(model.predict(test_images.astype(np.float32), verbose=0).argmax(1) == test_labels) > 0.5

    # Only the rest trained, so the trunk's fingerprint is unchanged: a second run with the same
    # images, views and seed computes no feature.
    again: list[str] = []
    rerun = cached.train_cached(model, images, labels, cache=tmp_path, views=2, epochs=3, batch_size=16,
                                monitor="val_accuracy", label_smoothing=0.1, say=again.append)
    assert not any("images (" in line for line in again)
    assert len(list(tmp_path.iterdir())) == 1
    accuracy = rerun.history["val_accuracy"]
    assert rerun.best_epoch == accuracy.index(max(accuracy)) + 1
    assert (rerun.settings["monitor"], rerun.settings["label_smoothing"]) == ("val_accuracy", 0.1)

    # One more view: only the new one is computed, beside the cached two.
    more: list[str] = []
    cached.train_cached(model, images, labels, cache=tmp_path, views=3, epochs=1, batch_size=16, say=more.append)
    computed = {line.split(":")[0].strip() for line in more if "images (" in line}
    assert computed == {"view 3/3"}
    assert len(list(tmp_path.iterdir())) == 1
    assert json.loads((folders[0] / "cache.json").read_text())["views"] == 3


def test_train_cached_bad_options(tmp_path):
    images, labels = tiny.images(32)
    model = _small_cnn(trainable_layers=2)
    with pytest.raises(TrainError, match="views must be a positive integer"):
        cached.train_cached(model, images, labels, cache=tmp_path, views=0)
    with pytest.raises(TrainError, match="the model takes 16x16"):
        cached.train_cached(model, tiny.images(8, size=8)[0], labels[:8], cache=tmp_path)
    with pytest.raises(TrainError, match="monitor must be one of"):
        cached.train_cached(model, images, labels, cache=tmp_path, monitor="loss")
    with pytest.raises(TrainError, match="label smoothing"):
        cached.train_cached(model, images, labels, cache=tmp_path, label_smoothing=1.5)
    assert not list(tmp_path.iterdir())  # refused before any feature was computed


def test_cli_train_with_cache_features(tmp_path, capsys):
    images, labels = tiny.images(96, seed=4)
    np.savez(tmp_path / "train.npz", x=images, y=labels, label_names=np.array(tiny.LABELS))
    out = tmp_path / "m.keras"
    args = ["train", "--backbone", "small_cnn", "--data", f"npz:{tmp_path / 'train.npz'}",
            "--input-size", str(SIZE), "--trainable-layers", "2", "--epochs", "2", "--batch-size", "16",
            "--cache-features", str(tmp_path / "cache"), "--views", "3", "--out", str(out), "--json", "-"]
    assert main(args) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["epochs_run"] == 2 and "cached training: trunk up to stage3_conv2" in captured.err
    history = json.loads((tmp_path / "m.history.json").read_text())
    assert history["settings"]["cached_features"]["views"] == 3
    assert out.exists()

    assert main(args[:-2] + ["--strategy", "mirrored"]) == 2
    assert "--cache-features trains on one device" in capsys.readouterr().err
