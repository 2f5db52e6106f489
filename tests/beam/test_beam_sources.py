"""tfuq.beam.sources: tfds TFRecords parsed without TensorFlow, image folders, the 75 sets.

TensorFlow writes the TFRecords here (the independent route: TensorFlow's own Example
encoder); the reader under test uses protobuf and Pillow only.
"""

import json

import numpy as np
import pytest

pytest.importorskip("apache_beam")

from tfuq.beam import pipeline  # noqa: E402
from tfuq.beam.sources import SourceError, parse_example  # noqa: E402
from tfuq.runtime import masks  # noqa: E402

IN_MEMORY = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]


def _write_tfds(folder, name, split, images, labels, ids=None, version="1.0.0"):
    """TFRecords laid out and encoded as tfds writes them (PNG image, int64 label, bytes id)."""
    tf = pytest.importorskip("tensorflow")
    target = folder / name / version
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{name.partition('/')[0]}-{split}.tfrecord-00000-of-00001"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(
                    value=[tf.io.encode_png(image).numpy()])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
            }
            if ids is not None:
                feature["id"] = tf.train.Feature(bytes_list=tf.train.BytesList(
                    value=[ids[index].encode()]))
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    return path


def test_parse_example_reads_what_tensorflow_wrote():
    tf = pytest.importorskip("tensorflow")
    example = tf.train.Example(features=tf.train.Features(feature={
        "b": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x", b"\x00yz"])),
        "i": tf.train.Feature(int64_list=tf.train.Int64List(value=[-3, 2**40])),
        "f": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5, -1.25])),
    }))
    assert parse_example(example.SerializeToString()) == {
        "b": [b"x", b"\x00yz"], "i": [-3, 2**40], "f": [0.5, -1.25]}


def test_cifar100_spec_reads_the_tfds_files_with_labels_ids_and_pixels(tiny_tflite, tmp_path):
    from tests._dummies import tiny

    images, labels = tiny.images(12, seed=8)
    ids = [f"test_{i:05d}" for i in range(12)]
    _write_tfds(tmp_path / "tfds", "cifar100", "test", images, labels, ids, version="3.0.2")
    data = pipeline.sources("cifar100:test", (16, 16), data_dir=str(tmp_path / "tfds"))
    pipeline.run(tiny_tflite, data, str(tmp_path / "r"),
                 options=pipeline.pipeline_options("direct", IN_MEMORY))
    records = pipeline.read_records(tmp_path / "r")
    assert [r["id"] for r in records] == ids
    assert [r["label"] for r in records] == labels.tolist()
    assert [r["key"] for r in records] == [f"{masks.image_key(i):016x}" for i in images]


def test_all_cifar100_c_sets_in_one_pipeline_give_tables_per_severity_and_corruption(
        tiny_tflite, tmp_path):
    from tests._dummies import tiny
    from tfuq.data.corruptions import CORRUPTIONS, SEVERITIES, config_name

    images, labels = tiny.images(4, seed=9)
    for number, (corruption, severity) in enumerate(
            (c, s) for c in CORRUPTIONS for s in SEVERITIES):
        shifted = np.clip(images.astype(int) + number, 0, 255).astype(np.uint8)
        _write_tfds(tmp_path / "tfds", f"cifar100_corrupted/{config_name(corruption, severity)}",
                    "test", shifted, labels)
    data = pipeline.sources("cifar100_corrupted/*:test", (16, 16), data_dir=str(tmp_path / "tfds"))
    assert len(data) == 75
    pipeline.run(tiny_tflite, data, str(tmp_path / "r"),
                 options=pipeline.pipeline_options("direct", IN_MEMORY))
    records = pipeline.read_records(tmp_path / "r")
    rule = {"rule": "interval", "conf_factor": 1.0}
    tables = pipeline.corruption_tables(records, rule, passes=8)
    assert len(tables["sets"]) == 75
    assert sorted(tables["by_severity"]) == ["1", "2", "3", "4", "5"]
    assert sorted(tables["by_corruption"]) == sorted(CORRUPTIONS)
    for severity in SEVERITIES:  # pooled by hand from the records
        chosen = [r for r in records if r["set"].endswith(f"_{severity}")]
        report = tables["by_severity"][str(severity)]
        assert report["images"] == 15 * 4 == len(chosen)
        right = sum(r["predicted"] == r["label"] for r in chosen)
        assert report["micro_f1_all"] == pytest.approx(right / len(chosen), abs=1e-12)
        assert report["accepted"] == sum(r["accept"] for r in chosen)
    assert "severity" in pipeline.format_tables(tables)


