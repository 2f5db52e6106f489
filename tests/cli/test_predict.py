"""`tfuq predict` invoked as a user would: files, a stream of paths on stdin, a watched folder;
the decisions checked against the runtime and the rule applied by hand."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tfuq.cli.main import main

PIL = pytest.importorskip("PIL.Image")


def run_cli(args, capsys):
    capsys.readouterr()  # drop what fixtures printed (the converter talks on stdout)
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def records(text):
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def pictures(tiny_images, tmp_path_factory):
    """Eight PNGs at the model's input size (16x16), so decoding changes no pixel."""
    folder = tmp_path_factory.mktemp("pictures")
    images, labels = tiny_images
    paths = []
    for index in range(8):
        path = folder / f"{index}.png"
        PIL.fromarray(images[index]).save(path)
        paths.append(path)
    return paths, images[:8], labels[:8]


def expected(model_path, images, seed, rule):
    """What the library says for these images, by way of Model.run and abstain.decide."""
    import tfuq
    from tfuq.runtime import abstain

    passes = tfuq.load(model_path).run(images, seed=seed)  # (passes, batch, classes)
    return passes, abstain.decide(passes, rule)


@pytest.mark.parametrize("fixture", ["tiny_tflite", "tiny_in_graph_tflite"])
def test_decisions_equal_the_runtime_and_the_carried_rule(fixture, pictures, request, capsys):
    model_path = request.getfixturevalue(fixture)
    paths, images, labels = pictures
    status, out, _ = run_cli(["predict", model_path, *paths, "--json", "--seed", 7], capsys)
    assert status == 0
    got = records(out)
    # tfuq convert's default: interval (Z = 1) and max_probability >= 0.5.
    rule = {"rule": "all", "rules": [{"rule": "interval", "conf_factor": 1.0},
                                     {"rule": "threshold", "score": "max_probability", "threshold": 0.5}]}
    import tfuq

    assert tfuq.read_config(model_path).decision.to_dict() == rule
    passes, decision = expected(model_path, images, 7, rule)
    mean = passes.mean(axis=0)
    assert [r["path"] for r in got] == [str(p) for p in paths]
    assert [r["predicted"] for r in got] == mean.argmax(-1).tolist()
    assert [r["accept"] for r in got] == decision.accept.tolist()
    assert [r["probability"] for r in got] == pytest.approx(mean.max(-1).tolist(), abs=1e-12)
    assert all(r["label"] == ["red", "green", "blue", "yellow"][r["predicted"]] for r in got if r["accept"])
    # a trained model on its easy images: right and sure about most of them
    assert np.mean([r["predicted"] for r in got] == labels) >= 0.75
    assert all(r["run_ms"] > 0 and r["total_ms"] >= r["run_ms"] for r in got)


def test_abstentions_say_why(pictures, tiny_tflite, capsys):
    paths = pictures[0][:3]
    status, out, _ = run_cli(["predict", tiny_tflite, *paths, "--rule", "threshold", "--score",
                              "max_probability", "--threshold", 1.01], capsys)
    assert status == 0
    lines = out.splitlines()
    assert len(lines) == 3
    for path, line in zip(paths, lines, strict=True):
        assert line.startswith(f"{path}: not sure (max_probability ")
        assert "is below 1.01" in line and "ms" in line
    # Intervals 100 standard deviations wide overlap unless every pass agrees exactly.
    status, out, _ = run_cli(["predict", tiny_tflite, *paths, "--json", "--rule", "interval",
                              "--conf-factor", 100], capsys)
    for record in records(out):
        if not record["accept"]:
            assert record["why"].startswith(f"the interval of {record['predicted_label']} overlaps ")
            assert record["why"].endswith("(Z = 100)") and record["label"] is None


def test_combined_rule_names_the_part_that_refused(pictures, tiny_tflite, capsys):
    paths, images, _ = pictures
    # A floor no probability reaches: every image the interval part accepts is refused by the
    # floor; the others by the interval part, which comes first.
    status, out, _ = run_cli(["predict", tiny_tflite, *paths, "--json", "--rule", "combined",
                              "--threshold", 1.01, "--conf-factor", 0.5], capsys)
    assert status == 0
    _, interval = expected(tiny_tflite, images, 0, {"rule": "interval", "conf_factor": 0.5})
    got = records(out)
    assert not any(r["accept"] for r in got) and interval.accept.any()
    for record, clear in zip(got, interval.accept.tolist(), strict=True):
        if clear:
            assert record["why"].startswith("max_probability ") and record["why"].endswith("is below 1.01")
        else:
            assert record["why"].startswith("the interval of ") and record["why"].endswith("(Z = 0.5)")
    # --rule interval is the paper's rule alone: it accepts what its intervals clear.
    status, out, _ = run_cli(["predict", tiny_tflite, *paths, "--json", "--rule", "interval",
                              "--conf-factor", 0.5], capsys)
    assert [r["accept"] for r in records(out)] == interval.accept.tolist()


