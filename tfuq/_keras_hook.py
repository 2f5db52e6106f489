"""Make ``import tfuq`` enough for Keras to load ``.keras`` files holding tfuq's layers.

Keras finds a custom layer by its registered name (``tfuq>MCDropout``), and the registration
happens when :mod:`tfuq.modeling.layers` is imported. Importing it from ``tfuq/__init__`` would
import Keras and TensorFlow on a Raspberry Pi that has neither; so instead, if Keras is already
imported the layers register now, and otherwise a finder on ``sys.meta_path`` registers them
right after the first ``import keras`` finishes. Where Keras is never imported, nothing happens.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys

_LAYERS = "tfuq.modeling.layers"


def _register() -> None:
    importlib.import_module(_LAYERS)


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Wraps the loader of the top-level ``keras`` module: run it, then register tfuq's layers."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)  # find the real spec with the other finders, once
        from importlib.util import find_spec

        spec = find_spec("keras")
        if spec is None or spec.loader is None:
            return None
        original = spec.loader.exec_module

        def exec_module(module):
            original(module)
            _register()

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Register tfuq's Keras objects now if Keras is loaded, else right after it is."""
    if "keras" in sys.modules:
        _register()
    elif not any(isinstance(finder, _AfterKeras) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKeras())
