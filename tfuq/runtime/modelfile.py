"""The tfuq model file: a TFLite flatbuffer carrying its configuration.

A tfuq ``.tflite`` is an ordinary TFLite flatbuffer followed by a zip archive that holds
``tfuq.json``. This is the convention of TFLite metadata's associated files: interpreters
read the flatbuffer and ignore the trailing bytes, while any zip reader (Python's
``zipfile``, ``java.util.zip.ZipFile`` on Android) finds the archive from the end of the
file. Entry offsets in the archive are absolute from the start of the file, so readers that
do not tolerate a prefix work too. Reading needs neither TensorFlow nor a flatbuffer parser.
The schema of ``tfuq.json`` is :mod:`tfuq.runtime.config`.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

from tfuq._files import (
    atomic_output,  # noqa: F401  (the one staged writer; callers import it here)
    check_input,
)
from tfuq.runtime.config import FORMAT, FORMAT_VERSION, ConfigError, ModelConfig

CONFIG_NAME = "tfuq.json"
_TFLITE_IDENTIFIER = b"TFL3"


class ModelFileError(ValueError):
    """A file that is not a usable tfuq model (truncated, not TFLite, no configuration)."""


def check_flatbuffer(data: bytes, name: str = "model") -> None:
    """Raise ModelFileError unless ``data`` starts like a TFLite flatbuffer."""
    if len(data) < 8 or data[4:8] != _TFLITE_IDENTIFIER:
        raise ModelFileError(f"{name} is not a TFLite flatbuffer (no TFL3 identifier)")


def _typed(config: ModelConfig | Mapping, name: str = "model") -> ModelConfig:
    """``config`` as a checked :class:`ModelConfig`; a mapping is the JSON without the format
    keys (``pack`` adds them)."""
    try:
        if isinstance(config, ModelConfig):
            return config.checked()  # built or changed in code: the checks a file gets
        return ModelConfig.from_dict({"format": FORMAT, "format_version": FORMAT_VERSION, **config})
    except ConfigError as error:
        raise ModelFileError(f"{name}: {CONFIG_NAME}: {error}") from None


def pack(flatbuffer: bytes, config: ModelConfig | Mapping) -> bytes:
    """Return ``flatbuffer`` with ``config`` appended as ``tfuq.json`` in a zip archive.

    ``config`` is a :class:`~tfuq.runtime.config.ModelConfig`, or its JSON form as a mapping
    without the ``format`` keys (checked the same way).
    """
    check_flatbuffer(flatbuffer)
    config = _typed(config)
    buffer = io.BytesIO()
    buffer.write(flatbuffer)
    # Appending to a non-zip stream makes zipfile record offsets from the start of the
    # whole file, which every zip reader accepts.
    with zipfile.ZipFile(buffer, mode="a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(CONFIG_NAME, config.to_json())
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


def split(data: bytes, name: str = "model") -> tuple[bytes, ModelConfig]:
    """Split a tfuq model file into its flatbuffer and its configuration."""
    check_flatbuffer(data, name)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entry = archive.getinfo(CONFIG_NAME)
            # Two entries of one name: zipfile would read the last, another reader the first.
            if sum(info.filename == CONFIG_NAME for info in archive.infolist()) > 1:
                raise ModelFileError(f"{name}: its archive holds {CONFIG_NAME} more than once")
            text = _read_capped(archive, entry, name)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, KeyError) as error:
        raise ModelFileError(
            f"{name} carries no tfuq configuration (truncated, or not made by `tfuq convert`)"
        ) from error
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, ValueError, OSError,
            EOFError) as error:
        # Encrypted or exotic entries, a compression method zipfile lacks.
        raise ModelFileError(f"{name}: cannot read its tfuq configuration: {error}") from error
    try:
        config = ModelConfig.from_json(text)
    except ConfigError as error:
        raise ModelFileError(f"{name}: {CONFIG_NAME}: {error}") from None
    # The flatbuffer ends where the zip archive starts: the first local header.
    if not 8 <= entry.header_offset <= len(data):
        raise ModelFileError(f"{name}: the configuration archive points outside the file")
    flatbuffer = data[: entry.header_offset]
    return flatbuffer, config


def read(path: str | os.PathLike) -> tuple[bytes, ModelConfig]:
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


def read_config(path: str | os.PathLike) -> ModelConfig:
    """The configuration a tfuq model file carries, typed (:class:`~tfuq.runtime.config.ModelConfig`)."""
    return read(path)[1]


def write(path: str | os.PathLike, flatbuffer: bytes, config: ModelConfig | Mapping) -> None:
    """Write a tfuq model file atomically."""
    data = pack(flatbuffer, config)
    with atomic_output(path) as out:
        out.write(data)


def update_config(path: str | os.PathLike, changes: Mapping) -> ModelConfig:
    """Replace top-level keys of the carried configuration by ``changes`` (their JSON form,
    e.g. ``{"decision": rule}``) and rewrite the file atomically."""
    flatbuffer, config = read(path)
    merged = {**config.to_dict(), **changes}
    try:
        config = ModelConfig.from_dict(merged)
    except ConfigError as error:
        raise ModelFileError(f"{path}: {CONFIG_NAME}: {error}") from None
    write(path, flatbuffer, config)
    return read_config(path)
