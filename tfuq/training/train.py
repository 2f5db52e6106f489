"""Fit a tfuq classifier: stratified validation, early stopping, history, tf.distribute.

    >>> model = tfuq.modeling.backbones.build_model("small_cnn", 10, weights=None)   # doctest: +SKIP
    >>> result = train(model, images, labels, epochs=10)                 # doctest: +SKIP
    >>> save_model(result.model, "model.keras")                          # doctest: +SKIP
    >>> save_history(result, history_path("model.keras"))                # doctest: +SKIP

Needs TensorFlow. Images are uint8 ``(N, H, W, 3)`` RGB at the model's input size; the
model does its own resizing and preprocessing (see ``tfuq.modeling.backbones``). Labels are integer
class indices. MCDropout samples in every mode, so validation loss and accuracy are those of
one Monte-Carlo pass per image: a little noisier than a deterministic model's.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfuq.data.common import (
    check_images,
    check_labels,
    stratified_split,  # noqa: F401  (re-exported: tfuq.training.train.stratified_split)
)
from tfuq.quiet import import_tensorflow as _tf

STRATEGIES = ("none", "mirrored", "multi-worker")
HISTORY_FORMAT = "tfuq-train-history"


class TrainError(ValueError):
    """Training input the user can fix (bad options, data that does not fit the model)."""


MONITORS = ("val_loss", "val_accuracy")


def fit_history(fitted, monitor: str = "val_loss") -> tuple[dict[str, list[float]], int, int | None]:
    """``(history, epochs run, best epoch by ``monitor`` or None)`` of a Keras fit: the lowest
    validation loss, or the highest validation accuracy (the first such epoch on ties)."""
    history = {key: [float(v) for v in values] for key, values in fitted.history.items()}
    epochs_run = len(next(iter(history.values()))) if history else 0
    best_epoch = None
    if monitor in history:
        pick = np.argmax if monitor == "val_accuracy" else np.argmin
        best_epoch = int(pick(history[monitor])) + 1
    return history, epochs_run, best_epoch


def fit_loss(label_smoothing: float = 0.0, outlier_weight: float | None = None):
    """The loss of every tfuq fit: sparse cross-entropy, smoothed when asked; with
    ``outlier_weight``, outlier exposure on the images labelled -1 (``OutlierExposureLoss``)."""
    import keras

    from tfuq.modeling.layers import OutlierExposureLoss, SmoothedCrossentropy

    if outlier_weight is not None:
        return OutlierExposureLoss(label_smoothing, outlier_weight)
    if label_smoothing == 0:
        return keras.losses.SparseCategoricalCrossentropy()
    return SmoothedCrossentropy(label_smoothing)


def compile_for_fit(model, learning_rate: float, label_smoothing: float = 0.0,
                    outlier_weight: float | None = None) -> None:
    """Compile ``model`` as every tfuq fit does: Adam, (smoothed) cross-entropy, accuracy
    (with outliers in a batch, labelled -1, the training accuracy counts them as wrong; the
    validation accuracy has none)."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=fit_loss(label_smoothing, outlier_weight),
        metrics=["accuracy"],
    )


def early_stopping(monitor: str, patience: int):
    """Stop after ``patience`` epochs without a better ``monitor``; keep the best weights."""
    import keras

    return keras.callbacks.EarlyStopping(
        monitor=monitor, mode="max" if monitor == "val_accuracy" else "min",
        patience=patience, restore_best_weights=True,
    )


def check_outliers(outliers, outlier_weight, input_size) -> float | None:
    """The outlier-exposure weight to compile with (None without outliers), after checking the
    outlier images (uint8, at the model's ``input_size``) and the weight (in (0, 100])."""
    if outliers is None:
        return None
    outliers = check_images(outliers, "outlier images")
    if tuple(outliers.shape[1:3]) != tuple(input_size):
        raise TrainError(f"outlier images are {outliers.shape[1]}x{outliers.shape[2]}, "
                         f"the model takes {input_size[0]}x{input_size[1]}")
    if isinstance(outlier_weight, bool) or not isinstance(outlier_weight, (int, float)) or not 0 < outlier_weight <= 100:
        raise TrainError(f"outlier weight must be in (0, 100], got {outlier_weight!r}")
    return float(outlier_weight)


