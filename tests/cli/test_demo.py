"""The offline default: its data, split and corruption helpers, and one short end-to-end run."""

import json

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("tensorflow")

from tfuq import demo  # noqa: E402
from tfuq.cli.main import main  # noqa: E402


def test_digits_are_real_upsampled_rgb():
    images, labels, names = demo.digits()
    assert images.shape == (1797, 32, 32, 3) and images.dtype == np.uint8
    assert names == [str(d) for d in range(10)]
    assert np.bincount(labels).min() >= 174  # the UCI set has 174-183 images per digit
    # Grey (R = G = B), full range, and each 8x8 source pixel became a clean 4x4 block.
    assert (images[..., 0] == images[..., 2]).all() and images.max() == 255 and images.min() == 0
    assert (images[:, ::4, ::4, 0].repeat(4, 1).repeat(4, 2) == images[..., 0]).all()


def test_corrupted_copies_use_every_corruption_and_are_deterministic():
    images, _, _ = demo.digits()
    some = images[:30]
    once, again = demo.corrupted_copies(some, 3, seed=0), demo.corrupted_copies(some, 3, seed=0)
    assert np.array_equal(once, again)
    changed = [not np.array_equal(once[i], some[i]) for i in range(30)]
    assert sum(changed) >= 28  # every corruption alters a digit at severity 3 (ties aside)


def test_demo_end_to_end_short(tmp_path, capsys):
    out = tmp_path / "demo"
    status = main(["demo", "--out", str(out), "--epochs", "2", "--passes", "5", "--featureless", "20",
                   "--json", str(tmp_path / "s.json")])
    assert status == 0
    printed = capsys.readouterr().out
    assert "micro-F1, all images (original model)" in printed
    assert "Against corruption severity" in printed
    summary = json.loads((tmp_path / "s.json").read_text())
    assert [row["severity"] for row in summary["severity"]] == [0, 1, 2, 3, 4, 5]
    for name in ("model.keras", "model.tflite", "report/passes.npz", "summary.json", "report/report.md",
                 "report/severity.png", "report/risk_coverage.png", "split.json", "SUMMARY.md"):
        assert (out / name).is_file(), name
    report = (out / "report" / "report.md").read_text()
    assert "severity.png" in report and "gallery_abstained.png" in report
    # The demo is the fit workflow: every stage left its marker, the parts are disjoint.
    assert sorted(p.stem for p in (out / "stages").iterdir()) == sorted(
        ["split", "train", "convert", "calibrate", "evaluate", "summary"])
    parts = demo.split_of(out)
    joined = np.concatenate(list(parts.values()))
    assert len(joined) == len(np.unique(joined)) == 1797
    assert summary["data"]["test"] == len(parts["test"]) and "expected_coverage" in summary
    assert "MC passes in one invoke" in printed
    # outlier exposure on generated featureless images, recorded as --outliers would record it
    train = json.loads((out / "stages" / "train.json").read_text())
    assert train["settings"]["outliers"] == ["featureless:20"]
    history = json.loads((out / "model.history.json").read_text())
    assert history["settings"]["outliers"] == 20


def test_a_bad_featureless_count_is_refused_before_anything_runs(tmp_path, capsys):
    status = main(["demo", "--out", str(tmp_path / "d"), "--featureless", "-1"])
    assert status == 2 and "--featureless must be in [0, 1,000,000], got -1" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
