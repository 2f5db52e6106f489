"""tfuq: image classifiers that know when they don't know, on phones and small boards.

``import tfuq`` needs numpy only; the interpreter package is imported when a model is loaded,
and TensorFlow/Keras only when ``MCDropout`` or the ``tfuq.convert`` module is used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

__all__ = ["MCDropout", "Model", "calibrate", "decide", "evaluate", "load", "read_config"]

# Public names served lazily, so that a Raspberry Pi never imports TensorFlow.
_LAZY = {
    "MCDropout": "tfuq.layers",
    "load": "tfuq.runtime",
    "Model": "tfuq.runtime",
    "read_config": "tfuq.modelfile",
    "decide": "tfuq.abstain",
    "calibrate": "tfuq.abstain",
    "evaluate": "tfuq.evaluation",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tfuq' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
