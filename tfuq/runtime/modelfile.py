"""The configuration a tfuq model file carries.

A tfuq ``.tflite`` is an ordinary TFLite flatbuffer followed by a zip archive that holds
``tfuq.json``. This is the convention of TFLite metadata's associated files: interpreters
read the flatbuffer and ignore the trailing bytes, while any zip reader (Python's
``zipfile``, ``java.util.zip.ZipFile`` on Android) finds the archive from the end of the
file. Entry offsets in the archive are absolute from the start of the file, so readers that
do not tolerate a prefix work too. Reading needs neither TensorFlow nor a flatbuffer parser.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

from tfuq._files import (
    atomic_output,  # noqa: F401  (the one staged writer; callers import it here)
    check_input,
)

CONFIG_NAME = "tfuq.json"
FORMAT = "tfuq-model"
FORMAT_VERSION = 1
_TFLITE_IDENTIFIER = b"TFL3"


class ModelFileError(ValueError):
    """A file that is not a usable tfuq model (truncated, not TFLite, no configuration)."""


def check_flatbuffer(data: bytes, name: str = "model") -> None:
    """Raise ModelFileError unless ``data`` starts like a TFLite flatbuffer."""
    if len(data) < 8 or data[4:8] != _TFLITE_IDENTIFIER:
        raise ModelFileError(f"{name} is not a TFLite flatbuffer (no TFL3 identifier)")


def pack(flatbuffer: bytes, config: dict) -> bytes:
    """Return ``flatbuffer`` with ``config`` appended as ``tfuq.json`` in a zip archive."""
    check_flatbuffer(flatbuffer)
    config = check_config({"format": FORMAT, "format_version": FORMAT_VERSION, **config})
    buffer = io.BytesIO()
    buffer.write(flatbuffer)
    # Appending to a non-zip stream makes zipfile record offsets from the start of the
    # whole file, which every zip reader accepts.
    with zipfile.ZipFile(buffer, mode="a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(CONFIG_NAME, json.dumps(config, indent=1, sort_keys=True))
    return buffer.getvalue()


# A configuration is kilobytes (1,000 labels are about 20 KB); a larger entry is a hostile
# file, e.g. valid JSON plus a gigabyte of spaces deflated into one megabyte.
MAX_CONFIG_BYTES = 1 << 22


def _read_capped(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, name: str) -> bytes:
    """The entry's bytes, refused when it says or turns out to unpack to more than
    :data:`MAX_CONFIG_BYTES` (never more than that plus one chunk is held)."""
    too_big = (f"{name}: its {CONFIG_NAME} unpacks to more than {MAX_CONFIG_BYTES:,} bytes; "
               "a configuration is kilobytes")
    if entry.file_size > MAX_CONFIG_BYTES:
        raise ModelFileError(too_big)
    with archive.open(entry) as stream:  # the declared size may lie: count what comes out
        data = stream.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ModelFileError(too_big)
    return data


def split(data: bytes, name: str = "model") -> tuple[bytes, dict]:
    """Split a tfuq model file into its flatbuffer and its configuration."""
    check_flatbuffer(data, name)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entry = archive.getinfo(CONFIG_NAME)
            config = json.loads(_read_capped(archive, entry, name))
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, KeyError) as error:
        raise ModelFileError(
            f"{name} carries no tfuq configuration (truncated, or not made by `tfuq convert`)"
        ) from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{name}: tfuq configuration is not valid JSON") from error
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, ValueError, OSError,
            EOFError, RecursionError) as error:
        # Encrypted or exotic entries, a compression method zipfile lacks, deep JSON nesting.
        raise ModelFileError(f"{name}: cannot read its tfuq configuration: {error}") from error
    check_config(config, name)
    # The flatbuffer ends where the zip archive starts: the first local header.
    if not 8 <= entry.header_offset <= len(data):
        raise ModelFileError(f"{name}: the configuration archive points outside the file")
    flatbuffer = data[: entry.header_offset]
    return flatbuffer, config


# -- the schema of tfuq.json -----------------------------------------------------------------
MODES = ("masked", "in-graph", "deterministic")
_MAX_SIDE = 16384  # pixels; larger inputs are not images a phone or a Pi runs
_MAX_PASSES = 10000
_MAX_MASK_VALUES = 1 << 26  # uint8 mask values per invoke (64 MiB): beyond, a hostile file


def _fail(name: str, message: str):
    raise ModelFileError(f"{name}: {CONFIG_NAME}: {message}")


def _field(parent: dict, key: str, kind, where: str, name: str, required: bool = True):
    if key not in parent:
        if required:
            _fail(name, f"{where}{key} is missing")
        return None
    value = parent[key]
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, kind)
    if not ok:
        _fail(name, f"{where}{key} must be {_KIND_NAMES.get(kind, kind)}, got {value!r:.60}")
    return value


_KIND_NAMES = {int: "an integer", float: "a finite number", str: "a string", dict: "an object",
               list: "a list"}


def _name_field(parent: dict, key: str, where: str, name: str) -> str:
    value = _field(parent, key, str, where, name)
    if not value or len(value) > 256:
        _fail(name, f"{where}{key} must be a name of 1 to 256 characters, got {value!r:.60}")
    return value


def check_config(config: Any, name: str = "model") -> dict:
    """Check every field of a ``tfuq.json`` a runtime reads: type, range, consistency.

    Unknown fields are kept and not checked (a newer writer may add some). Raises
    :class:`ModelFileError` naming the first field that is wrong.
    """
    from tfuq.runtime import abstain, masks

    if not isinstance(config, dict):
        _fail(name, f"must hold a JSON object, got {type(config).__name__}")
    if config.get("format") != FORMAT:
        raise ModelFileError(f"{name}: {CONFIG_NAME} is not a tfuq model configuration")
    version = _field(config, "format_version", int, "", name)
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{name}: configuration version {version} is newer than this tfuq understands "
            f"({FORMAT_VERSION}); upgrade tfuq"
        )
    if version < 1:
        _fail(name, f"format_version must be at least 1, got {version}")
    mode = _field(config, "mode", str, "", name)
    if mode not in MODES:
        _fail(name, f"mode must be one of {', '.join(MODES)}, got {mode!r:.60}")
    passes = _field(config, "passes", int, "", name)
    if not 1 <= passes <= _MAX_PASSES:
        _fail(name, f"passes must be in [1, {_MAX_PASSES}], got {passes}")

    image = _field(config, "input", dict, "", name)
    image_name = _name_field(image, "name", "input.", name)
    for key in ("height", "width"):
        side = _field(image, key, int, "input.", name)
        if not 1 <= side <= _MAX_SIDE:
            _fail(name, f"input.{key} must be in [1, {_MAX_SIDE}], got {side}")
    if _field(image, "channels", int, "input.", name) != 3:
        _fail(name, f"input.channels must be 3 (RGB), got {image['channels']}")
    for key, expected in (("dtype", "uint8"), ("pixel_format", "RGB")):
        if key in image and image[key] != expected:
            _fail(name, f"input.{key} must be {expected!r}, got {image[key]!r:.60}")
    output = _field(config, "output", dict, "", name)
    output_name = _name_field(output, "name", "output.", name)

    labels = _field(config, "labels", list, "", name, required=False)
    if labels is not None:
        if not all(isinstance(label, str) for label in labels):
            _fail(name, "labels must be strings")
        if len(set(labels)) != len(labels):
            _fail(name, "labels must be distinct")

    layers = _field(config, "mc_dropout", list, "", name)
    seen = {image_name, output_name}
    values = 0
    for index, layer in enumerate(layers):
        where = f"mc_dropout[{index}]."
        if not isinstance(layer, dict):
            _fail(name, f"mc_dropout[{index}] must be an object")
        rate = _field(layer, "rate", float, where, name)
        if not 0.0 < rate < 1.0:
            _fail(name, f"{where}rate must be in (0, 1), got {rate}")
        _name_field(layer, "layer", where, name)
        if mode != "masked":
            continue
        mask_name = _name_field(layer, "input", where, name)
        if mask_name in seen:
            _fail(name, f"{where}input {mask_name!r} names another input or the output")
        seen.add(mask_name)
        shape = _field(layer, "shape", list, where, name)
        if len(shape) < 2 or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
            _fail(name, f"{where}shape must be (passes, features...) of positive integers, got {shape!r:.60}")
        if shape[0] != passes:
            _fail(name, f"{where}shape starts with {shape[0]}, but passes is {passes}")
        values += math.prod(shape)
        if values > _MAX_MASK_VALUES:
            _fail(name, f"masks of more than {_MAX_MASK_VALUES} values per invoke")

    scheme = _field(config, "seed_scheme", dict, "", name)
    scheme_name = _field(scheme, "name", str, "seed_scheme.", name)
    scheme_version = _field(scheme, "version", int, "seed_scheme.", name)
    if (scheme_name, scheme_version) != (masks.SCHEME, masks.SCHEME_VERSION):
        _fail(name, f"seed scheme {scheme_name!r:.60} v{scheme_version} is not the one this tfuq "
              f"draws masks with ({masks.SCHEME} v{masks.SCHEME_VERSION})")
    if "keep_bits" in scheme and _field(scheme, "keep_bits", int, "seed_scheme.", name) != masks.KEEP_BITS:
        _fail(name, f"seed_scheme.keep_bits must be {masks.KEEP_BITS}, got {scheme['keep_bits']}")

    if "decision" in config:
        try:
            rule = abstain.check_rule(config["decision"])
        except abstain.RuleError as error:
            _fail(name, f"decision: {error}")
        calibration = _field(rule, "calibration", dict, "decision.", name, required=False)
        for key in ("target_risk", "confidence", "risk_bound", "coverage", "selective_risk"):
            if calibration is not None and key in calibration and calibration[key] is not None:
                value = _field(calibration, key, float, "decision.calibration.", name)
                if not 0.0 <= value <= 1.0:
                    _fail(name, f"decision.calibration.{key} must be in [0, 1], got {value}")
        for key in ("accepted", "errors", "n"):
            if calibration is not None and key in calibration:
                if _field(calibration, key, int, "decision.calibration.", name) < 0:
                    _fail(name, f"decision.calibration.{key} must be at least 0")
    _field(config, "source", dict, "", name, required=False)
    return config


def read(path: str | os.PathLike) -> tuple[bytes, dict]:
    """Read a tfuq model file; return ``(flatbuffer, config)``."""
    path = Path(path)
    try:
        check_input(path, "model file")  # a FIFO would block, /dev/zero never ends
    except ValueError as error:
        raise ModelFileError(str(error)) from None
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelFileError(f"cannot read model file {path}: {error.strerror}") from error
    return split(data, str(path))


def read_config(path: str | os.PathLike) -> dict:
    """The configuration a tfuq model file carries."""
    return read(path)[1]


def write(path: str | os.PathLike, flatbuffer: bytes, config: dict) -> None:
    """Write a tfuq model file atomically."""
    data = pack(flatbuffer, config)
    with atomic_output(path) as out:
        out.write(data)


def update_config(path: str | os.PathLike, changes: dict) -> dict:
    """Merge ``changes`` into the carried configuration and rewrite the file atomically."""
    flatbuffer, config = read(path)
    config = {**config, **changes}
    config.pop("format", None)
    config.pop("format_version", None)
    write(path, flatbuffer, config)
    return read_config(path)
