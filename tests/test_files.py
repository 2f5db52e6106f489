"""tfuq._files: outputs by file type, standard output, staged names of dead runs, a commit that
signals cannot tear, and names escaped for the terminal."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tfuq import _files
from tfuq._files import OutputError, Outputs, shown

REPO = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


# -- outputs by file type -------------------------------------------------------------------------
def _special(kind: str, folder: Path) -> Path:
    path = folder / f"target.{kind}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    elif kind == "null":
        path.symlink_to("/dev/null")
    elif kind == "full":
        path.symlink_to("/dev/full")
    elif kind == "link-to-fifo":
        os.mkfifo(folder / "real.fifo")
        path.symlink_to(folder / "real.fifo")
    return path


KINDS = {"fifo": "a FIFO", "socket": "a socket", "null": "a character device",
         "full": "a character device", "link-to-fifo": "a FIFO"}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_output_that_is_not_a_regular_file_is_refused_before_any_work(tmp_path, kind):
    target = _special(kind, tmp_path)
    before = os.stat(target).st_mode
    with pytest.raises(OutputError, match=f"is {KINDS[kind]}; tfuq writes regular files only"):
        with Outputs() as outputs:
            outputs.file(target, "--json")
    with pytest.raises(OutputError, match=KINDS[kind]):
        with _files.atomic_output(target, "w") as out:
            out.write("never")
    assert os.stat(target).st_mode == before  # still the same kind of file
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_device_node_is_refused_at_its_real_path(tmp_path):
    for device in ("/dev/null", "/dev/full", "/dev/zero"):
        with pytest.raises(OutputError, match="a character device"), Outputs() as outputs:
            outputs.file(device, "--save-passes")


def test_dev_stdout_and_dash_are_standard_output_and_only_for_json(tmp_path):
    assert _files.is_stdout("-") and _files.is_stdout("/dev/stdout")
    assert not _files.is_stdout(tmp_path / "x.json") and not _files.is_stdout(None)
    for name in ("-", "/dev/stdout", ""):
        with pytest.raises(OutputError, match="only --json can print"), Outputs() as outputs:
            outputs.file(name, "--save-passes")


def test_a_path_naming_the_file_stdout_goes_to_is_standard_output(tmp_path):
    # `tfuq evaluate ... --json out.txt > out.txt` (or /dev/stdout with stdout a file) used to
    # rename a new file over it, losing what was printed before.
    out = tmp_path / "out.txt"
    code = ("import sys; from tfuq import _files; print('before', flush=True); "
            f"print(_files.is_stdout({str(out)!r}), _files.is_stdout('/proc/self/fd/1'), "
            f"_files.is_stdout({str(tmp_path / 'other')!r}))")
    with open(out, "w") as handle:
        subprocess.run([sys.executable, "-c", code], stdout=handle, check=True, cwd=REPO)
    assert out.read_text().split() == ["before", "True", "True", "False"]


@pytest.mark.parametrize("stdout", ["file", "pipe"])
def test_cli_json_to_dev_stdout_prints_and_keeps_what_was_printed(tmp_path, tiny_tflite, stdout):
    # calibrate --dry-run --json PATH prints the result without writing the model.
    import numpy as np

    from tests._dummies import tiny

    x, y = tiny.images(24, seed=1)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    out = tmp_path / "out.txt"
    command = [sys.executable, "-m", "tfuq.cli.main", "calibrate", str(tiny_tflite), "--data",
               str(tmp_path / "d.npz"), "--target-risk", "0.9", "--dry-run", "--json", "/dev/stdout"]
    if stdout == "file":
        out.write_text("printed before\n")
        with open(out, "a") as handle:
            result = subprocess.run(command, stdout=handle, stderr=subprocess.PIPE, text=True, cwd=REPO)
        text = out.read_text()
    else:
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        text = "printed before\n" + result.stdout
    assert result.returncode == 0, result.stderr
    assert text.startswith("printed before\n") and '"feasible": true' in text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# -- staged names carry the pid; a dead run's are cleaned ------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_staged_files_of_dead_runs_are_removed_and_live_ones_kept(tmp_path):
    dead, live = _dead_pid(), os.getppid()
    leftovers = [f".r.json.{dead}.abc123.part.json", f".r.json.{dead}.backup",
                 f".r.json.{live}.xyz.part.json", ".r.json.notapid.part.json", "r.json",
                 f".other.json.{dead}.abc.part.json"]
    for name in leftovers:
        (tmp_path / name).write_text("x")
    (tmp_path / f".r.json.{dead}.folder.part").mkdir()  # a staged folder
    with Outputs() as outputs:
        staged = outputs.file(tmp_path / "r.json", "--json")
        assert f".r.json.{os.getpid()}." in staged.name
        outputs.write_text(staged, "new")
        outputs.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".r.json.{live}.xyz.part.json", ".r.json.notapid.part.json", "r.json",
         f".other.json.{dead}.abc.part.json"])
    assert (tmp_path / "r.json").read_text() == "new"


# -- a commit no signal tears -----------------------------------------------------------------------
COMMIT_SCRIPT = textwrap.dedent("""
    import os, signal, sys, threading
    from tfuq import _files
    from tfuq.cli.main import main  # noqa: F401  (same handlers as the command line)

    folder, signum, at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    real, calls = os.replace, [0]

    def replace(source, destination):
        calls[0] += 1
        if calls[0] == at:
            # Arrives mid-sequence, as with strace -e inject; sent to the main thread, since a
            # process-wide kill may land on a library's thread (OpenBLAS) and reach Python late.
            signal.pthread_kill(threading.main_thread().ident, signum)
        return real(source, destination)

    os.replace = replace
    with _files.stop_signals_raise():
        try:
            with _files.Outputs() as outputs:
                for name, text in (("c.json", "new json"), ("model.tflite", "new model")):
                    outputs.write_text(outputs.file(os.path.join(folder, name), name), text)
                outputs.commit()
                print("committed", flush=True)
        except (KeyboardInterrupt, _files.Terminated) as stop:
            print("stopped", type(stop).__name__, flush=True)
            sys.exit(130)
