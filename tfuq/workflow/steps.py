"""The stages every flow shares: build and train, convert, calibrate, evaluate.

Each is one function over arrays and paths, with progress lines through ``say``; the
commands (``tfuq fit``, ``demo``, ``train``) and ``benchmarks/paper_experiment.py`` call
these rather than keeping their own copies. TensorFlow is imported inside the first two only.
Images are uint8 ``(N, H, W, 3)``; MC outputs are ``(passes, batch, classes)``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

Say = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class TrainSettings:
    """What decides the trained model: the network, the fit and the cached-view recipe.

    ``views`` None trains end to end (``tfuq.training.train.train``); an integer trains the
    layers after the frozen trunk on cached trunk features of that many augmented views per
    image (``tfuq.training.cached.train_cached``).
    """

    backbone: str
    weights: str | None = "imagenet"
    input_size: int | None = None
    dropout: float = 0.5
    dense: tuple[int, ...] = ()
    dropout_placement: str = "classifier"
    pooling: str = "avg"
    trainable_layers: int | None = None
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int | None = 3
    monitor: str = "val_loss"
    label_smoothing: float = 0.0
    views: int | None = None
    seed: int = 0

    def to_json(self) -> dict:
        values = asdict(self)
        values["dense"] = list(self.dense)
        return values


def build_classifier(settings: TrainSettings, classes: int, image_size: tuple[int, int],
                     strategy=None, name: str | None = None):
    """The Keras model of ``settings`` for ``classes`` classes taking ``image_size`` images."""
    import contextlib

    import keras

    from tfuq.modeling import backbones

    keras.utils.set_random_seed(settings.seed)
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        return backbones.build_model(
            settings.backbone, classes, settings.input_size, image_size=tuple(image_size),
            weights=settings.weights, dropout=settings.dropout, dense=settings.dense,
            pooling=settings.pooling, dropout_placement=settings.dropout_placement,
            trainable_layers=settings.trainable_layers, name=name,
        )


def train_classifier(
    model,
    settings: TrainSettings,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    validation_split: float = 0.1,
    cache: str | os.PathLike | None = None,
    outliers: np.ndarray | None = None,
    outlier_weight: float = 0.5,
    strategy="none",
    callbacks: list | None = None,
    progress: bool = False,
    say: Say = _stderr,
):
    """Fit ``model`` by ``settings``: cached trunk views when ``settings.views`` is set (then
    ``cache`` is the feature folder), else ordinary training. Returns the ``TrainResult``.

    ``outliers`` (uint8 images of none of the classes, or None) turn on outlier exposure with
    weight ``outlier_weight`` (``tfuq.training.train.OutlierExposureLoss``).
    """
    from tfuq.training import train

    common = {
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
        "validation_split": 0.0 if validation is not None else validation_split,
        "validation": validation,
        "learning_rate": settings.learning_rate,
        "patience": settings.patience,
        "monitor": settings.monitor,
        "label_smoothing": settings.label_smoothing,
        "seed": settings.seed,
        "callbacks": list(callbacks or []),
    }
    if outliers is not None:
        common.update(outliers=outliers, outlier_weight=outlier_weight)
    if settings.views:
        from tfuq.training import cached

        if cache is None:
            raise ValueError("training on cached views needs a cache folder")
        return cached.train_cached(model, images, labels, cache=cache, views=settings.views, say=say, **common)
    return train.train(model, images, labels, strategy=strategy, progress=progress, **common)


@dataclass(frozen=True)
class ConvertSettings:
    """How the trained model becomes a tfuq ``.tflite`` (the ``[convert]`` table of a recipe
    in ``converters/``)."""

    passes: int = 30
    mode: str = "masked"
    calibration_samples: int = 200
    check_samples: int = 50
    min_agreement: float = 0.9
    bias_correction: int = 0
    decision: dict | None = None

    def to_json(self) -> dict:
        return asdict(self)


def convert_classifier(
    model,
    images: np.ndarray,
    labels: np.ndarray | None,
    settings: ConvertSettings,
    *,
    class_names: list[str] | None = None,
    check_accuracy: bool = True,
    seed: int = 0,
    progress: bool = False,
    say: Say = _stderr,
):
    """Convert ``model`` on a class-balanced draw of ``images`` (calibration plus self-check
    images); returns the ``Conversion`` (not saved). With ``labels`` and ``check_accuracy``
    the self-check also compares Keras' and int8 accuracy."""
    from tfuq import data
    from tfuq.conversion.convert import convert

    count = min(len(images), settings.calibration_samples + settings.check_samples)
    chosen = (data.balanced_indices(labels, count, seed=seed) if labels is not None
              else np.arange(count))
    # Few training images (a small folder): keep three quarters for the int8 ranges.
    check = min(settings.check_samples, count // 4)
    say(f"converting to full-integer TFLite, {settings.passes} passes per invoke, {count} "
        f"class-balanced training images ({count - check} calibrate, {check} self-check)"
        + (f", bias correction on {settings.bias_correction}" if settings.bias_correction else ""))
    return convert(
        model, images[chosen], passes=settings.passes, mode=settings.mode,
        calibration_samples=count - check, check_samples=check,
        min_agreement=settings.min_agreement, labels=class_names, decision=settings.decision,
        representative_labels=labels[chosen] if labels is not None and check_accuracy else None,
        bias_correction=settings.bias_correction, progress=progress,
    )


@dataclass
class Calibrated:
    """What :func:`calibrate_model` found; ``rule`` is None when the target was infeasible."""

    feasible: bool
    message: str
    rule: dict | None
    target_risk: float
    confidence: float
    images: int
    details: dict = field(default_factory=dict)
    ood_guard: dict | None = None


def calibration_of(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    target_risk: float,
    confidence: float = 0.9,
    score: str = "max_probability",
    within: dict | None = None,
    ood_guard: bool = True,
    ood_score: str = "predictive_entropy",
    ood_alpha: float = 0.05,
    ood_delta: float = 0.1,
    guard_optional: bool = False,
    seed: int = 0,
    progress: bool = False,
    say: Say | None = None,
):
    """The calibration ``tfuq calibrate`` makes, without writing it: ``(Calibration, guard)``.

    The rule first gets an OOD guard on ``ood_score`` (a score of the passes, the MC
    predictive entropy by default, or one the model returns; :func:`tfuq.runtime.abstain.ood_guard`:
    at most ``ood_alpha`` of such images refused, with probability ``1 - ood_delta``) and the
    threshold is searched
    among the images the guard accepts, so the guarantee covers the whole rule. Too few images
    for the guard raise ``InfeasibleError``, or with ``guard_optional`` let the threshold go
    alone (``say`` is told why). ``guard`` is the ``OodGuard`` or None.
    """
    from tfuq import evaluation
    from tfuq.runtime import abstain
    from tfuq.runtime.aggregate import SCORES, aggregate

    if ood_guard and ood_score not in SCORES and ood_score not in model.score_names:
        raise ValueError(f"OOD score {ood_score!r} is neither a score of the passes ({', '.join(SCORES)}) "
                         f"nor one the model returns ({', '.join(model.score_names) or 'it returns none'})")
    probabilities, scores = evaluation.run_model(model, images, seed=seed, progress=progress)
    guard = None
    if ood_guard:
        name = ood_score
        values = aggregate(probabilities).score(name) if name in SCORES else scores[name]
        try:
            guard = abstain.ood_guard(values, name, alpha=ood_alpha, delta=ood_delta)
        except abstain.InfeasibleError as error:
            if not guard_optional:
                raise
            if say is not None:
                say(f"no OOD guard: {error}")
        if guard is not None:
            within = guard.rule if within is None else abstain.with_ood_guard(within, guard.rule)
            if say is not None:
                say(f"{abstain.describe_rule(guard.rule)} (rank {guard.rank} of {len(images)} "
                    f"from the refusing end; refuses {guard.refused_on_calibration:.1%} of these images; at "
                    f"most {ood_alpha:g} of such images with probability {1 - ood_delta:g})")
    found = abstain.calibrate(probabilities, labels, target_risk=target_risk, confidence=confidence,
                              score=score, within=within, scores=scores)
    return found, guard


def calibrate_model(
    path: str | os.PathLike,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    target_risk: float,
    confidence: float = 0.9,
    score: str = "max_probability",
    within: dict | None = None,
    seed: int = 0,
    threads: int | None = None,
    progress: bool = False,
    say: Say | None = None,
) -> Calibrated:
    """:func:`calibration_of` the model file at ``path`` (the OOD guard when there are enough
    images), and its rule written into the file when the target is feasible (an infeasible
    target writes nothing)."""
    from tfuq import runtime
    from tfuq.runtime import modelfile

    model = runtime.load(path, threads=threads or os.cpu_count())
    found, guard = calibration_of(model, images, labels, target_risk=target_risk, confidence=confidence,
                                  score=score, within=within, guard_optional=True, seed=seed,
                                  progress=progress, say=say)
    rule = found.to_rule() if found.feasible else None
    if rule is not None:
        modelfile.update_config(path, {"decision": rule})
    from tfuq.runtime.config import DecisionRule

    calibration = DecisionRule.from_dict(rule).calibration if rule else None
    return Calibrated(found.feasible, found.message, rule, target_risk, confidence, len(images),
                      calibration.to_dict() if calibration else {}, None if guard is None else guard.rule)


def evaluate_model(
    path: str | os.PathLike,
    images: np.ndarray,
    labels: np.ndarray,
    report_folder: str | os.PathLike | None = None,
    *,
    title: str = "tfuq evaluation",
    rule: dict | None = None,
    ood_images: np.ndarray | None = None,
    seed: int = 0,
    threads: int | None = None,
    progress: bool = False,
):
    """Evaluate the model file on labelled images with its own rule (or ``rule``); with
    ``report_folder``, write the report with plots and the gallery. Returns the Evaluation."""
    from tfuq import evaluation, reporting, runtime

    model = runtime.load(path, threads=threads or os.cpu_count())
    result = evaluation.evaluate(model, images, labels, rule, ood_images=ood_images, seed=seed,
                                 progress=progress)
    if report_folder is not None:
        reporting.write_report(result, report_folder, title=title, images=images,
                               class_names=model.labels or None)
    return result


def invoke_seconds(path: str | os.PathLike, image: np.ndarray, repeats: int = 5, threads: int | None = None) -> float:
    """Median seconds of one invoke (all passes of one image) on this machine."""
    from tfuq import runtime

    model = runtime.load(path, threads=threads)
    model.run(image[None], seed=0)  # warm-up: the first invoke allocates
    times = []
    for repeat in range(repeats):
        started = time.perf_counter()
        model.run(image[None], seed=repeat)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def model_path(folder: str | os.PathLike) -> Path:
    return Path(folder) / "model.tflite"
