"""Keras model with MCDropout -> one full-integer TFLite file that carries its configuration.

    >>> result = tfuq.convert(model, images, passes=30)          # doctest: +SKIP
    >>> result.save("model.tflite")                              # doctest: +SKIP

Needs TensorFlow (the ``convert`` extra). The steps:

1. ``tfuq.conversion.rewrite`` brings the model into tfuq's form (Keras dropout layers as MC
   dropout, preprocessing stated outside the graph folded in, a softmax added to logits; see
   :func:`tfuq.modeling.byo.prepare`), then rewrites it (masked: masks as inputs, trunk once;
   or in-graph).
2. The TFLite converter quantizes it to int8 with a representative dataset: images brought
   to the model input by the photo rule (``tfuq.runtime.photo``, carried in the file as
   ``input.photo_rule``), and for the masked form, masks drawn with the runtime's generator.
   Input is uint8 RGB pixels, output int8 probabilities.
3. The flatbuffer is read back and every tensor checked to be integer (masked form).
4. A self-check runs Keras and TFLite on held-out images and compares their decisions (the
   MC-mean top-1; near-ties allowed for 200+ classes; accuracy too when labels are given).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfuq.conversion import rewrite
from tfuq.data.common import DataError, check_images
from tfuq.data.datasets import load_npz, resize
from tfuq.modeling import byo, graph
from tfuq.quiet import held_output as _quiet_converter  # Keras export listings, C++ logs
from tfuq.quiet import import_tensorflow as _tf
from tfuq.runtime import abstain, masks, modelfile, photo
from tfuq.runtime.config import (
    BiasCorrectionRecord,
    ConfigError,
    DecisionRule,
    InputSpec,
    MaskSpec,
    ModelConfig,
    OutputSpec,
    PhotoRuleSpec,
    ScoreSpec,
    SeedScheme,
    Source,
)
from tfuq.runtime.tflite_graph import GraphSummary, summarize

MODES = ("masked", "in-graph", "deterministic")
DEFAULT_SCORES = ("energy",)  # what masked conversions carry unless told otherwise
DEFAULT_DECISION = abstain.DEFAULT_RULE  # interval (Z = 1) and max_probability >= 0.5


class ConversionError(ValueError):
    """Conversion input the user can fix (bad model file, bad data, bad options)."""


def load_keras_model(path: str | os.PathLike):
    """Load a ``.keras`` or ``.h5`` file; MCDropout is registered, so no custom_objects are needed."""
    import keras

    import tfuq.modeling.layers  # noqa: F401  (registers MCDropout)

    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"model file not found: {path}")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a bad file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConversionError(f"cannot load {path} as a Keras model: {reason}") from error


def _collect(representative, limit: int) -> np.ndarray:
    if isinstance(representative, str | os.PathLike):
        images = load_npz(representative)[0]
    elif isinstance(representative, np.ndarray):
        images = representative
    elif isinstance(representative, Iterable):
        gathered = []
        for item in representative:
            gathered.append(np.asarray(item))
            if sum(len(g) if g.ndim == 4 else 1 for g in gathered) >= limit:
                break
        if not gathered:
            raise DataError("representative images hold zero samples")
        images = np.concatenate([g if g.ndim == 4 else g[None] for g in gathered])
    else:
        raise ConversionError(f"representative data must be a path, an array or an iterable, got {type(representative).__name__}")
    return check_images(images, "representative images")


# -- the conversion ----------------------------------------------------------------------------
@dataclass
class SelfCheck:
    """Keras vs TFLite on held-out images: does int8 keep the model's decisions?

    The gate is on the decision tfuq makes, the MC-mean top-1, not on single passes: on
    ambiguous images of a many-class model single-pass argmaxes flip between near-equal
    classes although the int8 model is as accurate as the float one (ImageNet Lite0: 80.5%
    single-pass agreement, equal top-1 accuracy). See :func:`agreement_report`.
    """

    images: int
    agreement: float  # gated: MC-mean top-1 of TFLite among Keras' MC-mean top-k (k = tie_k)
    mean_abs_diff: float  # mean |p_keras - p_tflite| over passes, images and classes
    min_agreement: float
    held_out: bool  # False when every image went to calibration and the check reused them
    tie_k: int = 1  # k above: clamp(classes // 100, 1, 5); 1 (exact top-1) below 200 classes
    mean_top1_agreement: float = float("nan")  # MC-mean top-1 identical
    pass_agreement: float = float("nan")  # per (pass, image) top-1 identical (same masks)
    top5_overlap: float = float("nan")  # |top-5 Keras & top-5 TFLite| / 5 of the MC means
    keras_accuracy: float | None = None  # MC-mean top-1 accuracy, when labels were given
    tflite_accuracy: float | None = None
    max_accuracy_drop: float = 0.05

    @property
    def passed(self) -> bool:
        if self.agreement < self.min_agreement:
            return False
        if self.keras_accuracy is not None and self.tflite_accuracy is not None:
            return self.tflite_accuracy >= self.keras_accuracy - self.max_accuracy_drop
        return True


@dataclass
class Conversion:
    """The result of :func:`convert`: the model file's bytes and what was checked."""

    flatbuffer: bytes
    config: ModelConfig
    summary: GraphSummary
    check: SelfCheck | None = None
    notes: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return modelfile.pack(self.flatbuffer, self.config)

    def save(self, path: str | os.PathLike) -> None:
        modelfile.write(path, self.flatbuffer, self.config)