def test_threshold_rule_uncertainty_is_its_score(pictures, tiny_tflite, capsys):
    paths, images, _ = pictures
    rule = {"rule": "threshold", "score": "predictive_entropy", "threshold": 0.2}
    status, out, _ = run_cli(["predict", tiny_tflite, *paths, "--json", "--rule", "threshold",
                              "--score", "predictive_entropy", "--threshold", 0.2], capsys)
    assert status == 0
    passes, decision = expected(tiny_tflite, images, 0, rule)
    mean = passes.astype(np.float64).mean(axis=0)
    entropy = -np.sum(np.where(mean > 0, mean * np.log(np.where(mean > 0, mean, 1)), 0), axis=-1)
    got = records(out)
    assert [r["score"] for r in got] == ["predictive_entropy"] * len(paths)
    assert [r["uncertainty"] for r in got] == pytest.approx(entropy.tolist(), abs=1e-9)
    assert [r["accept"] for r in got] == (entropy <= 0.2).tolist()


def test_decode_resizes_and_follows_exif_orientation(tmp_path):
    from tfuq.cli.predict import decode

    flat = tmp_path / "flat.jpg"
    PIL.new("RGB", (40, 30), (10, 200, 30)).save(flat, quality=100)
    pixels = decode(flat, 16, 16)
    assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8
    assert np.abs(pixels.astype(int) - [10, 200, 30]).max() <= 3  # JPEG rounding only

    # Left half red, right half blue, stored with "rotate 180" in EXIF: shown the other way.
    halves = np.zeros((16, 16, 3), np.uint8)
    halves[:, :8] = (255, 0, 0)
    halves[:, 8:] = (0, 0, 255)
    exif = PIL.Exif()
    exif[0x0112] = 3
    PIL.fromarray(halves).save(tmp_path / "turned.png", exif=exif)
    turned = decode(tmp_path / "turned.png", 16, 16)
    assert (turned[:, :8] == (0, 0, 255)).all() and (turned[:, 8:] == (255, 0, 0)).all()

    gray = tmp_path / "gray.png"
    PIL.new("L", (16, 16), 77).save(gray)
    assert (decode(gray, 16, 16) == 77).all()


def test_bad_images_are_reported_and_the_rest_still_decided(pictures, tiny_tflite, tmp_path, capsys):
    (tmp_path / "notes.png").write_text("not an image")
    good = pictures[0][0]
    status, out, err = run_cli(["predict", tiny_tflite, tmp_path / "none.png", tmp_path / "notes.png",
                                tmp_path, good, "--json"], capsys)
    assert status == 2
    got = records(out)
    assert [r.get("error") for r in got] == [
        "no such file", "not an image Pillow can read", "is a directory, not an image", None]
    assert got[-1]["path"] == str(good) and "accept" in got[-1]
    assert "4 images: " in err and "3 failed" in err
    last = err.strip().splitlines()[-1]
    assert last == f"tfuq predict: error: 3 of 4 images failed (first: {tmp_path / 'none.png'}: no such file)"
    assert "Traceback" not in err


@pytest.mark.parametrize("arguments, words", [
    ([], "give IMAGE paths"),
    (["x.png", "--threshold", "0.5"], "--threshold needs --rule threshold"),
    (["x.png", "--conf-factor", "2"], "--conf-factor needs --rule interval"),
    (["x.png", "--rule", "threshold", "--score", "max_probability"], "needs --score and --threshold"),
    (["x.png", "--rule", "combined", "--score", "mutual_information"], "combined with --score mutual_information needs --threshold"),
    (["x.png", "--max-images", "0"], "--max-images must be at least 1"),
    (["x.png", "--timeout", "5"], "--timeout bounds --watch"),
    (["--watch", "/nonexistent/folder"], "not a folder"),
    (["-", "-"], "may be given once"),
    (["x.png", "--threads", "0"], "threads must be at least 1"),
    (["x.png", "--seed", "-1"], "seed must be in [0, 2**64)"),
])
def test_bad_usage_one_line_exit_2(arguments, words, tiny_tflite, capsys):
    status, out, err = run_cli(["predict", tiny_tflite, *arguments], capsys)
    lines = err.strip().splitlines()
    assert status == 2 and out == ""
    assert lines[-1].startswith("tfuq predict: error:") and words in lines[-1], err