""")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("at", [1, 2])
def test_a_signal_at_the_commit_gives_all_new_files_and_no_leftovers(tmp_path, signum, at):
    (tmp_path / "c.json").write_text("old json")
    (tmp_path / "model.tflite").write_text("old model")
    result = subprocess.run([sys.executable, "-c", COMMIT_SCRIPT, str(tmp_path), str(int(signum)), str(at)],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    # The signal waits for the end of the rename sequence, then stops the program.
    assert result.stdout.split()[:1] == ["stopped"], result
    assert result.returncode == 130
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "c.json": "new json", "model.tflite": "new model"}


def test_any_exception_in_the_commit_rolls_back(tmp_path, monkeypatch):
    (tmp_path / "c.json").write_text("old json")
    (tmp_path / "model.tflite").write_text("old model")
    real, calls = os.replace, [0]

    def replace(source, destination):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt  # e.g. a signal in a thread where none can be held
        return real(source, destination)

    with pytest.raises(KeyboardInterrupt), Outputs() as outputs:
        for name, text in (("c.json", "new json"), ("model.tflite", "new model")):
            outputs.write_text(outputs.file(tmp_path / name, name), text)
        monkeypatch.setattr(os, "replace", replace)
        outputs.commit()
    monkeypatch.undo()
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "c.json": "old json", "model.tflite": "old model"}


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_runs_the_clean_ups_and_says_one_line(tmp_path, signum, status):
    # A command stopped by `timeout` or systemd: finally blocks and atexit run (TensorFlow's
    # temporary SavedModel folders and autograph files are removed by them), one line, 128+N.
    code = textwrap.dedent(f"""
        import atexit, os, sys, tempfile, time
        import tfuq.cli.main as cli

        folder = tempfile.mkdtemp(dir={str(tmp_path)!r})
        atexit.register(lambda: os.rmdir(folder))
        def run(args):
            print("working", flush=True)
            time.sleep(30)
        cli.build_parser = lambda: type("P", (), {{"parse_args": lambda self, argv:
            type("A", (), {{"command": "convert", "run": staticmethod(run)}})()}})()
        sys.exit(cli.main([]))
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert child.stdout.readline() == "working\n"
    child.send_signal(signum)
    _, err = child.communicate(timeout=30)
    assert child.returncode == status
    assert err.strip().splitlines() == [f"tfuq convert: terminated ({signal.Signals(signum).name})"]
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_the_parser_is_built_is_one_line(monkeypatch, capsys):
    import tfuq.cli.main as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["inspect", "x"]) == 130
    assert capsys.readouterr().err == "tfuq: interrupted\n"


# -- inputs that are not regular files --------------------------------------------------------------
def test_inputs_that_are_not_regular_files_are_refused(tmp_path):
    os.mkfifo(tmp_path / "p.fifo")
    for path, kind in ((tmp_path / "p.fifo", "a FIFO"), ("/dev/zero", "a character device")):
        with pytest.raises(OutputError, match=f"model {path} is {kind}, not a regular file"):
            _files.check_input(path, "model")
    _files.check_input(tmp_path / "missing", "model")  # left to the reader to report


# -- text for the terminal --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [("cat", "cat"), ("Ünïcødé 猫", "Ünïcødé 猫"), ("a\nb", "a\\nb"), ("a\rb\tc", "a\\rb\\tc"),
     ("\x1b[2J", "\\x1b[2J"), ("nul\x00", "nul\\x00"), ("del\x7f", "del\\x7f"), ("c1\x9b", "c1\\x9b"),
     ("line\u2028sep", "line\\u2028sep"), ("rtl\u202eexe.png", "rtl\\u202eexe.png"),
     ("bad\udcffname", "bad\\udcffname"), (Path("a\nb.png"), "a\\nb.png")],
)
def test_shown_escapes_what_could_forge_or_move_terminal_output(text, expected):
    assert shown(text) == expected
    assert "\n" not in shown(text) and "\x1b" not in shown(text)
    shown(text).encode("utf-8")  # printable on any UTF-8 terminal (no lone surrogates)
