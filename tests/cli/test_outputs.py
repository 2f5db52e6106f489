"""Check, then work, then commit: every target file exists before the command runs, a failure
is injected at each step, and the targets must come out byte-identical, with no staged
leftovers beside them."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tfuq._files import OutputError
from tfuq.cli import _outputs
from tfuq.cli.main import main

DISK_FULL = OSError(errno.ENOSPC, "No space left on device")


def cli(*argv) -> int:
    return main([str(a) for a in argv])


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) by relative path, with its sha256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def fail(*args, **kwargs):
    raise DISK_FULL


def fail_on_call(number: int):
    """An os.replace that fails on its ``number``-th call (1-based) and works otherwise."""
    real, calls = os.replace, {"n": 0}

    def replace(source, destination):
        calls["n"] += 1
        if calls["n"] == number:
            raise OSError(errno.EIO, "Input/output error", str(destination))
        return real(source, destination)

    return replace


# -- the staging itself, no TensorFlow ---------------------------------------------------------
def _three_outputs(folder: Path):
    (folder / "report").mkdir()
    for name, text in (("a.json", "old a"), ("m.tflite", "old model"), ("report/r.md", "old r")):
        (folder / name).write_text(text)
    outputs = _outputs.Outputs()
    staged = [outputs.file(folder / "a.json", "--json"), outputs.file(folder / "m.tflite", "--out")]
    report = outputs.folder(folder / "report", "--report")
    for path, text in zip(staged, ("new a", "new model"), strict=True):
        outputs.write_text(path, text)
    (report / "r.md").write_text("new r")
    (report / "plot.png").write_text("new plot")
    return outputs


@pytest.mark.parametrize("failing_call", [1, 2, 3, 4])
def test_a_rename_failing_at_commit_restores_every_file(tmp_path, monkeypatch, failing_call):
    outputs = _three_outputs(tmp_path)
    with outputs:
        before = snapshot(tmp_path)
        before = {k: v for k, v in before.items() if ".part" not in k}
        monkeypatch.setattr(os, "replace", fail_on_call(failing_call))
        with pytest.raises(OutputError, match="previous files are unchanged"):
            outputs.commit()
    monkeypatch.undo()
    assert snapshot(tmp_path) == before


def test_commit_puts_everything_in_place_model_last(tmp_path, monkeypatch):
    order = []
    real = os.replace

    def replace(source, destination):
        order.append(Path(destination).name)
        return real(source, destination)

    outputs = _three_outputs(tmp_path)
    with outputs:
        monkeypatch.setattr(os, "replace", replace)
        outputs.commit()
    assert order[-1] == "m.tflite" and sorted(order) == ["a.json", "m.tflite", "plot.png", "r.md"]
    assert (tmp_path / "a.json").read_text() == "new a"
    assert (tmp_path / "report" / "plot.png").read_text() == "new plot"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.json", "m.tflite", "plot.png", "r.md", "report"]


def test_a_failure_before_commit_leaves_only_the_old_files(tmp_path):
    outputs = _three_outputs(tmp_path)
    with pytest.raises(OutputError, match="No space left"), outputs:
        raise DISK_FULL
    assert snapshot(tmp_path) == {"a.json": _sha("old a"), "m.tflite": _sha("old model"),
                                  "report/r.md": _sha("old r")}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    "claim, message",
    [
        (lambda o, d: o.file(d / "missing" / "x.json", "--json"), "output folder does not exist"),
        (lambda o, d: o.file(d, "--json"), "is a folder"),
        (lambda o, d: o.folder(d / "file.txt", "--report"), "not a folder"),
        (lambda o, d: (o.file(d / "x.json", "--json"), o.file(d / "x.json", "--save-passes")),
         "already another output"),
        (lambda o, d: (o.input(d / "file.txt"), o.file(d / "file.txt", "--json")), "is an input"),
    ],
)
def test_bad_locations_are_refused_when_claimed(tmp_path, claim, message):
    (tmp_path / "file.txt").write_text("keep me")
    with pytest.raises(OutputError, match=message), _outputs.Outputs() as outputs:
        claim(outputs, tmp_path)
    assert snapshot(tmp_path) == {"file.txt": _sha("keep me")}


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused_when_claimed(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"), _outputs.Outputs() as outputs:
            outputs.file(folder / "x.json", "--json")
    finally:
        folder.chmod(0o700)


# -- the subcommands, on the tiny model ----------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from tests._dummies import tiny

    folder = tmp_path_factory.mktemp("outputs_data")
    x, y = tiny.images(48, seed=9)
    np.savez(folder / "cal.npz", x=x, y=y)
    return folder / "cal.npz"


@pytest.fixture
def targets(tiny_tflite, tmp_path):
    """A work folder holding the model and an existing file (or folder) at every output."""
    shutil.copy(tiny_tflite, tmp_path / "model.tflite")
    (tmp_path / "out.json").write_text('{"old": true}\n')
    (tmp_path / "passes.npz").write_bytes(b"old passes")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.md").write_text("# old report\n")
    (tmp_path / "report" / "risk_coverage.png").write_bytes(b"old png")
    return tmp_path


CALIBRATE_STEPS = [
    ("tfuq.runtime.load", fail),
    ("tfuq.cli.calibrate.load_images", fail),
    ("tfuq.evaluation.run_model", fail),
    ("tfuq.runtime.abstain.calibrate", fail),
    ("tfuq.runtime.modelfile.pack", fail),
    ("tfuq.cli._outputs.Outputs.write_json", fail),
    ("os.replace", fail_on_call(1)),
    ("os.replace", fail_on_call(2)),
]


@pytest.mark.parametrize("step, failure", CALIBRATE_STEPS, ids=[f"{s}-{i}" for i, (s, _) in enumerate(CALIBRATE_STEPS)])
def test_calibrate_failing_at_any_step_changes_nothing(targets, data, monkeypatch, capsys, step, failure):
    before = snapshot(targets)
    monkeypatch.setattr(step, failure)
    status = cli("calibrate", targets / "model.tflite", "--data", data, "--target-risk", "0.3",
                 "--json", targets / "out.json")
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("tfuq calibrate: error:")
    assert snapshot(targets) == before


def test_calibrate_succeeds_and_replaces_both(targets, data, capsys):
    before = snapshot(targets)
    assert cli("calibrate", targets / "model.tflite", "--data", data, "--target-risk", "0.3",
               "--json", targets / "out.json") == 0
    after = snapshot(targets)
    assert after.keys() == before.keys()  # no staged leftovers, no backups
    assert after["model.tflite"] != before["model.tflite"] and after["out.json"] != before["out.json"]


def test_calibrate_json_into_a_missing_folder_leaves_the_model_alone(targets, data, monkeypatch, capsys):
    # The case: it used to write the rule into the model, then fail on --json.
    monkeypatch.setattr("tfuq.evaluation.run_model", _never("run_model"))
    before = snapshot(targets)
    assert cli("calibrate", targets / "model.tflite", "--data", data, "--target-risk", "0.3",
               "--json", targets / "none" / "r.json") == 2
    assert "output folder does not exist" in capsys.readouterr().err
    assert snapshot(targets) == before


def _never(name):
    def called(*args, **kwargs):
        raise AssertionError(f"{name} ran before the arguments were checked")

    return called


EVALUATE_STEPS = [
    ("tfuq.evaluation.evaluate", fail),
    ("tfuq.cli._outputs.Outputs.write_json", fail),
    ("tfuq.evaluation.Evaluation.save_arrays", fail),
    ("tfuq.reporting.write_plots", fail),
    ("tfuq.reporting.write_report", fail),
    ("os.replace", fail_on_call(1)),
    ("os.replace", fail_on_call(3)),
    ("os.replace", fail_on_call(5)),
]


@pytest.mark.parametrize("step, failure", EVALUATE_STEPS, ids=[f"{s}-{i}" for i, (s, _) in enumerate(EVALUATE_STEPS)])
def test_evaluate_failing_at_any_step_changes_nothing(targets, data, monkeypatch, capsys, step, failure):
    before = snapshot(targets)
    monkeypatch.setattr(step, failure)
    status = cli("evaluate", targets / "model.tflite", "--data", data, "--json", targets / "out.json",
                 "--save-passes", targets / "passes.npz", "--report", targets / "report")
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err, err
    assert snapshot(targets) == before


def test_evaluate_replaces_every_output_and_keeps_other_report_files(targets, data, capsys):
    (targets / "report" / "notes.txt").write_text("mine")
    assert cli("evaluate", targets / "model.tflite", "--data", data, "--json", targets / "out.json",
               "--save-passes", targets / "passes.npz", "--report", targets / "report") == 0
    assert (targets / "report" / "notes.txt").read_text() == "mine"
    assert "old" not in json.loads((targets / "out.json").read_text())  # the report replaced it
    assert np.load(targets / "passes.npz")["probabilities"].shape[0] == 8
    assert not [p for p in targets.rglob(".*")]  # nothing staged left behind


@pytest.mark.parametrize(
    "option, path, message",
    [("--report", "out.json", "exists and is not a folder"),
     ("--json", "report", "is a folder"),
     ("--save-passes", "model.tflite", "is an input"),
     ("--json", "none/r.json", "output folder does not exist")],
)
def test_evaluate_bad_output_locations_fail_before_the_run(targets, data, monkeypatch, capsys, option, path, message):
    monkeypatch.setattr("tfuq.evaluation.evaluate", _never("evaluate"))
    before = snapshot(targets)
    assert cli("evaluate", targets / "model.tflite", "--data", data, option, targets / path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert snapshot(targets) == before


@pytest.mark.parametrize(
    "extra, message",
    [(["--target-risk", "1.5"], "--target-risk"), (["--confidence", "0"], "--confidence"),
     (["--epochs", "0"], "at least 1"), (["--json", "{tmp}/none/s.json"], "does not exist"),
     (["--out", "{tmp}/file.txt"], "not a folder"), (["--seed", "-1"], "--seed")],
)
def test_demo_checks_its_arguments_before_training(tmp_path, monkeypatch, capsys, extra, message):
    pytest.importorskip("tensorflow")
    import tfuq.demo

    monkeypatch.setattr(tfuq.demo, "run", _never("demo.run"))
    (tmp_path / "file.txt").write_text("keep")
    arguments = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    if "--out" not in arguments:
        arguments += ["--out", str(tmp_path / "demo")]
    assert cli("demo", *arguments) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert snapshot(tmp_path) == {"file.txt": _sha("keep")}


def test_demo_failing_late_keeps_the_previous_run(tmp_path, monkeypatch, capsys):
    pytest.importorskip("tensorflow")
    import tfuq.demo

    out = tmp_path / "demo"
    out.mkdir()
    (out / "model.tflite").write_bytes(b"previous model")
    (out / "summary.json").write_text("{}")

    def half_a_run(folder, **kwargs):
        (Path(folder) / "model.tflite").write_bytes(b"half")
        raise DISK_FULL

    monkeypatch.setattr(tfuq.demo, "run", half_a_run)
    before = snapshot(tmp_path)
    assert cli("demo", "--out", out, "--json", tmp_path / "s.json") == 2
    assert snapshot(tmp_path) == before


CONVERT_STEPS = ["tfuq.conversion.convert.convert", "tfuq.conversion.convert.Conversion.save",
                 "tfuq.cli._outputs.Outputs.write_json"]


@pytest.mark.parametrize("step", CONVERT_STEPS)
def test_convert_failing_at_any_step_changes_nothing(tiny_keras, targets, data, monkeypatch, capsys, step):
    tiny_keras.save(targets / "tiny.keras")
    (targets / "out.tflite").write_bytes(b"previous model")
    before = snapshot(targets)
    monkeypatch.setattr(step, fail)
    status = cli("convert", targets / "tiny.keras", "--out", targets / "out.tflite", "--passes", 2,
                 "--representative", data, "--calibration-samples", 16, "--check-samples", 0,
                 "--json", targets / "out.json")
    monkeypatch.undo()
    assert status == 2 and "Traceback" not in capsys.readouterr().err
    assert snapshot(targets) == before


TRAIN_STEPS = ["tfuq.training.train.train", "tfuq.training.train.save_model", "tfuq.training.train.save_history",
               "tfuq.cli._outputs.Outputs.write_json"]


@pytest.mark.parametrize("step", TRAIN_STEPS)
def test_train_failing_at_any_step_changes_nothing(tmp_path, data, monkeypatch, capsys, step):
    pytest.importorskip("tensorflow")
    (tmp_path / "m.keras").write_bytes(b"previous model")
    (tmp_path / "m.history.json").write_text("{}")
    (tmp_path / "run.json").write_text("{}")
    before = snapshot(tmp_path)
    monkeypatch.setattr(step, fail)
    status = cli("train", "--backbone", "small_cnn", "--data", data, "--input-size", 16, "--epochs", 1,
                 "--val-split", 0, "--no-progress", "--out", tmp_path / "m.keras", "--json", tmp_path / "run.json")
    monkeypatch.undo()
    assert status == 2 and "Traceback" not in capsys.readouterr().err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "extra, message",
    [(["--passes", "10001"], "--passes must be at most 10000, got 10001"),
     (["--passes", "100000"], "--passes must be at most 10000"),
     (["--input-size", "16385"], "--input-size sides must be at most 16384"),
     (["--out", "/dev/null"], "is a character device; tfuq writes regular files only")],
)
def test_convert_checks_against_the_model_file_limits_before_converting(tmp_path, data, monkeypatch,
                                                                       capsys, extra, message):
    # The case: --passes 10001 ran the whole conversion, then failed on tfuq.json.
    import tfuq.cli.convert

    (tmp_path / "m.keras").write_bytes(b"not read")
    monkeypatch.setattr(tfuq.cli.convert, "quiet_tensorflow", _never("loading TensorFlow"))
    arguments = ["--out", tmp_path / "m.tflite", "--representative", data, *extra]
    assert cli("convert", tmp_path / "m.keras", *arguments) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]
