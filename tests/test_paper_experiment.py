"""The seed paper's experiment script (benchmarks/paper_experiment.py) on tiny data.

A smoke run of the whole pipeline (train, convert, evaluate both precisions, pool, print,
plot, resume) on synthetic colour images, plus the pieces whose numbers can be checked by
hand or by an independent route. No timing is asserted.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("matplotlib")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "paper_experiment.py"


@pytest.fixture(scope="module")
def experiment():
    spec = importlib.util.spec_from_file_location("paper_experiment", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_experiment"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("paper_experiment", None)


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory) -> tuple[str, str]:
    from tests._dummies import tiny

    folder = tmp_path_factory.mktemp("paper_data")
    paths = []
    for name, count, seed in (("train", 96, 1), ("test", 32, 2)):
        images, labels = tiny.images(count, seed=seed, size=32)
        path = folder / f"{name}.npz"
        np.savez(path, x=images, y=labels, label_names=np.array(tiny.LABELS))
        paths.append(f"npz:{path}")
    return paths[0], paths[1]


def _row(images, correct, accepted, accepted_correct, ignored_wrong, aurc, auroc, ece):
    return {
        "counts": {"images": images, "correct": correct, "accepted": accepted,
                   "accepted_correct": accepted_correct, "ignored_wrong": ignored_wrong},
        "aurc": aurc, "auroc_errors": auroc, "ece": ece,
    }


def test_pooling_by_hand(experiment):
    # 10 images: 6 right, 5 kept (4 right), 3 of the 5 ignored wrong; 10 more: 2 right,
    # 2 kept (1 right), 7 of the 8 ignored wrong. Together: 20 images, 8 right, 7 kept,
    # 5 kept right, 13 ignored of which 10 wrong.
    rows = [_row(10, 6, 5, 4, 3, 0.2, 0.7, 0.1), _row(10, 2, 2, 1, 7, 0.4, None, 0.3)]
    result = experiment.pooled(rows)
    assert result["micro_f1_all"] == pytest.approx(8 / 20)
    assert result["micro_f1_accepted"] == pytest.approx(5 / 7)
    assert result["ignored"] == pytest.approx(13 / 20)
    assert result["ignored_would_be_wrong"] == pytest.approx(10 / 13)
    assert result["coverage"] == pytest.approx(7 / 20)
    assert result["selective_risk"] == pytest.approx(2 / 7)
    assert result["aurc"] == pytest.approx(0.3)
    assert result["auroc_errors"] == pytest.approx(0.7)  # the undefined one is left out
    assert result["ece"] == pytest.approx(0.2)
    assert result["counts"]["images"] == 20 and result["datasets"] == 2
    # Nothing accepted: the accepted-image numbers are undefined, not zero.
    none_kept = experiment.pooled([_row(4, 1, 0, 0, 3, 0.5, 0.5, 0.5)])
    assert none_kept["micro_f1_accepted"] is None and none_kept["selective_risk"] is None
    assert none_kept["ignored_would_be_wrong"] == pytest.approx(3 / 4)


def test_dataset_specs_of_both_modes(experiment):
    assert experiment.corrupted_spec("cifar100:test", "fog", 3) == "cifar100_corrupted/fog_3:test"
    assert (experiment.corrupted_spec("npz:/d/test.npz", "fog", 3)
            == "cifar100_corrupted/fog_3:npz:/d/test.npz")
    full = experiment.full_setup()
    assert full.backbones == ("resnet50", "efficientnetb0") and full.weights == "imagenet"
    names = [d.name for d in experiment.datasets(full)]
    assert names[0] == "test" and len(names) == 1 + 15 * 5 and "zoom_blur_5" in names
    assert all(d.limit is None for d in experiment.datasets(full))
    reduced = experiment.reduced_setup("/somewhere")
    found = experiment.datasets(reduced)
    assert [d.name for d in found[:2]] == ["test", "test_subset"]
    assert found[0].limit is None and {d.limit for d in found[1:]} == {reduced.corrupted_limit}
    assert found[2].spec == "cifar100_corrupted/gaussian_noise_1:npz:/somewhere/test_50_per_class.npz"
    # Every spec parses with the library that will load it.
    from tfuq import data

    for dataset in experiment.datasets(full) + found:
        data.parse_spec(dataset.spec)


def test_float_passes_match_the_masked_keras_graph(experiment, tiny_keras, tiny_images):
    """FloatMC (trunk once, head per pass) against tfuq.conversion.rewrite's masked graph, image by image."""
    from tfuq.conversion import rewrite
    from tfuq.runtime import masks

    images = tiny_images[0][:6]
    passes = 5
    masked, specs = rewrite.build_masked(tiny_keras, passes)
    drawn = masks.masks_for(7, passes, [(s.shape[1:], s.rate) for s in specs])
    by_layer = {s.layer: m for s, m in zip(specs, drawn, strict=True)}
    got = experiment.FloatMC(tiny_keras)(images, by_layer)
    expected = np.stack([
        np.asarray(masked([image[None].astype(np.float32), *(m.astype(np.float32) for m in drawn)]))
        for image in images
    ], axis=1)
    assert got.shape == (passes, len(images), 4)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not np.allclose(got[0], got[1])  # the passes differ: the masks were applied


