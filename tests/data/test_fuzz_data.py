"""Fuzzing the data readers: .npz files of every dtype, rank and damage, and dataset specs.
Each input ends in images and labels that pass the checks, or a DataError (a ValueError,
exit 2 from the CLI); an object array is never unpickled."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from tests._dummies.fuzz import Tally, budget  # noqa: E402
from tfuq.data import datasets  # noqa: E402
from tfuq.data.common import DataError  # noqa: E402

pytestmark = pytest.mark.fuzz
NPZ_TALLY, SPEC_TALLY = Tally("data: .npz files"), Tally("data: dataset specs")
UNPICKLED = []


class Canary:
    """Records it if anything ever unpickles it."""

    def __reduce__(self):
        return (UNPICKLED.append, ("unpickled",))


DTYPES = st.sampled_from(["uint8", "int8", "int64", "uint64", "float32", "float64", "bool",
                          "complex64", "U3", "S2", "float16", "uint16"])


@st.composite
def arrays(draw):
    kind = draw(st.sampled_from(["numeric", "numeric", "images", "object", "structured"]))
    if kind == "object":
        return np.array([Canary(), 1, "x"], dtype=object)
    if kind == "structured":
        return np.zeros(draw(st.integers(0, 4)), dtype=[("a", "u1"), ("b", "f4")])
    if kind == "images":
        shape = (draw(st.integers(0, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4)),
                 draw(st.sampled_from([3, 3, 1, 4])))
        dtype = draw(st.sampled_from(["uint8", "uint8", "float32", "int16"]))
    else:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=3))
        dtype = draw(DTYPES)
    return draw(hnp.arrays(np.dtype(dtype), shape))


@st.composite
def npz_contents(draw):
    contents = {}
    if draw(st.integers(0, 9)):  # mostly an x
        contents["x"] = draw(arrays())
    for key in ("y", "label_names", "fine_names", "other"):
        if draw(st.booleans()):
            if key == "y" and "x" in contents and contents["x"].ndim and draw(st.booleans()):
                count = len(contents["x"])
                contents[key] = draw(hnp.arrays(np.dtype(draw(DTYPES)), (count,)))
            elif key == "label_names" and draw(st.booleans()):
                contents[key] = np.array(draw(st.lists(st.text(max_size=5), max_size=5)), dtype=str)
            else:
                contents[key] = draw(arrays())
    return contents


def _check_loaded(images, labels, names) -> None:
    assert images.dtype == np.uint8 and images.ndim == 4 and images.shape[-1] == 3 and len(images)
    if labels is not None:
        assert labels.dtype == np.int64 and labels.shape == (len(images),) and labels.min() >= 0
        if names is not None:
            assert labels.max() < len(names)
    if names is not None:
        assert all(isinstance(name, str) for name in names)


@settings(max_examples=budget(300), suppress_health_check=list(HealthCheck))
@given(npz_contents())
@example({"x": np.zeros((2, 4, 4, 3), np.uint8), "y": np.array([0, 2**63], np.uint64)})
@example({"x": np.zeros((2, 4, 4, 3), np.uint8), "label_names": np.array("one name")})
@example({"x": np.zeros((2, 4, 4, 3), np.uint8), "y": np.array([0, 1]), "label_names": np.zeros((2, 2))})
@example({"x": np.array([Canary()], dtype=object)})
def test_npz_of_any_dtype_and_rank(tmp_path_factory, contents):
    path = tmp_path_factory.mktemp("npz") / "data.npz"
    np.savez(path, **contents)  # saving object arrays pickles them; loading must not
    try:
        loaded = datasets.load_npz(path)
    except DataError as error:
        assert str(error).strip()
        NPZ_TALLY.add("DataError")
    else:
        _check_loaded(*loaded)
        NPZ_TALLY.add("accepted")
    assert not UNPICKLED


def _valid_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3), y=np.array([0, 1]))
    return buffer.getvalue()


VALID_NPZ = _valid_npz()


@settings(max_examples=budget(300), suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(["flip", "truncate", "insert"]), st.floats(0, 1),
                          st.binary(min_size=1, max_size=8)), min_size=1, max_size=4))
@example([("truncate", 0.5, b"\x00")])
@example([("truncate", 0.0, b"\x00")])
def test_damaged_npz_bytes(tmp_path_factory, changes):
    data = bytearray(VALID_NPZ)
    for kind, where, payload in changes:
        at = int(where * max(len(data) - 1, 0))
        if kind == "flip" and data:
            data[at] = payload[0]
        elif kind == "truncate":
            del data[at:]
        else:
            data[at:at] = payload
    path = tmp_path_factory.mktemp("npz") / "data.npz"
    path.write_bytes(bytes(data))
    try:
        loaded = datasets.load_npz(path)
    except DataError:
        NPZ_TALLY.add("DataError")
    else:
        _check_loaded(*loaded)
        NPZ_TALLY.add("accepted")


@pytest.mark.parametrize("content", [
    b"", b"PK\x03\x04", b"\x93NUMPY\x01\x00v\x00{'descr': '<u1', 'fortran_order': False, 'shape': (9999999999, 4, 4, 3), }",
    pickle_bytes := __import__("pickle").dumps(Canary()), b"\x00" * 100,
])
def test_files_that_are_not_npz(tmp_path, content):
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    with pytest.raises(DataError):
        datasets.load_npz(path)
    assert not UNPICKLED


def test_a_plain_npy_file_is_not_an_npz(tmp_path):
    path = tmp_path / "data.npz"
    with open(path, "wb") as out:
        np.save(out, np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(DataError, match="npz"):
        datasets.load_npz(path)


def test_a_zip_whose_member_is_damaged(tmp_path):
    path = tmp_path / "data.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", b"\x93NUMPY garbage")
    with pytest.raises(DataError):
        datasets.load_npz(path)


# -- dataset specs ------------------------------------------------------------------------------
SPEC_PIECES = st.sampled_from([
    "cifar100", "cifar100_corrupted", "cifar100_corrupted/", "cifar100_corrupted/fog_3",
    "cifar100_corrupted/fog_0", "cifar100_corrupted/fog_²", "cifar100_corrupted/zoom_blur_5",
    "cifar100_corrupted/nope_1", "npz", "folder", "NPZ", ":", "::", "test", "train", "train[:10%]",
    "validation", "", " ", "/", "..", "missing.npz", "missing/", "\x00", "é", "9" * 5000,
])


@settings(max_examples=budget(400))
@given(st.lists(SPEC_PIECES | st.text(max_size=8), min_size=0, max_size=5).map("".join)
       | st.lists(SPEC_PIECES, min_size=1, max_size=4).map(":".join))
@example("cifar100_corrupted/fog_" + "9" * 5000 + ":test")
@example("cifar100_corrupted/fog_²:test")
def test_any_spec_parses_or_is_a_data_error(spec):
    try:
        parsed = datasets.parse_spec(spec)
    except DataError as error:
        assert str(error).strip()
        SPEC_TALLY.add("DataError")
        return
    assert parsed.source in ("cifar100", "cifar100_corrupted", "npz", "folder", "files", "tfrecord")
    if parsed.corruption not in (None, "*"):  # "*": every CIFAR-100-C set, for Beam
        assert 1 <= parsed.severity <= 5
    if parsed.source in ("npz", "folder"):
        # Loading a local spec (never the network) ends in images or a DataError.
        try:
            datasets.load_spec(parsed, limit=2)
        except DataError:
            SPEC_TALLY.add("DataError")
            return
    SPEC_TALLY.add("accepted")


# Sizes other than the stored (4, 4) would resize through TensorFlow; the checks come first.
@settings(max_examples=budget(100))
@given(st.one_of(st.none(), st.integers(-3, 3), st.booleans(), st.floats(), st.text(max_size=3)),
       st.one_of(st.none(), st.just((4, 4)), st.tuples(st.integers(-2, 0), st.integers(-2, 4)),
                 st.text(max_size=3), st.tuples(st.floats(allow_nan=True), st.just(4)),
                 st.tuples(st.just(4))))
def test_load_spec_limit_and_size(tmp_path_factory, limit, size):
    path = tmp_path_factory.mktemp("spec") / "d.npz"
    np.savez(path, x=np.zeros((3, 4, 4, 3), np.uint8), y=np.array([0, 1, 2]))
    try:
        loaded = datasets.load_spec(f"npz:{path}", limit=limit, size=size)
    except DataError:
        SPEC_TALLY.add("DataError")
        return
    _check_loaded(loaded.images, loaded.labels, loaded.label_names)
    SPEC_TALLY.add("accepted")
