"""The runtime: what a Raspberry Pi or a phone-side port needs. numpy and one interpreter only.

Nothing in this folder imports TensorFlow, Keras, TensorFlow Datasets, or any other tfuq folder
(``tests/test_boundary.py`` checks it).

- :mod:`tfuq.runtime.masks`: the seeded ``splitmix64-counter`` masks, bit-identical in Kotlin.
- :mod:`tfuq.runtime.modelfile`: the ``tfuq.json`` carried in a zip appended to the model.
- :mod:`tfuq.runtime.tflite_graph`: the graph inside a .tflite file, read from its flatbuffer (tensors, operators, seeds).
- :mod:`tfuq.runtime.config`: ``tfuq.json`` typed (``ModelConfig`` and a dataclass per section).
- :mod:`tfuq.runtime.interpreter`: :func:`load` and :class:`Model`, the one-invoke MC runner.
- :mod:`tfuq.runtime.aggregate`: mean, spread, entropy, mutual information over the passes.
- :mod:`tfuq.runtime.decision`: the decision rules (predict or abstain), as run on the device.
- :mod:`tfuq.runtime.calibration`: SGR, a rule's threshold with a risk guarantee (offline).
- :mod:`tfuq.runtime.abstain`: both of the above in one namespace, for scripts.
- :mod:`tfuq.runtime.metrics`: selective risk, AURC, AUROC, ECE and friends.
- :mod:`tfuq.runtime.photo`: the photo rule, from an image file to the model's input (Pillow).
"""

from tfuq.runtime.interpreter import Model, interpreter_class, load

__all__ = ["Model", "interpreter_class", "load"]