def check_fit_settings(epochs, batch_size, learning_rate, patience, monitor="val_loss", label_smoothing=0.0) -> None:
    """The settings every fit takes, checked before any work (TrainError names the bad one)."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise TrainError(f"epochs must be a positive integer, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise TrainError(f"batch size must be a positive integer, got {batch_size!r}")
    if not learning_rate > 0:
        raise TrainError(f"learning rate must be positive, got {learning_rate}")
    if patience is not None and patience < 1:
        raise TrainError(f"patience must be at least 1 (or None), got {patience}")
    if monitor not in MONITORS:
        raise TrainError(f"monitor must be one of {', '.join(MONITORS)}, got {monitor!r}")
    if isinstance(label_smoothing, bool) or not 0.0 <= label_smoothing < 1.0:
        raise TrainError(f"label smoothing must be in [0, 1), got {label_smoothing!r}")


# -- data ----------------------------------------------------------------------------------------
def _dataset(images, labels, batch_size: int, shuffle_seed: int | None):
    tf = _tf()
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(
        lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    options = tf.data.Options()
    # The arrays are in memory, not in files: each worker takes its share of every batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


# -- distribution --------------------------------------------------------------------------------
def make_strategy(name: str):
    """A ``tf.distribute`` strategy by name: ``none``, ``mirrored`` or ``multi-worker``.

    - ``mirrored``: one machine, a replica per GPU; without GPUs, a replica per logical CPU
      device (one unless ``tf.config.set_logical_device_configuration`` made more).
    - ``multi-worker``: ``MultiWorkerMirroredStrategy``; every worker runs the same command
      with its own ``TF_CONFIG`` (cluster and task). Without ``TF_CONFIG`` it is one worker.
      Create it before anything else touches TensorFlow (the CLI does).
    """
    tf = _tf()
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi-worker":
        if "TF_CONFIG" in os.environ:
            try:
                json.loads(os.environ["TF_CONFIG"])
            except json.JSONDecodeError as error:
                raise TrainError(f"TF_CONFIG is not valid JSON: {error}") from error
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TrainError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")


def is_chief(strategy) -> bool:
    """True on the worker that writes files (the only one when not multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    cluster = resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


# -- progress ------------------------------------------------------------------------------------
def _progress_callback(steps: int, epochs: int, bars: bool = True):
    import keras

    from tfuq._progress import bar, is_terminal

    # A bar per epoch only on a terminal: in a log, the epoch line below says it all.
    bars = bars and is_terminal(sys.stderr)

    class Progress(keras.callbacks.Callback):
        """A bar per epoch on stderr (on a terminal), then one summary line (stdout stays clean)."""

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()
            self.bar = bar(steps, f"epoch {epoch + 1}/{epochs}", "batch", sys.stderr) if bars else None

        def on_train_batch_end(self, batch, logs=None):
            if self.bar is None:
                return
            self.bar.update(1)
            if logs:
                self.bar.set_postfix({k: f"{float(v):.4f}" for k, v in logs.items()}, refresh=False)

        def on_epoch_end(self, epoch, logs=None):
            if self.bar is not None:
                self.bar.close()
            summary = "  ".join(f"{k} {float(v):.4f}" for k, v in sorted((logs or {}).items()))
            seconds = time.perf_counter() - self.started
            print(f"epoch {epoch + 1}/{epochs}: {summary}  ({seconds:.0f} s)", file=sys.stderr, flush=True)

    return Progress()


def epoch_lines(epochs: int, say=None):
    """A Keras callback that writes one summary line per epoch (to stderr by default)."""
    import keras

    say = say or (lambda message: print(message, file=sys.stderr, flush=True))

    class EpochLines(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            summary = "  ".join(f"{k} {float(v):.4f}" for k, v in sorted((logs or {}).items()))
            say(f"epoch {epoch + 1}/{epochs}: {summary}  ({time.perf_counter() - self.started:.0f} s)")

    return EpochLines()


# -- training ------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train` did. ``history`` maps each Keras metric to one value per epoch."""

    model: object
    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int | None  # 1-based epoch with the best monitored value, None without validation
    stopped_early: bool
    train_samples: int
    validation_samples: int
    seconds: float
    strategy: str
    replicas: int
    chief: bool = True
    settings: dict = field(default_factory=dict)


def _model_in_scope(model, strategy):
    import keras

    if callable(model) and not isinstance(model, keras.Model):
        with strategy.scope():
            built = model()
        if not isinstance(built, keras.Model):
            raise TrainError(f"the model function returned {type(built).__name__}, not a keras.Model")
        return built
    if not isinstance(model, keras.Model):
        raise TrainError(f"model must be a keras.Model or a function that builds one, got {type(model).__name__}")
    tf = _tf()
    if strategy is tf.distribute.get_strategy():
        return model
    # Variables must be created under the strategy: rebuild from the config (trainable
    # flags and the backbone's training=False are part of it) and copy the weights.
    with strategy.scope():
        copy = keras.Model.from_config(model.get_config())
        copy.set_weights(model.get_weights())
    return copy


@contextlib.contextmanager
def _multi_worker_fixes(model, strategy, images, labels):
    """Work around two Keras 3.15 bugs that break ``fit`` with more than one worker.

    Both are keras-team/keras#20585 (MultiWorkerMirroredStrategy fails in Keras 3):

    1. ``fit`` builds the model by ``strategy.reduce``-ing the first distributed batch,
       a tuple of PerReplica values that collective reduction cannot convert ("Attempt to
       convert a value (PerReplica ...)"). The build needs only shapes and dtypes: build
       from one local batch instead and skip Keras' step.
    2. Each step's scalar loss and metrics are reduced with ``strategy.reduce("MEAN", v,
       axis=0)``, invalid for scalars ("Invalid reduction dimension 0"); ``axis=None`` is
       the mean over replicas that was meant.

    The patch of (2) lives only for this ``fit`` and only in multi-worker mode.
    """
    tf = _tf()
    if not (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    ):
        yield
        return
    from keras.src.backend.tensorflow import trainer

    batch = (tf.cast(images, tf.float32), tf.convert_to_tensor(labels))
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean"):
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        trainer.reduce_per_replica = original
        del model._maybe_symbolic_build


def _strategy_name(strategy) -> str:
    tf = _tf()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multi-worker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    if strategy is tf.distribute.get_strategy():
        return "none"
    return type(strategy).__name__


def train(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    validation_split: float = 0.1,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    learning_rate: float = 1e-3,
    patience: int | None = 3,
    monitor: str = "val_loss",
    label_smoothing: float = 0.0,
    strategy: str | object = "none",
    seed: int = 0,
    progress: bool = True,
    callbacks: list | None = None,
    outliers: np.ndarray | None = None,
    outlier_weight: float = 0.5,
) -> TrainResult:
    """Fit ``model`` on uint8 images with integer labels.

    Args:
        model: a Keras model from ``tfuq.modeling.backbones.build_model`` (any model with one image input
            and a softmax output works), or a function that builds one; the function form is
            called inside the strategy's scope, a model is rebuilt there with its weights.
        images: uint8 ``(N, H, W, 3)`` RGB pixels at the model's input size.
        labels: integer class indices, ``(N,)``.
        epochs: most epochs to run; early stopping may end sooner.
        batch_size: global batch size (split over the replicas of a strategy).
        validation_split: share of each class held out for validation when ``validation``
            is not given (0 disables validation and early stopping).
        validation: explicit ``(images, labels)`` validation data.
        learning_rate: Adam learning rate.
        patience: epochs without a better ``monitor`` before stopping; the best weights
            are restored. ``None`` disables early stopping.
        monitor: ``val_loss`` (lower is better) or ``val_accuracy`` (higher is better): what
            early stopping watches and which epoch's weights are kept.
        label_smoothing: share of the target spread evenly over the classes (0: none).
        strategy: ``none``, ``mirrored``, ``multi-worker`` or a ``tf.distribute.Strategy``.
        seed: seeds the validation split and the shuffling.
        progress: a progress bar per epoch on stderr when it is a terminal; with or without
            it, one summary line per epoch (on the chief worker only).
        callbacks: extra Keras callbacks.
        outliers: uint8 ``(M, H, W, 3)`` images of none of the classes, at the model's input
            size: outlier exposure (``tfuq.modeling.layers.OutlierExposureLoss``) with
            ``outlier_weight``; they are shuffled in with the training images, labelled -1.

    Returns:
        A :class:`TrainResult` whose ``model`` is the trained model (the rebuilt copy when a
        strategy needed one).
    """
    import keras

    tf = _tf()
    images = check_images(images, "training images")
    check_fit_settings(epochs, batch_size, learning_rate, patience, monitor, label_smoothing)
    if isinstance(strategy, str):
        strategy = make_strategy(strategy)
    model = _model_in_scope(model, strategy)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise TrainError("the model must have one image input and one probability output")
    input_size = tuple(model.inputs[0].shape[1:3])
    classes = int(model.outputs[0].shape[-1])
    labels = check_labels(labels, len(images), classes)
    if images.shape[1:3] != input_size:
        raise TrainError(
            f"images are {images.shape[1]}x{images.shape[2]}, the model takes "
            f"{input_size[0]}x{input_size[1]}; build it with image_size={images.shape[1:3]}"
        )

    if validation is not None:
        val_images = check_images(validation[0], "validation images")
        val_labels = check_labels(validation[1], len(val_images), classes)
        if val_images.shape[1:3] != input_size:
            raise TrainError(f"validation images are {val_images.shape[1:3]}, the model takes {input_size}")
        train_images, train_labels = images, labels
    elif validation_split > 0:
        train_index, val_index = stratified_split(labels, validation_split, seed)
        if len(val_index) == 0:
            raise TrainError(
                f"a validation split of {validation_split} leaves no validation images out of "
                f"{len(images)}; give more data or validation_split=0"
            )
        train_images, train_labels = images[train_index], labels[train_index]
        val_images, val_labels = images[val_index], labels[val_index]
    else:
        if validation_split < 0:
            raise TrainError(f"validation fraction must be in [0, 1), got {validation_split}")
        train_images, train_labels = images, labels
        val_images = val_labels = None

    weight = check_outliers(outliers, outlier_weight, input_size)
    if outliers is not None:
        train_images = np.concatenate([train_images, outliers])
        train_labels = np.concatenate([train_labels.astype(np.int64), np.full(len(outliers), -1, np.int64)])

    chief = is_chief(strategy)
    with strategy.scope():
        compile_for_fit(model, learning_rate, label_smoothing, weight)
    train_data = _dataset(train_images, train_labels, batch_size, shuffle_seed=seed)
    val_data = None if val_images is None else _dataset(val_images, val_labels, batch_size, None)
    all_callbacks = list(callbacks or [])
    early = None
    if val_data is not None and patience is not None:
        early = early_stopping(monitor, patience)
        all_callbacks.append(early)
    if chief:  # without progress bars, still one line per epoch
        all_callbacks.append(
            _progress_callback(math.ceil(len(train_images) / batch_size), epochs, bars=progress)
        )
    started = time.perf_counter()
    with _multi_worker_fixes(model, strategy, train_images[:1], train_labels[:1]):
        fitted = model.fit(
            train_data,
            validation_data=val_data,
            epochs=epochs,
            callbacks=all_callbacks,
            verbose=0,
            shuffle=False,  # the dataset reshuffles itself every epoch
        )
    seconds = time.perf_counter() - started
    history, epochs_run, best_epoch = fit_history(fitted, monitor)
    return TrainResult(
        model=model,
        history=history,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        stopped_early=bool(early is not None and early.stopped_epoch > 0),
        train_samples=len(train_images),
        validation_samples=0 if val_images is None else len(val_images),
        seconds=seconds,
        strategy=_strategy_name(strategy),
        replicas=int(strategy.num_replicas_in_sync),
        chief=chief,
        settings={
            "epochs": epochs,
            "batch_size": batch_size,
            "validation_split": None if validation is not None else validation_split,
            "learning_rate": learning_rate,
            "patience": patience,
            "monitor": monitor,
            "label_smoothing": label_smoothing,
            "seed": seed,
            **({"outliers": len(outliers), "outlier_weight": outlier_weight} if outliers is not None else {}),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
    )


# -- files ---------------------------------------------------------------------------------------
def history_path(model_path: str | os.PathLike) -> Path:
    """Where the history of ``model.keras`` goes: ``model.history.json`` beside it."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}.history.json")


CLASS_NAMES_MEMBER = "tfuq_labels.txt"


def save_model(model, path: str | os.PathLike, class_names: Sequence[str] | None = None) -> Path:
    """Save a ``.keras`` file atomically: a temporary ``.keras`` beside it, then a rename.

    ``class_names`` (one per output class) are stored in the ``.keras`` zip as
    ``tfuq_labels.txt``, one per line; Keras ignores the extra member and ``tfuq convert``
    carries the names into the model file (see :func:`class_names_of`).
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise TrainError(f"the model file name must end in .keras, got {path.name}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {folder}")
    # Keras insists on the .keras suffix, so modelfile.atomic_output's .part name won't do.
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=folder)
    os.close(handle)
    try:
        model.save(tmp)
        if class_names is not None:
            names = [str(name) for name in class_names]
            classes = int(model.output.shape[-1])
            if len(names) != classes or any("\n" in name or not name.strip() for name in names):
                raise TrainError(f"{len(names)} class names for {classes} classes (or an empty or multi-line name)")
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(CLASS_NAMES_MEMBER, "\n".join(names) + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def class_names_of(path: str | os.PathLike) -> list[str] | None:
    """The class names :func:`save_model` stored in a ``.keras`` file, or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            if CLASS_NAMES_MEMBER not in archive.namelist():
                return None
            text = archive.read(CLASS_NAMES_MEMBER).decode("utf-8")
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError):
        return None
    return [line for line in text.splitlines() if line.strip()]


def save_history(result: TrainResult, path: str | os.PathLike, **extra) -> Path:
    """Write the history and settings of a run as JSON, atomically; ``extra`` is added."""
    from tfuq.runtime.modelfile import atomic_output

    payload = {
        "format": HISTORY_FORMAT,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "train_samples": result.train_samples,
        "validation_samples": result.validation_samples,
        "seconds": round(result.seconds, 2),
        "strategy": result.strategy,
        "replicas": result.replicas,
        "settings": result.settings,
        "history": result.history,
        **extra,
    }
    path = Path(path)
    with atomic_output(path, "w") as out:
        out.write(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return path


def load_history(path: str | os.PathLike) -> dict:
    """Read a history file written by :func:`save_history`."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise TrainError(f"history file not found: {path}") from None
    except json.JSONDecodeError as error:
        raise TrainError(f"{path} is not valid JSON: {error}") from error
    if payload.get("format") != HISTORY_FORMAT:
        raise TrainError(f"{path} is not a tfuq training history")
    return payload

