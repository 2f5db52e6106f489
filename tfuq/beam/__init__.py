"""Batch inference and evaluation on Apache Beam: the same pipeline on one machine or a cluster.

Beam workers need numpy, one interpreter package, Apache Beam (and Pillow for image files),
never TensorFlow: everything here stands on :mod:`tfuq.runtime`.

- :mod:`tfuq.beam.handler`: :class:`TfuqModelHandler`, a ``ModelHandler`` for Beam's
  ``RunInference`` that loads a tfuq model once per worker process and turns each image into
  one record (decision, scores, optionally the passes).
- :mod:`tfuq.beam.sources`: ``.npz`` shards, TFRecord files that tensorflow-datasets built
  (``cifar100``, ``cifar100_corrupted/*``), folders and glob patterns of image files.
- :mod:`tfuq.beam.pipeline`: the whole run (read, infer, write sharded JSONL or Parquet
  records) and the merge of the records into the report ``tfuq evaluate`` prints.

Seeding. ``shared`` gives every image the masks of the run seed, as ``tfuq predict`` and
``tfuq evaluate`` do by default; ``per-image`` gives each image the seed
:func:`tfuq.runtime.masks.image_seed` derives from the run seed and the image's pixels. In
both an image's record does not depend on how the data was split across workers or batched.

    >>> from tfuq.beam import pipeline                                          # doctest: +SKIP
    >>> report = pipeline.evaluate("model.tflite", "npz:test-*.npz", "records/",
    ...                            options=["--runner=DirectRunner"])           # doctest: +SKIP
"""

from tfuq.beam.handler import TfuqModelHandler

__all__ = ["TfuqModelHandler"]
