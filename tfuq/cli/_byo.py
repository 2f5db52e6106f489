"""Options shared by `tfuq convert` and `tfuq attach` for models people already have: what
the model expects of its input, and its image size when it is not fixed."""

from __future__ import annotations

from tfuq.cli._common import CliError


def add_input_arguments(parser) -> None:
    """``--input-range``, ``--mean``, ``--std``, ``--input-size``."""
    parser.add_argument(
        "--input-range", metavar="RANGE",
        help="what the model expects when its preprocessing is outside the graph: 0,1, -1,1 "
        "(write --input-range=-1,1, or tf), LOW,HIGH, caffe (BGR, minus the ImageNet mean) or "
        "imagenet ([0,1], ImageNet mean/std; or torch), as keras.applications' preprocess_input "
        "modes; folded into the model, which still takes raw pixels (default: raw pixels 0-255)",
    )
    parser.add_argument("--mean", metavar="R,G,B", help="per-channel mean subtracted, in the units of --input-range (default 0-255)")
    parser.add_argument("--std", metavar="R,G,B", help="per-channel standard deviation divided by, in the same units")
    parser.add_argument("--input-size", metavar="HxW", help="image size for a model whose input size is not fixed, e.g. 224 or 160x192")


def check_model_path(text: str) -> None:
    """A readable message for the model files people have that Keras 3 cannot load."""
    from pathlib import Path

    from tfuq._files import check_input

    path = Path(text)
    if path.is_dir():
        raise CliError(
            f"{path} is a folder (a TensorFlow SavedModel?); tfuq reads .keras or .h5 files: "
            "load the model in Keras and save it with model.save('model.keras')"
        )
    check_input(path, "model file")  # a FIFO or a device: said, not "not found" or a hang
    if not path.is_file():
        raise CliError(f"model file not found: {path}")


def _numbers(text: str | None, flag: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise CliError(f"{flag} takes comma-separated numbers, got {text!r}") from None


def input_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        raise CliError(f"--input-size takes N or HxW, got {text!r}") from None
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise CliError(f"--input-size takes N or HxW with positive numbers, got {text!r}")
    from tfuq.runtime.config import MAX_SIDE as _MAX_SIDE

    if max(size) > _MAX_SIDE:  # the model file's limit: fail now, not after converting
        raise CliError(f"--input-size sides must be at most {_MAX_SIDE}, got {text!r}")
    return size


def preprocessing(args):
    """The :class:`tfuq.conversion.rewrite.Preprocessing` the flags state, or None."""
    from tfuq.modeling.byo import Preprocessing

    return Preprocessing.from_options(
        args.input_range, _numbers(args.mean, "--mean"), _numbers(args.std, "--std")
    )
