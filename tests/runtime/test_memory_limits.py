"""Hostile sizes under a memory limit: each case runs in a subprocess that warms up (imports,
one small model loaded, one small image decoded), then caps its address space with
``resource.setrlimit(RLIMIT_AS)`` a stated amount above what it holds, and runs the case.
Before tfuq checked sizes, each of these died with a MemoryError traceback (or went on for
gigabytes); now each ends as one line, or in a result within the stated bound."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests._dummies.modelfiles import VALID_CONFIG
from tfuq.runtime import modelfile

pytest.importorskip("PIL")
resource = pytest.importorskip("resource")

REPO = Path(__file__).resolve().parents[2]
FLATBUFFER = b"\x10\x00\x00\x00TFL3" + bytes(24)
MIB = 1 << 20

CHILD = textwrap.dedent("""
    import contextlib, io, json, os, resource, sys
    import numpy as np
    from tfuq.cli.main import main
    from tfuq.runtime import photo

    spec = json.loads(sys.argv[1])

    def vm_size():
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmSize"))

    # Warm up: every library the case needs is loaded before the limit.
    for argv in spec.get("warm", []):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            main(argv)
    photo.read(spec["small_image"], (8, 8)) if spec.get("small_image") else None
    limit = vm_size() + spec["allowance"]
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if "photo" in spec:
        try:
            pixels = photo.read(spec["photo"], (32, 32))
            print(json.dumps({"shape": list(pixels.shape)}))
        except photo.PhotoError as error:
            print(json.dumps({"error": str(error)}))
    else:
        sys.exit(main(spec["argv"]))
