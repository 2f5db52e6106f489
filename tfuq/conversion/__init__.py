"""Stage 3, conversion (TensorFlow): a trained Keras model into a tfuq model file.

- :mod:`tfuq.conversion.rewrite`: a model in tfuq's form (:mod:`tfuq.modeling.byo` makes it)
  into the masked one-invoke graph, and the in-graph and deterministic forms.
- :mod:`tfuq.conversion.convert`: full-integer int8 TFLite with a self-check and the carried
  configuration.
- :mod:`tfuq.conversion.bias_correction`: per-channel empirical int8 bias correction against
  the float twin.

Importing this package imports nothing heavy; its modules import TensorFlow and Keras.
"""
