"""Progress for long work: a redrawn tqdm bar on a terminal, plain lines anywhere else.

A log file, CI or a Raspberry Pi service (stderr not a terminal) gets one line per tenth of
the work instead of carriage-return bar frames, e.g. ``MC passes: 120/1200 img (10%), 3 s``.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from typing import TextIO

__all__ = ["bar", "is_terminal"]

LINES = 10  # plain lines per bar, besides the last


def is_terminal(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default stderr) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real file
        return False


class PlainProgress:
    """The tqdm calls tfuq uses (``update``, ``set_postfix``, ``close``), as plain lines."""

    def __init__(self, total: int, description: str, unit: str, stream: TextIO) -> None:
        self.total, self.description, self.unit, self.stream = int(total), description, unit, stream
        self.done = 0
        self.postfix = ""
        self.started = time.perf_counter()
        self._step = max(1, -(-self.total // LINES))
        self._next = self._step
        self._closed = False

    def update(self, count: int = 1) -> None:
        self.done += count
        if self.done >= self._next and self.done < self.total:
            self._line()
            self._next = (self.done // self._step + 1) * self._step

    def set_postfix(self, values: dict, refresh: bool = False) -> None:
        self.postfix = "  ".join(f"{k} {v}" for k, v in values.items())

    def _line(self) -> None:
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        extra = f"  {self.postfix}" if self.postfix else ""
        seconds = time.perf_counter() - self.started
        print(f"{self.description}: {self.done}/{self.total} {self.unit}{share}, {seconds:.0f} s{extra}",
              file=self.stream, flush=True)

    def close(self) -> None:
        if not self._closed and self.done:
            self._line()
        self._closed = True

    def __iter__(self):
        raise TypeError("wrap iterables with tfuq._progress.bar(..., iterable=...)")


def _wrapped(iterable, progress):
    try:
        for item in iterable:
            yield item
            progress.update(1)
    finally:
        progress.close()


def bar(total: int, description: str, unit: str = "img", stream: TextIO | None = None,
        iterable=None, leave: bool = False):
    """A progress bar on ``stream`` (default stderr): tqdm on a terminal, else plain lines.

    With ``iterable``, returns an iterator over it that advances the bar.
    """
    stream = sys.stderr if stream is None else stream
    if is_terminal(stream) and importlib.util.find_spec("tqdm") is not None:
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=description, unit=unit, file=stream, leave=leave)
    progress = PlainProgress(total, description, unit, stream)
    return progress if iterable is None else _wrapped(iterable, progress)
