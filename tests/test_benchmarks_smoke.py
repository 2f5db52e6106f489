"""Smoke run of the benchmark suite on the smallest model: it runs end to end and reports every
section. No timing is asserted (benchmarks are not timed tests); the checks are on what the
numbers must be whatever the machine's speed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("sklearn")
pytest.importorskip("PIL")

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "run_all.py"


def test_quick_suite_runs_and_reports_every_section(tmp_path):
    out = tmp_path / "report.json"
    result = subprocess.run([sys.executable, str(SUITE), "--quick", "--json", str(out)],
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    for heading in ("## Latency", "## Size", "## Host cost", "## Peak resident memory",
                    "## Accuracy parity", "## Goals"):
        assert heading in result.stdout
    assert report["quick"] and report["machine"]["cores"] >= 1
    assert report["versions"]["tensorflow"] and report["versions"]["ai-edge-litert"] != "not installed"

    litert = [r for r in report["latency"] if r["backend"] == "ai_edge_litert"]
    assert [(r["backbone"], r["threads"]) for r in litert] == [("small_cnn", 1), ("small_cnn", 2)]
    for row in report["latency"]:
        assert set(row["ms"]) == {"deterministic", "mc10", "mc30", "mc100",
                                  "separate10", "separate30", "separate100"}
        assert all(value > 0 for value in row["ms"].values())
    # tflite-runtime is timed only where the Pi venv exists, and the report says which.
    timed_pi = any(r["backend"] == "tflite_runtime" for r in report["latency"])
    assert timed_pi == report["pi_note"].startswith("tflite-runtime timed in")

    (size,) = report["size"]
    assert size["backbone"] == "small_cnn" and size["input"] == 32
    assert size["int8"] < size["float"] / 2  # int8 weights are a quarter of float32 ones
    assert set(report["host_ms"]) >= {"aggregate_decide_1", "per_image_worst", "masks_f128"}
    assert {m["backend"] for m in report["memory"]} >= {"ai_edge_litert"}
    assert all(m["peak_rss_mb"] > 10 for m in report["memory"])

    (parity,) = report["accuracy"]
    # small_cnn learns the digits, and int8 keeps its decisions.
    assert parity["keras_accuracy"] > 0.8 and parity["agreement"] > 0.8
    assert set(report["goals"]) == {"one_invoke_mc30_within_1.05x", "int8_at_most_0.27x_float",
                                    "host_under_1ms_per_image"}


def test_int8_layers_compares_files_layer_by_layer(tiny_keras, tiny_tflite, tiny_images, tmp_path):
    import numpy as np

    sys.path.insert(0, str(SUITE.parent))
    import int8_layers

    from tests._dummies import tiny
    from tfuq.conversion.convert import convert

    corrected = tmp_path / "corrected.tflite"
    calibration, _ = tiny.images(128, seed=3)
    convert(tiny_keras, calibration, passes=8, calibration_samples=96, check_samples=0,
            labels=tiny.LABELS, bias_correction=16).save(corrected)
    keras_path = tmp_path / "tiny.keras"
    tiny_keras.save(keras_path)
    data = tmp_path / "test.npz"
    np.savez(data, x=tiny_images[0], y=tiny_images[1])
    out = tmp_path / "layers.json"
    assert int8_layers.main([str(keras_path), tiny_tflite, str(corrected), "--data", str(data),
                             "--images", "8", "--eval", "64", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["float"]["accuracy"] > 0.9  # the easy colours; chance is 0.25
    for found in result["files"].values():
        assert found["agreement"] > 0.9 and abs(found["accuracy"] - result["float"]["accuracy"]) < 0.1
        assert found["layers"] and all(0 <= row["mean_share"] <= 1 + 1e-9 for row in found["layers"])
        assert all(0 <= row["relative_rms_error"] < 0.5 for row in found["layers"])
    assert {row["tensor"] for row in result["files"][tiny_tflite]["layers"]} == {
        row["tensor"] for row in result["files"][str(corrected)]["layers"]}
