"""`tfuq evaluate` and `tfuq calibrate`, invoked as a user would, on the tiny converted model."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import f1_score

import tfuq
from tfuq.cli.main import main


@pytest.fixture(scope="module")
def hard_data(tmp_path_factory):
    """Noisy, dimmed colour images: the tiny model gets most right, not all."""
    from tests._dummies import tiny

    rng = np.random.default_rng(4)
    labels = np.arange(240) % len(tiny.COLOURS)
    scale = rng.uniform(0.3, 1.0, (240, 1, 1, 1))
    pixels = tiny.COLOURS[labels][:, None, None, :] * scale + rng.normal(0, 90, (240, 16, 16, 3))
    images = np.clip(pixels, 0, 255).astype(np.uint8)
    folder = tmp_path_factory.mktemp("data")
    np.savez(folder / "test.npz", x=images, y=labels)
    np.savez(folder / "unlabelled.npz", x=images[:20])
    np.savez(folder / "ood.npz", x=rng.integers(0, 256, (60, 16, 16, 3), dtype=np.uint8))
    np.savez(folder / "bad_labels.npz", x=images[:8], y=np.full(8, 7))
    return folder


def cli(*argv):
    return main([str(a) for a in argv])


def test_evaluate_prints_the_table_and_writes_json_and_arrays(tiny_tflite, hard_data, tmp_path, capsys):
    status = cli("evaluate", tiny_tflite, "--data", hard_data / "test.npz", "--rule", "interval",
                 "--conf-factor", "1.0", "--json", tmp_path / "report.json",
                 "--save-passes", tmp_path / "passes.npz", "--seed", "5")
    out = capsys.readouterr().out
    assert status == 0
    assert "micro-F1, all images (original model)" in out and "share ignored" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["rule"] == {"rule": "interval", "conf_factor": 1.0} and report["seed"] == 5
    assert report["images"] == 240 and report["passes"] == 8 and report["classes"] == 4

    # Recompute the headline numbers from the saved arrays by an independent route.
    with np.load(tmp_path / "passes.npz") as saved:
        probabilities, labels = saved["probabilities"], saved["labels"]
        predicted, accept = saved["predicted"], saved["accept"]
        np.testing.assert_allclose(saved["mean"], probabilities.mean(axis=0), atol=1e-6)
        np.testing.assert_allclose(saved["std"], probabilities.std(axis=0), atol=1e-6)
    assert f1_score(labels, predicted, average="micro") == pytest.approx(report["micro_f1_all"])
    assert f1_score(labels[accept], predicted[accept], average="micro") == pytest.approx(
        report["micro_f1_accepted"])
    assert accept.mean() == pytest.approx(report["coverage"])
    assert (predicted != labels)[~accept].mean() == pytest.approx(report["ignored_would_be_wrong"])
    assert 0.5 < report["micro_f1_all"] < 1.0 and 0.0 < report["coverage"] < 1.0
    # The passes are the runtime's, with the seed asked for.
    images = np.load(hard_data / "test.npz")["x"][:10]
    direct = tfuq.load(tiny_tflite).run(images, seed=5)
    np.testing.assert_array_equal(probabilities[:, :10], direct)


def test_evaluate_json_to_stdout_and_ood(tiny_tflite, hard_data, capsys):
    # --data as a path, --ood as a dataset spec.
    status = cli("evaluate", tiny_tflite, "--data", hard_data / "test.npz", "--ood",
                 f"npz:{hard_data / 'ood.npz'}", "--limit", "40", "--json", "-", "--rule",
                 "threshold", "--score", "predictive_entropy", "--threshold", "0.5")
    captured = capsys.readouterr()
    assert status == 0
    report = json.loads(captured.out)  # stdout holds the JSON alone
    assert "micro-F1" in captured.err
    assert report["images"] == 40 and report["ood_images"] == 40
    assert report["score"] == "predictive_entropy"
    assert 0.0 <= report["auroc_ood"] <= 1.0 and "fpr95_ood" in report["scores"]["variation_ratio"]


def test_evaluate_takes_generated_featureless_images_as_an_ood_set(tiny_tflite, hard_data, capsys):
    status = cli("evaluate", tiny_tflite, "--data", hard_data / "test.npz", "--ood", "featureless:30",
                 "--limit", "40", "--json", "-")
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads(captured.out)
    assert report["images"] == 40 and report["ood_images"] == 30
    assert 0.0 <= report["auroc_ood"] <= 1.0


def test_evaluate_report_folder(tiny_tflite, hard_data, tmp_path, capsys):
    status = cli("evaluate", tiny_tflite, "--data", hard_data / "test.npz", "--limit", "60",
                 "--report", tmp_path / "report")
    assert status == 0
    names = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"report.md", "risk_coverage.png", "reliability.png", "scores_errors.png"} <= names
    # The gallery of what the model's rule refused (the hard images leave some refused here).
    assert "gallery_abstained.png" in names
    assert "](gallery_abstained.png)" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--rule", "threshold", "--score", "mutual_information"], "needs --score and --threshold"),
        (["--rule", "interval", "--threshold", "0.3"], "--threshold needs --rule threshold"),
        (["--conf-factor", "2"], "--conf-factor needs --rule interval"),
        (["--rule", "interval", "--conf-factor", "-1"], "conf_factor"),
        (["--limit", "0"], "--limit"),
        (["--json", "/nonexistent/folder/r.json"], "folder does not exist"),
    ],
)
def test_evaluate_bad_options_fail_in_one_line(tiny_tflite, hard_data, capsys, extra, message):
    status = cli("evaluate", tiny_tflite, "--data", hard_data / "test.npz", *extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err[-1].startswith("tfuq evaluate: error:") and message in err[-1]


@pytest.mark.parametrize(
    "data, message",
    [("missing.npz", "not found"), ("unlabelled.npz", "no labels"),
     ("bad_labels.npz", "out of range")],
)
def test_evaluate_bad_data_fails_in_one_line(tiny_tflite, hard_data, capsys, data, message):
    assert cli("evaluate", tiny_tflite, "--data", hard_data / data) == 2
    assert message in capsys.readouterr().err


def test_evaluate_rejects_a_file_that_is_not_a_model(hard_data, tmp_path, capsys):
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(b"not a model at all")
    assert cli("evaluate", fake, "--data", hard_data / "test.npz") == 2
    assert "error" in capsys.readouterr().err


def test_calibrate_writes_the_rule_that_evaluate_then_uses(tiny_tflite, hard_data, tmp_path, capsys):
    model = tmp_path / "model.tflite"
    shutil.copy(tiny_tflite, model)
    status = cli("calibrate", model, "--data", hard_data / "test.npz", "--target-risk", "0.2",
                 "--confidence", "0.9", "--score", "mutual_information", "--json",
                 tmp_path / "cal.json", "--no-ood-guard")
    assert status == 0
    assert "guaranteed" in capsys.readouterr().out
    decision = tfuq.read_config(model).decision
    assert decision.rule == "threshold" and decision.score == "mutual_information"
    calibration = decision.calibration.to_dict()
    assert calibration["risk_bound"] < 0.2 and calibration["n"] == 240
    assert calibration["target_risk"] == 0.2 and calibration["confidence"] == 0.9
    assert json.loads((tmp_path / "cal.json").read_text())["written"] is True

    assert cli("evaluate", model, "--data", hard_data / "test.npz", "--json", "-") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rule"] == decision.to_dict()
    # Same images, same seed: the calibration's own numbers come back.
    assert report["coverage"] == pytest.approx(calibration["coverage"])
    assert report["selective_risk"] == pytest.approx(calibration["selective_risk"])


def test_evaluate_combined_and_interval_rules(tiny_tflite, hard_data, capsys):
    from tfuq.runtime import abstain

    passes = tfuq.load(tiny_tflite).run(np.load(hard_data / "test.npz")["x"], seed=0)
    coverage = {}
    for extra in (["--rule", "combined", "--threshold", "0.9"], ["--rule", "interval"], []):
        assert cli("evaluate", tiny_tflite, "--data", hard_data / "test.npz", *extra, "--json", "-") == 0
        report = json.loads(capsys.readouterr().out)
        coverage[extra[1] if extra else "model"] = report["coverage"]
        assert report["coverage"] == pytest.approx(abstain.decide(passes, report["rule"]).accept.mean())
    assert report["rule"] == abstain.DEFAULT_RULE  # what the model carries
    # The floor can only take away from what the interval rule accepts.
    assert coverage["combined"] <= coverage["model"] <= coverage["interval"]


def test_calibrate_within_the_default_keeps_the_interval_part(tiny_tflite, hard_data, tmp_path, capsys):
    from tfuq.runtime import abstain

    model = tmp_path / "model.tflite"
    shutil.copy(tiny_tflite, model)
    assert cli("calibrate", model, "--data", hard_data / "test.npz", "--target-risk", "0.2",
               "--within", "default", "--score", "mutual_information") == 0
    assert "and interval (Z = 1) and max_probability >= 0.5" in capsys.readouterr().out
    decision = tfuq.read_config(model).decision
    assert decision.rule == "all"
    # the OOD guard (on the MC predictive entropy) comes first, then the default's parts
    assert decision.rules[0].rule == "ood" and decision.rules[0].score == "predictive_entropy"
    assert [part.to_dict() for part in decision.rules[1:3]] == abstain.DEFAULT_RULE["rules"]
    assert decision.rules[3].score == "mutual_information"
    # The combined rule's numbers on the calibration images, recomputed from the passes.
    passes, scores = tfuq.load(model).run_scored(np.load(hard_data / "test.npz")["x"], seed=0)
    labels = np.load(hard_data / "test.npz")["y"]
    accept = abstain.decide(passes, decision.to_dict(), scores).accept
    calibration = decision.calibration
    assert accept.mean() == pytest.approx(calibration.coverage)
    assert (passes.mean(0).argmax(-1) != labels)[accept].sum() == calibration.errors
    assert calibration.risk_bound < 0.2


def test_calibrate_infeasible_exits_2_and_writes_nothing(tiny_tflite, hard_data, tmp_path, capsys):
    model = tmp_path / "model.tflite"
    shutil.copy(tiny_tflite, model)
    before = model.read_bytes()
    status = cli("calibrate", model, "--data", hard_data / "test.npz", "--target-risk", "0.001")
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err[-1].startswith("tfuq calibrate: error: target risk 0.001 cannot be guaranteed")
    assert model.read_bytes() == before


def test_calibrate_dry_run_writes_nothing(tiny_tflite, hard_data, tmp_path, capsys):
    model = tmp_path / "model.tflite"
    shutil.copy(tiny_tflite, model)
    before = model.read_bytes()
    assert cli("calibrate", model, "--data", hard_data / "test.npz", "--target-risk", "0.25",
               "--dry-run", "--json", "-") == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["feasible"] and not payload["written"]
    assert payload["ood_guard"]["rule"] == "ood"
    assert [part["rule"] for part in payload["rule"]["rules"]] == ["ood", "threshold"]
    assert payload["rule"]["rules"][1]["score"] == "max_probability"
    assert model.read_bytes() == before


@pytest.mark.parametrize("extra", [["--target-risk", "1.5"], ["--target-risk", "0.1", "--confidence", "0"]])
def test_calibrate_bad_settings_fail_in_one_line(tiny_tflite, hard_data, capsys, extra):
    assert cli("calibrate", tiny_tflite, "--data", hard_data / "test.npz", *extra) == 2
    assert "strictly between 0 and 1" in capsys.readouterr().err


def test_help_has_an_example():
    for command in ("evaluate", "calibrate"):
        result = subprocess.run(
            [sys.executable, "-m", "tfuq.cli.main", command, "--help"],
            capture_output=True, text=True, check=True,
        )
        assert "example:" in result.stdout and f"tfuq {command} model.tflite" in result.stdout
