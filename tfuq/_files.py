"""The files tfuq reads and writes: regular files only, staged writes, a commit no signal tears.

One mechanism for every output, from a library call's :func:`atomic_output` to a
subcommand's several files (:class:`Outputs`):

- **Check first.** An output is claimed before any work. A destination that exists and is not
  a regular file (a device such as ``/dev/null`` or ``/dev/full``, a FIFO, a socket, or a link
  to one) is refused in one line: renaming over it would replace the device node, and writing
  into it would not be all or nothing. Standard output is not a file target: ``-`` and
  ``/dev/stdout`` mean "print it", which only ``--json`` offers (:func:`is_stdout`).
  Inputs are checked the same way (:func:`check_input`): a FIFO or ``/dev/zero`` given as a
  model, an image or data is refused instead of read without end.
- **Stage beside the destination.** Work is written to hidden names in the destination's own
  folder (so the final rename never crosses file systems) that carry the writer's pid:
  ``.NAME.PID.<random>.part.SUFFIX`` (tempfile's random part), and ``.NAME.PID.backup`` during a commit. A run killed hard
  (SIGKILL, power) leaves at most those; the next run that writes NAME removes the ones whose
  process is gone (:func:`clean_stale`) and leaves a live writer's alone.
- **Commit all or none.** :meth:`Outputs.commit` renames the staged files into place, model
  files last, with SIGINT, SIGTERM and SIGHUP held until the sequence is over
  (:func:`signals_deferred`); a rename that fails (or any exception at all) undoes the ones
  already made from hard-linked backups. The outcome is all new or all old.

Standard library only: the runtime (a Raspberry Pi) writes through this too.

    >>> with Outputs() as outputs:                      # doctest: +SKIP
    ...     report = outputs.file("report.json", "--json")
    ...     model = outputs.file("model.tflite", "--out")
    ...     ...                                         # the long work
    ...     outputs.write_text(report, text)
    ...     outputs.commit()
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["OutputError", "Outputs", "Terminated", "atomic_output", "check_input", "clean_stale", "file_kind",
           "is_stdout", "json_text", "shown", "signals_deferred", "stop_signals_raise"]

# Failures of the storage rather than of the command: said in one line, nothing replaced.
_STORAGE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})

# Written last at commit: the file a script checks for to know the run finished.
_LAST_SUFFIXES = (".tflite", ".keras")

#: Names that mean standard output rather than a file to replace.
STDOUT_NAMES = ("-", "/dev/stdout")


class OutputError(ValueError):
    """An output location that cannot be written as asked (one line, exit 2 in the CLI)."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived; raised like KeyboardInterrupt so clean-ups run."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


# -- text shown on a terminal --------------------------------------------------------------------
# Control characters (C0, DEL, C1), line and paragraph separators, bidirectional overrides and
# other invisible format characters, and the surrogates a non-UTF-8 file name decodes to.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f"
                     "\ufeff\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def shown(text: Any) -> str:
    """``text`` (a label, a layer name, a path) safe to print on a terminal: control
    characters, separators and invisible format characters escaped as ``\\n``, ``\\xNN`` or
    ``\\uNNNN``, so a name cannot start a line, move the cursor or forge output.

    >>> shown("cat\\n\\x1b[2Jimg.png: predicted FAKE")
    'cat\\\\n\\\\x1b[2Jimg.png: predicted FAKE'
    """
    return _UNSAFE.sub(_escape, str(os.fspath(text) if isinstance(text, os.PathLike) else text))


def json_text(payload) -> str:
    """``payload`` as the JSON every subcommand prints (numpy values as plain numbers)."""
    return json.dumps(payload, indent=2, sort_keys=True, default=json_default)


def json_default(value):
    """``json.dump(default=...)`` for numpy scalars and arrays: Python numbers and lists."""
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


