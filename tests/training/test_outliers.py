"""Outlier exposure: the loss by hand, and training with outliers in the full fit, the cached
fit and ``tfuq train --outliers`` (the model learns to be unsure on images of no class)."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from tests._dummies import tiny  # noqa: E402
from tfuq.modeling import backbones  # noqa: E402
from tfuq.modeling.layers import OutlierExposureLoss  # noqa: E402
from tfuq.training import cached  # noqa: E402
from tfuq.training import train as training  # noqa: E402
from tfuq.training.train import TrainError  # noqa: E402

P = np.array([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25], [0.2, 0.2, 0.6]], "float32")


def test_the_loss_is_the_labelled_mean_plus_the_weighted_outlier_mean():
    labelled = (-math.log(0.5) - math.log(0.6)) / 2  # labels 0 and 2
    outlier = -(math.log(0.5) + 2 * math.log(0.25)) / 3  # cross-entropy from uniform
    loss = OutlierExposureLoss(smoothing=0.0, outlier_weight=0.5)
    got = float(loss(np.array([0, -1, 2]), P))
    assert got == pytest.approx(labelled + 0.5 * outlier, rel=1e-5)


def test_without_outliers_in_the_batch_it_is_the_smoothed_cross_entropy():
    # smoothing 0.3 over 3 classes: target 0.8 on the label, 0.1 elsewhere
    by_hand = -(0.8 * math.log(0.5) + 0.1 * math.log(0.25) + 0.1 * math.log(0.25))
    loss = OutlierExposureLoss(smoothing=0.3, outlier_weight=2.0)
    assert float(loss(np.array([0]), P[:1])) == pytest.approx(by_hand, rel=1e-5)


def test_a_batch_of_outliers_only_is_the_weighted_uniform_term():
    uniform = -(math.log(0.2) * 2 + math.log(0.6)) / 3
    loss = OutlierExposureLoss(outlier_weight=3.0)
    assert float(loss(np.array([-1]), P[2:])) == pytest.approx(3.0 * uniform, rel=1e-5)


def test_the_loss_round_trips_through_its_config():
    loss = OutlierExposureLoss(smoothing=0.1, outlier_weight=0.7)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, OutlierExposureLoss)
    assert (again.smoothing, again.outlier_weight) == (0.1, 0.7)


def _grey(count, seed):
    """Images of no class: grey with the same pixel noise as the classes."""
    rng = np.random.default_rng(seed)
    return np.clip(128 + rng.normal(0, 30, (count, tiny.SIZE, tiny.SIZE, 3)), 0, 255).astype(np.uint8)


def _max_probability(model, images):
    return float(model.predict(images.astype("float32"), verbose=0).max(axis=1).mean())


@pytest.mark.parametrize("with_outliers", [False, True])
def test_the_full_fit_with_outliers_is_unsure_on_them_and_still_right_on_the_classes(with_outliers):
    x, y = tiny.images(192, seed=1)
    model = tiny.model(rates=(1e-7, 1e-7))
    extra = {"outliers": _grey(96, 2), "outlier_weight": 1.0} if with_outliers else {}
    result = training.train(model, x, y, epochs=12, batch_size=32, validation_split=0.0,
                            learning_rate=3e-3, progress=False, **extra)
    test_x, test_y = tiny.images(64, seed=3)
    accuracy = (result.model.predict(test_x.astype("float32"), verbose=0).argmax(1) == test_y).mean()
    unknown = _max_probability(result.model, _grey(64, 4))
    assert accuracy >= 0.9
    if with_outliers:
        assert unknown < 0.4  # 4 classes: uniform is 0.25
        assert result.settings["outliers"] == 96 and result.settings["outlier_weight"] == 1.0
    else:
        assert "outliers" not in result.settings


def test_the_cached_fit_with_outliers_caches_their_views_and_lowers_their_confidence(tmp_path):
    x, y = tiny.images(160, seed=1)
    grey = _grey(80, 2)
    confidences = {}
    for name, extra in (("plain", {}), ("oe", {"outliers": grey, "outlier_weight": 1.0})):
        keras.utils.set_random_seed(0)
        model = backbones.build_model("small_cnn", 4, input_size=tiny.SIZE, weights=None, dropout=1e-7,
                                      trainable_layers=2, freeze_batchnorm=False)
        lines = []
        cached.train_cached(model, x, y, cache=tmp_path, views=2, epochs=6, batch_size=16,
                            learning_rate=3e-3, say=lines.append, **extra)
        confidences[name] = _max_probability(model, _grey(48, 4))
        if name == "oe":
            assert sum("outliers, view" in line for line in lines) >= 2
            assert len(list(tmp_path.glob("*/outliers_*/view_*.npy"))) == 2
    assert confidences["oe"] < confidences["plain"] - 0.1


def test_outliers_of_another_size_or_a_bad_weight_are_refused_before_training(tmp_path):
    x, y = tiny.images(32, seed=1)
    with pytest.raises(TrainError, match="outlier images are 8x8"):
        training.train(tiny.model(), x, y, epochs=1, outliers=np.zeros((4, 8, 8, 3), np.uint8), progress=False)
    with pytest.raises(TrainError, match="outlier weight must be in"):
        training.train(tiny.model(), x, y, epochs=1, outliers=_grey(4, 0), outlier_weight=0, progress=False)
