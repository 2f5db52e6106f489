"""The tfuq model file: a TFLite flatbuffer carrying its configuration, and safe writing of files.

A tfuq ``.tflite`` is an ordinary TFLite flatbuffer followed by a zip archive that holds
``tfuq.json``. This is the convention of TFLite metadata's associated files: interpreters
read the flatbuffer and ignore the trailing bytes, while any zip reader (Python's
``zipfile``, ``java.util.zip.ZipFile`` on Android) finds the archive from the end of the
file. Entry offsets in the archive are absolute from the start of the file, so readers that
do not tolerate a prefix work too. Reading needs neither TensorFlow nor a flatbuffer parser.
The schema of ``tfuq.json`` is :mod:`tfuq.runtime.config`.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tfuq.runtime.config import FORMAT, FORMAT_VERSION, ConfigError, ModelConfig

CONFIG_NAME = "tfuq.json"
_TFLITE_IDENTIFIER = b"TFL3"


class ModelFileError(ValueError):
    """A file that is not a usable tfuq model (truncated, not TFLite, no configuration)."""


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success.

    Fails before writing anything when the folder of ``path`` does not exist.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {folder}")
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, mode) as out:
            yield out
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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


def split(data: bytes, name: str = "model") -> tuple[bytes, ModelConfig]:
    """Split a tfuq model file into its flatbuffer and its configuration."""
    check_flatbuffer(data, name)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entry = archive.getinfo(CONFIG_NAME)
            # Two entries of one name: zipfile would read the last, another reader the first.
            if sum(info.filename == CONFIG_NAME for info in archive.infolist()) > 1:
                raise ModelFileError(f"{name}: its archive holds {CONFIG_NAME} more than once")
            text = archive.read(CONFIG_NAME)
    except (zipfile.BadZipFile, KeyError) as error:
        raise ModelFileError(
            f"{name} carries no tfuq configuration (truncated, or not made by `tfuq convert`)"
        ) from error
    except ModelFileError:
        raise
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
