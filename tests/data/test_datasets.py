"""tfuq.data (specs, npz, folders, representative draws) and the cifar100_corrupted builder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfuq import data
from tfuq.data import CIFAR100_LABELS, DataError, Spec, balanced_indices, load_spec, parse_spec

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar100"
SHARED_TEST = SHARED / "test_50_per_class.npz"
SHARED_TRAIN = SHARED / "train_200_per_class.npz"


def make_npz(path: Path, count: int = 20, classes: int = 4, seed: int = 0, **extra) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "x": rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8),
        "y": np.arange(count) % classes,
        "label_names": np.array([f"class{i}" for i in range(classes)]),
    }
    arrays.update(extra)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


def one_line_error(call) -> str:
    with pytest.raises(DataError) as error:
        call()
    assert isinstance(error.value, ValueError)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_importing_data_and_corruptions_needs_numpy_only():
    code = (
        "import sys, tfuq.data, tfuq.data.corruptions\n"
        "heavy = [m for m in ('tensorflow', 'tensorflow_datasets', 'keras', 'PIL', 'scipy') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cifar100_label_names():
    assert len(set(CIFAR100_LABELS)) == 100
    assert list(CIFAR100_LABELS) == sorted(CIFAR100_LABELS)  # the fine labels are alphabetical
    if SHARED_TEST.is_file():
        with np.load(SHARED_TEST) as shared:
            assert list(CIFAR100_LABELS) == [str(n) for n in shared["fine_names"]]


# -- specs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("cifar100:test", Spec("cifar100", "test")),
        ("cifar100:train[:10%]", Spec("cifar100", "train[:10%]")),
        ("npz:data/x.npz", Spec("npz", "data/x.npz")),
        ("npz:C:/data/x.npz", Spec("npz", "C:/data/x.npz")),
        ("folder:photos/", Spec("folder", "photos/")),
        ("cifar100_corrupted/fog_3:test", Spec("cifar100_corrupted", "test", "fog", 3)),
        ("cifar100_corrupted/zoom_blur_5:npz:t.npz", Spec("npz", "t.npz", "zoom_blur", 5)),
        ("cifar100_corrupted/snow_1:folder:f/", Spec("folder", "f/", "snow", 1)),
        (
            "cifar100_corrupted/elastic_2:cifar100:test",
            Spec("cifar100", "test", "elastic_transform", 2),
        ),
        # the forms only the Beam pipelines read, in the same grammar
        ("cifar100_corrupted/*:test", Spec("cifar100_corrupted", "test", "*")),
        ("files:photos/*.jpg", Spec("files", "photos/*.jpg")),
        ("tfrecord:data/cifar100-test.tfrecord-*", Spec("tfrecord", "data/cifar100-test.tfrecord-*")),
        ("shards/part-*.npz", Spec("npz", "shards/part-*.npz")),
    ],
)
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("cifar100", "is not <source>:<split or path>"),
        ("imagenet:test", "unknown dataset source 'imagenet'"),
        ("cifar100:validation", "cifar100 has splits train and test"),
        ("cifar100_corrupted:test", "needs a config"),
        ("cifar100_corrupted/fog:test", "is not <corruption>_<severity>"),
        ("cifar100_corrupted/rain_2:test", "unknown corruption 'rain'"),
        ("cifar100_corrupted/fog_6:test", "severity must be an integer from 1 to 5"),
        ("cifar100_corrupted/fog_2:train", "has only a test split"),
        ("cifar100_corrupted/fog_2:cifar100_corrupted/fog_2:test", "corrupts twice"),
        ("npz:", "names no path"),
        ("files:", "names no path"),
        ("cifar100_corrupted/*:train", "has only a test split"),
    ],
)
def test_bad_specs_are_one_line_data_errors(spec, message):
    assert message in one_line_error(lambda: parse_spec(spec))


# -- npz -------------------------------------------------------------------------------------


def test_npz_spec_loads_images_labels_and_names(tmp_path):
    arrays = make_npz(tmp_path / "d.npz")
    loaded = load_spec(f"npz:{tmp_path / 'd.npz'}")
    assert np.array_equal(loaded.images, arrays["x"]) and loaded.images.dtype == np.uint8
    assert np.array_equal(loaded.labels, arrays["y"]) and loaded.labels.dtype == np.int64
    assert loaded.label_names == ["class0", "class1", "class2", "class3"]
    images, labels, names = loaded  # a NamedTuple, like load_npz's tuple
    assert names == loaded.label_names


def test_limit_draws_a_seeded_subset_in_the_original_order(tmp_path):
    arrays = make_npz(tmp_path / "d.npz", count=30)
    first = load_spec(f"npz:{tmp_path / 'd.npz'}", limit=8, seed=1)
    again = load_spec(f"npz:{tmp_path / 'd.npz'}", limit=8, seed=1)
    other = load_spec(f"npz:{tmp_path / 'd.npz'}", limit=8, seed=2)
    assert np.array_equal(first.images, again.images)
    assert not np.array_equal(first.images, other.images)
    # each kept image is a distinct source image, in source order, with its own label
    flat = arrays["x"].reshape(30, -1)
    where = [
        int(np.flatnonzero((flat == image.reshape(-1)).all(axis=1))[0]) for image in first.images
    ]
    assert len(set(where)) == 8 and where == sorted(where)
    assert np.array_equal(first.labels, arrays["y"][where])
    assert len(load_spec(f"npz:{tmp_path / 'd.npz'}", limit=100).images) == 30
    assert "limit must be a positive integer" in one_line_error(
        lambda: load_spec(f"npz:{tmp_path / 'd.npz'}", limit=0)
    )


def test_npz_without_labels_gives_none(tmp_path):
    make_npz(tmp_path / "x.npz", y=None, label_names=None)
    loaded = load_spec(f"npz:{tmp_path / 'x.npz'}")
    assert loaded.labels is None and loaded.label_names is None


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"x": np.zeros((0, 32, 32, 3), np.uint8), "y": np.zeros(0, int)}, "hold zero samples"),
        ({"x": np.full((20, 32, 32, 3), 0.5)}, "must be uint8 pixels, got float64"),
        ({"x": np.zeros((20, 32, 32), np.uint8)}, "must be (N, H, W, 3) RGB"),
        ({"y": np.arange(19) % 4}, "labels must be a vector of 20 entries"),
        ({"y": np.arange(20)}, "label 19 is out of range for 4 classes"),
        ({"y": np.arange(20) - 1}, "labels must be non-negative"),
        ({"y": np.linspace(0, 3, 20)}, "labels must be integers"),
    ],
)
def test_bad_npz_contents_are_one_line_data_errors(tmp_path, changes, message):
    make_npz(tmp_path / "bad.npz", **changes)
    assert message in one_line_error(lambda: load_spec(f"npz:{tmp_path / 'bad.npz'}"))


def test_missing_or_unreadable_npz(tmp_path):
    assert "data file not found" in one_line_error(lambda: load_spec(f"npz:{tmp_path / 'no.npz'}"))
    (tmp_path / "text.npz").write_text("not a zip")
    assert "cannot read" in one_line_error(lambda: load_spec(f"npz:{tmp_path / 'text.npz'}"))
    np.savez(tmp_path / "nox.npz", images=np.zeros((2, 32, 32, 3), np.uint8))
    assert "no array named 'x'" in one_line_error(lambda: load_spec(f"npz:{tmp_path / 'nox.npz'}"))


def test_corrupted_npz_spec_corrupts_each_image_by_its_index(tmp_path):
    from tfuq.data.corruptions import corrupt

    arrays = make_npz(tmp_path / "t.npz", count=10)
    spec = f"cifar100_corrupted/fog_3:npz:{tmp_path / 't.npz'}"
    calls = []
    loaded = load_spec(spec, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(done, 10) for done in range(1, 11)]
    assert np.array_equal(loaded.images, corrupt(arrays["x"], "fog", 3, seed=0))
    assert np.array_equal(loaded.labels, arrays["y"])
    assert not np.array_equal(loaded.images, arrays["x"])
    # a subset gets the same corruption per image as the whole file
    subset = load_spec(spec, limit=4, seed=0)
    kept = load_spec(f"npz:{tmp_path / 't.npz'}", limit=4, seed=0).images
    flat = arrays["x"].reshape(10, -1)
    where = [int(np.flatnonzero((flat == image.reshape(-1)).all(axis=1))[0]) for image in kept]
    assert np.array_equal(subset.images, loaded.images[where])


def test_size_resizes_any_source(tmp_path):
    pytest.importorskip("PIL")
    make_npz(tmp_path / "d.npz", count=3)
    loaded = load_spec(f"npz:{tmp_path / 'd.npz'}", size=(16, 24))
    assert loaded.images.shape == (3, 16, 24, 3) and loaded.images.dtype == np.uint8


def test_arrays_and_the_same_pictures_as_files_give_the_same_input(tmp_path):
    # One photo rule for both: an .npz image and that image saved as a PNG in a folder.
    from PIL import Image

    from tfuq.runtime import photo

    arrays = make_npz(tmp_path / "d.npz", count=2)
    (tmp_path / "photos" / "any").mkdir(parents=True)
    for index, image in enumerate(arrays["x"]):
        Image.fromarray(image).save(tmp_path / "photos" / "any" / f"{index}.png")
    from_arrays = load_spec(f"npz:{tmp_path / 'd.npz'}", size=(12, 20)).images
    from_files = load_spec(f"folder:{tmp_path / 'photos'}", size=(12, 20)).images
    assert np.array_equal(from_arrays, from_files)
    assert np.array_equal(from_arrays[0], photo.read(tmp_path / "photos" / "any" / "0.png", (12, 20)))


def test_resize_crops_to_the_aspect_ratio_instead_of_stretching():
    wide = np.zeros((1, 10, 30, 3), np.uint8)
    wide[:, :, 10:20] = (0, 200, 0)  # a green square between black sides
    assert (data.resize(wide, (5, 5)) == (0, 200, 0)).all()


# -- folders ---------------------------------------------------------------------------------


def make_folder(root: Path) -> Path:
    from PIL import Image

    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    (root / ".cache").mkdir()  # hidden: not a class
    Image.new("RGB", (40, 30), (255, 0, 0)).save(root / "cat" / "a.png")
    Image.new("RGB", (40, 30), (0, 0, 255)).save(root / "cat" / "b.PNG")
    Image.new("L", (20, 20), 77).save(root / "dog" / "c.png")  # greyscale becomes RGB
    Image.new("RGBA", (40, 30), (0, 0, 0, 0)).save(root / "dog" / "d.png")  # over white
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".hidden.png").write_bytes(b"junk")
    return root


def test_folder_spec_reads_one_class_per_subfolder(tmp_path):
    root = make_folder(tmp_path / "photos")
    loaded = load_spec(f"folder:{root}", size=(32, 32))
    assert loaded.images.shape == (4, 32, 32, 3) and loaded.images.dtype == np.uint8
    assert loaded.labels.tolist() == [0, 0, 1, 1]
    assert loaded.label_names == ["cat", "dog"]
    # flat colours survive a bilinear resize unchanged
    assert (loaded.images[0] == (255, 0, 0)).all()
    assert (loaded.images[1] == (0, 0, 255)).all()
    assert (loaded.images[2] == 77).all()
    assert (loaded.images[3] == 255).all()  # transparent black shows as white


def test_folder_errors(tmp_path):
    from PIL import Image

    root = make_folder(tmp_path / "photos")
    assert "differ in size" in one_line_error(lambda: load_spec(f"folder:{root}"))
    assert "image folder not found" in one_line_error(
        lambda: load_spec(f"folder:{tmp_path / 'none'}")
    )
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "a.png")
    assert "no class subfolders" in one_line_error(lambda: load_spec(f"folder:{tmp_path / 'flat'}"))
    (root / "empty").mkdir()
    assert "holds no images" in one_line_error(lambda: load_spec(f"folder:{root}", size=(8, 8)))
    (root / "empty" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    assert "cannot read image" in one_line_error(lambda: load_spec(f"folder:{root}", size=(8, 8)))


def test_folder_images_are_turned_upright_by_exif(tmp_path):
    from PIL import Image

    (tmp_path / "f" / "only").mkdir(parents=True)
    picture = Image.new("RGB", (40, 20), (0, 255, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    picture.save(tmp_path / "f" / "only" / "p.jpg", exif=exif)
    loaded = data.load_folder(tmp_path / "f")
    assert loaded.images.shape == (1, 40, 20, 3)  # displayed upright: 20 wide, 40 tall


# -- representative draws ------------------------------------------------------------------


def test_balanced_indices_balance_every_prefix():
    labels = np.repeat(np.arange(10), 30)
    picked = balanced_indices(labels, 95, seed=3)
    assert len(set(picked.tolist())) == 95
    for prefix in range(1, 96):
        counts = np.bincount(labels[picked[:prefix]], minlength=10)
        assert counts.max() - counts.min() <= 1
    assert np.array_equal(picked, balanced_indices(labels, 95, seed=3))
    assert not np.array_equal(picked, balanced_indices(labels, 95, seed=4))


def test_balanced_indices_fill_in_when_a_class_runs_out():
    labels = np.array([0] * 10 + [1] * 2 + [2] * 10)
    counts = np.bincount(labels[balanced_indices(labels, 12, seed=0)], minlength=3)
    assert counts.tolist() == [5, 2, 5]
    assert len(balanced_indices(labels, 22)) == 22
    assert "cannot draw 23 samples from 22" in one_line_error(lambda: balanced_indices(labels, 23))
    assert "count must be a positive integer" in one_line_error(lambda: balanced_indices(labels, 0))


def test_representative_draws_balanced_labelled_images(tmp_path):
    arrays = make_npz(tmp_path / "train.npz", count=40, classes=4)
    drawn = data.representative(f"npz:{tmp_path / 'train.npz'}", count=10, seed=0)
    assert drawn.images.shape == (10, 32, 32, 3)
    assert sorted(np.bincount(drawn.labels, minlength=4).tolist()) == [2, 2, 3, 3]
    flat = arrays["x"].reshape(40, -1)
    for image, label in zip(drawn.images, drawn.labels, strict=True):
        source = int(np.flatnonzero((flat == image.reshape(-1)).all(axis=1))[0])
        assert arrays["y"][source] == label
    again = data.representative(f"npz:{tmp_path / 'train.npz'}", count=10, seed=0)
    assert np.array_equal(drawn.images, again.images)


def test_representative_without_labels_is_a_seeded_uniform_draw(tmp_path):
    arrays = make_npz(tmp_path / "x.npz", count=12, y=None, label_names=None)
    drawn = data.representative(f"npz:{tmp_path / 'x.npz'}", count=12, seed=5)
    assert drawn.labels is None
    assert sorted(map(bytes, drawn.images)) == sorted(map(bytes, arrays["x"]))
    assert "cannot draw 13" in one_line_error(
        lambda: data.representative(f"npz:{tmp_path / 'x.npz'}", count=13)
    )


@pytest.mark.skipif(not SHARED_TRAIN.is_file(), reason="shared CIFAR-100 data not present")
def test_representative_from_the_shared_cifar100_training_subset():
    drawn = data.representative(f"npz:{SHARED_TRAIN}", count=250, seed=0)
    counts = np.bincount(drawn.labels, minlength=100)
    assert counts.min() == 2 and counts.max() == 3 and counts.sum() == 250
    assert drawn.label_names == list(CIFAR100_LABELS)


@pytest.mark.skipif(not SHARED_TEST.is_file(), reason="shared CIFAR-100 data not present")
def test_corrupted_copy_of_the_shared_cifar100_test_subset():
    clean = load_spec(f"npz:{SHARED_TEST}", limit=20, seed=0)
    foggy = load_spec(f"cifar100_corrupted/fog_5:npz:{SHARED_TEST}", limit=20, seed=0)
    assert np.array_equal(foggy.labels, clean.labels)
    assert foggy.images.shape == clean.images.shape == (20, 32, 32, 3)
    difference = np.abs(foggy.images.astype(int) - clean.images).mean()
    assert difference > 20  # fog 5 adds 1.5 x a [0, 1] fractal before rescaling


# -- tfds: cifar100 and the cifar100_corrupted builder ------------------------------------


def test_cifar100_spec_reads_tfds(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        loaded = load_spec("cifar100:test", data_dir=tmp_path)
    assert loaded.images.shape == (6, 32, 32, 3) and loaded.images.dtype == np.uint8
    assert loaded.labels.dtype == np.int64 and loaded.labels.max() < 100
    assert loaded.label_names == list(CIFAR100_LABELS)


def test_tfds_failure_is_a_one_line_data_error(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    message = one_line_error(lambda: load_spec("cifar100:test", data_dir=tmp_path, download=False))
    assert message.startswith("cannot load cifar100 split 'test'")


@pytest.fixture(scope="module")
def builder_module():
    pytest.importorskip("tensorflow_datasets")
    import tfuq.data.cifar100_corrupted as module

    return module


def write_official(folder: Path, corruption: str, per_severity: int, repeat_labels: bool) -> dict:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    stacked = rng.integers(0, 256, (5 * per_severity, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 100, per_severity).astype(np.uint8)  # uint8, as the official file
    np.save(folder / f"{corruption}.npy", stacked)
    np.save(folder / "labels.npy", np.tile(labels, 5) if repeat_labels else labels)
    return {"images": stacked, "labels": labels}


def prepared(module, config: str, data_dir: Path, manual_dir: Path | None = None):
    import tensorflow_datasets as tfds

    builder = tfds.builder(f"cifar100_corrupted/{config}", data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    examples = list(tfds.as_numpy(builder.as_dataset(split="test")))
    images = np.stack([e["image"] for e in examples])
    labels = np.array([e["label"] for e in examples])
    return builder, images, labels


def test_builder_has_a_config_per_corruption_and_severity(builder_module):
    from tfuq.data.corruptions import CORRUPTIONS

    names = [config.name for config in builder_module.Cifar100Corrupted.BUILDER_CONFIGS]
    assert len(names) == 75 and names[0] == "gaussian_noise_1" and names[-1] == "jpeg_compression_5"
    assert {name.rpartition("_")[0] for name in names} == set(CORRUPTIONS)


@pytest.mark.parametrize("layout", ["flat", "subfolder"])
def test_builder_reads_the_official_files_from_the_manual_folder(builder_module, tmp_path, layout):
    manual = tmp_path / "manual"
    folder = manual if layout == "flat" else manual / "CIFAR-100-C"
    official = write_official(folder, "contrast", per_severity=4, repeat_labels=layout == "flat")
    builder, images, labels = prepared(builder_module, "contrast_2", tmp_path / "tfds", manual)
    assert np.array_equal(images, official["images"][4:8])  # severity 2, in file order
    assert np.array_equal(labels, official["labels"])
    assert builder.info.metadata["source"].startswith("official CIFAR-100-C files")
    assert builder.info.features["label"].names == list(CIFAR100_LABELS)
    # and through a spec, from the prepared data without downloading
    loaded = load_spec(
        "cifar100_corrupted/contrast_2:test", data_dir=tmp_path / "tfds", download=False
    )
    assert np.array_equal(loaded.images, official["images"][4:8])


def test_builder_generates_from_the_cifar100_test_split_without_official_files(
    builder_module, tmp_path, monkeypatch
):
    from tfuq.data.corruptions import corrupt

    rng = np.random.default_rng(2)
    clean = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    labels = np.array([5, 0, 99, 3, 3, 42, 7])
    monkeypatch.setattr(builder_module, "_clean_test_split", lambda data_dir: (clean, labels))
    builder, images, got_labels = prepared(builder_module, "impulse_noise_4", tmp_path / "tfds")
    assert np.array_equal(
        images, corrupt(clean, "impulse_noise", 4, seed=builder_module.GENERATION_SEED)
    )
    assert np.array_equal(got_labels, labels)
    assert builder.info.metadata["source"].startswith("generated by tfuq.data.corruptions")


def test_clean_test_split_reads_tfds_cifar100(builder_module, tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=5):
        images, labels = builder_module._clean_test_split(str(tmp_path))
    assert images.shape == (5, 32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.max() < 100


def test_generate_examples_matches_corrupt_across_chunks(builder_module, monkeypatch):
    from tfuq.data.corruptions import corrupt

    monkeypatch.setattr(builder_module, "_CHUNK", 3)
    clean = np.random.default_rng(3).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(7)
    examples = list(builder_module.generate_examples(clean, labels, "glass_blur", 5, seed=4))
    assert [key for key, _ in examples] == list(range(7))
    assert np.array_equal(
        np.stack([e["image"] for _, e in examples]), corrupt(clean, "glass_blur", 5, seed=4)
    )
    assert [int(e["label"]) for _, e in examples] == labels.tolist()


def test_official_file_problems_are_data_errors(builder_module, tmp_path):
    write_official(tmp_path / "a", "fog", per_severity=2, repeat_labels=True)
    assert "holds labels.npy but not snow.npy" in one_line_error(
        lambda: builder_module.read_official(tmp_path / "a", "snow", 1)
    )
    np.save(tmp_path / "a" / "fog.npy", np.zeros((9, 32, 32, 3), np.uint8))
    assert "must hold 5 severities" in one_line_error(
        lambda: builder_module.read_official(tmp_path / "a", "fog", 1)
    )
    np.save(tmp_path / "a" / "fog.npy", np.zeros((10, 32, 32, 3), np.uint8))
    np.save(tmp_path / "a" / "labels.npy", np.zeros(7, np.uint8))
    assert "has 7 labels for 10 images" in one_line_error(
        lambda: builder_module.read_official(tmp_path / "a", "fog", 1)
    )


def test_specs_only_beam_reads_are_refused_in_one_line(tmp_path):
    for spec in ("files:photos/", "tfrecord:x-*", "cifar100_corrupted/*:test"):
        assert "read by the Beam pipelines only" in one_line_error(lambda spec=spec: load_spec(spec))


def test_folders_take_every_image_suffix_the_photo_rule_reads(tmp_path):
    # .ppm/.pgm/.pnm were read by tfuq predict and Beam but not by folder: specs.
    from PIL import Image

    for name, mode in (("a.ppm", "RGB"), ("b.pgm", "L"), ("c.pnm", "RGB"), ("d.png", "RGB")):
        (tmp_path / "photos" / "only").mkdir(parents=True, exist_ok=True)
        Image.new(mode, (6, 6), 90).save(tmp_path / "photos" / "only" / name, format="PPM" if
                                         name[-3:] in ("ppm", "pgm", "pnm") else "PNG")
    files, classes = data.class_folder_files(tmp_path / "photos")
    assert [f.name for f, _ in files] == ["a.ppm", "b.pgm", "c.pnm", "d.png"] and classes == ["only"]
    assert load_spec(f"folder:{tmp_path / 'photos'}").images.shape == (4, 6, 6, 3)


def test_folders_are_read_by_the_photo_rule_the_caller_names(tmp_path):
    from PIL import Image

    from tfuq.runtime import photo

    ramp = np.broadcast_to(np.linspace(0, 255, 30)[None, :, None], (10, 30, 3)).astype(np.uint8)
    (tmp_path / "photos" / "ramp").mkdir(parents=True)
    Image.fromarray(ramp).save(tmp_path / "photos" / "ramp" / "r.png")
    spec = f"folder:{tmp_path / 'photos'}"
    for rule in (photo.STRETCH, photo.CENTER_CROP):
        loaded = load_spec(spec, size=(5, 5), photo_rule=rule).images[0]
        assert np.array_equal(loaded, photo.prepare(np.dstack([ramp, np.full((10, 30), 255, np.uint8)]),
                                                    (5, 5), rule)), rule
    assert not np.array_equal(load_spec(spec, size=(5, 5), photo_rule=photo.STRETCH).images,
                              load_spec(spec, size=(5, 5)).images)
