"""MCDropout: samples in every mode, keeps the mean, survives a .keras round trip."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tfuq import MCDropout  # noqa: E402


def test_samples_at_inference_and_differs_between_calls():
    layer = MCDropout(0.5, seed=3)
    x = np.ones((4, 256), dtype="float32")
    first, second = np.asarray(layer(x, training=False)), np.asarray(layer(x, training=False))
    assert not np.array_equal(first, second)
    # Kept units are scaled by 1 / (1 - rate) = 2, dropped ones are 0.
    assert set(np.unique(first)) <= {0.0, 2.0}


def test_mean_activation_is_preserved():
    layer = MCDropout(0.3, seed=1)
    out = np.asarray(layer(np.ones((200, 500), dtype="float32")))
    # 100,000 draws of 0 or 1/0.7: standard error of the mean 0.0022; 0.015 is ~7 sigma.
    assert abs(out.mean() - 1.0) < 0.015
    assert abs((out == 0).mean() - 0.3) < 0.01


def test_same_seed_gives_the_same_sequence():
    x = np.ones((2, 64), dtype="float32")
    a, b = MCDropout(0.5, seed=11), MCDropout(0.5, seed=11)
    assert np.array_equal(np.asarray(a(x)), np.asarray(b(x)))
    assert np.array_equal(np.asarray(a(x)), np.asarray(b(x)))


def test_keras_round_trip_without_custom_objects(tmp_path):
    inputs = keras.Input((8,))
    outputs = keras.layers.Dense(3, activation="softmax")(MCDropout(0.25, seed=5, name="mc")(inputs))
    model = keras.Model(inputs, outputs)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.get_layer("mc")
    assert isinstance(layer, MCDropout)
    assert (layer.rate, layer.seed) == (0.25, 5)
    np.testing.assert_array_equal(loaded.layers[-1].get_weights()[0], model.layers[-1].get_weights()[0])


@pytest.mark.parametrize("rate", [0, 1, -0.5, 1.2, "half"])
def test_rate_outside_open_unit_interval_is_rejected(rate):
    with pytest.raises(ValueError, match="rate"):
        MCDropout(rate)


def test_noise_shape_drops_whole_channels_and_round_trips(tmp_path):
    layer = MCDropout(0.5, seed=2, noise_shape=(None, 1, 1, None))
    out = np.asarray(layer(np.ones((3, 5, 5, 40), dtype="float32")))
    # Each (image, channel) is all 0 or all 2: one draw per channel, as SpatialDropout2D.
    per_channel = out.reshape(3, 25, 40)
    assert (per_channel.min(1) == per_channel.max(1)).all()
    assert 0 < (per_channel[:, 0] == 0).mean() < 1
    inputs = keras.Input((5, 5, 4))
    keras.Model(inputs, layer(inputs)).save(tmp_path / "n.keras")
    loaded = keras.models.load_model(tmp_path / "n.keras").layers[-1]
    assert loaded.noise_shape == (None, 1, 1, None)
    assert MCDropout.from_config({"rate": 0.2, "name": "old"}).noise_shape is None  # older files


def test_import_tfuq_is_enough_to_load_a_keras_file_with_mcdropout(tmp_path):
    # Saved in this process; loaded in a fresh one that only imports tfuq and keras (in that
    # order, as a user script does), never touching tfuq.MCDropout or tfuq.modeling.
    import subprocess
    import sys

    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3, activation="softmax")(MCDropout(0.5)(keras.layers.Dense(8)(inputs)))
    path = tmp_path / "m.keras"
    keras.Model(inputs, outputs).save(path)
    code = ("import sys, tfuq\nassert 'keras' not in sys.modules\nimport keras\n"
            f"model = keras.models.load_model({str(path)!r})\n"
            "print(type(model.layers[2]).__module__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "tfuq.modeling.layers"