# -- what a path is ------------------------------------------------------------------------------
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def _kind(mode: int) -> str | None:
    """What a non-regular file is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def is_stdout(path: str | os.PathLike | None) -> bool:
    """True for ``-``, ``/dev/stdout``, and a path naming the very file standard output
    already goes to (``/proc/self/fd/1``, or ``out.txt`` under ``> out.txt``): those are
    printed to, never replaced."""
    if path is None:
        return False
    if os.fspath(path) in STDOUT_NAMES:
        return True
    try:
        target, out = os.stat(path), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no such path; stdout closed or replaced
        return False
    return (target.st_dev, target.st_ino) == (out.st_dev, out.st_ino)


def file_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it is not a regular file (``"a FIFO"``, ``"a character
    device"``, ``"a folder"``...), following links; None for a regular file or no file."""
    try:
        return _kind(os.stat(path).st_mode)
    except (OSError, ValueError):
        return None


def check_input(path: str | os.PathLike, what: str = "input") -> None:
    """Refuse, in one line, an input that exists but is not a regular file (a FIFO would block,
    ``/dev/zero`` never ends). A missing path is left to the reader to report.

    Raises:
        OutputError (a ValueError): ``path`` is a FIFO, a device, a socket or a folder.
    """
    kind = file_kind(path)
    if kind is not None:
        raise OutputError(f"{what} {shown(path)} is {kind}, not a regular file")


def _refuse_special(destination: Path, shown_as: str, option: str) -> None:
    try:
        mode = os.stat(destination).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise OutputError(f"{option}: cannot check {shown(shown_as)}: {error.strerror}") from None
    kind = _kind(mode)
    if kind is not None and kind != "a folder":
        raise OutputError(f"{option}: {shown(shown_as)} is {kind}; tfuq writes regular files only"
                          + (" (--json - prints to standard output)" if option == "--json" else ""))


# -- staged names and the ones a dead run left -----------------------------------------------
def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # someone else's live process (or a number kill cannot take)
    return True


def clean_stale(destination: str | os.PathLike) -> list[Path]:
    """Remove the staged files and backups of ``destination`` that a run which no longer
    exists left beside it (``.NAME.PID.*.part*``, ``.NAME.PID.backup``); return them."""
    destination = Path(destination)
    prefix = f".{destination.name}."
    removed = []
    try:
        entries = list(os.scandir(destination.parent if str(destination.parent) else "."))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid, _, tail = entry.name[len(prefix):].partition(".")
        if not pid.isdigit() or not (tail == "backup" or ".part" in tail):
            continue
        if _pid_alive(int(pid)):
            continue
        path = Path(entry.path)
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


def _staged_name(destination: Path, folder: bool = False) -> Path:
    prefix = f".{destination.name}.{os.getpid()}."
    if folder:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=".part", dir=destination.parent))
    handle, staged = tempfile.mkstemp(prefix=prefix, suffix=".part" + destination.suffix,
                                      dir=destination.parent)
    os.close(handle)
    os.unlink(staged)  # the name only; writers create the file
    return Path(staged)


# -- signals -------------------------------------------------------------------------------------
_HELD = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _install(signums, handler) -> dict:
    """Set ``handler`` for each signal that can be set here; the handlers it replaced."""
    previous = {}
    for signum in signums:
        try:
            previous[signum] = signal.signal(signum, handler)
        except (ValueError, OSError):
            pass
    return previous