def _progress(iterable, total: int, description: str, stream):
    if stream is None:
        return iterable
    from tfuq._progress import bar

    return bar(total, description, "img", stream, iterable=iterable)


def convert(
    model,
    representative,
    *,
    passes: int = 30,
    mode: str = "masked",
    calibration_samples: int = 200,
    check_samples: int = 50,
    min_agreement: float = 0.9,
    labels: list[str] | None = None,
    decision: dict | None = None,
    progress: bool = False,
    representative_labels: np.ndarray | None = None,
    max_accuracy_drop: float = 0.05,
    mc_dropout: str = "auto",
    mc_layers: list[str] | None = None,
    preprocessing: byo.Preprocessing | None = None,
    input_size: tuple[int, int] | None = None,
    add_softmax: bool = False,
    bias_correction: int = 0,
    scores: Sequence[str] | None = None,
) -> Conversion:
    """Convert a Keras model with MCDropout layers to a full-integer tfuq model.

    Args:
        model: a functional Keras model (or Sequential, nested models inside are fine) with
            one RGB input and one classifier output, with MCDropout or Keras dropout layers.
        representative: uint8 NHWC images: an array, an ``.npz`` path (array ``x``) or an
            iterable of images or batches. Brought to the model input by the photo rule
            (centre crop, bilinear) when their size differs.
        passes: MC passes T that one invoke returns.
        mode: ``masked`` (masks as inputs, one invoke), ``in-graph`` (RANDOM_UNIFORM,
            one invoke per pass) or ``deterministic`` (MCDropout off: one pass, the baseline).
        calibration_samples: images used to calibrate the int8 ranges.
        check_samples: held-out images for the Keras-vs-TFLite self-check (0 skips it).
        min_agreement: the self-check passes when the MC-mean top-1 agreement (near-ties
            allowed for 200+ classes, see :func:`agreement_report`) is at least this.
        labels: class names carried in the file (default ``class_0`` ...).
        decision: the default abstention rule carried in the file.
        progress: show progress bars on stderr.
        representative_labels: true classes of the representative images (an array
            representative only); the self-check then also compares accuracy.
        max_accuracy_drop: with labels, the self-check fails when TFLite's MC-mean
            accuracy on the held-out images is more than this below Keras'.
        mc_dropout, mc_layers, preprocessing, input_size, add_softmax: how the model is
            brought into tfuq's form; see :func:`tfuq.modeling.byo.prepare`.
        bias_correction: correct every layer's int8 bias for the mean error against float on
            this many of the calibration images (0: off); see :mod:`tfuq.conversion.bias_correction`.
            Not for ``in-graph`` mode.
        scores: out-of-distribution scores the graph returns beside the probabilities (names
            of :data:`tfuq.conversion.rewrite.SCORES`); None: ``("energy",)`` in masked mode,
            none in the others; ``()``: none. Carried in ``tfuq.json`` as ``scores``; a rule's
            ``ood`` part (``tfuq calibrate``) reads them.
    """
    tf = _tf()
    if mode not in MODES:
        raise ConversionError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if passes < 1:
        raise ConversionError(f"passes must be at least 1, got {passes}")
    if mode == "deterministic":
        passes = 1
    if calibration_samples < 1:
        raise ConversionError(f"calibration samples must be at least 1, got {calibration_samples}")
    if isinstance(bias_correction, bool) or not isinstance(bias_correction, int) or bias_correction < 0:
        raise ConversionError(f"bias correction images must be 0 or more, got {bias_correction!r}")
    if bias_correction and mode == "in-graph":
        raise ConversionError("bias correction needs a full-integer model: use mode masked or deterministic")
    try:
        prepared = byo.prepare(
            model, mc_dropout=mc_dropout, mc_layers=mc_layers, preprocessing=preprocessing,
            input_size=input_size, add_softmax=add_softmax,
        )
        model = prepared.model
        height, width, _ = graph.image_shape(model)
        masked, specs = rewrite.build_masked(model, passes)
        if scores is None:
            scores = DEFAULT_SCORES if mode == "masked" else ()
        scores = tuple(scores)
        if scores and mode != "masked":
            raise ConversionError(f"out-of-distribution scores need masked mode, not {mode}")
        scored = rewrite.build_masked(model, passes, scores)[0] if scores else masked
    except graph.ExportError as error:
        raise ConversionError(str(error)) from error
    images = resize(_collect(representative, calibration_samples + check_samples), (height, width))
    if representative_labels is not None:
        representative_labels = np.asarray(representative_labels)
        if representative_labels.shape != (len(images),):
            raise ConversionError(
                f"{representative_labels.shape[0] if representative_labels.ndim else 0} labels "
                f"for {len(images)} representative images"
            )
    try:
        byo.check_output(prepared, images)
    except graph.ExportError as error:
        raise ConversionError(str(error)) from error
    # Held-out images for the self-check come first, so calibration never starves the check.
    order = np.random.default_rng(0).permutation(len(images))
    checked = min(check_samples, len(images) // 4)
    held_out = images[order[:checked]]
    held_out_labels = None if representative_labels is None else representative_labels[order[:checked]]
    calibration = images[order[checked:][:calibration_samples]].copy()
    notes = []
    if check_samples and checked == 0:
        held_out = calibration[:check_samples]
        held_out_labels = None  # accuracy on calibration images proves nothing
        notes.append("too few images to hold some out: the self-check reuses calibration images")
    held_out_ok = not notes
    # One pixel at each end of the range fixes the uint8 input scale at exactly 1, so the
    # model takes raw pixels; two pixels of one image barely move any other range.
    calibration[0, 0, 0] = 0
    calibration[0, 0, -1] = 255

    classes = int(masked.output.shape[-1])
    if held_out_labels is not None and len(held_out_labels) and (
        held_out_labels.min() < 0 or held_out_labels.max() >= classes
    ):
        notes.append(f"the images' labels y are not classes 0..{classes - 1} of this model: the self-check ignores them")
        held_out_labels = None
    if labels is None:
        labels = [f"class_{i}" for i in range(classes)]
    if len(labels) != classes:
        raise ConversionError(f"{len(labels)} labels given for a model with {classes} classes")
    mask_layers = [(spec.shape[1:], spec.rate) for spec in specs]

    def feed_of(index: int) -> dict[str, np.ndarray]:
        feed = {graph.IMAGE_INPUT: calibration[index : index + 1].astype(np.float32)}
        if mode == "masked":
            drawn = masks.masks_for(index, passes, mask_layers)
            feed.update({s.input: m.astype(np.float32) for s, m in zip(specs, drawn, strict=True)})
        return feed

    def calibration_feed():
        bar = _progress(range(len(calibration)), len(calibration), "calibrating", progress_stream)
        for index in bar:
            yield feed_of(index)

    keras_graph = {
        "masked": lambda: scored,
        "in-graph": lambda: rewrite.build_in_graph(model),
        "deterministic": lambda: rewrite.build_deterministic(model),
    }[mode]()
    with _quiet_converter() as stream:
        progress_stream = stream if progress else None
        flatbuffer = _run_converter(tf, keras_graph, calibration_feed, mode)
    summary = summarize(flatbuffer)
    if mode != "in-graph" and not summary.full_integer:
        raise ConversionError("converted model is not full-integer: " + "; ".join(summary.problems))
    corrected = None
    if bias_correction:
        from tfuq.conversion import bias_correction as bias

        count = min(bias_correction, len(calibration))
        try:
            with _quiet_converter() as stream:
                float_flatbuffer = _float_flatbuffer(tf, keras_graph)
                say = (lambda line: print(line, file=stream, flush=True)) if progress else None
                corrected = bias.correct(flatbuffer, float_flatbuffer, [feed_of(i) for i in range(count)], say=say)
        except bias.BiasCorrectionError as error:
            raise ConversionError(str(error)) from error
        flatbuffer = corrected.flatbuffer

    output_name = _output_name(flatbuffer)
    masked_form = mode == "masked"
    config = ModelConfig(
        mode=mode,
        passes=passes,
        labels=tuple(labels),
        input=InputSpec(
            name=graph.IMAGE_INPUT, height=height, width=width, channels=3, pixel_format="RGB",
            dtype="uint8",
            preprocessing="inside the model: feed raw pixels 0-255"
            if prepared.preprocessing is None
            else f"folded into the model ({prepared.preprocessing.description}): feed raw pixels 0-255",
            photo_rule=PhotoRuleSpec(photo.RULE.name, photo.RULE.version),
        ),
        output=OutputSpec(name=output_name, kind="probabilities", layout="(passes, classes)"),
        scores=tuple(
            ScoreSpec(name=name, output=rewrite.SCORE_PREFIX + name, layout="(1, 1)",
                      larger_means="more like the training data", definition=rewrite.SCORES[name])
            for name in scores) or None,
        mc_dropout=tuple(
            MaskSpec(layer=s.layer, rate=s.rate, input=s.input if masked_form else None,
                     shape=tuple(s.shape) if masked_form else None)
            for s in specs
        ),
        seed_scheme=SeedScheme(
            name=masks.SCHEME, version=masks.SCHEME_VERSION, keep_bits=masks.KEEP_BITS,
            mask_values="0 or 1; the model scales kept units by 1/(1-rate)",
        ),
        decision=DecisionRule.from_dict(decision or DEFAULT_DECISION),
        source=Source(
            keras_model=model.name,
            tensorflow=tf.__version__,
            created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            calibration_samples=len(calibration),
            bias_correction=None if corrected is None else BiasCorrectionRecord(
                images=corrected.images, layers=corrected.layers, skipped=corrected.skipped),
        ),
    )
    try:
        config = config.checked()
    except ConfigError as error:
        raise ConversionError(f"the model's configuration: {error}") from None
    result = Conversion(flatbuffer, config, summary, notes=notes)
    if check_samples:
        result.check = self_check(
            model, masked, result.to_bytes(), held_out, min_agreement, held_out_ok=held_out_ok,
            labels=held_out_labels, max_accuracy_drop=max_accuracy_drop,
        )
    result.notes[:0] = prepared.notes
    if corrected is not None:
        result.notes.append(corrected.describe())
    return result


def _run_converter(tf, keras_graph, calibration_feed, mode: str) -> bytes:
    """Full-integer post-training quantization: uint8 pixels in, int8 probabilities out."""
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_graph)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration_feed
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.int8
    if mode != "in-graph":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    else:  # RANDOM_UNIFORM has no int8 kernel: it stays a float island
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
    return converter.convert()



