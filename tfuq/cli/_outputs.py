"""Check, then work, then commit: the files a subcommand writes, all or none.

A subcommand names its outputs before any expensive step (:meth:`Outputs.file`,
:meth:`Outputs.folder`), so a missing folder, a folder where a file goes or a file where a
folder goes fails in one line before the work. The work writes into staged names beside each
destination (hidden, in the same folder, so the final rename never crosses file systems).
:meth:`Outputs.commit` then renames them into place, model files last; if a rename fails, the
ones already made are undone from hard-linked backups, so the previous files stay as they were.
Anything that fails before the commit (disk full while staging, an interpreter error) leaves
only the staged names, which are removed.

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
import shutil
import tempfile
from pathlib import Path

from tfuq.cli._common import CliError, json_default

# Failures of the storage rather than of the command: said in one line, nothing replaced.
_STORAGE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})

# Written last at commit: the file a script checks for to know the run finished.
_LAST_SUFFIXES = (".tflite", ".keras")


class Outputs:
    """Staged outputs of one command; use as a context manager and call :meth:`commit`."""

    def __init__(self) -> None:
        self._files: dict[Path, Path] = {}  # destination -> staged file
        self._folders: dict[Path, Path] = {}  # destination folder -> staged folder
        self._inputs: set[Path] = set()
        self._committed = False

    # -- checks, before any work ---------------------------------------------------------------
    def input(self, path: str | os.PathLike) -> None:
        """Note an input, so that no output overwrites it (except one given as ``in_place``)."""
        self._inputs.add(Path(path).resolve())

    def _claim(self, path: str | os.PathLike, option: str, in_place: bool) -> Path:
        if str(path) in ("-", ""):
            raise CliError(f"{option}: give a path ('-', standard output, is only for --json)")
        destination = Path(path)
        resolved = destination.resolve()
        if resolved in self._files or resolved in self._folders:
            raise CliError(f"{option}: {destination} is already another output of this command")
        if resolved in self._inputs and not in_place:
            raise CliError(f"{option}: {destination} is an input of this command; "
                           "choose another path")
        parent = resolved.parent
        if not parent.is_dir():
            raise CliError(f"{option}: output folder does not exist: {destination.parent}")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise CliError(f"{option}: output folder is not writable: {destination.parent}")
        return resolved

    def file(self, path: str | os.PathLike, option: str, *, in_place: bool = False) -> Path:
        """Claim ``path`` as an output file; return the staged path to write it to.

        The staged name keeps the suffix (Keras insists on ``.keras``). ``in_place`` allows
        rewriting an input (``tfuq calibrate`` rewrites its model).
        """
        destination = self._claim(path, option, in_place)
        if destination.is_dir():
            raise CliError(f"{option}: {path} is a folder; give a file name")
        if destination.exists() and not os.access(destination, os.W_OK):
            raise CliError(f"{option}: {path} exists and is not writable")
        handle, staged = tempfile.mkstemp(
            prefix=f".{destination.name}.", suffix=".part" + destination.suffix,
            dir=destination.parent,
        )
        os.close(handle)
        os.unlink(staged)  # the name only; writers create the file
        self._files[destination] = Path(staged)
        return Path(staged)

    def folder(self, path: str | os.PathLike, option: str) -> Path:
        """Claim ``path`` as an output folder (new, or existing: its files are replaced one
        by one, others kept); return the staged folder to write into."""
        destination = self._claim(path, option, False)
        if destination.exists() and not destination.is_dir():
            raise CliError(f"{option}: {path} exists and is not a folder")
        staged = tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".part",
                                  dir=destination.parent)
        self._folders[destination] = Path(staged)
        return Path(staged)

    # -- writing ---------------------------------------------------------------------------------
    @staticmethod
    def write_text(staged: Path, text: str) -> None:
        with open(staged, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())

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
                raise CliError(f"internal: {destination} was claimed but not written")
            moves.append((staged, destination))
        for destination, staged in self._folders.items():
            for item in sorted(staged.rglob("*")):
                if item.is_file():
                    moves.append((item, destination / item.relative_to(staged)))
        moves.sort(key=lambda move: move[1].suffix in _LAST_SUFFIXES)  # stable: models last
        return moves

    def commit(self) -> None:
        """Put every staged output in place, model files last; all or none."""
        moves = self._moves()
        done: list[tuple[Path, Path | None]] = []  # (destination, backup or None if new)
        made_folders: list[Path] = []
        try:
            for folder in self._folders:
                if not folder.exists():
                    folder.mkdir()
                    made_folders.append(folder)
            for staged, destination in moves:
                if not destination.parent.exists():
                    destination.parent.mkdir(parents=True)
                    made_folders.append(destination.parent)
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
                    umask = os.umask(0)
                    os.umask(umask)
                    os.chmod(staged, 0o666 & ~umask)
                try:
                    os.replace(staged, destination)
                except OSError:
                    if backup is not None:
                        with contextlib.suppress(OSError):
                            backup.unlink()
                    raise
                done.append((destination, backup))
        except OSError as error:
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
            raise CliError(f"cannot write {error.filename or 'the outputs'}: "
                           f"{error.strerror or error}; the previous files are unchanged") from error
        self._remove_backups(done)
        self._committed = True

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
            raise CliError(f"cannot write the outputs ({error.strerror or error}); "
                           "the previous files are unchanged") from error


def json_text(payload) -> str:
    """``payload`` as the JSON every subcommand prints (numpy values as plain numbers)."""
    return json.dumps(payload, indent=2, sort_keys=True, default=json_default)
