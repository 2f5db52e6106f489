"""Empirical bias correction of a full-integer model: remove the mean int8 error per channel.

    >>> fixed = correct(int8_bytes, float_bytes, feeds)          # doctest: +SKIP
    >>> fixed.layers, fixed.skipped                               # doctest: +SKIP

Rounding weights and activations to int8 shifts a layer's outputs, and the shift has a mean
per output channel that does not average out: noise rectified by a ReLU, weights rounded the
same way for every input. Through a deep network those shifts add up. Bias correction
(Nagel et al. 2019, *Data-Free Quantization Through Weight Equalization and Bias
Correction*, section 4.2, the empirical variant; Finkelstein et al. 2019, *Fighting
Quantization Bias With Bias*) measures, for every convolution and fully connected layer with a
bias, the mean over images and positions of ``int8 output - float output`` per channel and
subtracts it from the layer's int32 bias. Layers are corrected in execution order, each
measured with the layers before it already corrected, so a correction also absorbs what the
noise upstream does to that layer.

The float reference is the same Keras graph converted without quantization: the converter
names tensors after the graph's nodes, so a layer's output tensor has the same name in both
files. Layers without a float twin, with a bias buffer shared with another tensor, or with a
fused activation other than none, ReLU and ReLU6 are left alone and counted. With a fused ReLU
or ReLU6 the int8 output is clipped; only positions where the float output is inside the
linear range (above 0, below 6) enter the mean.

Measured on EfficientNet-Lite0 fine-tuned on CIFAR-100 at 224 (benchmarks/README.md,
``benchmarks/int8_layers.py``): with 32 images, MC-mean top-1 agreement with float on 1,000
test images rose from 85.6% to 94.5% and int8 accuracy from 0.9 points below float to equal. Needs the flatbuffer tools of TensorFlow (the build side).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CORRECTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
# TFLite's ActivationFunctionType: the linear range of each activation we can correct under.
LINEAR_RANGE = {0: (-np.inf, np.inf), 1: (0.0, np.inf), 3: (0.0, 6.0)}  # NONE, RELU, RELU6
MIN_POSITIONS = 16  # a channel with fewer unclipped positions keeps its bias


class BiasCorrectionError(ValueError):
    """The two models do not fit together (no shared layer, inputs that differ)."""


@dataclass
class BiasCorrection:
    """The corrected model and what was done."""

    flatbuffer: bytes
    layers: int  # layers whose bias was corrected
    skipped: int  # candidate layers left alone (no float twin, shared bias, other activation)
    images: int
    shifts: dict[str, float]  # per corrected layer: mean |correction| in output units

    def describe(self) -> str:
        return (f"bias correction on {self.images} calibration images: {self.layers} layers corrected"
                + (f", {self.skipped} left alone" if self.skipped else ""))


@dataclass(frozen=True)
class _Target:
    operator: int  # index into the subgraph's operators
    tensor: str  # output tensor name, shared with the float model
    linear: tuple[float, float]


def tensor_interpreter(flatbuffer: bytes):
    """An interpreter for ``flatbuffer`` that keeps every intermediate tensor readable."""
    from tfuq.runtime import interpreter_class

    _, interpreter = interpreter_class()
    made = interpreter(model_content=bytes(flatbuffer), experimental_preserve_all_tensors=True)
    made.allocate_tensors()
    return made


def run_tensors(interpreter, feed: Mapping[str, np.ndarray], names: Sequence[str]) -> list[np.ndarray]:
    """Invoke with ``feed`` (float values by signature input name, quantized here when the
    model wants integers) and return the named tensors, dequantized."""
    runner = interpreter.get_signature_runner()
    details = runner.get_input_details()
    if set(details) != set(feed):
        raise BiasCorrectionError(f"inputs {sorted(feed)} do not match the model's {sorted(details)}")
    inputs = {}
    for name, detail in details.items():
        scale, zero = detail["quantization"]
        value = np.asarray(feed[name], np.float64)
        wanted = tuple(int(n) for n in detail["shape"])
        if value.shape != wanted:  # the runner would resize the model to fit
            raise BiasCorrectionError(f"input {name} is {value.shape}, the model takes {wanted}")
        if np.issubdtype(detail["dtype"], np.integer) and scale:
            info = np.iinfo(detail["dtype"])
            value = np.clip(np.round(value / scale) + zero, info.min, info.max)
        inputs[name] = value.astype(detail["dtype"])
    runner(**inputs)
    by_name = {t["name"]: t for t in interpreter.get_tensor_details()}
    out = []
    for name in names:
        detail = by_name[name]
        value = interpreter.get_tensor(detail["index"]).astype(np.float64)
        scale, zero = detail["quantization"]
        out.append((value - zero) * scale if scale else value)
    return out


def _targets(model, float_names: set[str]) -> tuple[list[_Target], int]:
    from tensorflow.lite.tools import flatbuffer_utils

    graph = model.subgraphs[0]
    uses = Counter(tensor.buffer for tensor in graph.tensors)
    found, skipped = [], 0
    for index, op in enumerate(graph.operators):
        if flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) not in CORRECTED_OPS:
            continue
        if len(op.inputs) < 3 or op.inputs[2] < 0:
            continue  # no bias
        bias = graph.tensors[op.inputs[2]]
        name = graph.tensors[op.outputs[0]].name.decode()
        activation = getattr(op.builtinOptions, "fusedActivationFunction", 0)
        usable = (
            name in float_names
            and activation in LINEAR_RANGE
            and uses[bias.buffer] == 1
            and model.buffers[bias.buffer].data is not None
            and bias.quantization is not None
            and bias.quantization.scale is not None
        )
        if usable:
            found.append(_Target(index, name, LINEAR_RANGE[activation]))
        else:
            skipped += 1
    return found, skipped


def correct(
    quantized: bytes,
    float_model: bytes,
    feeds: Sequence[Mapping[str, np.ndarray]],
    *,
    say: Callable[[str], None] | None = None,
) -> BiasCorrection:
    """Correct the int32 biases of ``quantized`` against ``float_model`` on ``feeds``.

    Args:
        quantized: the full-integer flatbuffer (without tfuq's appended configuration).
        float_model: the same graph converted without quantization.
        feeds: model inputs, one invoke each: float values by signature input name (pixels
            0-255, masks 0/1); quantized here for the int8 model.
        say: progress lines (one per tenth of the layers).

    Returns:
        A :class:`BiasCorrection` whose ``flatbuffer`` differs from ``quantized`` only in the
        corrected int32 bias values (re-serialized, so byte offsets may move).
    """
    from tensorflow.lite.tools import flatbuffer_utils

    if not feeds:
        raise BiasCorrectionError("bias correction needs at least one image")
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(quantized))
    reference = tensor_interpreter(float_model)
    float_names = {t["name"] for t in reference.get_tensor_details()}
    targets, skipped = _targets(model, float_names)
    if not targets:
        raise BiasCorrectionError("no layer of the int8 model has a float twin to correct against")
    names = [t.tensor for t in targets]
    wanted = [run_tensors(reference, feed, names) for feed in feeds]
    graph = model.subgraphs[0]
    shifts: dict[str, float] = {}
    step = max(1, len(targets) // 10)
    for k, target in enumerate(targets):
        current = tensor_interpreter(flatbuffer_utils.convert_object_to_bytearray(model))
        total, count = 0.0, 0
        for feed, floats in zip(feeds, wanted, strict=True):
            (got,) = run_tensors(current, feed, [target.tensor])
            want = floats[k]
            low, high = target.linear
            inside = (want > low) & (want < high)
            channels = want.shape[-1]
            total = total + np.where(inside, got - want, 0.0).reshape(-1, channels).sum(axis=0)
            count = count + inside.reshape(-1, channels).sum(axis=0)
        mean_error = np.where(count >= MIN_POSITIONS, total / np.maximum(count, 1), 0.0)
        op = graph.operators[target.operator]
        bias_tensor = graph.tensors[op.inputs[2]]
        scale = np.asarray(bias_tensor.quantization.scale, np.float64)
        buffer = model.buffers[bias_tensor.buffer]
        bias = np.frombuffer(bytes(bytearray(buffer.data)), dtype=np.int32).astype(np.int64)
        moved = np.round(mean_error / scale).astype(np.int64)
        info = np.iinfo(np.int32)
        buffer.data = np.clip(bias - moved, info.min, info.max).astype("<i4").view(np.uint8)
        shifts[target.tensor] = float(np.mean(np.abs(moved * scale)))
        if say and ((k + 1) % step == 0 or k + 1 == len(targets)):
            say(f"bias correction: {k + 1}/{len(targets)} layers")
    return BiasCorrection(
        flatbuffer=bytes(flatbuffer_utils.convert_object_to_bytearray(model)),
        layers=len(targets),
        skipped=skipped,
        images=len(feeds),
        shifts=shifts,
    )