def test_bad_model_and_missing_backend(tmp_path, tiny_tflite, pictures, capsys):
    (tmp_path / "x.tflite").write_bytes(b"hello")
    status, _, err = run_cli(["predict", tmp_path / "x.tflite", pictures[0][0]], capsys)
    assert status == 2 and "not a TFLite" in err and "Traceback" not in err
    try:
        import tflite_runtime  # noqa: F401
    except ImportError:
        status, _, err = run_cli(["predict", tiny_tflite, pictures[0][0], "--backend",
                                  "tflite_runtime"], capsys)
        assert status == 2 and "tflite_runtime is not installed" in err.strip().splitlines()[-1]


def test_without_pillow_it_says_so(monkeypatch, tiny_tflite, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "PIL" else real(name, *a))
    status, _, err = run_cli(["predict", tiny_tflite, "x.png"], capsys)
    assert status == 2 and "needs Pillow" in err and len(err.strip().splitlines()) == 1


NO_TENSORFLOW = """
import sys
from tfuq.cli.main import main
status = main(sys.argv[1:])
heavy = sorted(m for m in ("tensorflow", "keras", "tensorflow_datasets", "tf_keras") if m in sys.modules)
print("heavy modules:", heavy, file=sys.stderr)
sys.exit(status if not heavy else 99)
"""


def test_paths_from_stdin_in_a_real_process_without_tensorflow(pictures, tiny_tflite):
    paths = pictures[0][:3]
    stdin = f"{paths[0]}\n\n  {paths[1]}  \n{paths[2]}\n"
    result = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, "predict", tiny_tflite, "-", "--json", "--max-images", "2"],
        input=stdin, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "heavy modules: []" in result.stderr
    assert [r["path"] for r in records(result.stdout)] == [str(p) for p in paths[:2]]


def _drop(folder, name, pixels):
    """Write an image the way a camera pipeline should: to a hidden name, then rename."""
    hidden = folder / f".{name}.part.png"
    PIL.fromarray(pixels).save(hidden)
    os.replace(hidden, folder / name)


def test_watch_a_folder_in_a_real_process(pictures, tiny_tflite, tmp_path):
    _, images, _ = pictures
    PIL.fromarray(images[0]).save(tmp_path / "before.png")  # there before the start: skipped
    process = subprocess.Popen(
        [sys.executable, "-m", "tfuq.cli.main", "predict", tiny_tflite, "--watch", tmp_path,
         "--interval", "0.05", "--max-images", "2", "--timeout", "60", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # Wait until it is watching, so the files below are new to it.
        while "watching" not in process.stderr.readline():
            assert process.poll() is None, process.stderr.read()
        (tmp_path / "notes.txt").write_text("not an image, ignored")
        _drop(tmp_path, "a.png", images[1])
        first = process.stdout.readline()
        _drop(tmp_path, "b.png", images[2])
        second = process.stdout.readline()
        assert process.wait(timeout=60) == 0, process.stderr.read()
    finally:
        process.kill()
        process.stdout.close()
        process.stderr.close()
    paths = [json.loads(line)["path"] for line in (first, second)]
    assert paths == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]


def test_watch_sees_rewrites_and_stops_at_the_timeout(tmp_path):
    from tfuq.cli.predict import watch

    (tmp_path / "old.png").write_bytes(b"1")
    (tmp_path / ".hidden.png").write_bytes(b"1")
    started = time.monotonic()
    stream = watch(tmp_path, interval=0.02, timeout=2.0)
    (tmp_path / "a.png").write_bytes(b"12")
    assert next(stream) == str(tmp_path / "a.png")
    (tmp_path / "a.png").write_bytes(b"123")  # the same name written again: a new image
    assert next(stream) == str(tmp_path / "a.png")
    assert list(stream) == []  # nothing else new, and the stream ends at its timeout
    assert 2.0 <= time.monotonic() - started < 30


def test_watch_includes_existing_images_oldest_first(tmp_path):
    from tfuq.cli.predict import watch

    for age, name in ((30, "new.jpg"), (90, "old.JPG"), (60, "mid.png")):
        (tmp_path / name).write_bytes(b"x")
        stamp = time.time() - age
        os.utime(tmp_path / name, (stamp, stamp))
    (tmp_path / "skip.txt").write_bytes(b"x")
    found = list(watch(tmp_path, interval=0.02, timeout=0.3, include_existing=True))
    assert found == [str(tmp_path / n) for n in ("old.JPG", "mid.png", "new.jpg")]
