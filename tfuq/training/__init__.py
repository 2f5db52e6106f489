"""Stage 2, training (TensorFlow and Keras): fitting a model built by :mod:`tfuq.modeling`.

- :mod:`tfuq.training.train`: fine-tuning with early stopping, distribution strategies, the
  stratified validation split.
- :mod:`tfuq.training.cached`: fine-tuning on cached trunk features of augmented views (the
  frozen trunk runs once per image and view).
- :mod:`tfuq.training.qat`: quantization-aware training through tfmot.

Importing this package imports nothing heavy; its modules import TensorFlow and Keras.
"""
