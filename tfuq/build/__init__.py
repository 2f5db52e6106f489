"""The build side: TensorFlow and Keras. Everything that makes a tfuq model file.

- :mod:`tfuq.build.layers`: :class:`~tfuq.build.layers.MCDropout`, dropout at inference too.
- :mod:`tfuq.build.models`: backbones with an MC-dropout head.
- :mod:`tfuq.build.efficientnet_lite`: EfficientNet-Lite0/1/2 with ImageNet weights, offline.
- :mod:`tfuq.build.torch_weights`: legacy PyTorch ``.pth`` state dicts read with numpy alone
  (the pickle is interpreted, never executed).
- :mod:`tfuq.build.train`: fine-tuning, early stopping, distribution strategies.
- :mod:`tfuq.build.qat`: quantization-aware training through tfmot.
- :mod:`tfuq.build.export`: a user's classifier into tfuq's form (Keras dropout as MC dropout,
  folded preprocessing), then the masked one-invoke graph (and the in-graph and deterministic forms).
- :mod:`tfuq.build.attach`: an MC-dropout head for a trained classifier without dropout.
- :mod:`tfuq.build.convert`: full-integer int8 TFLite with a self-check and the carried config.

Importing this package imports nothing heavy; its modules import TensorFlow and Keras.
"""
