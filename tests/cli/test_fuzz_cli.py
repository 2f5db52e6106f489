"""Fuzzing the command line: arguments of every subcommand, output locations, and
`tfuq predict --watch` with files that appear half-written. Every case ends in a result
(exit 0 or 1) or a one-line error with exit 2 (argparse's usage errors are exit 2 too), never
a traceback, never a hang; a failed command changes no file."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
pytest.importorskip("PIL")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests._dummies.fuzz import Tally, budget  # noqa: E402
from tfuq.cli.main import main  # noqa: E402

pytestmark = pytest.mark.fuzz
ARGS_TALLY, OUTPUT_TALLY, WATCH_TALLY = Tally("CLI arguments"), Tally("output locations"), Tally("predict --watch")
SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


class ReachedTheWork(Exception):
    """Raised in place of an expensive step: every check before it passed."""


def _stop(*args, **kwargs):
    raise ReachedTheWork


def snapshot(folder: Path) -> dict[str, str]:
    """Regular files by path and sha256, and what the special entries are (a FIFO must stay a
    FIFO, a link to /dev/null a link to it)."""
    found = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            found[str(p.relative_to(folder))] = "-> " + os.readlink(p)
        elif p.is_fifo():
            found[str(p.relative_to(folder))] = "fifo"
        elif p.is_file():
            found[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return found


def special_files(folder: Path) -> None:
    """Outputs and inputs that are not regular files: a FIFO (reading it would block), links
    to /dev/null, /dev/full and /dev/zero (renaming over them would replace the link; reading
    /dev/zero never ends). Made per run: copying a FIFO would block."""
    os.mkfifo(folder / "fifo")
    for name, target in (("devnull", "/dev/null"), ("devfull", "/dev/full"), ("zero", "/dev/zero")):
        (folder / name).symlink_to(target)


@pytest.fixture(scope="module")
def workspace(tiny_tflite, tiny_keras, tmp_path_factory):
    """A model, a Keras model, labelled data, two images and a folder of class folders."""
    from PIL import Image

    from tests._dummies import tiny

    folder = tmp_path_factory.mktemp("fuzz_cli")
    shutil.copy(tiny_tflite, folder / "model.tflite")
    tiny_keras.save(folder / "tiny.keras")
    x, y = tiny.images(40, seed=3)
    np.savez(folder / "data.npz", x=x, y=y)
    np.savez(folder / "unlabelled.npz", x=x)
    Image.fromarray(x[0]).save(folder / "a.png")
    Image.fromarray(x[1]).save(folder / "b.jpg")
    (folder / "recipe.toml").write_text("[convert]\npasses = 2\n")
    (folder / "labels.txt").write_text("red\ngreen\nblue\nyellow\n")
    (folder / "dir").mkdir()
    return folder


NUMBERS = st.sampled_from(["0", "1", "2", "-1", "0.5", "1.5", "1e308", "-0", "nan", "inf", "-inf",
                           str(2**64), str(2**63 - 1), "3", "0.999999", "abc", "", " 1", "1_0",
                           "10001", "100000"])
PATHS = st.sampled_from(["model.tflite", "data.npz", "unlabelled.npz", "a.png", "b.jpg", "dir", "dir/",
                         "missing.npz", "missing/x.json", "new.json", "-", "", "npz:data.npz",
                         "folder:dir", "cifar100_corrupted/fog_9:npz:data.npz", "tiny.keras",
                         "recipe.toml", "labels.txt", "a.png/x", "new.keras", "new.tflite",
                         "fifo", "devnull", "devfull", "zero", "/dev/stdout"])
VALUES = NUMBERS | PATHS | st.text(max_size=6)
OUTLIERS = PATHS | st.sampled_from(["featureless:3", "featureless:0", "featureless:x", "files:dir", "files:*.png",
                                    "files:fifo", "files:zero", "folder:fifo", "tfrecord:*.x"])

OPTIONS = {
    "inspect": [("--json", None)],
    "predict": [("--seed", NUMBERS), ("--threads", NUMBERS), ("--json", None),
                ("--rule", st.sampled_from(["model", "interval", "threshold", "nope"])),
                ("--conf-factor", NUMBERS), ("--threshold", NUMBERS),
                ("--score", st.sampled_from(["max_probability", "mutual_information", "x"])),
                ("--max-images", NUMBERS), ("--backend", st.sampled_from(["auto", "tflite_runtime", "x"]))],
    "evaluate": [("--data", PATHS), ("--ood", PATHS), ("--rule", st.sampled_from(["model", "interval", "threshold"])),
                 ("--conf-factor", NUMBERS), ("--score", st.sampled_from(["max_probability", "variation_ratio"])),
                 ("--threshold", NUMBERS), ("--seed", NUMBERS), ("--threads", NUMBERS), ("--limit", NUMBERS),
                 ("--json", PATHS), ("--save-passes", PATHS), ("--report", PATHS)],
    "calibrate": [("--data", PATHS), ("--target-risk", NUMBERS), ("--confidence", NUMBERS),
                  ("--score", st.sampled_from(["max_probability", "predictive_entropy"])), ("--seed", NUMBERS),
                  ("--threads", NUMBERS), ("--limit", NUMBERS), ("--dry-run", None), ("--json", PATHS)],
    "convert": [("--out", PATHS), ("--representative", PATHS), ("--recipe", PATHS), ("--passes", NUMBERS),
                ("--mode", st.sampled_from(["masked", "in-graph", "deterministic", "x"])),
                ("--calibration-samples", NUMBERS), ("--check-samples", NUMBERS), ("--min-agreement", NUMBERS),
                ("--bias-correction", NUMBERS), ("--labels", PATHS), ("--json", PATHS)],
    "train": [("--backbone", st.sampled_from(["small_cnn", "resnet50", "x"])), ("--data", PATHS), ("--out", PATHS),
              ("--weights", st.sampled_from(["none", "imagenet", "missing.h5", "data.npz"])),
              ("--input-size", NUMBERS), ("--image-size", NUMBERS), ("--dropout", NUMBERS),
              ("--epochs", NUMBERS), ("--batch-size", NUMBERS), ("--learning-rate", NUMBERS),
              ("--val-split", NUMBERS), ("--val-data", PATHS), ("--patience", NUMBERS), ("--limit", NUMBERS),
              ("--monitor", st.sampled_from(["val_loss", "val_accuracy", "x"])), ("--label-smoothing", NUMBERS),
              ("--trainable-layers", NUMBERS | st.just("all")), ("--qat", None), ("--seed", NUMBERS),
              ("--strategy", st.sampled_from(["none", "mirrored", "x"])), ("--json", PATHS), ("--no-progress", None),
              ("--outliers", OUTLIERS)],
    "demo": [("--out", PATHS), ("--epochs", NUMBERS), ("--passes", NUMBERS), ("--target-risk", NUMBERS),
             ("--confidence", NUMBERS), ("--seed", NUMBERS), ("--featureless", NUMBERS), ("--json", PATHS)],
    "fit": [("--out", PATHS), ("--backbone", st.sampled_from(["small_cnn", "efficientnet_lite0", "x"])),
            ("--weights", st.sampled_from(["none", "imagenet", "missing.h5"])), ("--views", NUMBERS),
            ("--trainable-layers", NUMBERS | st.just("all")), ("--epochs", NUMBERS), ("--dropout", NUMBERS),
            ("--target-risk", NUMBERS), ("--confidence", NUMBERS), ("--min-per-class", NUMBERS),
            ("--passes", NUMBERS), ("--bias-correction", NUMBERS), ("--image-size", NUMBERS),
            ("--outlier-weight", NUMBERS), ("--outliers", OUTLIERS), ("--seed", NUMBERS), ("--json", PATHS)],
}
POSITIONAL = {"inspect": PATHS, "predict": PATHS, "evaluate": PATHS, "calibrate": PATHS, "convert": PATHS,
              "fit": PATHS}


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(OPTIONS)))
    argv = [command]
    if command in POSITIONAL:
        argv.append(draw(st.sampled_from(["model.tflite", "tiny.keras"]) | POSITIONAL[command]))
    if command == "predict":
        argv += draw(st.lists(PATHS, max_size=2))
    for option, values in draw(st.lists(st.sampled_from(OPTIONS[command]), max_size=5, unique_by=lambda o: o[0])):
        argv.append(option)
        if values is not None:
            argv.append(draw(values))
    return argv


def _expensive_steps_stop(monkeypatch) -> None:
    import tfuq.conversion.convert
    import tfuq.demo
    import tfuq.modeling.backbones
    import tfuq.workflow.fit

    monkeypatch.setattr(tfuq.modeling.backbones, "build_model", _stop)  # no weight downloads
    monkeypatch.setattr(tfuq.conversion.convert, "load_keras_model", _stop)
    monkeypatch.setattr(tfuq.demo, "run", _stop)
    monkeypatch.setattr(tfuq.workflow.fit, "fit", _stop)


def run_cli(argv, capsys) -> tuple[str, str]:
    """(outcome, stderr) of one command line; fails the test on a traceback."""
    try:
        status = main(argv)
    except ReachedTheWork:
        capsys.readouterr()
        return "checks passed, reached the work", ""
    except SystemExit as exit_:  # argparse: a bad option or value
        assert exit_.code == 2, argv
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1].startswith("tfuq"), err
        return "exit 2 (usage)", err
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert status in (0, 1, 2), (argv, status)
    if status == 2:
        lines = [line for line in err.splitlines() if ": error: " in line]
        assert len(lines) == 1 and lines[0].startswith(f"tfuq {argv[0]}: error:"), err
    return f"exit {status}", err


@settings(max_examples=budget(150), suppress_health_check=SLOW)
@given(command_lines())
@example(["demo", "--target-risk", "1.5"])
@example(["evaluate", "model.tflite", "--data", "data.npz", "--report", "a.png"])
@example(["calibrate", "model.tflite", "--data", "data.npz", "--target-risk", "0.3", "--json", "missing/x.json"])
@example(["train", "--backbone", "small_cnn", "--data", "data.npz", "--out", "new.keras", "--image-size", str(10**9)])
@example(["train", "--backbone", "small_cnn", "--data", "data.npz", "--out", "new.keras", "--outliers", "featureless:3",
          "--outliers", "files:*.png"])
@example(["evaluate", "model.tflite", "--data", "data.npz", "--limit", str(2**64)])
@example(["predict", "model.tflite", "a.png", "--seed", str(2**64)])
@example(["convert", "tiny.keras", "--out", "new.tflite", "--representative", "data.npz", "--min-agreement", "nan"])
# Issue 20: outputs and inputs that are not regular files, and --passes beyond the schema.
@example(["evaluate", "model.tflite", "--data", "data.npz", "--json", "devnull"])
@example(["evaluate", "model.tflite", "--data", "data.npz", "--save-passes", "fifo"])
@example(["evaluate", "model.tflite", "--data", "data.npz", "--report", "devfull"])
@example(["evaluate", "model.tflite", "--data", "data.npz", "--save-passes", "/dev/stdout"])
@example(["calibrate", "model.tflite", "--data", "data.npz", "--target-risk", "0.3", "--json", "devfull"])
@example(["calibrate", "zero", "--data", "data.npz", "--target-risk", "0.3"])
@example(["convert", "tiny.keras", "--out", "devnull", "--representative", "data.npz"])
@example(["convert", "tiny.keras", "--out", "new.tflite", "--representative", "data.npz", "--passes", "10001"])
@example(["convert", "tiny.keras", "--out", "new.tflite", "--representative", "fifo"])
@example(["demo", "--passes", "100000"])
@example(["inspect", "fifo"])
@example(["inspect", "zero"])
@example(["predict", "model.tflite", "fifo", "a.png"])
@example(["predict", "zero", "a.png"])
@example(["evaluate", "model.tflite", "--data", "fifo"])
@example(["evaluate", "model.tflite", "--data", "zero"])
def test_any_command_line(workspace, tmp_path_factory, monkeypatch, capsys, argv):
    folder = tmp_path_factory.mktemp("run")
    for item in workspace.iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy)(item, folder / item.name)
    special_files(folder)
    before = snapshot(folder)
    with monkeypatch.context() as patch:
        patch.chdir(folder)
        _expensive_steps_stop(patch)
        outcome, _ = run_cli(argv, capsys)
    if outcome.startswith("exit 2") or outcome.startswith("checks passed"):
        assert snapshot(folder) == before, argv  # a failed or stopped command wrote nothing
    ARGS_TALLY.add(outcome)


# -- output locations ----------------------------------------------------------------------------
# Half of the draws are no output or a good place, so that runs that write get fuzzed too.
LOCATIONS = st.one_of(
    st.sampled_from([None, None, "new.json", "out.json", "new_report", "report", "same", "-"]),
    st.sampled_from(["dir", "dir/", "missing/x.json", "model.tflite", "data.npz", "a.png/x.json", "",
                     "report/x", "fifo", "devnull", "devfull", "/dev/stdout"]),
)
NEVER_WRITTEN = ("", "dir", "model.tflite", "data.npz", "fifo", "devnull", "devfull")


@settings(max_examples=budget(30), suppress_health_check=SLOW)
@given(LOCATIONS, LOCATIONS, LOCATIONS, st.sampled_from(["evaluate", "calibrate"]))
@example("same", "same", None, "evaluate")
@example(None, None, "out.json", "evaluate")
@example("missing/x.json", None, None, "calibrate")
@example("new.json", "new.npz", "new_report", "evaluate")
@example("out.json", None, None, "calibrate")
@example(None, "-", "-", "evaluate")  # once wrote a folder named "-", or nothing at all
@example("devnull", None, None, "evaluate")  # issue 20: replaced the /dev/null node as root
@example("/dev/stdout", None, None, "calibrate")  # printed, not renamed over
@example(None, "fifo", "devfull", "evaluate")
@example(None, "/dev/stdout", None, "evaluate")
def test_output_locations(workspace, tmp_path_factory, capsys, monkeypatch, json_path, passes_path, report_path, command):
    folder = tmp_path_factory.mktemp("outputs")
    for item in workspace.iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy)(item, folder / item.name)
    special_files(folder)
    (folder / "out.json").write_text("{}")
    (folder / "report").mkdir()
    (folder / "report" / "report.md").write_text("old")
    argv = [command, "model.tflite", "--data", "data.npz"]
    if command == "calibrate":
        argv += ["--target-risk", "0.5", "--confidence", "0.5"]
    chosen = {"--json": json_path, "--save-passes": passes_path, "--report": report_path}
    if command == "calibrate":
        chosen = {"--json": json_path}
    for option, path in chosen.items():
        if path is not None:
            argv += [option, "x.json" if path == "same" else path]
    before = snapshot(folder)
    with monkeypatch.context() as patch:
        patch.chdir(folder)
        outcome, err = run_cli(argv, capsys)
    after = snapshot(folder)
    if outcome != "exit 0":
        assert after == before, (argv, err)
        OUTPUT_TALLY.add("refused, nothing written" if outcome.startswith("exit 2") else outcome)
        return
    written = {p for o, p in chosen.items() if p not in (None, "-", "", "/dev/stdout")}
    assert all(p is None or p not in NEVER_WRITTEN for p in chosen.values())
    assert chosen.get("--save-passes") not in ("-", "/dev/stdout")
    assert chosen.get("--report") not in ("-", "/dev/stdout")
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    allowed = {"model.tflite"} if command == "calibrate" else set()
    for path in written:
        path = "x.json" if path == "same" else path.rstrip("/")
        allowed |= {k for k in changed if k == path or k.startswith(path + "/")}
    assert changed <= allowed, (argv, changed - allowed)
    OUTPUT_TALLY.add("written")


# -- predict --watch with files that appear half-written ------------------------------------------
def _png(seed: int) -> bytes:
    import io

    from PIL import Image

    from tests._dummies import tiny

    x, _ = tiny.images(1, seed=seed)
    buffer = io.BytesIO()
    Image.fromarray(x[0]).save(buffer, format="PNG")
    return buffer.getvalue()


@settings(max_examples=budget(6), suppress_health_check=SLOW)
@given(st.lists(st.tuples(st.integers(1, 8), st.floats(0.0, 0.12), st.booleans()), min_size=1, max_size=3))
def test_watch_sees_half_written_files(workspace, tmp_path_factory, capsys, files):
    """Each file is written in ``chunks`` with ``pause`` seconds between; ``truncated`` ones
    stop half-way for good. The last record for every file matches its final state."""
    folder = tmp_path_factory.mktemp("watched")
    finals = {}

    def writer():
        for index, (chunks, pause, truncated) in enumerate(files):
            data = _png(index)
            final = data[: len(data) // 2] if truncated else data
            path = folder / f"shot{index}.png"
            finals[str(path)] = truncated
            step = math.ceil(len(final) / chunks)
            with open(path, "wb") as out:
                for start in range(0, len(final), step):
                    out.write(final[start : start + step])
                    out.flush()
                    time.sleep(pause)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        status = main(["predict", str(workspace / "model.tflite"), "--watch", str(folder), "--include-existing",
                       "--interval", "0.05", "--timeout", "3", "--json"])
    finally:
        thread.join()
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    records = [json.loads(line) for line in captured.out.splitlines()]
    last = {}
    for record in records:
        assert ("error" in record) or ("accept" in record)
        last[record["path"]] = record
    assert set(last) == set(finals)  # every file decided on, none missed
    for path, truncated in finals.items():
        assert ("error" in last[path]) == truncated, (path, last[path])
    assert status == (2 if any("error" in r for r in records) else 0)
    for record in records:
        WATCH_TALLY.add("error record, stream went on" if "error" in record else "decision")
