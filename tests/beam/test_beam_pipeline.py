"""tfuq.beam: records that do not depend on workers or batches, and equal the runtime's numbers.

Runs the DirectRunner on the tiny converted model. Skipped where Apache Beam is not installed
(the ``beam`` extra; CI installs it).
"""

import json

import numpy as np
import pytest

beam = pytest.importorskip("apache_beam")

from tfuq import runtime  # noqa: E402
from tfuq.beam import pipeline  # noqa: E402
from tfuq.runtime import abstain, masks  # noqa: E402
from tfuq.runtime.aggregate import aggregate  # noqa: E402

IN_MEMORY = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
TWO_PROCESSES = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """48 hard images in three .npz shards of uneven size, and all of them in order."""
    from tests._dummies import tiny

    rng = np.random.default_rng(11)
    labels = np.arange(48) % len(tiny.COLOURS)
    pixels = tiny.COLOURS[labels][:, None, None, :] * 0.6 + rng.normal(0, 90, (48, 16, 16, 3))
    images = np.clip(pixels, 0, 255).astype(np.uint8)
    folder = tmp_path_factory.mktemp("shards")
    for name, part in (("a", slice(0, 5)), ("b", slice(5, 30)), ("c", slice(30, 48))):
        np.savez(folder / f"part-{name}.npz", x=images[part], y=labels[part])
    return folder, images, labels


def _records(model_path, shards, folder, options, batch_size, seeding, fmt="jsonl"):
    data = pipeline.sources(f"npz:{shards / 'part-*.npz'}", (16, 16))
    pipeline.run(model_path, data, str(folder), fmt=fmt, options=pipeline.pipeline_options(
        "direct", options), seed=5, seeding=seeding, batch_size=batch_size, keep_passes=True)
    return pipeline.read_records(folder)


@pytest.mark.parametrize("seeding", ["shared", "per-image"])
def test_records_are_identical_across_workers_and_batch_sizes(tiny_tflite, shards, tmp_path,
                                                              seeding):
    folder, images, _ = shards
    runs = [
        _records(tiny_tflite, folder, tmp_path / "one", IN_MEMORY, 1, seeding),
        _records(tiny_tflite, folder, tmp_path / "two", TWO_PROCESSES, 7, seeding),
        _records(tiny_tflite, folder, tmp_path / "big", IN_MEMORY, 64, seeding, fmt="parquet"),
    ]
    assert len(runs[0]) == len(images)
    text = [json.dumps(records, sort_keys=True, default=lambda a: a.tolist()) for records in runs]
    assert text[0] == text[1] == text[2]
    seeds = {r["seed"] for r in runs[0]}
    assert len(seeds) == (1 if seeding == "shared" else len(images))


def test_a_record_holds_what_the_runtime_computes_for_the_image(tiny_tflite, shards, tmp_path):
    folder, images, labels = shards
    records = _records(tiny_tflite, folder, tmp_path / "r", IN_MEMORY, 4, "per-image")
    model = runtime.load(tiny_tflite)
    rule = model.config.decision_rule()
    # records come back in source order: part-a, part-b, part-c, i.e. the original order
    for record, image, label in zip(records, images, labels, strict=True):
        seed = masks.image_seed(5, image)
        passes = model.run(image, seed)[:, 0]
        summary = aggregate(passes, abstain.rule_conf_factor(rule))
        assert record["seed"] == str(seed) and record["label"] == label
        assert record["key"] == f"{masks.image_key(image):016x}"
        np.testing.assert_array_equal(record["passes"], passes)
        assert np.array_equal(record["mean"], summary.mean)
        assert np.array_equal(record["std"], summary.std)
        assert record["mutual_information"] == float(summary.mutual_information)
        assert record["accept"] == bool(abstain.decide(summary, rule).accept)


@pytest.mark.parametrize("kind", ["masked", "in-graph"])
def test_the_merged_report_equals_summarize_on_the_passes(request, shards, tmp_path, kind):
    from tfuq import evaluation

    model_path = request.getfixturevalue("tiny_tflite" if kind == "masked" else
                                         "tiny_in_graph_tflite")
    folder, images, labels = shards
    records = _records(model_path, folder, tmp_path / "r", IN_MEMORY, 3, "shared")
    model = runtime.load(model_path)
    assert model.mode == kind
    rule = abstain.interval_rule(0.5)
    merged = pipeline.merge(records, rule, passes=model.passes).report
    direct = evaluation.summarize(model.run(images, seed=5), labels, rule).report
    assert merged == direct


def test_a_records_folder_that_holds_files_is_refused_and_a_failed_run_leaves_nothing(
        tiny_tflite, shards, tmp_path):
    folder, _, _ = shards
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        _records(tiny_tflite, folder, tmp_path / "full", IN_MEMORY, 4, "shared")
    bad = tmp_path / "bad"
    bad.mkdir()
    np.savez(bad / "part-x.npz", x=np.zeros((2, 8, 8, 3), np.uint8))  # not the model size
    with pytest.raises(Exception, match="the model takes"):
        _records(tiny_tflite, bad, tmp_path / "out", IN_MEMORY, 4, "shared")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "full"]


def test_a_worker_runs_the_pipeline_without_importing_tensorflow(tiny_tflite, shards, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    folder, _, _ = shards
    code = (
        "import json, sys\n"
        "from tfuq.beam import pipeline\n"
        f"data = pipeline.sources('npz:{folder}/part-*.npz', (16, 16))\n"
        f"pipeline.run({tiny_tflite!r}, data, {str(tmp_path / 'r')!r}, options="
        f"pipeline.pipeline_options('direct', {IN_MEMORY!r}), seeding='per-image')\n"
        "records = pipeline.read_records(" + repr(str(tmp_path / "r")) + ")\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'tensorflow_datasets', 'tf_keras'))\n"
        "print(json.dumps([len(records), heavy]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2], check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [48, []]
