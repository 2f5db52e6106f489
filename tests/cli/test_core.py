"""`tfuq convert` and `tfuq inspect` invoked as a user would: exit codes, one-line errors,
and no partial output files."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tfuq.cli.main import main

pytest.importorskip("tensorflow")

from tests._dummies import tiny  # noqa: E402


@pytest.fixture(scope="module")
def files(tiny_keras, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    tiny_keras.save(folder / "tiny.keras")
    x, y = tiny.images(60, seed=6)
    np.savez(folder / "rep.npz", x=x, y=y, label_names=np.array(tiny.LABELS))
    return folder


def run_cli(args, capsys):
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_convert_then_inspect(files, capsys):
    out = files / "ok.tflite"
    status, _, err = run_cli(
        ["convert", files / "tiny.keras", "--out", out, "--passes", 5, "--representative",
         files / "rep.npz", "--calibration-samples", 40, "--json", files / "report.json"], capsys)
    assert status == 0, err
    assert "self-check on 15 held-out images" in err
    report = json.loads((files / "report.json").read_text())
    assert report["full_integer"] and report["self_check"]["passed"]
    status, text, _ = run_cli(["inspect", out], capsys)
    assert status == 0
    assert "full-integer: yes" in text and "red, green, blue, yellow" in text
    assert "decision: interval (Z = 1) and max_probability >= 0.5" in text
    status, text, _ = run_cli(["inspect", out, "--json"], capsys)
    described = json.loads(text)
    assert described["config"]["passes"] == 5
    assert described["config"]["decision"] == {"rule": "all", "rules": [
        {"rule": "interval", "conf_factor": 1.0},
        {"rule": "threshold", "score": "max_probability", "threshold": 0.5}]}
    assert described["inputs"]["mask_0"]["shape"] == [5, 32]
    assert described["operators"]["SOFTMAX"] == 1


def test_recipe_sets_options_and_flags_win(files, tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[convert]\npasses = 3\ncalibration_samples = 20\ncheck_samples = 0\nbias_correction = 6\n'
                      '[convert.decision]\nrule = "interval"\nconf_factor = 2.0\n')
    out = tmp_path / "r.tflite"
    status, _, err = run_cli(["convert", files / "tiny.keras", "--out", out, "--representative",
                              files / "rep.npz", "--recipe", recipe, "--passes", 4], capsys)
    assert status == 0, err
    assert "note: bias correction on 6 calibration images" in err
    config = json.loads(run_cli(["inspect", out, "--json"], capsys)[1])["config"]
    assert config["passes"] == 4 and config["decision"]["conf_factor"] == 2.0
    assert config["source"]["bias_correction"]["images"] == 6


def test_failed_self_check_exits_1(files, tmp_path, capsys):
    status, _, err = run_cli(["convert", files / "tiny.keras", "--out", tmp_path / "m.tflite", "--passes", 2,
                              "--representative", files / "rep.npz", "--calibration-samples", 20,
                              "--min-agreement", 1.01], capsys)
    assert status == 1 and "FAILED" in err


def _bad(tmp_path, files):
    """(name, arguments, expected words in the one-line message) for each bad input."""
    (tmp_path / "junk.keras").write_bytes(b"not a zip at all")
    np.savez(tmp_path / "float.npz", x=np.zeros((4, 16, 16, 3), np.float32))
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 16, 16, 3), np.uint8))
    np.savez(tmp_path / "gray.npz", x=np.zeros((4, 16, 16), np.uint8))
    import keras

    inputs = keras.Input((16, 16, 3))
    plain = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs)))
    plain.save(tmp_path / "plain.keras")
    rep, model, out = files / "rep.npz", files / "tiny.keras", tmp_path / "out.tflite"
    return [
        ("missing model", [tmp_path / "nope.keras", "--out", out, "--representative", rep], "not found"),
        ("not keras", [tmp_path / "junk.keras", "--out", out, "--representative", rep], "cannot load"),
        ("no MCDropout", [tmp_path / "plain.keras", "--out", out, "--representative", rep], "no tfuq.MCDropout"),
        ("float data", [model, "--out", out, "--representative", tmp_path / "float.npz"], "uint8"),
        ("zero samples", [model, "--out", out, "--representative", tmp_path / "empty.npz"], "zero samples"),
        ("wrong shape", [model, "--out", out, "--representative", tmp_path / "gray.npz"], "(N, H, W, 3)"),
        ("zero passes", [model, "--out", out, "--representative", rep, "--passes", 0], "at least 1"),
        ("negative bias correction", [model, "--out", out, "--representative", rep, "--bias-correction", -2],
         "--bias-correction must be an integer of at least 0"),
        ("bias correction in-graph", [model, "--out", out, "--representative", rep, "--mode", "in-graph",
                                      "--bias-correction", 4], "--bias-correction needs a full-integer model"),
        ("missing folder", [model, "--out", tmp_path / "no" / "m.tflite", "--representative", rep], "does not exist"),
    ]


def test_bad_input_one_line_exit_2_nothing_written(files, tmp_path, capsys):
    for name, arguments, words in _bad(tmp_path, files):
        before = set(tmp_path.rglob("*"))
        status, _, err = run_cli(["convert", *arguments], capsys)
        assert status == 2, name
        lines = [line for line in err.splitlines() if line.startswith("tfuq convert: error:")]
        assert len(lines) == 1 and words in lines[0], (name, err)
        assert "Traceback" not in err, name
        assert set(tmp_path.rglob("*")) == before, f"{name} left files behind"


def test_inspect_bad_files(tiny_tflite, tmp_path, capsys):
    # Its own good model (the session fixture), so this test runs whatever ran before it.
    data = open(tiny_tflite, "rb").read()
    (tmp_path / "t.tflite").write_bytes(data[: len(data) // 3])
    (tmp_path / "x.tflite").write_bytes(b"hello")
    for path, words in ((tmp_path / "t.tflite", "truncated"), (tmp_path / "x.tflite", "not a TFLite")):
        status, _, err = run_cli(["inspect", path], capsys)
        assert status == 2 and words in err and len(err.strip().splitlines()) == 1


def test_entry_point_exit_status_from_a_real_process(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tfuq.cli.main", "inspect", str(tmp_path / "none.tflite")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"tfuq inspect: error: cannot read model file {tmp_path / 'none.tflite'}: No such file or directory"]


def test_every_shipped_recipe_loads():
    from pathlib import Path

    from tfuq.cli.convert import DEFAULTS, load_recipe
    from tfuq.runtime import abstain

    recipes = sorted((Path(__file__).parents[2] / "converters").glob("*.toml"))
    assert {p.stem for p in recipes} >= {"resnet50", "efficientnetb0", "mobilenetv2", "mobilenetv3small", "small_cnn"}
    for path in recipes:
        options = load_recipe(str(path))
        assert set(options) == set(DEFAULTS) | {"decision"}, path.name
        assert abstain.check_rule(options["decision"]) == abstain.DEFAULT_RULE, path.name


def test_recipe_with_a_typo_is_refused(tmp_path):
    from tfuq.cli._common import CliError
    from tfuq.cli.convert import load_recipe

    (tmp_path / "r.toml").write_text("[convert]\npases = 3\n")
    with pytest.raises(CliError, match="unknown option"):
        load_recipe(str(tmp_path / "r.toml"))