""")


def run_limited(spec: dict) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120)


def one_line_exit_2(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("big_images")
    side = 2048  # 4 Mpx; the bound is per pixel, so the photo-rule limit (64 Mpx) scales it
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128  # semi-transparent: the alpha step runs
    (folder / "rgba.png").write_bytes(_png(rgba))
    Image.fromarray(np.full((side, side), 40000, np.uint16)).save(folder / "grey16.png")
    Image.fromarray(np.full((side, side), 70000, np.int32), mode="I").save(folder / "int32.tif")
    Image.fromarray(np.zeros((2 * side, 2 * side, 4), np.uint8) + 100).save(folder / "huge.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "small.png")
    return folder


# The stated bound (tfuq/runtime/photo.py): decoding and steps 1-3 take at most 16 bytes per
# pixel of the photo at once (these need 10-12 here). Before, a semi-transparent RGBA photo
# took 52 bytes per pixel (uint32 temporaries), a 16-bit one 19 and a mode I one 21.
BYTES_PER_PIXEL = 16


@pytest.mark.parametrize("name", ["rgba.png", "grey16.png", "int32.tif"])
def test_a_photo_decodes_within_the_stated_bytes_per_pixel(images, name):
    result = run_limited({"photo": str(images / name), "small_image": str(images / "small.png"),
                          "allowance": BYTES_PER_PIXEL * 2048 * 2048})
    assert result.returncode == 0 and json.loads(result.stdout) == {"shape": [32, 32, 3]}, result


def test_a_photo_beyond_the_limit_is_its_own_error_line_and_the_run_goes_on(images, tiny_tflite):
    small = str(images / "small.png")
    result = run_limited({
        "warm": [["predict", tiny_tflite, small]], "allowance": 24 * MIB,
        "argv": ["predict", tiny_tflite, str(images / "huge.png"), small],
    })
    one_line_exit_2(result, "1 of 2 images failed", "huge.png")
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and "huge.png: error: not enough memory" in lines[0], result
    assert lines[1].startswith(small + ": "), result  # the next image was decided on


def _packed(config: dict, flatbuffer: bytes = FLATBUFFER) -> bytes:
    return modelfile.pack(flatbuffer, {k: v for k, v in config.items() if not k.startswith("format")})


def test_a_deflated_configuration_bomb_is_refused_from_a_capped_read(tmp_path, tiny_tflite):
    # Valid JSON plus 64 MiB of spaces, deflated to about 64 KB (the was 1 GiB in 1.36 MB).
    text = json.dumps({**VALID_CONFIG}) + " " * (64 * MIB)
    buffer = io.BytesIO(FLATBUFFER)
    buffer.seek(0, 2)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(modelfile.CONFIG_NAME, text)
    bomb = tmp_path / "bomb.tflite"
    bomb.write_bytes(buffer.getvalue())
    assert bomb.stat().st_size < MIB
    for command in ("inspect", "predict"):
        argv = [command, str(bomb)] + (["x.png"] if command == "predict" else [])
        result = run_limited({"warm": [["inspect", tiny_tflite]], "allowance": 16 * MIB, "argv": argv})
        one_line_exit_2(result, "unpacks to more than 4,194,304 bytes")


def test_a_declared_size_that_lies_is_still_capped(tmp_path, monkeypatch):
    # The central directory says 100 bytes; zipfile reads no further than it says, and the
    # cap counts what comes out anyway, so the read stays bounded either way.
    text = json.dumps(VALID_CONFIG) + " " * (5 * MIB)
    buffer = io.BytesIO(FLATBUFFER)
    buffer.seek(0, 2)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(modelfile.CONFIG_NAME, text)
    data = buffer.getvalue()
    central = data.rindex(b"PK\x01\x02")  # uncompressed size at offset 24 of the entry
    assert int.from_bytes(data[central + 24 : central + 28], "little") == len(text)
    data = data[: central + 24] + (100).to_bytes(4, "little") + data[central + 28 :]
    with pytest.raises(modelfile.ModelFileError):
        modelfile.split(data)
    monkeypatch.setattr(modelfile, "MAX_CONFIG_BYTES", 50)  # an honest small size, over the cap
    with pytest.raises(modelfile.ModelFileError, match="unpacks to more than 50 bytes"):
        modelfile.split(_packed(VALID_CONFIG))


def test_a_huge_input_is_refused_at_load_naming_its_size(tmp_path, tiny_tflite):
    config = json.loads(json.dumps(VALID_CONFIG))
    config["input"].update(height=16384, width=16384)
    model = tmp_path / "huge_input.tflite"
    model.write_bytes(_packed(config))
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 8, 8, 3), np.uint8), y=np.zeros(2, np.int64))
    for argv in (["inspect", str(model)], ["predict", str(model), "x.png"],
                 ["evaluate", str(model), "--data", str(tmp_path / "d.npz")],
                 ["calibrate", str(model), "--data", str(tmp_path / "d.npz"), "--target-risk", "0.1",
                  "--dry-run"]):
        result = run_limited({"warm": [["inspect", tiny_tflite]], "allowance": 16 * MIB, "argv": argv})
        one_line_exit_2(result, "(1, 16384, 16384, 3)", "768.0 MiB per image", "256.0 MiB")


def _with_output_classes(path: str, classes: int) -> bytes:
    import flatbuffers

    from tfuq.runtime.tflite_graph import _schema

    schema = _schema()
    flatbuffer, config = modelfile.read(path)
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    graph = model.subgraphs[0]
    output = graph.tensors[graph.outputs[0]]
    output.shape = [output.shape[0], classes]
    if output.shapeSignature is not None:
        output.shapeSignature = [output.shape[0], classes]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    # Without labels: 4 labels for 2**28 classes would be refused for another reason.
    return _packed({k: v for k, v in config.to_dict().items() if k != "labels"}, bytes(builder.Output()))


def test_a_patched_output_shape_is_refused_before_any_run(tmp_path, tiny_tflite):
    pytest.importorskip("flatbuffers")
    model = tmp_path / "wide.tflite"
    model.write_bytes(_with_output_classes(tiny_tflite, 2**28))
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 8, 8, 3), np.uint8), y=np.zeros(2, np.int64))
    for argv in (["inspect", str(model)],
                 ["evaluate", str(model), "--data", str(tmp_path / "d.npz")],
                 ["calibrate", str(model), "--data", str(tmp_path / "d.npz"), "--target-risk", "0.1",
                  "--dry-run"]):
        result = run_limited({"warm": [["inspect", tiny_tflite]], "allowance": 16 * MIB, "argv": argv})
        one_line_exit_2(result, "268435456)", "8.00 GiB per image as float32")


def test_a_run_too_big_for_the_budget_names_the_images_that_fit(monkeypatch):
    from tfuq.runtime import budget

    budget.check_run("m", 30, 10_000, 1_000)  # 1.1 GiB: fine
    with pytest.raises(budget.BudgetError, match=r"30 passes x 100,000 images x 1,000 classes take "
                       r"11.18 GiB .* use --limit 35,791 or fewer"):
        budget.check_run("m", 30, 100_000, 1_000)


def test_fifo_and_device_inputs_are_one_line(tmp_path, tiny_tflite, images):
    import os

    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    (tmp_path / "zero.npz").symlink_to("/dev/zero")
    small = str(images / "small.png")
    cases = [
        (["inspect", str(fifo)], "is a FIFO, not a regular file"),
        (["inspect", "/dev/zero"], "is a character device, not a regular file"),
        (["evaluate", tiny_tflite, "--data", str(fifo)], "--data"),
        (["evaluate", tiny_tflite, "--data", str(tmp_path / "zero.npz")], "a character device"),
        (["calibrate", tiny_tflite, "--data", str(fifo), "--target-risk", "0.1"], "is a FIFO"),
    ]
    for argv, needle in cases:
        result = run_limited({"warm": [["inspect", tiny_tflite]], "allowance": 16 * MIB, "argv": argv})
        one_line_exit_2(result, needle)
    result = run_limited({"warm": [["predict", tiny_tflite, small]], "allowance": 16 * MIB,
                          "argv": ["predict", tiny_tflite, str(fifo), "/dev/zero", small]})
    one_line_exit_2(result, "2 of 3 images failed")
    lines = result.stdout.splitlines()
    assert lines[0] == f"{fifo}: error: is a FIFO, not an image file", result
    assert lines[1] == "/dev/zero: error: is a character device, not an image file"
    assert lines[2].startswith(small + ": ")
