"""`tfuq serve-demo` invoked as a user would: it serves the page and the chosen model on
127.0.0.1 with the cross-origin-isolation headers, and refuses bad input in one line."""

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests._dummies.modelfiles import VALID_CONFIG  # noqa: E402
from tfuq.cli.main import main
from tfuq.runtime import modelfile

REPO = Path(__file__).resolve().parents[2]
FLATBUFFER = b"\x10\x00\x00\x00TFL3" + bytes(24)


@pytest.fixture
def site(tmp_path):
    page = tmp_path / "page"
    page.mkdir()
    (page / "index.html").write_text("<!doctype html><title>tfuq</title>")
    model = tmp_path / "model.tflite"
    model.write_bytes(modelfile.pack(FLATBUFFER, {k: v for k, v in VALID_CONFIG.items() if not k.startswith("format")}))
    return page, model


def test_serves_page_and_model_on_localhost(site):
    page, model = site
    server = subprocess.Popen(
        [sys.executable, "-m", "tfuq.cli.main", "serve-demo", "--model", str(model),
         "--page", str(page), "--port", "0", "--json"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        url = json.loads(server.stdout.readline())["url"]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "model.tflite?v=1", timeout=10) as response:
            assert response.read() == model.read_bytes()
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"<title>tfuq</title>" in response.read()
            assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no-page", "no built page in"),
        ("bad-model", "is not a TFLite flatbuffer"),
        ("no-config", "carries no tfuq configuration"),
        ("port", "--port must be in [0, 65535]"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(site, tmp_path, capsys, change, message):
    page, model = site
    args = ["serve-demo", "--model", str(model), "--page", str(page), "--port", "0"]
    if change == "no-page":
        args[4] = str(tmp_path / "missing")
    elif change == "bad-model":
        model.write_bytes(b"<html>")
    elif change == "no-config":
        model.write_bytes(FLATBUFFER)
    else:
        args[-1] = "70000"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_help_has_an_example():
    result = subprocess.run(
        [sys.executable, "-m", "tfuq.cli.main", "serve-demo", "--help"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    assert "example:" in result.stdout and "tfuq serve-demo --model model.tflite" in result.stdout
