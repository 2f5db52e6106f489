"""tfuq.training.train and `tfuq train`: stratified split, a short run that learns, early stopping,
atomic files, tf.distribute on CPU logical devices and two real workers, conversion of the
trained model, and the bad inputs."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from tests._dummies import tiny  # noqa: E402
from tfuq.cli.main import main  # noqa: E402
from tfuq.data import DataError  # noqa: E402
from tfuq.modeling.backbones import build_model  # noqa: E402
from tfuq.training import train as training  # noqa: E402

SIZE = 16
CLASSES = len(tiny.COLOURS)


def sorted_by_class(count, seed):
    """Easy colour images, sorted by class as many dataset files are."""
    images, labels = tiny.images(count, seed=seed, size=SIZE)
    order = np.argsort(labels, kind="stable")
    return images[order], labels[order]


def small_cnn(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return build_model("small_cnn", CLASSES, SIZE, weights=None, dropout=0.3, **kwargs)


@pytest.fixture(scope="module")
def trained():
    """small_cnn fitted for a few epochs on 256 easy images (shared by several tests)."""
    images, labels = sorted_by_class(256, seed=1)
    return training.train(small_cnn(), images, labels, epochs=4, batch_size=32,
                          validation_split=0.25, patience=None, progress=False)


# -- the split -----------------------------------------------------------------------------------
def test_stratified_split_takes_every_class_from_sorted_labels():
    labels = np.repeat([0, 1, 2], [10, 20, 1])  # sorted; class 2 has a single image
    train, validation = training.stratified_split(labels, 0.2, seed=3)
    assert sorted(np.concatenate([train, validation]).tolist()) == list(range(31))
    # round(0.2 * 10) = 2, round(0.2 * 20) = 4, and a lone image stays in training.
    assert np.bincount(labels[validation], minlength=3).tolist() == [2, 4, 0]
    assert np.bincount(labels[train], minlength=3).tolist() == [8, 16, 1]
    again = training.stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(again[1], validation)
    assert not np.array_equal(training.stratified_split(labels, 0.2, seed=4)[1], validation)
    # Keras' validation_split takes the last rows: only the last classes.
    assert set(labels[-6:].tolist()) == {1, 2}
    with pytest.raises(DataError, match=r"in \[0, 1\)"):  # the split lives in tfuq.data
        training.stratified_split(labels, 1.0)


# -- a short run ---------------------------------------------------------------------------------
def test_short_run_reduces_loss_and_learns(trained):
    history = trained.history
    assert trained.epochs_run == 4 and len(history["loss"]) == 4
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["val_accuracy"][-1] >= 0.9  # chance is 0.25
    assert trained.train_samples == 192 and trained.validation_samples == 64
    assert trained.best_epoch == int(np.argmin(history["val_loss"])) + 1
    assert not trained.stopped_early
    assert (trained.strategy, trained.replicas, trained.chief) == ("none", 1, True)


def test_early_stopping_restores_the_best_weights():
    # Any model with one image input and a softmax output trains; the tiny one traces fast.
    images, labels = tiny.images(64, seed=1)
    held_out, held_labels = tiny.images(32, seed=9)
    # Validation labels that contradict the colours: the better the model learns, the
    # worse the validation loss, so training stops after `patience` epochs.
    wrong = (held_labels + 1) % CLASSES
    best = {}

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            best[epoch + 1] = [w.copy() for w in self.model.get_weights()]

    result = training.train(tiny.model(), images, labels, epochs=12, batch_size=32,
                            validation=(held_out, wrong), patience=2, progress=False,
                            callbacks=[Snapshot()])
    assert result.stopped_early and result.epochs_run < 12
    assert result.best_epoch == int(np.argmin(result.history["val_loss"])) + 1
    assert result.epochs_run == result.best_epoch + 2
    for kept, snapshot in zip(result.model.get_weights(), best[result.best_epoch], strict=True):
        np.testing.assert_array_equal(kept, snapshot)


def test_early_stopping_on_validation_accuracy_keeps_the_most_accurate_epoch():
    images, labels = tiny.images(64, seed=1)
    held_out, held_labels = tiny.images(32, seed=9)
    wrong = (held_labels + 1) % CLASSES  # the better the model, the lower this accuracy
    best = {}

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            best[epoch + 1] = [w.copy() for w in self.model.get_weights()]

    result = training.train(tiny.model(), images, labels, epochs=12, batch_size=32,
                            validation=(held_out, wrong), patience=2, monitor="val_accuracy",
                            progress=False, callbacks=[Snapshot()])
    accuracy = result.history["val_accuracy"]
    assert result.stopped_early
    # The first epoch with the highest accuracy (Keras only moves on a strict improvement).
    assert result.best_epoch == accuracy.index(max(accuracy)) + 1
    assert result.epochs_run == result.best_epoch + 2
    assert result.settings["monitor"] == "val_accuracy"
    for kept, snapshot in zip(result.model.get_weights(), best[result.best_epoch], strict=True):
        np.testing.assert_array_equal(kept, snapshot)


class _Fitted:
    def __init__(self, history):
        self.history = history


def test_fit_history_picks_the_best_epoch_by_the_monitor():
    fitted = _Fitted({"loss": [3, 2, 1, 0.5], "val_loss": [2.0, 1.5, 1.5, 1.7], "val_accuracy": [0.2, 0.6, 0.6, 0.5]})
    assert training.fit_history(fitted)[1:] == (4, 2)
    assert training.fit_history(fitted, "val_accuracy")[1:] == (4, 2)
    fitted.history["val_accuracy"] = [0.2, 0.5, 0.7, 0.1]
    fitted.history["val_loss"] = [2.0, 1.0, 1.2, 0.9]
    assert training.fit_history(fitted, "val_accuracy")[2] == 3
    assert training.fit_history(fitted, "val_loss")[2] == 4
    assert training.fit_history(_Fitted({"loss": [1.0]}), "val_accuracy")[1:] == (1, None)


def test_smoothed_crossentropy_matches_the_formula_by_hand():
    from tfuq.modeling.layers import SmoothedCrossentropy

    probabilities = np.array([[0.2, 0.5, 0.3], [0.7, 0.2, 0.1]], np.float32)
    labels = np.array([1, 0])
    # Targets with smoothing 0.3 over 3 classes: 0.7 on the label plus 0.1 everywhere.
    first = -(0.1 * np.log(0.2) + 0.8 * np.log(0.5) + 0.1 * np.log(0.3))
    second = -(0.8 * np.log(0.7) + 0.1 * np.log(0.2) + 0.1 * np.log(0.1))
    loss = float(SmoothedCrossentropy(0.3)(labels, probabilities))
    assert loss == pytest.approx((first + second) / 2, rel=1e-5)
    plain = -(np.log(0.5) + np.log(0.7)) / 2
    assert float(SmoothedCrossentropy(0.0)(labels.reshape(-1, 1), probabilities)) == pytest.approx(plain, rel=1e-5)
    assert float(training.fit_loss(0.0)(labels, probabilities)) == pytest.approx(plain, rel=1e-5)


def test_label_smoothing_trains_saves_and_loads(tmp_path):
    images, labels = tiny.images(64, seed=1)
    result = training.train(tiny.model(), images, labels, epochs=2, batch_size=32, validation_split=0.25,
                            label_smoothing=0.1, progress=False)
    assert result.settings["label_smoothing"] == 0.1
    path = training.save_model(result.model, tmp_path / "smooth.keras")
    loaded = keras.models.load_model(path)  # compiled: the loss is registered
    assert loaded.loss.smoothing == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"monitor": "accuracy"}, "monitor must be one of val_loss, val_accuracy"),
        ({"label_smoothing": 1.0}, r"label smoothing must be in \[0, 1\)"),
        ({"label_smoothing": -0.1}, r"label smoothing must be in \[0, 1\)"),
        ({"label_smoothing": True}, r"label smoothing must be in \[0, 1\)"),
    ],
)
def test_bad_monitor_or_smoothing_is_refused_before_training(changes, message):
    images, labels = tiny.images(8, seed=1)
    with pytest.raises(training.TrainError, match=message):
        training.train(tiny.model(), images, labels, epochs=1, progress=False, **changes)


def test_trained_model_converts_to_full_integer_and_agrees(trained):
    from tfuq.conversion.convert import convert
    from tfuq.runtime import Model

    images, labels = tiny.images(120, seed=5, size=SIZE)
    result = convert(trained.model, images[:80], passes=8, calibration_samples=60,
                     check_samples=20, labels=tiny.LABELS)
    assert result.summary.full_integer, result.summary.problems
    assert result.check.held_out and result.check.images == 20
    assert result.check.agreement >= 0.95
    assert result.check.mean_abs_diff < 0.02
    probabilities = Model(result.to_bytes()).run(images[80:], seed=0)  # (passes, batch, classes)
    assert probabilities.shape == (8, 40, CLASSES)
    assert np.mean(probabilities.mean(0).argmax(-1) == labels[80:]) >= 0.9


# -- files ---------------------------------------------------------------------------------------
def test_model_and_history_files(trained, tmp_path):
    from tfuq.conversion.convert import load_keras_model

    path = training.save_model(trained.model, tmp_path / "run.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.keras"]  # no temporary left
    loaded = load_keras_model(path)
    np.testing.assert_array_equal(loaded.get_weights()[0], trained.model.get_weights()[0])
    history = training.save_history(trained, training.history_path(path), data="npz:x.npz")
    assert history == tmp_path / "run.history.json"
    payload = training.load_history(history)
    assert payload["history"]["loss"] == trained.history["loss"]
    assert payload["data"] == "npz:x.npz" and payload["settings"]["batch_size"] == 32


def test_save_model_is_atomic_and_checks_the_name(trained, tmp_path):
    class Failing:
        def save(self, path):
            with open(path, "wb") as handle:
                handle.write(b"partial")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        training.save_model(Failing(), tmp_path / "m.keras")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(training.TrainError, match="must end in .keras"):
        training.save_model(trained.model, tmp_path / "m.h5")
    with pytest.raises(FileNotFoundError, match="output folder does not exist"):
        training.save_model(trained.model, tmp_path / "missing" / "m.keras")
    (tmp_path / "other.json").write_text('{"format": "something"}')
    with pytest.raises(training.TrainError, match="not a tfuq training history"):
        training.load_history(tmp_path / "other.json")


# -- bad inputs ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda x, y: (x, y + CLASSES), DataError, "out of range for 4 classes"),
        (lambda x, y: (x.astype("float32"), y), DataError, "must be uint8"),
        (lambda x, y: (x[..., :1], y), DataError, r"\(N, H, W, 3\)"),
        (lambda x, y: (x[:0], y[:0]), DataError, "zero samples"),
        (lambda x, y: (x, y[:-1]), DataError, "vector of 16 entries"),
        (lambda x, y: (np.pad(x, ((0, 0), (0, 4), (0, 4), (0, 0))), y), training.TrainError,
         r"images are 20x20, the model takes 16x16"),
    ],
)
def test_bad_data(change, error, message):
    images, labels = change(*tiny.images(16, seed=0, size=SIZE))
    with pytest.raises(error, match=message):
        training.train(small_cnn(), images, labels, epochs=1, progress=False)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"batch_size": 0}, "batch size must be a positive integer"),
        ({"learning_rate": 0.0}, "learning rate must be positive"),
        ({"patience": 0}, "patience must be at least 1"),
        ({"strategy": "parameter-server"}, "strategy must be one of none, mirrored, multi-worker"),
        ({"validation_split": 0.01}, "leaves no validation images"),
        ({"validation_split": -0.5}, r"in \[0, 1\)"),
    ],
)
def test_bad_options(options, message):
    images, labels = tiny.images(16, seed=0, size=SIZE)
    with pytest.raises(training.TrainError, match=message):
        training.train(small_cnn(), images, labels, progress=False, **options)


# -- tf.distribute -------------------------------------------------------------------------------
WORKER = textwrap.dedent(
    """
    import json, os, sys
    import tensorflow as tf

    strategy_name, devices = sys.argv[1], int(sys.argv[2])
    if devices > 1:  # must happen before TensorFlow initializes its devices
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    from tfuq.training import train as training
    strategy = training.make_strategy(strategy_name)

    import keras
    import numpy as np
    from tests._dummies import tiny
    from tfuq.modeling.backbones import build_model

    images, labels = tiny.images(96, seed=1, size=8)
    images, labels = images[np.argsort(labels, kind="stable")], np.sort(labels)
    keras.utils.set_random_seed(0)
    # A model built outside the scope: train() rebuilds it inside with its weights.
    model = build_model("small_cnn", 4, 8, weights=None, dropout=0.2)
    result = training.train(model, images, labels, epochs=2, batch_size=16, strategy=strategy,
                            validation_split=0.25, progress=False)
    weights = np.concatenate([w.numpy().ravel() for w in result.model.trainable_weights])
    print(json.dumps({
        "strategy": result.strategy, "replicas": result.replicas, "chief": result.chief,
        "loss": result.history["loss"], "val_accuracy": result.history["val_accuracy"],
        "trainable_weights": weights[::97].tolist(),
        "devices": sorted(v.device.split("/")[-1]
                          for v in result.model.trainable_weights[0].value.values),
    }))
    """
)


def _launch(strategy, devices=1, tf_config=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.getcwd()}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, strategy, str(devices)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )


def _report(process):
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def distributed():
    """Three processes at once (TensorFlow start-up dominates): one mirrored on two
    logical CPUs, and two workers of one multi-worker cluster on localhost."""
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    processes = {
        "mirrored": _launch("mirrored", devices=2),
        **{
            f"worker{i}": _launch(
                "multi-worker", tf_config={"cluster": cluster, "task": {"type": "worker", "index": i}}
            )
            for i in range(2)
        },
    }
    return {name: _report(process) for name, process in processes.items()}


def test_mirrored_strategy_on_two_logical_cpus(distributed):
    report = distributed["mirrored"]
    assert report["strategy"] == "mirrored" and report["replicas"] == 2
    assert report["devices"] == ["device:CPU:0", "device:CPU:1"]  # variables mirrored on both
    assert report["loss"][1] < report["loss"][0]


def test_multi_worker_strategy_with_two_workers(distributed):
    first, second = distributed["worker0"], distributed["worker1"]
    assert first["strategy"] == second["strategy"] == "multi-worker"
    assert first["replicas"] == second["replicas"] == 2
    assert (first["chief"], second["chief"]) == (True, False)
    # Gradients are all-reduced: both workers hold the same weights and report the same loss.
    assert first["trainable_weights"] == second["trainable_weights"]
    assert first["loss"] == second["loss"] and first["loss"][1] < first["loss"][0]


# -- the command line ----------------------------------------------------------------------------
def run_cli(args, capsys):
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train_cli")
    images, labels = sorted_by_class(160, seed=4)
    np.savez(folder / "train.npz", x=images, y=labels, label_names=np.array(tiny.LABELS))
    np.savez(folder / "unlabelled.npz", x=images)
    return folder


def test_cli_trains_and_writes_model_history_and_json(npz, tmp_path, capsys):
    out = tmp_path / "cnn.keras"
    status, text, err = run_cli(
        ["train", "--backbone", "small_cnn", "--data", f"npz:{npz / 'train.npz'}",
         "--input-size", SIZE, "--epochs", 3, "--batch-size", 32, "--dropout", 0.3,
         "--dense", 16, "--dropout-placement", "all", "--monitor", "val_accuracy",
         "--label-smoothing", 0.05, "--out", out, "--json", "-"], capsys)
    assert status == 0, err
    report = json.loads(text)
    assert report["epochs_run"] == 3 and report["validation_samples"] == 16
    assert report["last"]["loss"] < 1.0
    assert "random init, all backbone layers trainable" in err and "wrote" in err
    history = training.load_history(tmp_path / "cnn.history.json")
    assert history["settings"]["monitor"] == "val_accuracy"
    assert history["settings"]["label_smoothing"] == 0.05
    accuracy = history["history"]["val_accuracy"]
    assert report["best_epoch"] == accuracy.index(max(accuracy)) + 1
    assert history["label_names"] == tiny.LABELS
    assert history["build"]["dense"] == [16] and history["build"]["weights"] is None
    from tfuq.conversion.convert import load_keras_model

    model = load_keras_model(out)
    assert [layer.name for layer in model.layers][-5:] == [
        "pool", "mc_dropout_1", "dense_1", "mc_dropout_2", "classifier"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--weights", "imagenet"], "small_cnn has no ImageNet weights"),
        (["--weights", "/nonexistent.h5"], "not 'imagenet', 'none' or an existing file"),
        (["--trainable-layers", "some"], "--trainable-layers must be a number or 'all'"),
        (["--trainable-layers", "99"], "between 0 and 12"),
        (["--dropout", "1.5"], "--dropout must be in (0, 1)"),
        (["--out", "{tmp}/m.h5"], "--out must end in .keras"),
        (["--out", "{tmp}/missing/m.keras"], "output folder does not exist"),
        (["--data", "npz:{npz}/unlabelled.npz"], "has no labels"),
        (["--data", "npz:{npz}/absent.npz"], "data file not found"),
        (["--data", "imagenet:train"], "unknown dataset source 'imagenet'"),
        (["--val-split", "1"], "--val-split must be in [0, 1)"),
        (["--label-smoothing", "1"], "--label-smoothing must be in [0, 1)"),
        (["--label-smoothing", "-0.5"], "--label-smoothing must be in [0, 1)"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(npz, tmp_path, capsys, args, message):
    base = {"--backbone": "small_cnn", "--data": f"npz:{npz / 'train.npz'}",
            "--out": str(tmp_path / "m.keras"), "--input-size": str(SIZE), "--epochs": "1"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value.format(tmp=tmp_path, npz=npz)
    argv = ["train"] + [item for pair in base.items() for item in pair]
    status, _, err = run_cli(argv, capsys)
    assert status == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("tfuq train: error: ") and message in last
    assert "Traceback" not in err
    assert not (tmp_path / "m.keras").exists()


def test_cli_unknown_backbone_is_a_usage_error(npz, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--backbone", "vgg16", "--data", "npz:x.npz", "--out", "m.keras"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'vgg16'" in capsys.readouterr().err
