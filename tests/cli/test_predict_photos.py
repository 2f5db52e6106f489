"""`tfuq predict` follows the photo rule the model file carries, and survives bad photos: a
bounded hypothesis fuzz of image files (truncated, mutated, garbage, valid in every mode)
through the command, which must print one line per file and exit 0 or 2, never a traceback."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests._dummies.modelfiles import raw_pack
from tfuq.cli.main import main
from tfuq.runtime import modelfile, photo

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.runtime.test_photo import COMBINATIONS, make_image, png_by_hand  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("TFUQ_FUZZ_EXAMPLES", "120")) // 4  # a command per example


def run_quietly(args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in args])
    return status, out.getvalue(), err.getvalue()


def with_photo_rule(source: str, target: Path, rule) -> str:
    """A copy of a model whose tfuq.json has ``rule`` as input.photo_rule (None: no key)."""
    flatbuffer, config = modelfile.read(source)
    written = config.to_dict()  # the JSON as it is, unchecked: the rule may be malformed
    written["input"] = {k: v for k, v in written["input"].items() if k != "photo_rule"}
    if rule is not None:
        written["input"]["photo_rule"] = rule
    target.write_bytes(raw_pack(flatbuffer, written))
    return str(target)


@pytest.fixture(scope="module")
def wide_photo(tmp_path_factory) -> Path:
    """A 16x48 photo: a bright square in the middle, other colours on the sides."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (16, 48, 3), dtype=np.uint8)
    pixels[:, 16:32] = (230, 40, 40)
    path = tmp_path_factory.mktemp("wide") / "wide.png"
    Image.fromarray(pixels).save(path)
    return path


def _probabilities(model_path, image):
    import tfuq

    return tfuq.load(model_path).run(image, seed=0)[:, 0].mean(0)


def test_the_carried_rule_crops(tiny_tflite, wide_photo):
    assert modelfile.read_config(tiny_tflite).input.photo_rule.to_dict() == photo.RULE.to_json()
    status, out, err = run_quietly(["predict", tiny_tflite, wide_photo, "--json"])
    assert status == 0 and "photos center-crop-bilinear v2" in err
    record = json.loads(out)
    cropped = photo.read(wide_photo, (16, 16))
    assert (cropped == (230, 40, 40)).all()  # the crop is the square alone
    assert record["probability"] == pytest.approx(float(_probabilities(tiny_tflite, cropped).max()),
                                                  abs=1e-9)


def test_a_model_without_the_rule_stretches_as_before(tiny_tflite, wide_photo, tmp_path):
    old = with_photo_rule(tiny_tflite, tmp_path / "old.tflite", None)
    status, out, err = run_quietly(["predict", old, wide_photo, "--json"])
    assert status == 0 and "photos stretch" in err
    stretched = np.asarray(Image.open(wide_photo).resize((16, 16), Image.BILINEAR))
    assert np.array_equal(photo.read(wide_photo, (16, 16), photo.STRETCH), stretched)
    assert json.loads(out)["probability"] == pytest.approx(
        float(_probabilities(old, stretched).max()), abs=1e-9)


def test_a_version_1_model_predicts_the_bytes_it_did_and_version_2_reduces(tiny_tflite, tmp_path):
    # 64x192 for a 16x16 input: version 2 takes s = 4 (16x48, crop 16x16) and decodes the JPEG
    # at 1/4; version 1 crops 64x64 of the full decode and resizes it, as before version 2.
    rng = np.random.default_rng(4)
    pixels = np.repeat(np.repeat(rng.integers(0, 256, (8, 24, 3), dtype=np.uint8), 8, 0), 8, 1)
    path = tmp_path / "large.jpg"
    Image.fromarray(pixels).save(path, quality=95)
    assert photo.reduction_factor(64, 192, 16, 16) == 4
    full = np.asarray(Image.open(path).convert("RGB"))
    v1_input = np.asarray(Image.fromarray(full[:, 64:128]).resize((16, 64), Image.BILINEAR)
                          .resize((16, 16), Image.BILINEAR))  # v1 by hand: crop, two passes
    v2_input = photo.read(path, (16, 16))
    assert not np.array_equal(v1_input, v2_input)
    old = with_photo_rule(tiny_tflite, tmp_path / "v1.tflite", {"name": "center-crop-bilinear",
                                                                 "version": 1})
    for model, pixels_in, name in ((old, v1_input, "v1"), (tiny_tflite, v2_input, "v2")):
        status, out, err = run_quietly(["predict", model, path, "--json"])
        assert status == 0 and f"photos center-crop-bilinear {name}" in err
        assert json.loads(out)["probability"] == pytest.approx(
            float(_probabilities(model, pixels_in).max()), abs=1e-9)


