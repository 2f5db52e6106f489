"""The Keras functional graph as tfuq reads and rebuilds it: the image input, the MCDropout
layers, the output layer, and ``rebuild`` (a graph again with some operations replaced).

Shared by :mod:`tfuq.modeling.byo`, :mod:`tfuq.modeling.attach` and
:mod:`tfuq.conversion.rewrite`.
"""

from __future__ import annotations

import keras

from tfuq.modeling.layers import MCDropout

IMAGE_INPUT = "image"
OUTPUT_NAME = "probabilities"


class ExportError(ValueError):
    """The Keras model cannot be rewritten for tfuq."""


def as_functional(model) -> keras.Model:
    if isinstance(model, keras.Sequential):
        if not model.built or getattr(model, "_functional", None) is None:
            raise ExportError("the Sequential model is not built; give it an Input first")
        return model._functional
    if not isinstance(model, keras.Model) or not hasattr(model, "_run_through_graph"):
        raise ExportError(
            f"{type(model).__name__} is a subclassed model that tfuq cannot trace; "
            "build it with the functional API (keras.Model(inputs, outputs))"
        )
    return model


def trace(model, inputs, call):
    """Run ``model``'s graph on ``inputs`` with ``call(operation, *args, **kwargs)`` per operation.

    A nested model (a backbone used as a layer, a Sequential head) that holds an MCDropout is
    inlined, so ``call`` sees that MCDropout too; any other nested model runs as one layer.
    """
    functional = as_functional(model)

    def step(operation, *args, **kwargs):
        if isinstance(operation, keras.Model) and mc_dropout_layers(operation):
            return trace(operation, args[0], call)
        return call(operation, *args, **kwargs)

    return functional._run_through_graph(inputs, call_fn=step)


def mc_dropout_layers(model) -> list[MCDropout]:
    """The MCDropout layers of ``model``, nested models included, in graph order."""
    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, MCDropout):
            found.append(layer)
    return found


def check_classifier(model) -> keras.Model:
    functional = as_functional(model)
    if len(functional.inputs) != 1:
        raise ExportError(f"the model must take one image input, it takes {len(functional.inputs)}")
    shape = tuple(functional.inputs[0].shape[1:])
    if len(shape) != 3 or shape[-1] != 3 or None in shape:
        raise ExportError(f"the model input must be a fixed-size RGB image (H, W, 3), got {shape}")
    if len(functional.outputs) != 1:
        raise ExportError(f"the model must have one output, it has {len(functional.outputs)}")
    layers = mc_dropout_layers(functional)
    if not layers:
        raise ExportError("the model has no tfuq.MCDropout layer; add one to the head")
    for layer in layers:
        if not 0.0 < layer.rate < 1.0:
            raise ExportError(f"MCDropout {layer.name!r} has rate {layer.rate}, outside (0, 1)")
    return functional


def image_shape(model) -> tuple[int, int, int]:
    """(height, width, channels) of the model's image input."""
    return tuple(int(d) for d in check_classifier(model).inputs[0].shape[1:])


def output_layer(functional):
    """The layer that makes the model output, looking inside nested models."""
    operation = functional.outputs[0]._keras_history.operation
    while isinstance(operation, keras.Model):
        inner = as_functional(operation)
        operation = inner.outputs[0]._keras_history.operation
    return operation


def activation_name(layer) -> str | None:
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None)