def _float_flatbuffer(tf, keras_graph) -> bytes:
    """The graph converted without quantization: its tensors carry the names of the int8 ones."""
    return tf.lite.TFLiteConverter.from_keras_model(keras_graph).convert()


def float_twin(model, passes: int = 30) -> bytes:
    """The float TFLite twin of ``convert(model, passes=passes)`` (masked mode, the model in
    tfuq's form as :func:`tfuq.modeling.byo.prepare` brings it by default): the reference
    that bias correction and ``benchmarks/int8_layers.py`` compare the int8 tensors with."""
    tf = _tf()
    try:
        masked, _ = rewrite.build_masked(byo.prepare(model).model, passes)
    except graph.ExportError as error:
        raise ConversionError(str(error)) from error
    with _quiet_converter():
        return _float_flatbuffer(tf, masked)


def _output_name(flatbuffer: bytes) -> str:
    """The name of the probabilities output: the only output, or the one named so beside the
    score outputs."""
    from tfuq.runtime import interpreter_class

    _, interpreter = interpreter_class()
    runner = interpreter(model_content=flatbuffer).get_signature_runner()
    names = list(runner.get_output_details())
    return names[0] if len(names) == 1 else "probabilities"


def tie_k(classes: int) -> int:
    """How many of Keras' top classes count as agreeing: 1 below 200 classes, up to 5 at 500+."""
    return int(min(5, max(1, classes // 100)))


def agreement_report(
    keras_probs: np.ndarray, tflite_probs: np.ndarray, labels: np.ndarray | None = None
) -> dict:
    """Compare Keras and TFLite MC outputs of the same images (same masks where possible).

    Args:
        keras_probs, tflite_probs: ``(images, passes, classes)`` probabilities (one row per
            held-out image, its MC passes, the classes).
        labels: optional true classes ``(images,)``.

    Returns:
        ``agreement`` (gated): share of images whose TFLite MC-mean top-1 is among Keras'
        MC-mean top-``tie_k`` classes, ``tie_k = clamp(classes // 100, 1, 5)``: the exact
        MC-mean top-1 for up to 199 classes, near-ties allowed for many-class models;
        ``mean_top1_agreement`` (exact MC-mean top-1), ``pass_agreement`` (every
        (pass, image) pair), ``top5_overlap`` (shared top-5 classes of the MC means / 5),
        ``mean_abs_diff``, and with labels ``keras_accuracy`` and ``tflite_accuracy`` of the
        MC-mean top-1.

    Example:
        >>> k = np.array([[[0.6, 0.3, 0.1]], [[0.2, 0.7, 0.1]]])   # 2 images, 1 pass
        >>> t = np.array([[[0.5, 0.4, 0.1]], [[0.6, 0.3, 0.1]]])
        >>> agreement_report(k, t)["agreement"]
        0.5
    """
    classes = keras_probs.shape[-1]
    k = tie_k(classes)
    keras_mean, tflite_mean = keras_probs.mean(1), tflite_probs.mean(1)
    keras_top1, tflite_top1 = keras_mean.argmax(-1), tflite_mean.argmax(-1)
    keras_topk = np.argsort(-keras_mean, axis=-1, kind="stable")[:, :k]
    within = (keras_topk == tflite_top1[:, None]).any(-1) | (keras_top1 == tflite_top1)
    top = min(5, classes)
    keras_top5 = np.argsort(-keras_mean, axis=-1, kind="stable")[:, :top]
    tflite_top5 = np.argsort(-tflite_mean, axis=-1, kind="stable")[:, :top]
    overlap = [len(set(a) & set(b)) / top for a, b in zip(keras_top5, tflite_top5, strict=True)]
    report = {
        "agreement": float(np.mean(within)),
        "tie_k": k,
        "mean_top1_agreement": float(np.mean(keras_top1 == tflite_top1)),
        "pass_agreement": float(np.mean(keras_probs.argmax(-1) == tflite_probs.argmax(-1))),
        "top5_overlap": float(np.mean(overlap)),
        "mean_abs_diff": float(np.mean(np.abs(keras_probs - tflite_probs))),
        "keras_accuracy": None,
        "tflite_accuracy": None,
    }
    if labels is not None:
        labels = np.asarray(labels)
        report["keras_accuracy"] = float(np.mean(keras_top1 == labels))
        report["tflite_accuracy"] = float(np.mean(tflite_top1 == labels))
    return report


def self_check(
    model,
    masked,
    model_bytes: bytes,
    images: np.ndarray,
    min_agreement: float,
    held_out_ok=True,
    labels: np.ndarray | None = None,
    max_accuracy_drop: float = 0.05,
) -> SelfCheck:
    """Compare Keras and the converted model on ``images`` (see :func:`agreement_report`).

    Masked form: the same masks go to both, so the passes are comparable one by one;
    deterministic form: the single pass; in-graph form: masks cannot be shared, so only the
    MC means are comparable (``pass_agreement`` then compares independent draws).
    The check passes when ``agreement >= min_agreement`` and, when ``labels`` are given,
    the TFLite accuracy is at most ``max_accuracy_drop`` below Keras'.
    """
    from tfuq.runtime import Model

    tflite = Model(model_bytes)
    deterministic = rewrite.build_deterministic(model) if tflite.mode == "deterministic" else None
    keras_probs, tflite_probs = [], []
    for index, image in enumerate(images):
        tflite_probs.append(tflite.run(image, seed=index)[:, 0])
        if tflite.mode == "masked":
            feeds = tflite.masks(index)
            inputs = [image[None].astype(np.float32)] + [
                feeds[spec.input].astype(np.float32) for spec in tflite.mask_specs
            ]
            keras_probs.append(np.asarray(masked(inputs, training=False)))
        elif tflite.mode == "deterministic":
            keras_probs.append(np.asarray(deterministic(image[None].astype(np.float32))))
        else:
            batch = np.repeat(image[None].astype(np.float32), tflite.passes, axis=0)
            keras_probs.append(np.asarray(model(batch, training=False)))
    keras_probs, tflite_probs = np.stack(keras_probs), np.stack(tflite_probs)
    if not np.allclose(keras_probs.sum(-1), 1.0, atol=1e-3):
        raise ConversionError("the model output is not a softmax; end the model with one")
    report = agreement_report(keras_probs, tflite_probs, labels)
    return SelfCheck(
        len(images),
        report["agreement"],
        report["mean_abs_diff"],
        min_agreement,
        held_out_ok,
        tie_k=report["tie_k"],
        mean_top1_agreement=report["mean_top1_agreement"],
        pass_agreement=report["pass_agreement"],
        top5_overlap=report["top5_overlap"],
        keras_accuracy=report["keras_accuracy"],
        tflite_accuracy=report["tflite_accuracy"],
        max_accuracy_drop=max_accuracy_drop,
    )