def test_pipeline_tables_json_plot_and_resume(experiment, tiny_files, tmp_path, capsys):
    train_spec, test_spec = tiny_files
    out = tmp_path / "run"
    argv = ["--reduced", "--train", train_spec, "--test", test_spec, "--out", str(out),
            "--epochs", "1", "--dense", "16", "--limit", "8", "--corruptions", "fog",
            "gaussian_noise", "--severities", "1", "5", "--passes", "4",
            "--calibration-samples", "16", "--check-samples", "8", "--detail-severities", "5"]
    assert experiment.main(argv) == 0
    printed = capsys.readouterr().out

    headings = [experiment.HEADINGS[c] for c in experiment.DISPLAY_COLUMNS]
    header = "| backbone | precision | severity | " + " | ".join(headings) + " |"
    assert header in printed
    assert "| backbone | precision | corruption | " + " | ".join(headings) + " |" in printed
    assert "| small_cnn | int8 | fog |" in printed and "| small_cnn | float | 5 |" in printed

    result = json.loads((out / "paper_experiment.json").read_text())
    assert result["format"] == "tfuq-paper-experiment" and result["mode"] == "reduced"
    assert set(result["backbones"]["small_cnn"]) == {"training", "conversion"}
    assert result["backbones"]["small_cnn"]["training"]["epochs_run"] == 1
    assert result["backbones"]["small_cnn"]["conversion"]["full_integer"] is True
    names = ["test", "test_subset", "fog_1", "fog_5", "gaussian_noise_1", "gaussian_noise_5"]
    rows = result["rows"]
    assert [(r["dataset"], r["precision"]) for r in rows] == [
        (name, precision) for name in names for precision in ("float", "int8")
    ]
    for row in rows:
        assert set(experiment.COLUMNS) <= set(row)
        c = row["counts"]
        assert c["images"] == (32 if row["dataset"] == "test" else 8)
        assert 0 <= c["accepted_correct"] <= min(c["accepted"], c["correct"])
        assert c["ignored_wrong"] == (c["images"] - c["accepted"]) - (c["correct"] - c["accepted_correct"])
        assert row["micro_f1_all"] == pytest.approx(c["correct"] / c["images"])
        assert row["coverage"] == pytest.approx(c["accepted"] / c["images"])
        assert row["ignored"] == pytest.approx(1 - row["coverage"])
        assert 0 <= row["top1_agreement_float_int8"] <= 1
    # Severity 0 is the clean subset; 1 and 5 pool the two corruptions.
    severity = {(r["precision"], r["severity"]): r for r in result["severity"]}
    assert set(severity) == {(p, s) for p in ("float", "int8") for s in (0, 1, 5)}
    subset = next(r for r in rows if r["dataset"] == "test_subset" and r["precision"] == "int8")
    assert severity["int8", 0]["micro_f1_all"] == subset["micro_f1_all"]
    assert severity["int8", 5]["counts"]["images"] == 16 and severity["int8", 5]["datasets"] == 2

    plot = out / "paper_experiment.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A second run reuses the model and every finished dataset, and gives the same rows.
    model_time = (out / "small_cnn" / "model.keras").stat().st_mtime_ns
    (out / "small_cnn" / "rows" / "fog_5.json").unlink()
    assert experiment.main(argv) == 0
    capsys.readouterr()
    again = json.loads((out / "paper_experiment.json").read_text())
    assert (out / "small_cnn" / "model.keras").stat().st_mtime_ns == model_time
    assert again["rows"] == rows

    # Settings that would change the cached model stop the run with a message.
    assert experiment.main([*argv[:-2], "--epochs", "2"]) == 2
    assert "other settings (epochs)" in capsys.readouterr().err


def test_reduced_setup_reads_the_shared_subset(experiment):
    if not experiment.SHARED_DATA.is_dir():
        pytest.skip(f"no shared data at {experiment.SHARED_DATA}")
    from tfuq import data

    setup = experiment.reduced_setup()
    test = data.load_spec(setup.test_spec, limit=20, seed=setup.seed)
    assert test.images.shape == (20, 32, 32, 3) and len(test.label_names) == 100
    # The seeded subset spans the classes although the file is sorted by class.
    assert len(np.unique(test.labels)) > 10
    corrupted = data.load_spec(experiment.datasets(setup)[2].spec, limit=20, seed=setup.seed)
    np.testing.assert_array_equal(corrupted.labels, test.labels)
    assert not np.array_equal(corrupted.images, test.images)


