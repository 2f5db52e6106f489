"""`--outliers` given more than once, as a user runs `tfuq train`: every spec read in order into
one outlier set (tfuq.data.outliers), named in the progress line and in the saved settings; a
bad spec is one line, exit 2, nothing written. small_cnn at 16x16, one epoch: seconds."""

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from tests._dummies import tiny  # noqa: E402
from tfuq.cli.main import main  # noqa: E402


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outliers_cli")
    images, labels = tiny.images(64, seed=2)
    np.savez(folder / "train.npz", x=images, y=labels, label_names=np.array(tiny.LABELS))
    grey = np.clip(128 + np.random.default_rng(5).normal(0, 30, (12, 24, 24, 3)), 0, 255).astype(np.uint8)
    np.savez(folder / "grey.npz", x=grey)  # another size, no labels: brought to 16x16, unlabelled
    return folder


def _train(npz, out, *extra):
    return ["train", "--backbone", "small_cnn", "--data", f"npz:{npz / 'train.npz'}", "--input-size", "16",
            "--epochs", "1", "--batch-size", "32", "--dense", "8", "--no-progress", "--out", str(out), *extra]


def test_repeated_outliers_are_all_read_named_and_recorded(npz, tmp_path, capsys):
    out = tmp_path / "oe.keras"
    grey = f"npz:{npz / 'grey.npz'}"
    status = main(_train(npz, out, "--outliers", grey, "--outliers", "featureless:9",
                         "--outlier-weight", "0.7", "--json", str(tmp_path / "r.json")))
    err = capsys.readouterr().err
    assert status == 0, err
    assert f"loading outliers {grey}, featureless:9" in err
    assert "outlier exposure: 21 images, weight 0.7" in err  # 12 grey + 9 featureless
    history = json.loads((tmp_path / "oe.history.json").read_text())
    assert history["build"]["outliers"] == [grey, "featureless:9"]
    assert history["build"]["outlier_weight"] == 0.7
    assert history["settings"]["outliers"] == 21  # what training saw


def test_without_outliers_nothing_about_them_is_recorded(npz, tmp_path, capsys):
    status = main(_train(npz, tmp_path / "plain.keras"))
    assert status == 0, capsys.readouterr().err
    history = json.loads((tmp_path / "plain.history.json").read_text())
    assert "outliers" not in history["build"] and "outliers" not in history["settings"]


@pytest.mark.parametrize("outliers, words", [
    (["featureless:0"], "featureless takes an image count"),
    (["featureless:5", "featureless:5"], "outliers featureless:5: given twice"),
    (["featureless:5", "npz:{npz}/absent.npz"], "data file not found"),
    (["tfrecord:x-*.tfrecord"], "only the Beam pipelines read this source"),
])
def test_a_bad_outlier_spec_is_one_line_exit_2_and_nothing_written(npz, tmp_path, capsys, outliers, words):
    flags = [item for spec in outliers for item in ("--outliers", spec.format(npz=npz))]
    status = main(_train(npz, tmp_path / "m.keras", *flags))
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("tfuq train: error: ")]
    assert len(errors) == 1 and words in errors[0], err
    assert list(tmp_path.iterdir()) == []