@pytest.mark.parametrize("rule", [{"name": "center-crop-bilinear", "version": 3},
                                  {"name": "letterbox", "version": 1}, "center-crop-bilinear"])
def test_an_unknown_rule_is_refused_in_one_line(tiny_tflite, wide_photo, tmp_path, rule):
    model = with_photo_rule(tiny_tflite, tmp_path / "new.tflite", rule)
    status, out, err = run_quietly(["predict", model, wide_photo])
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "photo" in err and "Traceback" not in err


# -- fuzzing the command ---------------------------------------------------------------------------
@st.composite
def photo_files(draw):
    """(kind, bytes) of one image file, good or bad."""
    kind = draw(st.sampled_from(["valid", "truncated", "mutated", "garbage", "header"]))
    if kind == "header":
        width, height = draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1))
        return kind, png_by_hand(width, height, 8, 2, None)
    if kind == "garbage":
        return kind, draw(st.binary(max_size=200))
    fmt, mode = draw(st.sampled_from(COMBINATIONS))
    data = make_image(fmt, mode, draw(st.integers(1, 40)), draw(st.integers(1, 40)),
                      draw(st.integers(0, 2**16)), draw(st.integers(0, 9)))
    if kind == "truncated":
        return kind, data[: draw(st.integers(0, len(data) - 1))]
    if kind == "mutated":
        data = bytearray(data)
        for _ in range(draw(st.integers(1, 6))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return kind, bytes(data)
    return kind, data


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(photo_files(), min_size=1, max_size=6))
def test_fuzz_predict_ends_each_file_in_a_decision_or_a_one_line_error(tiny_tflite, files):
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index, (kind, data) in enumerate(files):
            path = Path(folder) / f"{index}-{kind}.png"
            path.write_bytes(data)
            paths.append(path)
        status, out, err = run_quietly(["predict", tiny_tflite, *paths, "--json"])
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in paths]
    failed = [r for r in records if "error" in r]
    for record in failed:
        assert record["error"] and "\n" not in record["error"]
    for record, (kind, _) in zip(records, files, strict=True):
        event(f"{kind}: {'error' if 'error' in record else 'decided'}")
        if kind == "valid":
            assert "error" not in record, record
    assert status == (2 if failed else 0)
    assert "Traceback" not in err


def test_a_corpus_of_bad_photos_through_the_real_command(tiny_tflite, tmp_path):
    """The kinds the fuzzer found worth keeping, in a separate process: exit 2, one line each."""
    good = make_image("JPEG", "RGB", 24, 18, seed=1)
    corpus = {
        "empty.jpg": b"",
        "garbage.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        "truncated.jpg": good[: len(good) // 3],
        "bomb.png": png_by_hand(100_000, 100_000, 8, 2, None),
        "zero-width.png": png_by_hand(0, 5, 8, 2, None),
        "float.tif": make_float_tiff(),
        "sixteen-bit.png": png_by_hand(2, 1, 16, 2, [bytes(12)]),
        "cmyk.jpg": make_image("JPEG", "CMYK", 9, 7, seed=2),
        "rotated.webp": make_image("WEBP", "RGBA", 9, 7, seed=3, orientation=6),
    }
    for name, data in corpus.items():
        (tmp_path / name).write_bytes(data)
    paths = [tmp_path / name for name in corpus]
    result = subprocess.run([sys.executable, "-m", "tfuq.cli.main", "predict", tiny_tflite, *paths],
                            capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).parents[2])
    lines = result.stdout.splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(lines) == len(corpus)
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 6  # the last three are photos and are decided
    assert "more than the 67,108,864 a photo may have" in lines[3]
    assert "float" in lines[5]


def make_float_tiff() -> bytes:
    buffer = io.BytesIO()
    Image.new("F", (3, 3), 0.5).save(buffer, format="TIFF")
    return buffer.getvalue()


def test_combinations_cover_the_modes_the_rule_names():
    modes = {mode for _, mode in COMBINATIONS}
    assert {"P", "LA", "1", "I;16", "CMYK", "RGBA"} <= modes
