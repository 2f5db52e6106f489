"""The one outlier loader (tfuq.data.outliers.load_outliers): specs read in order into one
array, flat folders of photos, featureless images, and one-line errors naming the spec."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tfuq import data
from tfuq.data import outliers as outliers_module
from tfuq.data.featureless import featureless
from tfuq.data.outliers import load_outliers

COLOURS = [(250, 10, 10), (10, 250, 10), (10, 10, 250)]


def _solid(colour, size=(8, 8)):
    return np.broadcast_to(np.asarray(colour, np.uint8), (*size, 3)).copy()


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    first = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    second = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "first.npz", x=first, y=np.arange(4))
    np.savez(tmp_path / "second.npz", x=second)  # no labels: fine for outliers
    flat = tmp_path / "flat"
    flat.mkdir()
    for name, colour in zip(("b.png", "a.png", "c.PNG"), COLOURS, strict=True):
        Image.fromarray(_solid(colour, (16, 16))).save(flat / name)
    (flat / "notes.txt").write_text("not an image")
    (flat / ".hidden.png").write_bytes(b"not read")
    return tmp_path, first, second


def test_two_specs_are_concatenated_in_the_order_given(files):
    root, first, second = files
    got = load_outliers([f"npz:{root / 'first.npz'}", f"npz:{root / 'second.npz'}"], (8, 8))
    assert got.dtype == np.uint8 and np.array_equal(got, np.concatenate([first, second]))
    swapped = load_outliers([str(root / "second.npz"), str(root / "first.npz")], (8, 8))
    assert np.array_equal(swapped, np.concatenate([second, first]))
    assert np.array_equal(load_outliers(f"npz:{root / 'first.npz'}", (8, 8)), first)  # one spec, a string


def test_a_flat_folder_gives_its_photos_sorted_by_name_at_the_size_asked_for(files):
    root, _, _ = files
    # a.png is green, b.png red, c.PNG blue; a solid colour stays that colour when resized
    expected = np.stack([_solid(COLOURS[1]), _solid(COLOURS[0]), _solid(COLOURS[2])])
    for spec in (f"folder:{root / 'flat'}", str(root / "flat"), f"files:{root / 'flat'}",
                 f"files:{root / 'flat'}/*.*"):
        assert np.array_equal(load_outliers([spec], (8, 8)), expected), spec


def test_a_folder_with_class_subfolders_is_read_as_a_dataset_its_labels_ignored(tmp_path):
    for name, colour in (("cat", COLOURS[0]), ("dog", COLOURS[2])):
        (tmp_path / "classes" / name).mkdir(parents=True)
        Image.fromarray(_solid(colour)).save(tmp_path / "classes" / name / "0.png")
    expected = np.stack([_solid(COLOURS[0]), _solid(COLOURS[2])])
    assert np.array_equal(load_outliers([f"folder:{tmp_path / 'classes'}"], (8, 8)), expected)
    assert np.array_equal(load_outliers([str(tmp_path / "classes")], (8, 8)), expected)


def test_featureless_images_are_generated_at_the_size_and_seed(files):
    root, first, _ = files
    got = load_outliers([f"npz:{root / 'first.npz'}", "featureless:5"], (8, 8), seed=7)
    assert got.shape == (9, 8, 8, 3)
    assert np.array_equal(got[:4], first) and np.array_equal(got[4:], featureless(5, (8, 8), seed=7))
    assert not np.array_equal(load_outliers("featureless:5", (8, 8), seed=8), got[4:])


def test_photos_of_other_sizes_are_brought_to_the_size(tmp_path):
    np.savez(tmp_path / "big.npz", x=np.stack([_solid(c, (20, 30)) for c in COLOURS]))
    got = load_outliers([f"npz:{tmp_path / 'big.npz'}"], (6, 6))
    assert np.array_equal(got, np.stack([_solid(c, (6, 6)) for c in COLOURS]))


@pytest.mark.parametrize("specs, words", [
    (["featureless:0"], "whole number in 1..1,000,000"),
    (["featureless:3", "featureless:3"], "given twice"),
    (["svhn:train"], "unknown dataset source 'svhn'"),
    (["{root}/missing.npz"], "data file not found"),
    (["folder:{root}/missing"], "image folder not found"),
    (["files:{root}/missing"], "not a folder, file or glob pattern"),
    (["folder:{root}/empty"], "no images in"),
    (["files:{root}/*.jpg"], "no images in"),
    (["folder:{root}/broken"], "cannot read image"),
    (["tfrecord:{root}/*.tfrecord"], "only the Beam pipelines read this source"),
])
def test_a_bad_spec_is_one_line_naming_it(tmp_path, specs, words):
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    specs = [s.format(root=tmp_path) for s in specs]
    with pytest.raises(data.DataError) as raised:
        load_outliers(specs, (8, 8))
    message = str(raised.value)
    assert message.startswith(f"outliers {specs[-1]}: ") and words in message and "\n" not in message


def test_no_spec_or_a_bad_size_is_refused():
    with pytest.raises(data.DataError, match="no outlier spec"):
        load_outliers([], (8, 8))
    with pytest.raises(data.DataError, match="size must be"):
        load_outliers(["featureless:2"], (0, 8))


def test_more_pixels_than_the_bound_are_refused(monkeypatch):
    monkeypatch.setattr(outliers_module, "MAX_BYTES", 10 * 8 * 8 * 3)
    assert len(load_outliers(["featureless:6", "featureless:4"], (8, 8))) == 10
    with pytest.raises(data.DataError, match="more than the") as raised:
        load_outliers(["featureless:6", "featureless:5"], (8, 8))
    assert str(raised.value).startswith("outliers featureless:5: ")