def test_image_folders_give_labels_by_class_folder_and_report_bad_files(tiny_tflite, tmp_path):
    from PIL import Image

    from tests._dummies import tiny

    images, labels = tiny.images(8, seed=10, size=24)
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = tmp_path / "photos" / tiny.LABELS[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index}.png")
    (tmp_path / "photos" / "red" / "broken.jpg").write_bytes(b"not a jpeg")
    data = pipeline.sources(f"folder:{tmp_path / 'photos'}", (16, 16))
    outcome = pipeline.run(tiny_tflite, data, str(tmp_path / "r"),
                           options=pipeline.pipeline_options("direct", IN_MEMORY))
    records = pipeline.read_records(tmp_path / "r")
    names = sorted(tiny.LABELS)  # class folders sorted by name
    assert sorted((r["id"].rsplit("/", 2)[1], r["label"]) for r in records) == sorted(
        (tiny.LABELS[label], names.index(tiny.LABELS[label])) for label in labels)
    assert [e["id"].endswith("broken.jpg") for e in outcome["errors"]] == [True]
    assert json.dumps(outcome["errors"])


def test_sources_fail_in_one_line_before_the_pipeline(tmp_path):
    with pytest.raises(SourceError, match="no files match"):
        pipeline.sources(f"npz:{tmp_path}/nothing-*.npz", (16, 16))
    with pytest.raises(SourceError, match="not prepared"):
        pipeline.sources("cifar100:test", (16, 16), data_dir=str(tmp_path))
    with pytest.raises(SourceError, match="unknown dataset source .svhn."):
        pipeline.sources("svhn:test", (16, 16))


@pytest.mark.parametrize("spec", ["featureless:5", "cifar100_corrupted/fog_3:featureless:5"])
def test_generated_featureless_images_are_refused_in_one_line(spec):
    with pytest.raises(SourceError) as refused:
        pipeline.sources(spec, (16, 16))
    message = str(refused.value)
    assert message.startswith(f"{spec}: featureless images are generated") and "not read by the Beam" in message
    assert "\n" not in message


def test_a_cifar100_c_set_prepared_by_the_tfuq_builder_reads_back_pixel_for_pixel(
        tiny_tflite, tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    import tfuq.data.cifar100_corrupted  # noqa: F401  (registers the builder)

    rng = np.random.default_rng(5)
    per_severity = 6
    stacked = rng.integers(0, 256, (5 * per_severity, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 100, per_severity).astype(np.uint8)
    manual = tmp_path / "manual"
    manual.mkdir()
    np.save(manual / "contrast.npy", stacked)
    np.save(manual / "labels.npy", labels)
    builder = tfds.builder("cifar100_corrupted/contrast_2", data_dir=tmp_path / "tfds")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual))

    data = pipeline.sources("cifar100_corrupted/contrast_2:test", (32, 32),
                            data_dir=str(tmp_path / "tfds"))
    # the tiny model takes 16x16: the source refuses to resize, in one line
    with pytest.raises(Exception, match="the model takes"):
        pipeline.run(tiny_tflite, pipeline.sources(
            "cifar100_corrupted/contrast_2:test", (16, 16), data_dir=str(tmp_path / "tfds")),
            str(tmp_path / "refused"), options=pipeline.pipeline_options("direct", IN_MEMORY))
    # read the examples the source yields, without a model
    import apache_beam as beam
    from apache_beam.testing.util import assert_that

    severity_2 = stacked[per_severity : 2 * per_severity]
    expected = sorted((f"{masks.image_key(image):016x}", int(label))
                      for image, label in zip(severity_2, labels, strict=True))

    def check(examples):
        got = sorted((f"{masks.image_key(e['image']):016x}", e["label"]) for e in examples)
        assert got == expected

    with beam.Pipeline(options=pipeline.pipeline_options("direct", IN_MEMORY)) as root:
        examples = root | data[0][1]
        assert_that(examples, lambda found: check(list(found)))
