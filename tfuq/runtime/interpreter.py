"""Run a tfuq model: seeded masks in, ``(passes, batch, classes)`` probabilities out.

Imports numpy and one interpreter package, never TensorFlow unless it is the only
interpreter available. The search order follows the official Raspberry Pi example:
``ai_edge_litert``, then ``tflite_runtime``, then ``tf.lite``.

    >>> import tfuq
    >>> model = tfuq.load("model.tflite", threads=2)        # doctest: +SKIP
    >>> probabilities = model.run(images, seed=0)            # doctest: +SKIP
    >>> probabilities.shape  # (passes, batch, classes)     # doctest: +SKIP
    >>> model.run_one(image, seed=0).shape  # one image: (passes, classes)  # doctest: +SKIP

A model keeps the last run seed's masks (they depend on the seed and the mask shapes alone),
so a stream of photos under one seed draws them once; a new seed draws them again.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import numpy as np

from tfuq.runtime import budget, modelfile
from tfuq.runtime import masks as _masks
from tfuq.runtime.config import quote

BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")
_INTERPRETER_MODULES = {
    "ai_edge_litert": "ai_edge_litert.interpreter",
    "tflite_runtime": "tflite_runtime.interpreter",
    "tensorflow": "tensorflow",
}


def interpreter_class(backend: str = "auto") -> tuple[str, Any]:
    """Return ``(backend_name, Interpreter)`` for ``backend`` or the first one installed."""
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)} or auto")
    for name in BACKENDS if backend == "auto" else (backend,):
        try:
            module = importlib.import_module(_INTERPRETER_MODULES[name])
        except ImportError as error:
            if backend != "auto":
                raise ImportError(f"backend {name} is not installed ({error})") from error
            continue
        return name, (module.lite.Interpreter if name == "tensorflow" else module.Interpreter)
    raise ImportError("no TFLite interpreter found: pip install ai-edge-litert (or tflite-runtime)")


def _quantize(values: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    dtype = detail["dtype"]
    if scale == 0:  # not quantized
        return values.astype(dtype)
    info = np.iinfo(dtype)
    quantized = np.round(values.astype(np.float64) / scale) + zero_point
    return np.clip(quantized, info.min, info.max).astype(dtype)


def _dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if scale == 0:
        return values.astype(np.float32)
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32, copy=False)


def _pixel_table(detail: dict) -> np.ndarray | None:
    """``_quantize`` of every uint8 value for an image input, or None when it is the identity.

    Pixels take 256 values, so quantizing by table lookup gives ``_quantize``'s bytes at a
    fraction of its float64 cost, and a raw uint8 input needs no copy at all.
    """
    table = _quantize(np.arange(256, dtype=np.uint8), detail)
    if table.dtype == np.uint8 and np.array_equal(table, np.arange(256)):
        return None
    return table


class Model:
    """A loaded tfuq model.

    Args:
        path: a ``.tflite`` file made by ``tfuq convert`` (or its bytes).
        threads: interpreter threads (None lets the backend decide).
        backend: ``auto``, ``ai_edge_litert``, ``tflite_runtime`` or ``tensorflow``.

    Attributes:
        config: the configuration the file carries (labels, passes, masks, decision rule), a
            :class:`tfuq.runtime.config.ModelConfig`.
        passes: number of MC passes T one ``run`` returns.
        input_shape: ``(height, width, 3)`` of the uint8 RGB images ``run`` takes.
    """

    def __init__(
        self, path: str | os.PathLike | bytes, threads: int | None = None, backend: str = "auto"
    ):
        if isinstance(path, bytes):  # an in-memory model file, as `tfuq convert` checks it
            self.path = "model"
            self.flatbuffer, self.config = modelfile.split(path)
        else:
            self.path = os.fspath(path)
            self.flatbuffer, self.config = modelfile.read(path)
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.threads = threads
        self.backend, self._interpreter_class = interpreter_class(backend)
        self.mode = self.config.mode
        self.passes = self.config.passes
        spec = self.config.input
        self.input_shape = (spec.height, spec.width, spec.channels)
        self.labels = list(self.config.labels or [])
        self.mask_specs = self.config.mc_dropout
        self._seeded_for: int | None = None
        budget.check_model(self.path, (1, *self.input_shape), (self.passes,))  # before the interpreter
        # The last run seed's masks, quantized as the interpreter takes them: a pure function
        # of the seed and the mask shapes, so a repeated seed (a stream of photos, predict,
        # shared seeding in Beam) draws them once.
        self._cached_feeds: tuple[int, dict[str, np.ndarray]] | None = None
        try:
            self._runner = self._make_runner(self.flatbuffer)
            self._validate()
        except (modelfile.ModelFileError, budget.BudgetError):
            raise
        except (ValueError, RuntimeError, KeyError, IndexError, TypeError) as error:
            # A flatbuffer the interpreter half-accepts: names that are not UTF-8, and such.
            raise modelfile.ModelFileError(f"{self.path}: the interpreter rejects it: {error}") from error

    # -- set-up --------------------------------------------------------------------------
    def _make_runner(self, flatbuffer: bytes):
        try:
            interpreter = self._interpreter_class(model_content=flatbuffer, num_threads=self.threads)
        except (ValueError, RuntimeError) as error:
            raise modelfile.ModelFileError(f"{self.path}: the interpreter rejects it: {error}") from error
        self._interpreter = interpreter
        return interpreter.get_signature_runner()

    def _validate(self) -> None:
        inputs = self._runner.get_input_details()
        outputs = self._runner.get_output_details()
        image_name = self.config.input.name
        if image_name not in inputs:
            raise modelfile.ModelFileError(f"{self.path}: no input named {image_name!r}")
        shape = tuple(int(d) for d in inputs[image_name]["shape"])
        if shape != (1, *self.input_shape):
            raise modelfile.ModelFileError(
                f"{self.path}: image input is {shape}, configuration says {(1, *self.input_shape)}"
            )
        expected_inputs = {image_name}
        for spec in self.mask_specs if self.mode == "masked" else []:
            expected_inputs.add(spec.input)
            got = tuple(int(d) for d in inputs.get(spec.input, {}).get("shape", ()))
            if got != spec.shape:
                raise modelfile.ModelFileError(
                    f"{self.path}: mask input {spec.input!r} is {quote(got)}, configuration says "
                    f"{quote(spec.shape)}"
                )
        if set(inputs) != expected_inputs:
            raise modelfile.ModelFileError(
                f"{self.path}: inputs {sorted(inputs)} do not match the configuration "
                f"{sorted(expected_inputs)}"
            )
        self._output_name = self.config.output.name
        if self._output_name not in outputs:
            raise modelfile.ModelFileError(f"{self.path}: no output named {self._output_name!r}")
        self._input_details = inputs
        self._output_detail = outputs[self._output_name]
        # Out-of-distribution scores the graph returns beside the probabilities, (1, 1) each.
        self.score_names = self.config.score_names
        self._score_outputs = {}
        for score in self.config.scores or ():
            detail = outputs.get(score.output)
            if detail is None or tuple(int(d) for d in detail["shape"]) != (1, 1):
                raise modelfile.ModelFileError(
                    f"{self.path}: score {score.name!r} needs a (1, 1) output named {score.output!r}")
            self._score_outputs[score.name] = (score.output, detail)
        self._last_scores: dict[str, float] = {}
        self._pixel_table = _pixel_table(inputs[image_name])
        self.classes = int(self._output_detail["shape"][-1])
        budget.check_model(self.path, inputs[image_name]["shape"], self._output_detail["shape"])
        if self.config.labels is not None and len(self.config.labels) != self.classes:
            raise modelfile.ModelFileError(
                f"{self.path}: {len(self.labels)} labels for {self.classes} classes"
            )

    # -- inputs --------------------------------------------------------------------------
    def check_images(self, images: np.ndarray) -> np.ndarray:
        """Return ``images`` as uint8 ``(batch, H, W, 3)``; a single image gains a batch axis."""
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 RGB pixels, got dtype {images.dtype}")
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[1:] != self.input_shape:
            raise ValueError(
                f"images must be (batch, {', '.join(map(str, self.input_shape))}), "
                f"got {images.shape}; resize to the model input first"
            )
        return images

    def masks(self, seed: int) -> dict[str, np.ndarray]:
        """The 0/1 masks (uint8) that run seed ``seed`` feeds, by input name."""
        layers = [(spec.feature_shape, spec.rate) for spec in self.mask_specs]
        generated = _masks.masks_for(seed, self.passes, layers)
        return {spec.input: mask for spec, mask in zip(self.mask_specs, generated, strict=True)}

    @property
    def signature_runner(self):
        """The interpreter's signature runner (inputs and outputs by name, their details), as
        seeded by the last ``run`` of an in-graph model: what ``tfuq inspect`` lists, and one
        raw invoke for timing one invoke of all passes against one invoke per pass
        (``benchmarks/bench_one_invoke.py``)."""
        return self._runner

    def _mask_feeds(self, seed: int) -> dict[str, np.ndarray]:
        """The masks of ``seed`` quantized for the interpreter, kept for the next call."""
        if self._cached_feeds is not None and self._cached_feeds[0] == seed:
            return self._cached_feeds[1]
        feeds = {}
        for name, mask in self.masks(seed).items():
            feeds[name] = _quantize(mask, self._input_details[name])
            feeds[name].setflags(write=False)
        self._cached_feeds = (seed, feeds)
        return feeds

    def _pixels(self, image: np.ndarray) -> np.ndarray:
        """One image ``(H, W, 3)`` as the interpreter's image input ``(1, H, W, 3)``."""
        image = np.asarray(image)
        if image.dtype != np.uint8:  # run_with_masks takes what _quantize takes
            return _quantize(image[None], self._input_details[self.config.input.name])
        if self._pixel_table is None:
            return np.ascontiguousarray(image[None])
        return self._pixel_table[image[None]]

    # -- running -------------------------------------------------------------------------
    def run_with_masks(self, image: np.ndarray, masks: dict[str, np.ndarray]) -> np.ndarray:
        """One invoke of the masked model: one image ``(H, W, 3)`` to ``(passes, classes)``."""
        if self.mode == "in-graph":
            raise ValueError("run_with_masks needs a masked (or deterministic) model")
        image_name = self.config.input.name
        feeds = {image_name: self._pixels(image)}
        for name, mask in masks.items():
            feeds[name] = _quantize(np.asarray(mask), self._input_details[name])
        result = self._invoke(feeds)
        return _dequantize(result, self._output_detail)

    def run_one(self, image: np.ndarray, seed: int = 0) -> np.ndarray:
        """All MC passes of one image, the runner for a stream of photos.

        The masks of the last seed are kept, so a repeated seed costs the invoke alone.

        Args:
            image: uint8 RGB ``(H, W, 3)`` at the model input size.
            seed: run seed in [0, 2**64).

        Returns:
            float32 probabilities ``(passes, classes)``, equal to ``run(image, seed)[:, 0]``.
        """
        image = self.check_images(image)
        if len(image) != 1:
            raise ValueError(f"run_one takes one image (H, W, 3), got a batch of {len(image)}")
        seed = _masks.check_seed(seed)
        if self.mode == "in-graph":
            return self.run(image, seed)[:, 0]
        feeds = self._mask_feeds(seed) if self.mode == "masked" else {}
        image_name = self.config.input.name
        result = _dequantize(self._invoke({image_name: self._pixels(image[0]), **feeds}), self._output_detail)
        if self.mode == "deterministic":  # one pass: every MC pass is that pass
            return np.repeat(result, self.passes, axis=0)
        return result

    def _invoke(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        try:
            results = self._runner(**feeds)
        except RuntimeError as error:  # a model file whose graph the interpreter cannot run
            raise modelfile.ModelFileError(f"{self.path}: the interpreter failed: {error}") from error
        self._last_scores = {name: float(_dequantize(results[output], detail).reshape(()))
                             for name, (output, detail) in self._score_outputs.items()}
        return results[self._output_name]

    def _seed_in_graph(self, seed: int) -> None:
        from tfuq.runtime import tflite_graph

        if self._seeded_for == seed:
            return
        pass_seed = int(_masks.pass_seeds(seed, 1)[0])
        count = len(tflite_graph.random_seed_offsets(self.flatbuffer))
        # RandomOptions holds signed int64s; the generator's uint64 is reinterpreted.
        signed = pass_seed - 2**64 if pass_seed >= 2**63 else pass_seed
        seeds = [(signed, layer + 1) for layer in range(count)]
        self._runner = self._make_runner(tflite_graph.with_random_seeds(self.flatbuffer, seeds))
        self._seeded_for = seed

    def run(self, images: np.ndarray, seed: int = 0) -> np.ndarray:
        """All MC passes for a batch of images.

        Args:
            images: uint8 RGB, ``(batch, H, W, 3)`` or one image ``(H, W, 3)``.
            seed: run seed in [0, 2**64); the same seed gives bit-identical results.

        Returns:
            float32 probabilities, ``(passes, batch, classes)``.
        """
        images = self.check_images(images)
        seed = _masks.check_seed(seed)
        out = np.empty((self.passes, len(images), self.classes), dtype=np.float32)
        if self.mode != "in-graph":  # the same masks for every image: results per image
            for index, image in enumerate(images):  # do not depend on the batch around it
                out[:, index] = self.run_one(image, seed)
            return out
        for index, image in enumerate(images):
            self._seeded_for = None  # a fresh random stream per image, from the same seed
            self._seed_in_graph(seed)
            for p in range(self.passes):
                image_name = self.config.input.name
                pixels = _quantize(image[None], self._input_details[image_name])
                result = self._invoke({image_name: pixels})
                out[p, index] = _dequantize(result, self._output_detail)[0]
        return out

    @property
    def last_scores(self) -> dict[str, float]:
        """The out-of-distribution scores of the last invoke, by name (empty when the model
        carries none)."""
        return dict(self._last_scores)

    def run_scored(self, images: np.ndarray, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """:meth:`run`, and the out-of-distribution scores the model carries (``score_names``,
        larger = more like the training data) from the same invokes.

        Returns:
            float32 probabilities ``(passes, batch, classes)`` and ``{name: (batch,) float32}``.
        """
        images = self.check_images(images)
        probabilities = np.empty((self.passes, len(images), self.classes), dtype=np.float32)
        scores = {name: np.empty(len(images), dtype=np.float32) for name in self.score_names}
        for index, image in enumerate(images):
            probabilities[:, index] = self.run_one(image, seed)
            for name in self.score_names:
                scores[name][index] = self._last_scores[name]
        return probabilities, scores

    def run_each(self, images: np.ndarray, seeds) -> np.ndarray:
        """MC passes with a run seed of its own for each image (per-image seeding).

        Args:
            images: uint8 RGB ``(batch, H, W, 3)``.
            seeds: one run seed per image, e.g. from :func:`tfuq.runtime.masks.image_seed`.

        Returns:
            float32 ``(passes, batch, classes)``; image ``i`` equals ``run(images[i], seeds[i])``.
        """
        images = self.check_images(images)
        seeds = [_masks.check_seed(seed) for seed in seeds]
        if len(seeds) != len(images):
            raise ValueError(f"{len(seeds)} seeds for {len(images)} images")
        out = np.empty((self.passes, len(images), self.classes), dtype=np.float32)
        for index, (image, seed) in enumerate(zip(images, seeds, strict=True)):
            out[:, index] = self.run_one(image, seed)  # a new seed draws its masks
        return out


def load(path: str | os.PathLike | bytes, threads: int | None = None, backend: str = "auto") -> Model:
    """Load a model made by ``tfuq convert``. See :class:`Model`."""
    return Model(path, threads=threads, backend=backend)
