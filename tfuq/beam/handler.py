"""A ``ModelHandler`` for Beam's ``RunInference``: tfuq models, one record per image.

Examples are dicts from :mod:`tfuq.beam.sources`: ``image`` (uint8 ``(H, W, 3)`` at the
model input size), ``set`` (which data set), ``id`` (where it came from), ``order`` (its
place in the source, for sorting) and ``label`` (int, or None). Each prediction is a record,
a dict of plain values that JSON and Parquet hold::

    key          16 hex digits: tfuq.runtime.masks.image_key of the pixels
    set, id, order, label
    seed         the run seed the image's masks came from (a decimal string: uint64)
    predicted    argmax of the MC mean, predicted_label its name;  accept  the rule's decision
    mean, std    per class, float64 (MC outputs are (passes, classes) per image)
    max_probability, predictive_entropy, expected_entropy, mutual_information, variation_ratio
    passes       (with keep_passes) the (passes, classes) float32 probabilities, as lists

The numbers are those of :func:`tfuq.runtime.aggregate.aggregate` on the image alone, which
equal the image's row of a batched aggregate bit for bit.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler

from tfuq.runtime import abstain, masks
from tfuq.runtime.aggregate import aggregate

SEEDINGS = ("shared", "per-image")


class LoadedModel:
    """A :class:`tfuq.runtime.Model` with a lock: one interpreter is not safe across threads,
    and Beam hands the model one worker process loaded to every thread of that process."""

    def __init__(self, model):
        self.model = model
        self.lock = threading.Lock()

    def label(self, index: int) -> str:
        return self.model.labels[index] if self.model.labels else f"class_{index}"

    def passes(self, image: np.ndarray, seed: int) -> np.ndarray:
        """``(passes, classes)`` float32 probabilities of one image under run seed ``seed``.

        ``Model.run_one`` keeps the last seed's masks: with shared seeding they are drawn
        once per worker process, with per-image seeding once per image.
        """
        return self.passes_scored(image, seed)[0]

    def passes_scored(self, image: np.ndarray, seed: int, keep_masks: bool = False
                      ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """:meth:`passes` and the model's OOD scores of the same invoke (0-d arrays)."""
        with self.lock:
            probabilities = self.model.run_one(image, seed)
            return probabilities, {name: np.asarray(value) for name, value in self.model.last_scores.items()}


class TfuqModelHandler(ModelHandler[dict, dict, LoadedModel]):
    """Run a tfuq model in ``RunInference``: image dicts in, record dicts out.

    Args:
        model_path: the ``.tflite`` made by ``tfuq convert``, any path Beam's FileSystems
            read (local, ``gs://``, ``s3://``, ``hdfs://`` with the matching extra).
        rule: the decision rule (None: the one the model carries).
        seed: the run seed.
        seeding: ``shared`` or ``per-image`` (see :mod:`tfuq.beam`).
        threads: interpreter threads per worker process (None: the backend decides).
        backend: interpreter package, as :func:`tfuq.load` takes it.
        keep_passes: put the ``(passes, classes)`` probabilities into each record.
        min_batch_size, max_batch_size: Beam's batching; results do not depend on it.
    """

    def __init__(
        self,
        model_path: str,
        rule: dict | None = None,
        *,
        seed: int = 0,
        seeding: str = "shared",
        threads: int | None = None,
        backend: str = "auto",
        keep_passes: bool = False,
        min_batch_size: int | None = None,
        max_batch_size: int | None = None,
    ):
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        if seeding not in SEEDINGS:
            raise ValueError(f"unknown seeding {seeding!r}; choose one of {', '.join(SEEDINGS)}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.model_path = model_path
        self.rule = None if rule is None else abstain.check_rule(rule)
        self.seed = masks.check_seed(seed)
        self.seeding = seeding
        self.threads = threads
        self.backend = backend
        self.keep_passes = keep_passes

    def load_model(self) -> LoadedModel:
        from tfuq import runtime

        with FileSystems.open(self.model_path, compression_type="uncompressed") as handle:
            content = handle.read()
        model = runtime.load(content, threads=self.threads, backend=self.backend)
        model.path = self.model_path
        return LoadedModel(model)

    def run_inference(
        self, batch: Sequence[dict], model: LoadedModel, inference_args: dict | None = None
    ) -> Iterable[dict]:
        rule = self.rule or model.model.config.decision_rule()
        return [self.record(example, model, rule) for example in batch]

    def record(self, example: dict, model: LoadedModel, rule: dict) -> dict[str, Any]:
        """The record of one example (see the module docstring)."""
        image = model.model.check_images(example["image"])[0]
        shared = self.seeding == "shared"
        seed = self.seed if shared else masks.image_seed(self.seed, image)
        probabilities, scores = model.passes_scored(image, seed)
        summary = aggregate(probabilities, abstain.rule_conf_factor(rule))
        decision = abstain.decide(summary, rule, scores)
        label = example.get("label")
        record = {
            "key": f"{masks.image_key(image):016x}",
            "set": example.get("set", ""),
            "id": example.get("id", ""),
            "order": example.get("order", ""),
            "label": None if label is None else int(label),
            "seed": str(seed),
            "predicted_label": model.label(int(summary.predicted)),
            "accept": bool(decision.accept),
        }
        # predicted, mean, std and the scores; lower and upper follow from the rule's Z.
        columns = summary.columns(derived=False)
        record.update({name: value.tolist() for name, value in columns.items()})
        # The model's OOD scores (an ood rule part reads them), as JSON text: one column
        # whatever scores a model carries.
        record["model_scores"] = json.dumps({name: float(value) for name, value in sorted(scores.items())})
        if self.keep_passes:
            record["passes"] = probabilities.tolist()
        return record

    def get_num_bytes(self, batch: Sequence[dict]) -> int:
        return sum(int(example["image"].nbytes) for example in batch)

    def get_metrics_namespace(self) -> str:
        return "tfuq"
