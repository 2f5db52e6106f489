"""`tfuq convert` on models people already have, and `tfuq attach`, invoked as a user would:
exit codes, one-line errors, nothing written on failure, and the results checked."""

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402

import tfuq  # noqa: E402
from tests._dummies import byo, tiny  # noqa: E402
from tfuq.cli.main import main  # noqa: E402
from tfuq.conversion import rewrite  # noqa: E402
from tfuq.modeling.layers import MCDropout, PixelPreprocessing  # noqa: E402


def run_cli(args, capsys):
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def no_dropout_classifier():
    """A trained classifier with no dropout at all, [-1, 1] outside, softmax out."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((tiny.SIZE, tiny.SIZE, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(16, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="classifier")(x)
    return byo.fit(keras.Model(inputs, outputs, name="plain"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("byo")
    byo.fit(byo.keras_io(), logits=True).save(folder / "keras_io.h5")
    no_dropout_classifier().save(folder / "plain.keras")
    x, y = tiny.images(120, seed=6)
    np.savez(folder / "data.npz", x=x, y=y, label_names=np.array(tiny.LABELS))
    return folder


def test_keras_io_h5_converts_from_the_command_line(files, tmp_path, capsys):
    out = tmp_path / "k.tflite"
    status, _, err = run_cli(
        ["convert", files / "keras_io.h5", "--out", out, "--passes", 6, "--representative", files / "data.npz",
         "--calibration-samples", 60, "--input-range=-1,1", "--add-softmax", "--json", tmp_path / "r.json"], capsys)
    assert status == 0, err
    assert "note: MC dropout from Keras layers (no tfuq.MCDropout in the model): dropout (Dropout 0.25)" in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["mc_dropout"] == ["dropout"] and report["self_check"]["passed"]
    assert report["preprocessing"].startswith("folded into the model ([-1, 1])")
    images, labels = tiny.images(24, seed=12)
    assert np.mean(tfuq.load(out).run(images, seed=1).mean(0).argmax(-1) == labels) > 0.9


def _bad_convert(files, tmp_path):
    a, b = keras.Input((16, 16, 3)), keras.Input((16, 16, 3))
    x = keras.layers.Dropout(0.5)(keras.layers.GlobalAveragePooling2D()(keras.layers.add([a, b])))
    keras.Model([a, b], keras.layers.Dense(2, activation="softmax")(x)).save(tmp_path / "two.keras")
    d = keras.Input((None, None, 3))
    x = keras.layers.Dropout(0.5)(keras.layers.GlobalAveragePooling2D()(d))
    keras.Model(d, keras.layers.Dense(2, activation="softmax")(x)).save(tmp_path / "dynamic.keras")
    rep, model, out = files / "data.npz", files / "keras_io.h5", tmp_path / "out.tflite"
    base = [model, "--out", out, "--representative", rep]
    return [
        ("logits", [*base, "--input-range=-1,1"], "--add-softmax"),
        ("two inputs", [tmp_path / "two.keras", "--out", out, "--representative", rep], "2 inputs"),
        ("dynamic size", [tmp_path / "dynamic.keras", "--out", out, "--representative", rep], "--input-size"),
        ("size on a fixed model", [*base, "--add-softmax", "--input-size", "32"], "drop --input-size"),
        ("unknown layer", [*base, "--add-softmax", "--mc-layers", "drop9"], "no layer 'drop9'"),
        ("layers and mode", [*base, "--mc-layers", "dropout", "--mc-dropout", "dropout"], "not both"),
        ("bad range", [*base, "--input-range", "0..1"], "LOW,HIGH"),
        ("bad size", [*base, "--input-size", "big"], "N or HxW"),
        ("no dropout", [files / "plain.keras", "--out", out, "--representative", rep], "tfuq attach"),
        ("saved model folder", [files, "--out", out, "--representative", rep], "model.save('model.keras')"),
    ]


def test_bad_models_one_line_exit_2_nothing_written(files, tmp_path, capsys):
    for name, arguments, words in _bad_convert(files, tmp_path):
        before = set(tmp_path.rglob("*"))
        status, _, err = run_cli(["convert", *arguments], capsys)
        assert status == 2, (name, err)
        lines = [line for line in err.splitlines() if line.startswith("tfuq convert: error:")]
        assert len(lines) == 1 and words in lines[0], (name, err)
        assert "Traceback" not in err, name
        assert set(tmp_path.rglob("*")) == before, f"{name} left files behind"


def test_attach_adds_a_head_and_fine_tunes_only_it(files, tmp_path, capsys):
    out = tmp_path / "mc.keras"
    status, _, err = run_cli(
        ["attach", files / "plain.keras", "--rate", 0.2, "--data", files / "data.npz", "--out", out,
         "--epochs", 3, "--val-split", 0.2, "--passes", 10, "--input-range=-1,1", "--json", tmp_path / "a.json"],
        capsys)
    assert status == 0, err
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["classifier"] == "classifier" and report["epochs_run"] == 3
    assert report["validation_samples"] == 24 and report["accuracy_after_mc_mean"] > 0.9
    original = keras.models.load_model(files / "plain.keras")
    attached = keras.models.load_model(out)
    layers = [layer for layer in attached.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert [type(layer).__name__ for layer in layers[-2:]] == ["MCDropout", "Dense"]
    assert isinstance(layers[0], PixelPreprocessing)  # takes raw pixels now
    assert layers[-2].rate == 0.2
    for name in ("conv", "hidden"):  # the trunk is untouched ...
        for got, was in zip(attached.get_layer(name).get_weights(), original.get_layer(name).get_weights(), strict=True):
            assert np.array_equal(got, was)
    changed = [not np.array_equal(g, w) for g, w in zip(attached.get_layer("classifier").get_weights(),
                                                        original.get_layer("classifier").get_weights(), strict=True)]
    assert all(changed)  # ... and the classifier learned
    # Raw pixels in: the attached model without its dropout equals the original on scaled input.
    images, _ = tiny.images(4, seed=13)
    deterministic = rewrite.build_deterministic(attached)
    original_probs = np.asarray(original(byo.scaled(images)))
    probs = np.concatenate([np.asarray(deterministic(image[None].astype("float32"))) for image in images])
    assert np.mean(probs.argmax(-1) == original_probs.argmax(-1)) == 1.0

    converted = tmp_path / "mc.tflite"
    status, _, err = run_cli(["convert", out, "--out", converted, "--passes", 6, "--representative",
                              files / "data.npz", "--calibration-samples", 60], capsys)
    assert status == 0, err
    assert [m.layer for m in tfuq.read_config(converted).mc_dropout] == [layers[-2].name]


def test_attach_takes_repeated_outliers_and_records_them(files, tmp_path, capsys):
    grey = np.clip(128 + np.random.default_rng(4).normal(0, 30, (10, 16, 16, 3)), 0, 255).astype(np.uint8)
    np.savez(tmp_path / "grey.npz", x=grey)
    specs = [str(tmp_path / "grey.npz"), "featureless:6"]
    status, _, err = run_cli(
        ["attach", files / "plain.keras", "--rate", 0.2, "--data", files / "data.npz", "--out", tmp_path / "oe.keras",
         "--epochs", 1, "--passes", 4, "--input-range=-1,1", "--outliers", specs[0], "--outliers", specs[1],
         "--json", tmp_path / "a.json"], capsys)
    assert status == 0, err
    assert f"loading outliers {specs[0]}, featureless:6" in err
    assert "features for 16 outlier images" in err  # 10 grey + 6 featureless
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["outliers"] == specs and report["outlier_weight"] == 0.5


def test_attach_bad_input_one_line_exit_2_nothing_written(files, tmp_path, capsys):
    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    keras.Model(inputs, pooled).save(tmp_path / "features.keras")
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(MCDropout(0.3)(pooled))).save(tmp_path / "mc.keras")
    np.savez(tmp_path / "unlabelled.npz", x=tiny.images(8)[0])
    data, plain, out = files / "data.npz", files / "plain.keras", tmp_path / "out.keras"
    cases = [
        ("rate", [plain, "--rate", 1.5, "--data", data, "--out", out], "--rate"),
        ("suffix", [plain, "--rate", 0.2, "--data", data, "--out", tmp_path / "out.h5"], ".keras"),
        ("has MCDropout", [tmp_path / "mc.keras", "--rate", 0.2, "--data", data, "--out", out], "already has tfuq.MCDropout"),
        ("no Dense", [tmp_path / "features.keras", "--rate", 0.2, "--data", data, "--out", out], "final Dense"),
        ("no labels", [plain, "--rate", 0.2, "--data", tmp_path / "unlabelled.npz", "--out", out], "no labels"),
        ("missing", [tmp_path / "none.keras", "--rate", 0.2, "--data", data, "--out", out], "not found"),
        ("outliers", [plain, "--rate", 0.2, "--data", data, "--out", out, "--outliers", "featureless:2",
                      "--outliers", "featureless:2"], "outliers featureless:2: given twice"),
    ]
    for name, arguments, words in cases:
        before = set(tmp_path.rglob("*"))
        status, _, err = run_cli(["attach", *arguments], capsys)
        assert status == 2, (name, err)
        lines = [line for line in err.splitlines() if line.startswith("tfuq attach: error:")]
        assert len(lines) == 1 and words in lines[0], (name, err)
        assert set(tmp_path.rglob("*")) == before, f"{name} left files behind"