def test_pretrained_lite_mode_pipeline_with_a_small_model(experiment, tiny_files, tmp_path, capsys):
    # The --pretrained-lite pipeline (calibration hold-out, cached features with augmented
    # views, kept probabilities, OOD sets, the analysis beyond the paper) on a small_cnn.
    train_spec, test_spec = tiny_files
    out = tmp_path / "lite"
    argv = ["--pretrained-lite", "--train", train_spec, "--test", test_spec, "--out", str(out),
            "--backbones", "small_cnn", "--weights", "none", "--input-size", "32",
            "--trainable-layers", "2", "--views", "2", "--calibration-per-class", "4",
            "--epochs", "1", "--dense", "16", "--limit", "8", "--corruptions", "fog",
            "--severities", "3", "5", "--passes", "4", "--calibration-samples", "16",
            "--check-samples", "8", "--detail-severities", "5"]
    assert experiment.main(argv) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "paper_experiment.json").read_text())
    assert result["mode"] == "pretrained-lite" and result["frost"] in ("photographs", "procedural")
    training = result["backbones"]["small_cnn"]["training"]
    assert training["train_samples"] + training["validation_samples"] == 96 - 16  # 4 per class held out
    kept = out / "small_cnn" / "probabilities"
    import ood_dev
    import ood_sets

    real = {"cifar10", "tinyimagenet_unseen"} if ood_dev.available() else set()  # shared real photos
    assert {p.stem for p in kept.glob("*.npz")} == {"test", "test_subset", "fog_3", "fog_5", "calibration",
                                                   "train_bank"} | {f"ood_{name}" for name in {*ood_sets.NAMES, *real}}
    with np.load(kept / "test.npz") as test:  # what the feature scores of ood_scores.py read
        assert {"features", "det_logits", "mc_mean_logits"} <= set(test.files)
    with np.load(kept / "calibration.npz") as calibration:
        assert calibration["int8"].shape == (4, 16, 4) and calibration["deterministic"].shape == (16, 4)
        assert sorted(np.bincount(calibration["labels"]).tolist()) == [4, 4, 4, 4]
    beyond = json.loads((out / "paper_beyond.json").read_text())
    assert {(r["severity"], r["precision"]) for r in beyond["risk_coverage"]} == {
        (s, p) for s in (0, 3, 5) for p in ("float", "int8")}
    assert {r["set"] for r in beyond["ood"]["detection"]} == {*ood_sets.NAMES, *real}
    assert "Out-of-distribution detection" in printed and "interval Z=1 (paper)" in printed
    assert (out / "paper_beyond_rc.png").read_bytes()[:4] == b"\x89PNG"
    # --tables-only reads what a running or stopped run has finished, without TensorFlow.
    (out / "small_cnn" / "rows" / "fog_5.json").unlink()
    assert experiment.main([*argv, "--tables-only"]) == 0
    partial = capsys.readouterr().out
    assert "| small_cnn | int8 | 3 |" in partial and "| small_cnn | int8 | 5 |" not in partial
    assert "err.all" in partial
    assert "not finished yet: 1 datasets (small_cnn/fog_5" in partial
    # The calibration images were never trained on: none of them is in the training rows.
    from tfuq import data

    pool = data.load_spec(train_spec)
    setup = experiment.parse_args(argv)[1]
    held = experiment.calibration_indices(setup, pool.labels)
    assert len(held) == 16 and not set(held) & set(experiment.training_indices(setup, pool.labels))


def test_interval_margin_agrees_with_the_interval_rule(experiment):
    sys.path.insert(0, str(SCRIPT.parent))
    import paper_beyond

    from tfuq.runtime import abstain
    from tfuq.runtime.aggregate import aggregate

    # By hand: means (0.6, 0.3, 0.1), stds (0.1, 0.05, 0.0): z = min(0.3 / 0.15, 0.5 / 0.1) = 2.
    z = paper_beyond.interval_margin(np.array([[0.6, 0.3, 0.1]]), np.array([[0.1, 0.05, 0.0]]))
    assert z[0] == pytest.approx(2.0)
    rng = np.random.default_rng(0)
    passes = rng.dirichlet(np.ones(5) * 0.5, size=(6, 200))
    summary = aggregate(passes)
    margin = paper_beyond.interval_margin(summary.mean, summary.std)
    for conf_factor in (0.0, 0.5, 1.0, 2.0):
        np.testing.assert_array_equal(margin > conf_factor, abstain.accept_interval(summary, conf_factor))
