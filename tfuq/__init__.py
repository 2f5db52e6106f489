"""tfuq: image classifiers that know when they don't know, on phones and small boards.

The folders say what each part may import:

- ``tfuq/runtime/``: numpy and one interpreter package (a Raspberry Pi, a phone-side port):
  masks, the model file, loading and running, aggregation, decisions, metrics.
- ``tfuq/modeling/``, ``tfuq/training/``, ``tfuq/conversion/``: the TensorFlow side, one folder
  per stage of the pipeline: the network (MCDropout, backbones, heads), fitting it, and turning it
  into a full-integer TFLite model file.
- ``tfuq/data/``: dataset specs, ``.npz`` and folders, corruptions, the CIFAR-100-C builder.
- ``tfuq/evaluation.py``, ``tfuq/demo.py`` and ``tfuq/cli/`` sit above the three.
- ``tfuq/beam/``: Apache Beam batch inference and evaluation (numpy, an interpreter, Beam and
  Pillow; no TensorFlow), imported only when a pipeline runs.

The public API is ``__all__`` below (what the README shows; ``tests/test_public_api.py``
keeps the two in step): load and run a model file (:func:`load`, :class:`Model`,
:func:`read_config`), summarize and decide (:func:`aggregate`, :class:`Aggregate`,
:func:`decide`, :class:`Decision`), calibrate and evaluate (:func:`calibrate`,
:class:`Calibration`, :func:`evaluate`), and build (:class:`MCDropout`, :func:`convert`).
The stage folders' modules document their own public names; ``tfuq.cli`` and names with a
leading underscore are internal.

``import tfuq`` needs numpy only. The public names below are served lazily, so the
interpreter package is imported when a model is loaded, and TensorFlow/Keras only when
``MCDropout`` or ``convert`` is used.
"""

from __future__ import annotations

import importlib

from tfuq import _keras_hook

__version__ = "0.1.0"

__all__ = [
    "Aggregate",
    "Calibration",
    "Decision",
    "MCDropout",
    "Model",
    "aggregate",
    "calibrate",
    "convert",
    "decide",
    "evaluate",
    "load",
    "read_config",
]

# Public names served lazily, so that a Raspberry Pi never imports TensorFlow.
_LAZY = {
    "MCDropout": "tfuq.modeling.layers",
    "load": "tfuq.runtime.interpreter",
    "Model": "tfuq.runtime.interpreter",
    "read_config": "tfuq.runtime.modelfile",
    "aggregate": "tfuq.runtime.aggregate",
    "Aggregate": "tfuq.runtime.aggregate",
    "decide": "tfuq.runtime.decision",
    "Decision": "tfuq.runtime.decision",
    "calibrate": "tfuq.runtime.calibration",
    "Calibration": "tfuq.runtime.calibration",
    "evaluate": "tfuq.evaluation",
    "convert": "tfuq.conversion.convert",
}


_keras_hook.install()


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tfuq' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
