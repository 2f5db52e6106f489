"""Names from a model file or the file system reach the terminal escaped: a label, a layer name,
a photo-rule name or a file name holding a newline, a carriage return, ESC or NUL cannot forge
a line or move the cursor in `predict`, `inspect`, `evaluate` or an error line. (`--json`
escapes as JSON does.)"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tfuq.cli.main import main
from tfuq.runtime import modelfile

pytest.importorskip("PIL")
FORGED = "FAKE\nimg.png: predicted FAKE8"
HOSTILE_LABELS = [FORGED, "\x1b[2J\x1b[31mred", "car\riage", "bell\x07"]  # NUL: refused by the schema
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # anything but \t and \n, which lines are made of


@pytest.fixture
def hostile(tiny_tflite, tmp_path):
    from PIL import Image

    from tests._dummies import tiny

    flatbuffer, config = modelfile.read(tiny_tflite)
    config = {k: v for k, v in config.items() if not k.startswith("format")}
    config["labels"] = HOSTILE_LABELS
    config["mc_dropout"] = [{**layer, "layer": "mc\n\x1b[0mdrop"} for layer in config["mc_dropout"]]
    model = tmp_path / "model\n\x1b[1m.tflite"
    model.write_bytes(modelfile.pack(flatbuffer, config))
    x, y = tiny.images(4, seed=2)
    names = []
    for index, name in enumerate(["a\nb.png", "c\rd.png", "e\x1b[2Kf.png", "g.png"]):
        Image.fromarray(x[index]).save(tmp_path / name, format="PNG")
        names.append(str(tmp_path / name))
    np.savez(tmp_path / "d\n.npz", x=x, y=y)
    return model, names, tmp_path


def _clean(text: str) -> None:
    assert not RAW.search(text), repr(text)


def test_predict_text_has_one_line_per_image_and_no_raw_control_characters(hostile, capsys):
    model, names, _ = hostile
    assert main(["predict", str(model), *names, "--rule", "threshold", "--score", "max_probability",
                 "--threshold", "0"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == len(names)  # no forged line
    assert not any(line.startswith("img.png") for line in lines)
    _clean(out), _clean(err)
    assert "a\\nb.png" in lines[0] and "c\\rd.png" in lines[1] and "e\\x1b[2Kf.png" in lines[2]


def test_predict_json_keeps_the_names_exact(hostile, capsys):
    model, names, _ = hostile
    assert main(["predict", str(model), *names, "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in records] == names
    assert {r["predicted_label"] for r in records} <= set(HOSTILE_LABELS)


def test_inspect_text_escapes_labels_and_layer_names(hostile, capsys):
    model, _, _ = hostile
    assert main(["inspect", str(model)]) == 0
    out, err = capsys.readouterr()
    _clean(out), _clean(err)
    assert "FAKE\\nimg.png: predicted FAKE8" in out and "\\x1b[2J\\x1b[31mred" in out
    assert "mc\\n\\x1b[0mdrop" in out and "bell\\x07" in out
    assert out.splitlines()[0].startswith(str(model.parent) + "/model\\n\\x1b[1m.tflite: ")


def test_evaluate_table_escapes_the_paths(hostile, capsys):
    model, _, folder = hostile
    assert main(["evaluate", str(model), "--data", str(folder / "d\n.npz")]) == 0
    out, err = capsys.readouterr()
    _clean(out), _clean(err)
    assert out.splitlines()[0] == f"{folder}/model\\n\\x1b[1m.tflite on {folder}/d\\n.npz"


def test_error_lines_escape_names(hostile, tmp_path, capsys):
    model, names, _ = hostile
    flatbuffer, config = modelfile.read(model)
    config = {k: v for k, v in config.items() if not k.startswith("format")}
    config["input"] = {**config["input"], "photo_rule": {"name": "evil\n\x1b[31mrule", "version": 1}}
    odd = tmp_path / "rule.tflite"
    odd.write_bytes(modelfile.pack(flatbuffer, config))
    assert main(["predict", str(odd), names[3]]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "evil\\n\\x1b[31mrule" in err
    _clean(err)
    missing = tmp_path / "no\nsuch\x1b.tflite"
    assert main(["inspect", str(missing)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "no\\nsuch\\x1b.tflite" in err
