"""Stage 1, modeling (TensorFlow and Keras): the network that will be trained and converted.

- :mod:`tfuq.modeling.layers`: :class:`~tfuq.modeling.layers.MCDropout` (dropout at inference
  too), the pixel preprocessing layer and the label-smoothing loss.
- :mod:`tfuq.modeling.backbones`: backbones with an MC-dropout head (``build_model``).
- :mod:`tfuq.modeling.efficientnet_lite`: EfficientNet-Lite0/1/2 with ImageNet weights, offline.
- :mod:`tfuq.modeling.torch_weights`: legacy PyTorch ``.pth`` state dicts read with numpy alone
  (the pickle is interpreted, never executed).
- :mod:`tfuq.modeling.graph`: the functional graph as tfuq reads and rebuilds it.
- :mod:`tfuq.modeling.byo`: a classifier as people build it into tfuq's form
  (``prepare``: Keras dropout as MC dropout, preprocessing folded in, probabilities out).
- :mod:`tfuq.modeling.attach`: an MC-dropout head for a trained classifier without dropout.

Next stages: :mod:`tfuq.training` (fit), :mod:`tfuq.conversion` (int8 TFLite), then
:mod:`tfuq.runtime` on the device. Importing this package imports nothing heavy; its modules
import TensorFlow and Keras.
"""
