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
