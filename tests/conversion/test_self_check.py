"""The conversion self-check gates the decision (the MC-mean top-1), so a 1000-class model whose
single passes flip between near-equal classes passes while a broken one fails.

Probabilities are built by hand; every expected figure below is counted from them.
"""

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from tests._dummies import tiny  # noqa: E402
from tfuq.conversion.convert import SelfCheck, agreement_report, convert, tie_k  # noqa: E402


def probs(classes, peaks):
    """One probability vector: ``peaks`` {class: mass}, the rest spread evenly."""
    rest = (1.0 - sum(peaks.values())) / (classes - len(peaks))
    vector = np.full(classes, rest)
    for index, mass in peaks.items():
        vector[index] = mass
    return vector


def check(report, min_agreement=0.9, max_accuracy_drop=0.05):
    return SelfCheck(
        2, report["agreement"], report["mean_abs_diff"], min_agreement, True,
        keras_accuracy=report["keras_accuracy"], tflite_accuracy=report["tflite_accuracy"],
        max_accuracy_drop=max_accuracy_drop,
    )


def near_tie_pair(classes):
    """(keras, tflite), each (2 images, 4 passes, classes): image 0 is a near-tie between
    classes 3 and 4 whose passes flip in int8; image 1 is a clear class 500 % classes."""
    clear = 500 % classes
    keras = np.stack([
        np.stack([probs(classes, {3: 0.31, 4: 0.29}), probs(classes, {3: 0.29, 4: 0.30})] * 2),
        np.stack([probs(classes, {clear: 0.9})] * 4),
    ])
    tflite = np.stack([
        np.stack([probs(classes, {3: 0.29, 4: 0.31}), probs(classes, {3: 0.31, 4: 0.30})] * 2),
        np.stack([probs(classes, {clear: 0.88})] * 4),
    ])
    return keras, tflite


def test_tie_k():
    assert [tie_k(c) for c in (2, 10, 100, 199, 200, 450, 1000, 21843)] == [1, 1, 1, 1, 2, 4, 5, 5]


def test_many_class_near_ties_pass_where_single_passes_disagree():
    keras, tflite = near_tie_pair(1000)
    report = agreement_report(keras, tflite)
    # Image 0: Keras means 3: 0.30, 4: 0.295; int8 4: 0.305 > 3: 0.30. Every pass flips.
    assert report["pass_agreement"] == 0.5  # 0 of 4 passes on image 0, 4 of 4 on image 1
    assert report["mean_top1_agreement"] == 0.5
    assert report["agreement"] == 1.0  # int8's class 4 is Keras' second: a near-tie
    assert report["tie_k"] == 5
    assert check(report).passed


def test_few_classes_need_the_exact_mc_mean_top1():
    keras, tflite = near_tie_pair(10)
    report = agreement_report(keras, tflite)
    assert report["tie_k"] == 1 and report["agreement"] == 0.5
    assert not check(report).passed


def test_a_broken_many_class_model_fails():
    keras, _ = near_tie_pair(1000)
    # int8 output dominated by a class Keras gives almost nothing (a broken layer).
    broken = np.stack([np.stack([probs(1000, {999: 0.9})] * 4)] * 2)
    report = agreement_report(keras, broken)
    assert report["agreement"] == 0.0
    # Equal masses rank by index: image 0, Keras 3, 4, 0, 1, 2 vs int8 999, 0, 1, 2, 3 share
    # 4 of 5 (the even spread is what they share); image 1, Keras 500, 0, 1, 2, 3 vs 999, 0, 1,
    # 2, 3 share 4 of 5. Top-5 overlap is reported, not gated, for this reason.
    assert report["top5_overlap"] == pytest.approx(0.8)
    assert not check(report).passed


def test_accuracy_gate_with_labels():
    keras, tflite = near_tie_pair(1000)
    report = agreement_report(keras, tflite, labels=np.array([3, 500]))
    assert report["keras_accuracy"] == 1.0 and report["tflite_accuracy"] == 0.5
    assert not check(report).passed  # agreement 1.0, but int8 lost 50 points of accuracy
    assert check(report, max_accuracy_drop=0.5).passed
    report = agreement_report(keras, tflite, labels=np.array([4, 500]))
    assert report["keras_accuracy"] == 0.5 and report["tflite_accuracy"] == 1.0
    assert check(report).passed


def test_convert_with_labels_reports_accuracy(tiny_keras):
    images, labels = tiny.images(40, seed=4)
    result = convert(
        tiny_keras, images, passes=4, calibration_samples=20, check_samples=10,
        representative_labels=labels,
    )
    check_ = result.check
    assert check_.images == 10 and check_.tie_k == 1
    # The tiny model is trained on easy colours: both are accurate, and they agree.
    assert check_.keras_accuracy >= 0.9 and check_.tflite_accuracy >= 0.9
    assert check_.passed and check_.agreement >= check_.pass_agreement - 0.2
    with pytest.raises(ValueError, match="3 labels for 40 representative images"):
        convert(tiny_keras, images, passes=2, calibration_samples=8, representative_labels=labels[:3])


def test_labels_outside_the_model_classes_are_ignored_with_a_note(tiny_keras):
    images, labels = tiny.images(40, seed=4)
    result = convert(
        tiny_keras, images, passes=2, calibration_samples=20, check_samples=10,
        representative_labels=labels + 100,  # e.g. CIFAR-100 labels for another model
    )
    assert result.check.keras_accuracy is None
    assert any("labels y are not classes 0..3" in note for note in result.notes)
    assert result.check.held_out  # the note does not mark the check images as reused
