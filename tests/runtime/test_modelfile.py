"""The carried configuration: packing, reading, and atomic writes."""

import struct
import zipfile

import pytest

from tests._dummies.modelfiles import FAKE_FLATBUFFER, raw_pack, valid_config, without_format
from tfuq.runtime import modelfile

CONFIG = without_format(valid_config())


def test_round_trip_and_flatbuffer_boundary():
    data = modelfile.pack(FAKE_FLATBUFFER, {**CONFIG, "passes": 3, "labels": ["a"], "mc_dropout": []})
    flatbuffer, config = modelfile.split(data)
    assert flatbuffer == FAKE_FLATBUFFER
    assert config.passes == 3 and config.format == "tfuq-model" and config.labels == ("a",)


def test_zip_offsets_are_absolute_so_any_zip_reader_finds_the_entry(tmp_path):
    data = modelfile.pack(FAKE_FLATBUFFER, CONFIG)
    # End of central directory: its offset field must point at the central directory itself.
    eocd = data.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack("<II", data[eocd + 12 : eocd + 20])
    assert data[cd_offset : cd_offset + 4] == b"PK\x01\x02"
    assert cd_offset + cd_size == eocd
    (local_offset,) = struct.unpack("<I", data[cd_offset + 42 : cd_offset + 46])
    assert local_offset == len(FAKE_FLATBUFFER)
    assert data[local_offset : local_offset + 4] == b"PK\x03\x04"
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    assert zipfile.ZipFile(path).namelist() == ["tfuq.json"]


def test_file_without_configuration_is_named():
    with pytest.raises(modelfile.ModelFileError, match="no tfuq configuration"):
        modelfile.split(FAKE_FLATBUFFER)


def test_not_a_flatbuffer():
    with pytest.raises(modelfile.ModelFileError, match="not a TFLite flatbuffer"):
        modelfile.split(b"PK\x03\x04 something else")


def test_newer_format_is_refused():
    data = raw_pack(FAKE_FLATBUFFER, valid_config(format_version=99))
    with pytest.raises(modelfile.ModelFileError, match="newer"):
        modelfile.split(data)


def test_update_config_rewrites_only_the_configuration(tmp_path):
    path = tmp_path / "m.tflite"
    modelfile.write(path, FAKE_FLATBUFFER, CONFIG)
    config = modelfile.update_config(path, {"decision": {"rule": "threshold", "score": "predictive_entropy", "threshold": 0.5}})
    assert (config.decision.rule, config.decision.score) == ("threshold", "predictive_entropy")
    assert config.mc_dropout == modelfile.read_config(path).mc_dropout
    assert modelfile.read(path)[0] == FAKE_FLATBUFFER


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with modelfile.atomic_output(target) as out:
            out.write(b"half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_needs_an_existing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="output folder does not exist"):
        with modelfile.atomic_output(tmp_path / "missing" / "out.bin"):
            pass


def test_written_files_get_ordinary_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        modelfile.write(tmp_path / "m.tflite", FAKE_FLATBUFFER, CONFIG)
    finally:
        os.umask(umask)
    assert (tmp_path / "m.tflite").stat().st_mode & 0o777 == 0o644
