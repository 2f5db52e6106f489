"""TensorFlow without its chatter: one importer and one output silencer for every stage.

TensorFlow and the TFLite converter write to the process's file descriptors, not to
``sys.stderr`` (CUDA probing before absl reads any setting, C++ logs, Keras export listings),
so Python-level redirection does not hold them back. :func:`held_output` redirects the
descriptors themselves, keeps what was written and replays it only when the block fails,
where it helps. :func:`import_tensorflow` imports TensorFlow inside it.

Used by ``tfuq/modeling``, ``tfuq/training``, ``tfuq/conversion``, the command line and the
benchmarks. Importing this module imports nothing heavy.

    >>> from tfuq.quiet import held_output
    >>> with held_output() as progress:     # doctest: +SKIP
    ...     noisy_conversion()              # its output is held back
    ...     print("50%", file=progress)     # the real stderr, for progress bars
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["held_output", "import_tensorflow"]

# The tail of held-back output replayed on failure: the end is where the error is.
_REPLAY_BYTES = 20000


@contextlib.contextmanager
def held_output() -> Iterator[IO[str]]:
    """Hold back what is written to file descriptors 1 and 2 (and Python warnings) in the block.

    Yields a writable copy of the real stderr for progress bars. The held-back text (its last
    20,000 bytes) is written to stderr only when the block raises.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    progress = os.fdopen(os.dup(saved[2]), "w")
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 1)
        os.dup2(held.fileno(), 2)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield progress
        except BaseException:
            sys.stdout.flush()
            sys.stderr.flush()
            held.seek(0)
            os.write(saved[2], held.read()[-_REPLAY_BYTES:])
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            progress.close()


def import_tensorflow(log_level: int = 2) -> Any:
    """The ``tensorflow`` module, imported (the first time) with its start-up output held back.

    ``log_level`` sets ``TF_CPP_MIN_LOG_LEVEL`` and ``ABSL_MIN_LOG_LEVEL`` unless the user
    has: 2 hides C++ info and warnings (the library's default), 3 errors too (the command
    line's, whose own messages say what failed). It has to be set before the first import.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", str(log_level))
    if log_level >= 3:
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", str(log_level))
    if "tensorflow" not in sys.modules:
        with held_output():
            import tensorflow  # noqa: F401
    return sys.modules["tensorflow"]
