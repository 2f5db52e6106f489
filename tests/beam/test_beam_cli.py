"""`tfuq evaluate --runner` and `tfuq predict --runner`, invoked as a user would.

The equality the issue asks for: the DirectRunner in multi-process mode writes per-image
records whose merged metrics equal single-process `tfuq evaluate` on the same digits.
"""

import json

import numpy as np
import pytest

pytest.importorskip("apache_beam")

from tfuq.cli.main import main  # noqa: E402

TWO_PROCESSES = "--direct_num_workers=2 --direct_running_mode=multi_processing"


def cli(*argv):
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """scikit-learn's handwritten digits 0-3 as 16x16 RGB (the tiny model has 4 classes)."""
    pytest.importorskip("sklearn")
    from tfuq.demo import digits as load_digits

    images, labels, _ = load_digits(size=16)
    keep = labels < 4
    folder = tmp_path_factory.mktemp("digits")
    np.savez(folder / "test.npz", x=images[keep][:160], y=labels[keep][:160])
    rng = np.random.default_rng(3)
    np.savez(folder / "ood.npz", x=rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8))
    return folder


@pytest.mark.parametrize("seeding", ["per-image", "shared"])
def test_evaluate_with_the_direct_runner_in_two_processes_equals_one_process(
        tiny_tflite, digits, tmp_path, seeding):
    common = ["evaluate", tiny_tflite, "--data", digits / "test.npz", "--ood",
              digits / "ood.npz", "--seed", "3", "--seeding", seeding]
    assert cli(*common, "--json", tmp_path / "single.json") == 0
    assert cli(*common, "--json", tmp_path / "beam.json", "--runner", "direct",
               f"--pipeline-options={TWO_PROCESSES}", "--batch-size", "9",
               "--records", tmp_path / "records",
               "--records-format", "parquet" if seeding == "shared" else "jsonl") == 0
    single = json.loads((tmp_path / "single.json").read_text())
    merged = json.loads((tmp_path / "beam.json").read_text())
    assert merged.pop("runner") == "direct" and merged.pop("records")
    assert merged == single
    assert single["images"] == 160 and single["ood_images"] == 40


def test_evaluate_runner_direct_without_records_equals_one_process(tiny_tflite, digits, tmp_path):
    # The command as written: no --records, so they go to a temporary folder.
    assert cli("evaluate", tiny_tflite, "--data", digits / "test.npz", "--json", tmp_path / "single.json") == 0
    assert cli("evaluate", tiny_tflite, "--data", digits / "test.npz", "--runner", "direct",
               "--json", tmp_path / "beam.json") == 0
    single = json.loads((tmp_path / "single.json").read_text())
    merged = json.loads((tmp_path / "beam.json").read_text())
    assert merged.pop("runner") == "direct" and merged.pop("records") is None
    assert merged == single
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beam.json", "single.json"]


def test_evaluate_runner_bad_usage_is_one_line_and_exit_2(tiny_tflite, digits, tmp_path, capsys):
    assert cli("evaluate", tiny_tflite, "--data", digits / "test.npz", "--runner", "flink") == 2
    assert "needs --records" in capsys.readouterr().err
    assert cli("evaluate", tiny_tflite, "--data", digits / "test.npz", "--records", tmp_path) == 2
    assert "needs --runner" in capsys.readouterr().err
    assert cli("evaluate", tiny_tflite, "--data", f"npz:{tmp_path}/none-*.npz", "--runner",
               "direct", "--records", tmp_path / "r") == 2
    assert "no files match" in capsys.readouterr().err
    assert cli("evaluate", tiny_tflite, "--data", digits / "test.npz", "--ood", "featureless:5",
               "--runner", "direct", "--records", tmp_path / "r") == 2
    assert "featureless:5: featureless images are generated" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_predict_with_a_runner_writes_a_record_per_photo(tiny_tflite, tmp_path, capsys):
    from PIL import Image

    from tests._dummies import tiny

    images, labels = tiny.images(6, seed=12, size=20)
    (tmp_path / "photos").mkdir()
    for index, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / "photos" / f"{index}.png")
    status = cli("predict", tiny_tflite, tmp_path / "photos", "--runner", "direct",
                 "--pipeline-options=--direct_running_mode=in_memory",
                 "--records", tmp_path / "out")
    assert status == 0
    assert "6 images" in capsys.readouterr().err
    lines = [json.loads(line) for path in sorted((tmp_path / "out").glob("records-*.jsonl"))
             for line in path.read_text().splitlines()]
    by_name = {r["id"].rsplit("/", 1)[1]: r for r in lines}
    assert sorted(by_name) == [f"{i}.png" for i in range(6)]
    # the same decision `tfuq predict` prints for the file, one process, no Beam
    cli("predict", tiny_tflite, tmp_path / "photos" / "0.png", "--json")
    single = json.loads(capsys.readouterr().out.strip())
    assert by_name["0.png"]["predicted_label"] == single["predicted_label"]
    assert by_name["0.png"]["max_probability"] == single["probability"]
    assert by_name["0.png"]["accept"] == single["accept"]


def test_a_model_without_photo_rule_gets_the_same_pixels_from_beam_and_predict(
        tiny_tflite, tmp_path, capsys):
    # A model converted before the photo rule existed stretches photos (photo.STRETCH); Beam
    # once centre-cropped them (the current rule) whatever the model said.
    from PIL import Image

    from tfuq.runtime import masks, modelfile, photo

    flatbuffer, config = modelfile.read(tiny_tflite)
    raw = config.to_dict()
    del raw["input"]["photo_rule"]
    old = tmp_path / "old.tflite"
    modelfile.write(old, flatbuffer, raw)
    assert photo.rule_of(modelfile.read_config(old)) is photo.STRETCH
    rng = np.random.default_rng(21)
    (tmp_path / "photos").mkdir()
    for index in range(3):  # wide photos with a left-to-right ramp: crop and stretch differ
        ramp = np.linspace(0, 255, 48)[None, :, None] * rng.uniform(0.3, 1, (1, 1, 3))
        pixels = np.broadcast_to(ramp, (16, 48, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / "photos" / f"{index}.png")
    assert cli("predict", old, tmp_path / "photos", "--runner", "direct",
               "--pipeline-options=--direct_running_mode=in_memory", "--records",
               tmp_path / "out") == 0
    records = {r["id"].rsplit("/", 1)[1]: r for path in (tmp_path / "out").glob("records-*.jsonl")
               for r in map(json.loads, path.read_text().splitlines())}
    assert sorted(records) == ["0.png", "1.png", "2.png"]
    size = (config.input.height, config.input.width)
    for name, record in records.items():
        path = tmp_path / "photos" / name
        stretched = photo.read(path, size, photo.STRETCH)
        assert not np.array_equal(stretched, photo.read(path, size, photo.CENTER_CROP))
        assert record["key"] == f"{masks.image_key(stretched):016x}", name  # Beam's pixels
        capsys.readouterr()
        cli("predict", old, path, "--json")
        single = json.loads(capsys.readouterr().out.strip())
        assert record["max_probability"] == single["probability"], name
        assert record["predicted"] == single["predicted"] and record["accept"] == single["accept"]
