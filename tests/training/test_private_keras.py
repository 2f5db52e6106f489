"""The private Keras code tfuq relies on is still there, with the shape tfuq expects.

setup.cfg pins Keras to the minor release tested (3.15). Raising the pin: run this first; a
failure here names what moved, instead of a conversion or a multi-worker fit failing later.
"""

import inspect

import pytest

keras = pytest.importorskip("keras")


def test_functional_run_through_graph_takes_inputs_and_call_fn():
    # tfuq/conversion/rewrite.py and qat.py rebuild a Functional graph through this method.
    from keras.src.models.functional import Functional

    method = getattr(Functional, "_run_through_graph", None)
    assert method is not None, "keras Functional._run_through_graph is gone"
    parameters = inspect.signature(method).parameters
    assert list(parameters)[:2] == ["self", "inputs"] and "call_fn" in parameters


def test_the_multi_worker_patch_points_exist():
    # tfuq/training/train.py swaps trainer.reduce_per_replica and Model._maybe_symbolic_build.
    from keras.src.backend.tensorflow import trainer

    parameters = list(inspect.signature(trainer.reduce_per_replica).parameters)
    assert parameters == ["values", "strategy", "reduction"]
    assert hasattr(keras.Model, "_symbolic_build") and hasattr(keras.Model, "_maybe_symbolic_build")


def test_installed_versions_are_the_tested_ones():
    import tensorflow as tf

    assert keras.__version__.startswith("3.15."), keras.__version__
    assert tf.__version__.startswith("2.21."), tf.__version__
