"""Session fixtures: one trained tiny Keras model and its tfuq conversions, made once."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

try:  # the fuzz tests' budgets: fixed and reproducible by default, more with a profile
    from hypothesis import HealthCheck, settings

    _quiet = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
    # "ci" (default): each fuzz test's own max_examples, derandomized, so every run (and the
    # README's test command in CI) tries the same inputs in a minute or two in all.
    settings.register_profile("ci", derandomize=True, deadline=None, database=None,
                              suppress_health_check=_quiet, print_blob=True)
    # "explore": ten times the examples, fresh random ones each run (HYPOTHESIS_PROFILE=explore).
    settings.register_profile("explore", derandomize=False, deadline=None,
                              suppress_health_check=_quiet, print_blob=True)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # the fuzz tests skip themselves
    pass

PASSES = 8


@pytest.fixture(scope="session")
def tiny_keras():
    """A trained tiny MC-dropout Keras model (4 colour classes, 16x16 input)."""
    pytest.importorskip("tensorflow")
    from tests._dummies import tiny

    return tiny.trained_model()


@pytest.fixture(scope="session")
def tiny_images():
    """Held-out easy images and labels for the tiny model."""
    from tests._dummies import tiny

    return tiny.images(64, seed=2)


@pytest.fixture(scope="session")
def tiny_tflite(tiny_keras, tmp_path_factory) -> str:
    """Path of the tiny model converted to a masked, full-integer tfuq .tflite (8 passes)."""
    from tests._dummies import tiny
    from tfuq.conversion.convert import convert

    calibration, _ = tiny.images(128, seed=3)
    result = convert(
        tiny_keras, calibration, passes=PASSES, calibration_samples=96, check_samples=32,
        labels=tiny.LABELS,
    )
    path = tmp_path_factory.mktemp("models") / "tiny.tflite"
    result.save(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_in_graph_tflite(tiny_keras, tmp_path_factory) -> str:
    """The tiny model in the seed paper's in-graph form (RANDOM_UNIFORM, one pass per invoke)."""
    from tests._dummies import tiny
    from tfuq.conversion.convert import convert

    calibration, _ = tiny.images(64, seed=3)
    result = convert(
        tiny_keras, calibration, passes=PASSES, mode="in-graph", calibration_samples=48,
        check_samples=0, labels=tiny.LABELS,
    )
    path = tmp_path_factory.mktemp("models") / "tiny_in_graph.tflite"
    result.save(path)
    return str(path)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
