"""The configuration a tfuq model file carries, and safe writing of files.

A tfuq ``.tflite`` is an ordinary TFLite flatbuffer followed by a zip archive that holds
``tfuq.json``. This is the convention of TFLite metadata's associated files: interpreters
read the flatbuffer and ignore the trailing bytes, while any zip reader (Python's
``zipfile``, ``java.util.zip.ZipFile`` on Android) finds the archive from the end of the
file. Entry offsets in the archive are absolute from the start of the file, so readers that
do not tolerate a prefix work too. Reading needs neither TensorFlow nor a flatbuffer parser.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CONFIG_NAME = "tfuq.json"
FORMAT = "tfuq-model"
FORMAT_VERSION = 1
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


def pack(flatbuffer: bytes, config: dict) -> bytes:
    """Return ``flatbuffer`` with ``config`` appended as ``tfuq.json`` in a zip archive."""
    check_flatbuffer(flatbuffer)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, **config}
    buffer = io.BytesIO()
    buffer.write(flatbuffer)
    # Appending to a non-zip stream makes zipfile record offsets from the start of the
    # whole file, which every zip reader accepts.
    with zipfile.ZipFile(buffer, mode="a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(CONFIG_NAME, json.dumps(config, indent=1, sort_keys=True))
    return buffer.getvalue()


def split(data: bytes, name: str = "model") -> tuple[bytes, dict]:
    """Split a tfuq model file into its flatbuffer and its configuration."""
    check_flatbuffer(data, name)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entry = archive.getinfo(CONFIG_NAME)
            config = json.loads(archive.read(CONFIG_NAME))
    except (zipfile.BadZipFile, KeyError) as error:
        raise ModelFileError(
            f"{name} carries no tfuq configuration (truncated, or not made by `tfuq convert`)"
        ) from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{name}: tfuq configuration is not valid JSON") from error
    if config.get("format") != FORMAT:
        raise ModelFileError(f"{name}: {CONFIG_NAME} is not a tfuq model configuration")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{name}: configuration version {config['format_version']} is newer than this "
            f"tfuq understands ({FORMAT_VERSION}); upgrade tfuq"
        )
    # The flatbuffer ends where the zip archive starts: the first local header.
    flatbuffer = data[: entry.header_offset]
    return flatbuffer, config


def read(path: str | os.PathLike) -> tuple[bytes, dict]:
    """Read a tfuq model file; return ``(flatbuffer, config)``."""
    path = Path(path)
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
