"""`tfuq fit` as a user runs it: a tiny folder of photos to a calibrated model, a report with its
gallery and the device summary; an unusable folder refused before anything trains; a changed
target redoing only calibrate onwards. small_cnn at 16x16 keeps the whole run under a minute."""

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")

from tests._dummies import tiny  # noqa: E402
from tfuq.cli.main import main  # noqa: E402
from tfuq.workflow import split as splitting  # noqa: E402

PER_CLASS = 40
SMALL = ["--backbone", "small_cnn", "--weights", "none", "--input-size", "16", "--views", "0",
         "--trainable-layers", "all", "--dense", "16", "--epochs", "10", "--batch-size", "16",
         "--learning-rate", "0.01", "--patience", "10", "--label-smoothing", "0", "--passes", "8",
         "--no-progress"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """4 colour classes x 40 PNG photos, 16x16: noisy and dimmed, so that the model gets most
    right but refuses some (the gallery has something to show)."""
    root = tmp_path_factory.mktemp("photos") / "photos"
    rng = np.random.default_rng(3)
    labels = np.arange(PER_CLASS * len(tiny.LABELS)) % len(tiny.LABELS)
    scale = rng.uniform(0.3, 1.0, (len(labels), 1, 1, 1))
    pixels = tiny.COLOURS[labels][:, None, None, :] * scale + rng.normal(0, 90, (len(labels), 16, 16, 3))
    images = np.clip(pixels, 0, 255).astype(np.uint8)
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / tiny.LABELS[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:03d}.png")
    return root


@pytest.fixture(scope="module")
def fitted(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit") / "model"
    summary = tmp_path_factory.mktemp("json") / "summary.json"
    status = main(["fit", f"folder:{photos}", "--out", str(out), "--target-risk", "0.3",
                   "--split", "0.5", "0.1", "0.25", "0.15", "--json", str(summary), *SMALL])
    return status, out, json.loads(summary.read_text())


def test_fit_end_to_end_on_a_tiny_folder(fitted, capsys):
    status, out, summary = fitted
    assert status == 0
    for name in ("model.tflite", "model.keras", "split.json", "summary.json", "SUMMARY.md",
                 "report/report.md", "report/passes.npz", "report/risk_coverage.png"):
        assert (out / name).is_file(), name
    # The split: every class cut on its own, the parts disjoint and complete.
    parts = splitting.load(out / "split.json")
    saved = json.loads((out / "split.json").read_text())
    assert {name: saved["parts"][name]["per_class"] for name in splitting.PARTS} == {
        "train": [20] * 4, "validation": [4] * 4, "calibration": [10] * 4, "test": [6] * 4}
    joined = np.concatenate(list(parts.values()))
    assert len(np.unique(joined)) == len(joined) == PER_CLASS * 4
    assert saved["parts"]["test"]["files"][0].split("/")[0] in tiny.LABELS
    # The model carries the calibrated rule (target 0.3 is feasible on these 40 images).
    import tfuq

    model = tfuq.load(out / "model.tflite")
    assert model.passes == 8 and model.labels == sorted(tiny.LABELS)
    assert model.config.decision.calibration.target_risk == 0.3
    # The summary agrees with the test report it came from.
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert summary["expected_coverage"] == evaluation["coverage"]
    assert summary["test_images"] == 24 and summary["guarantee"]["target_risk"] == 0.3
    assert summary["model_bytes"] == (out / "model.tflite").stat().st_size
    assert set(summary["seconds_per_stage"]) == {"split", "train", "convert", "calibrate", "evaluate", "summary"}
    # The gallery shows what the test run refused and accepted wrongly, whatever that was here.
    report = (out / "report" / "report.md").read_text()
    with np.load(out / "report" / "passes.npz") as saved:
        refused = int((~saved["accept"]).sum())
        wrong = int((saved["accept"] & (saved["predicted"] != saved["labels"])).sum())
    assert f"Refused: {refused} of 24 images; accepted but wrong: {wrong}." in report
    for name, count in (("gallery_abstained.png", refused), ("gallery_accepted_wrong.png", wrong)):
        assert (out / "report" / name).is_file() == (count > 0) == (name in report)


def test_a_new_target_redoes_calibration_not_training(fitted, photos, capsys):
    _, out, _ = fitted
    trained = (out / "model.keras").stat().st_mtime_ns
    status = main(["fit", f"folder:{photos}", "--out", str(out), "--target-risk", "0.001",
                   "--split", "0.5", "0.1", "0.25", "0.15", *SMALL])
    err = capsys.readouterr().err
    assert "[2/6] train: done before" in err and "[3/6] convert: done before" in err
    assert "[4/6] calibrate: settings changed (target_risk)" in err
    assert (out / "model.keras").stat().st_mtime_ns == trained
    # 0.001 cannot be guaranteed with 40 images: the calibrated rule of the first run is gone.
    import tfuq

    assert status == 0
    assert tfuq.load(out / "model.tflite").config.decision.calibration is None


def test_an_unusable_folder_is_refused_before_training(photos, tmp_path, capsys):
    bad = tmp_path / "bad"
    for name, count in (("cat", 12), ("dog", 3)):
        (bad / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(bad / name / f"{i}.png")
    (bad / "cat" / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    out = tmp_path / "out"
    status = main(["fit", f"folder:{bad}", "--out", str(out), *SMALL])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert "truncated.png" in err and "dog (3)" in err
    assert not out.exists()


@pytest.mark.parametrize("flags, message", [
    (["--split", "0.5", "0.1", "0.1", "0.1"], "sum to 1"),
    (["--target-risk", "1.5"], "--target-risk must be strictly between 0 and 1"),
    (["--min-per-class", "2"], "--min-per-class must be at least 4"),
    (["--views", "4", "--trainable-layers", "all"], "cached views need a frozen trunk"),
    (["--outliers", "featureless:many"], "outliers featureless:many: dataset spec"),
])
def test_bad_options_are_one_line_errors(photos, tmp_path, capsys, flags, message):
    status = main(["fit", f"folder:{photos}", "--out", str(tmp_path / "o"), *SMALL, *flags])
    assert status == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_outliers_reach_training(photos, tmp_path, capsys):
    none_of_these = tmp_path / "none"
    none_of_these.mkdir()
    for i in range(6):
        Image.fromarray(np.full((20, 20, 3), 128, np.uint8)).save(none_of_these / f"{i}.png")
    out = tmp_path / "o"
    specs = [f"folder:{none_of_these}", "featureless:4"]  # a flat folder of photos, then generated ones
    status = main(["fit", f"folder:{photos}", "--out", str(out), "--outliers", specs[0], "--outliers", specs[1],
                   "--epochs", "1", *SMALL[:-1]])
    err = capsys.readouterr().err
    assert status in (0, 1) and "Traceback" not in err
    assert f"loading outliers {specs[0]}, featureless:4" in err
    assert json.loads((out / "fit.json").read_text())["outliers"] == specs
    train = json.loads((out / "stages" / "train.json").read_text())
    assert train["settings"]["outliers"] == specs
    history = json.loads((out / "model.history.json").read_text())
    assert history["settings"].get("outliers") == 10, history["settings"]
