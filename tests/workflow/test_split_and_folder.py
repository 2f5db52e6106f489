"""The checks before anything trains: the folder scan and the per-class split (numpy, Pillow)."""

import json

import numpy as np
import pytest
from PIL import Image

from tfuq.workflow import folder, split


def test_counts_per_class_by_hand():
    shares = split.FRACTIONS  # .6 / .1 / .15 / .15
    # 200: 20, 30, 30 held out; 30: 3, round(4.5) = 4 (half to even), 4; 10: 1, round(1.5) = 2, 2.
    assert split.counts_for(200, shares) == {"train": 120, "validation": 20, "calibration": 30, "test": 30}
    assert split.counts_for(30, shares) == {"train": 19, "validation": 3, "calibration": 4, "test": 4}
    assert split.counts_for(10, shares) == {"train": 5, "validation": 1, "calibration": 2, "test": 2}
    # A small class: every part keeps one image, training keeps at least one.
    assert split.counts_for(4, shares) == {"train": 1, "validation": 1, "calibration": 1, "test": 1}
    # 5 x .3 rounds to 2 for each held part (6 > 4): the largest part gives one back, ties
    # by name from the end (validation, then test), until training keeps one.
    assert split.counts_for(5, {"train": 0.1, "validation": 0.3, "calibration": 0.3, "test": 0.3}) == {
        "train": 1, "validation": 1, "calibration": 2, "test": 1}
    with pytest.raises(ValueError, match="at least 4 images"):
        split.counts_for(3, shares)


def test_the_split_is_per_class_disjoint_complete_and_seeded(tmp_path):
    labels = np.repeat(np.arange(3), [30, 10, 200])
    parts = split.split(labels, seed=5)
    joined = np.concatenate(list(parts.values()))
    assert len(joined) == len(labels) == len(np.unique(joined))
    assert np.bincount(labels[parts["calibration"]]).tolist() == [4, 2, 30]
    assert np.bincount(labels[parts["test"]]).tolist() == [4, 2, 30]
    again, other = split.split(labels, seed=5), split.split(labels, seed=6)
    assert all(np.array_equal(parts[k], again[k]) for k in split.PARTS)
    assert not np.array_equal(parts["test"], other["test"])
    split.save(tmp_path / "split.json", parts, labels, ["a", "b", "c"], [f"f{i}.png" for i in range(240)])
    loaded = split.load(tmp_path / "split.json")
    assert all(np.array_equal(parts[k], loaded[k]) for k in split.PARTS)
    saved = json.loads((tmp_path / "split.json").read_text())
    assert saved["parts"]["test"]["per_class"] == [4, 2, 30]
    assert saved["parts"]["test"]["files"][0] == f"f{parts['test'][0]}.png"


def test_bad_shares_are_refused():
    with pytest.raises(ValueError, match="sum to 1"):
        split.check_fractions({"train": 0.5, "validation": 0.1, "calibration": 0.1, "test": 0.1})
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        split.check_fractions({"train": 1.0, "validation": 0.0, "calibration": 0.0, "test": 0.0})


def _folder(root, counts, size=(8, 8)):
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.full(size + (3,), i, np.uint8)).save(root / name / f"{i}.png")
    return root


def test_the_scan_refuses_an_unusable_folder_listing_every_problem(tmp_path):
    root = _folder(tmp_path / "photos", {"cat": 12, "dog": 5, "fox": 3})
    (root / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "cat" / "notes.txt").write_text("skipped: not an image suffix")
    with pytest.raises(folder.FolderError) as error:
        folder.scan(root, min_per_class=10)
    message = str(error.value)
    assert "1 unreadable file(s)" in message and "broken.jpg" in message
    assert "2 class(es) with fewer than 10 images: dog (5), fox (3)" in message
    assert "notes.txt" not in message


def test_the_scan_of_a_good_folder(tmp_path):
    root = _folder(tmp_path / "photos", {"b": 4, "a": 5})
    (root / "a" / "wide.png").parent.mkdir(exist_ok=True)
    Image.fromarray(np.zeros((8, 16, 3), np.uint8)).save(root / "a" / "wide.png")
    found = folder.scan(root, min_per_class=4)
    assert found.classes == ["a", "b"] and found.images == 10
    assert found.sizes == {(8, 8): 9, (8, 16): 1} and found.one_size() is None
    for bad, why in ((tmp_path / "missing", "not found"), (tmp_path / "photos" / "a", "no class subfolders")):
        with pytest.raises(folder.FolderError, match=why):
            folder.scan(bad)
    lonely = _folder(tmp_path / "lonely", {"only": 12})
    with pytest.raises(folder.FolderError, match="one class only"):
        folder.scan(lonely)