def _restore(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, signal.SIG_DFL if handler is None else handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP for the block (the rename sequence of a commit, which
    takes milliseconds); deliver them, once each, when it ends. Outside the main thread (where
    Python cannot set handlers) the block runs as is and the commit's rollback still covers it.
    """
    if not _in_main_thread():
        yield
        return
    caught: list[int] = []
    previous = _install(_HELD, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        _restore(previous)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """For the block, SIGTERM and SIGHUP (what ``timeout``, systemd and a closed terminal send)
    raise :class:`Terminated` as SIGINT raises KeyboardInterrupt, so ``finally`` blocks,
    context managers and ``atexit`` clean up (staged files, TensorFlow's temporary SavedModel
    folders and autograph files) instead of the process vanishing mid-way."""
    stops = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = _install(stops, _raise_terminated) if _in_main_thread() else {}
    try:
        yield
    finally:
        _restore(previous)


# -- outputs -------------------------------------------------------------------------------------
class Outputs:
    """Staged outputs of one command; use as a context manager and call :meth:`commit`."""

    def __init__(self) -> None:
        self._files: dict[Path, Path] = {}  # destination -> staged file
        self._folders: dict[Path, Path] = {}  # destination folder -> staged folder
        self._inputs: set[Path] = set()
        self._committed = False

    # -- checks, before any work ---------------------------------------------------------------
    def input(self, path: str | os.PathLike, what: str | None = None) -> None:
        """Note an input, so that no output overwrites it (except one given as ``in_place``).
        With ``what`` (``"model"``, ``"--data"``), also refuse it unless it is a regular file
        or a folder."""
        if what is not None:
            try:
                check_input(path, what)
            except OutputError:
                if not Path(path).is_dir():
                    raise
        self._inputs.add(Path(path).resolve())

    def _claim(self, path: str | os.PathLike, option: str, in_place: bool) -> Path:
        if os.fspath(path) in ("", *STDOUT_NAMES) or is_stdout(path):
            where = "" if os.fspath(path) in ("", "-") else f" ({shown(path)} is standard output)"
            raise OutputError(f"{option}: give a path{where}; only --json can print to "
                              "standard output ('-')")
        destination = Path(path)
        resolved = destination.resolve()
        if resolved in self._files or resolved in self._folders:
            raise OutputError(f"{option}: {shown(destination)} is already another output of this "
                              "command")
        if resolved in self._inputs and not in_place:
            raise OutputError(f"{option}: {shown(destination)} is an input of this command; "
                              "choose another path")
        _refuse_special(resolved, os.fspath(path), option)
        parent = resolved.parent
        if not parent.is_dir():
            raise OutputError(f"{option}: output folder does not exist: {shown(destination.parent)}")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"{option}: output folder is not writable: {shown(destination.parent)}")
        clean_stale(resolved)
        return resolved

    def file(self, path: str | os.PathLike, option: str, *, in_place: bool = False) -> Path:
        """Claim ``path`` as an output file; return the staged path to write it to.

        The staged name keeps the suffix (Keras insists on ``.keras``). ``in_place`` allows
        rewriting an input (``tfuq calibrate`` rewrites its model).
        """
        destination = self._claim(path, option, in_place)
        if destination.is_dir():
            raise OutputError(f"{option}: {shown(path)} is a folder; give a file name")
        if destination.exists() and not os.access(destination, os.W_OK):
            raise OutputError(f"{option}: {shown(path)} exists and is not writable")
        staged = _staged_name(destination)
        self._files[destination] = staged
        return staged

    def folder(self, path: str | os.PathLike, option: str) -> Path:
        """Claim ``path`` as an output folder (new, or existing: its files are replaced one
        by one, others kept); return the staged folder to write into."""
        destination = self._claim(path, option, False)
        if destination.exists() and not destination.is_dir():
            raise OutputError(f"{option}: {shown(path)} exists and is not a folder")
        staged = _staged_name(destination, folder=True)
        self._folders[destination] = staged
        return staged

    # -- writing ---------------------------------------------------------------------------------
    @classmethod
    def write_text(cls, staged: Path, text: str) -> None:
        cls.write_bytes(staged, text.encode())

    @classmethod
    def write_json(cls, staged: Path, payload) -> None:
        cls.write_text(staged, json_text(payload) + "\n")

    @staticmethod
    def write_bytes(staged: Path, data: bytes) -> None:
        with open(staged, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())

    # -- commit ----------------------------------------------------------------------------------
    def _moves(self) -> list[tuple[Path, Path]]:
        moves = []
        for destination, staged in self._files.items():
            if not staged.exists():
                raise OutputError(f"internal: {destination} was claimed but not written")
            moves.append((staged, destination))
        for destination, staged in self._folders.items():
            for item in sorted(staged.rglob("*")):
                if item.is_file():
                    moves.append((item, destination / item.relative_to(staged)))
        moves.sort(key=lambda move: move[1].suffix in _LAST_SUFFIXES)  # stable: models last
        return moves

    def commit(self) -> None:
        """Put every staged output in place, model files last; all or none, whatever
        arrives meanwhile (signals wait for the end; any exception rolls back)."""
        moves = self._moves()
        done: list[tuple[Path, Path | None]] = []  # (destination, backup or None if new)
        made_folders: list[Path] = []
        umask = os.umask(0)
        os.umask(umask)
        with signals_deferred():
            try:
                for folder in self._folders:
                    if not folder.exists():
                        folder.mkdir()
                        made_folders.append(folder)
                for staged, destination in moves:
                    self._move(staged, destination, umask, done, made_folders)
            except BaseException as error:
                self._roll_back(done, made_folders)
                if isinstance(error, OSError):
                    raise OutputError(
                        f"cannot write {shown(error.filename or 'the outputs')}: "
                        f"{error.strerror or error}; the previous files are unchanged") from error
                raise
            self._remove_backups(done)
            self._committed = True

    @staticmethod
    def _move(staged: Path, destination: Path, umask: int, done: list, made_folders: list) -> None:
        if not destination.parent.exists():
            destination.parent.mkdir(parents=True)
            made_folders.append(destination.parent)
        _refuse_special(destination, os.fspath(destination), "output")  # swapped in meanwhile
        backup = None
        if destination.exists():
            backup = destination.with_name(f".{destination.name}.{os.getpid()}.backup")
            with contextlib.suppress(FileNotFoundError):
                backup.unlink()
            try:
                os.link(destination, backup)
            except OSError:  # a file system without hard links
                shutil.copy2(destination, backup)
        if staged.stat().st_mode & 0o777 == 0o600:
            # mkstemp makes 0600; give the file the permissions open() would.
            os.chmod(staged, 0o666 & ~umask)
        try:
            os.replace(staged, destination)
        except BaseException:
            if backup is not None:
                with contextlib.suppress(OSError):
                    backup.unlink()
            raise
        done.append((destination, backup))

    def _roll_back(self, done: list, made_folders: list) -> None:
        for destination, backup in reversed(done):
            with contextlib.suppress(OSError):
                if backup is None:
                    destination.unlink()
                else:
                    os.replace(backup, destination)
        for folder in reversed(made_folders):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._remove_backups(done)

    @staticmethod
    def _remove_backups(done) -> None:
        for _, backup in done:
            if backup is not None:
                with contextlib.suppress(OSError):
                    backup.unlink()

    def discard(self) -> None:
        """Remove whatever was staged (the destinations are untouched)."""
        for staged in self._files.values():
            with contextlib.suppress(OSError):
                staged.unlink()
        for staged in self._folders.values():
            shutil.rmtree(staged, ignore_errors=True)

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, kind, error, trace) -> None:
        self.discard()  # after a commit only emptied staged folders are left to remove
        if isinstance(error, OSError) and error.errno in _STORAGE_ERRORS:
            # Disk full or similar while staging: nothing was replaced; say so in one line.
            raise OutputError(f"cannot write the outputs ({error.strerror or error}); "
                              "the previous files are unchanged") from error


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a staged file for ``path``; put it in place only when the block succeeds.

    The one-file case of :class:`Outputs`, with the same checks (a device, FIFO or socket at
    ``path`` is refused) and the same commit.

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist (before anything is written).
        OutputError: ``path`` is not somewhere a regular file can be written.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {shown(folder)}")
    with Outputs() as outputs:
        staged = outputs.file(path, "output")
        with open(staged, mode) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        outputs.commit()