def image_size(model, input_size: tuple[int, int] | None = None) -> tuple[int, int]:
    """(height, width) a one-image, one-output classifier takes; ``input_size`` for a dynamic one.

    Raises ExportError, in one line that says what to change, for anything else.
    """
    functional = as_functional(model)
    if len(functional.inputs) != 1:
        names = ", ".join(t.name for t in functional.inputs)
        raise ExportError(
            f"the model takes {len(functional.inputs)} inputs ({names}); tfuq feeds one RGB image: "
            "export a model with the image input only"
        )
    if len(functional.outputs) != 1:
        raise ExportError(
            f"the model has {len(functional.outputs)} outputs; tfuq needs one class-probability "
            "output: export a model with that output only"
        )
    shape = tuple(functional.inputs[0].shape[1:])
    if len(shape) != 3 or shape[-1] != 3:
        raise ExportError(f"the model input must be an RGB image (H, W, 3) in channels-last order, got {shape}")
    if None in shape[:2]:
        if input_size is None:
            raise ExportError(
                f"the model input size is not fixed {shape}: give the size it was trained at, e.g. --input-size 224"
            )
        height, width = (int(v) for v in input_size)
    else:
        height, width = int(shape[0]), int(shape[1])
        if input_size is not None and tuple(int(v) for v in input_size) != (height, width):
            raise ExportError(f"the model input is fixed at {height}x{width}; drop --input-size")
    if height < 1 or width < 1:
        raise ExportError(f"--input-size must be positive, got {height}x{width}")
    return height, width


def rebuild(functional, inputs, replace, inline: set[int], skipped: list[str], size=None):
    """Run ``functional``'s graph on ``inputs`` for inference, swapping layers on the way.

    ``replace(operation, tensor)`` returns the new output for an operation it swaps, else
    None. Nested models that hold a layer whose id is in ``inline`` are inlined so their
    layers can be swapped; data augmentation layers are left out (their names go to
    ``skipped``); every other layer is called with ``training=False``.
    """

    def call(operation, *args, **kwargs):
        swapped = replace(operation, args[0])
        if swapped is not None:
            return swapped
        if isinstance(operation, keras.Model) and any(
            id(layer) in inline for layer in operation._flatten_layers(include_self=False, recursive=True)
        ):
            return as_functional(operation)._run_through_graph(args[0], call_fn=call)
        if type(operation).__name__ in AUGMENTATION_LAYERS:
            skipped.append(operation.name)
            return args[0]
        if isinstance(operation, keras.layers.Layer) and "training" not in kwargs:
            # Keras 3.15's image preprocessing layers default to training=True when called
            # without it; the deployed graph is inference.
            kwargs["training"] = False
        return operation(*args, **kwargs)

    try:
        return functional._run_through_graph(inputs, call_fn=call)
    except ValueError as error:
        where = f" at {size[0]}x{size[1]}" if size else ""
        raise ExportError(f"cannot run the model graph{where}: {str(error).splitlines()[0]}") from error


def mask_shape(layer: MCDropout, features: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(mask input shape of one pass, shape it multiplies as) for an MCDropout on ``features``.

    Without a noise shape the mask covers every feature. With one (spatial dropout), only the
    dimensions that are not shared get mask values: one per channel for SpatialDropout2D.
    """
    if layer.noise_shape is None:
        return features, features
    noise = tuple(f if n is None else int(n) for n, f in zip(layer.noise_shape[1:], features, strict=True))
    kept = tuple(d for d in noise if d != 1) or (1,)
    return kept, noise


AUGMENTATION_LAYERS = {
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
    "RandomBrightness", "RandomSaturation", "RandomHue", "RandomSharpness", "RandomShear",
    "RandomGrayscale", "RandomColorJitter", "RandomErasing", "RandomGaussianBlur",
    "RandomInvert", "RandomPosterization", "RandomPerspective", "RandomElasticTransform",
    "Solarization", "RandAugment", "AugMix", "MixUp", "CutMix",
}


_CONVOLUTIONS = (
    keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D, keras.layers.Conv2DTranspose,
)


def per_pass_convolutions(model) -> list[str]:
    """Names of the convolution layers that the masked graph runs once per pass (not once)."""
    functional = check_classifier(model)
    image = keras.Input(shape=image_shape(model), batch_size=1)
    found = []

    def call(operation, *args, **kwargs):
        if isinstance(operation, MCDropout):
            features = tuple(int(d) for d in args[0].shape[1:])
            _, broadcast = mask_shape(operation, features)
            return keras.ops.multiply(args[0], keras.ops.ones((2, *broadcast)))
        outputs = operation(*args, **kwargs)
        if isinstance(operation, _CONVOLUTIONS) and outputs.shape[0] == 2:
            found.append(operation.name)
        return outputs

    trace(functional, image, call)
    return found
