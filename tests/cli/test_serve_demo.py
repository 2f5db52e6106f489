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

REPO = Path(__file__).resolve().parents[2]  # the repository (this file is in tests/cli/)
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


# -- hardened: real requests on loopback to a server in this process --------------------------------
@pytest.fixture
def served(site, tmp_path, monkeypatch):
    """A running server over ``site`` with links in and out of the page: (port, model bytes,
    page folder)."""
    import functools
    import os
    import threading

    from tfuq.cli import serve_demo

    page, model = site
    (tmp_path / "secret.txt").write_text("outside")
    (page / "root").symlink_to("/")
    (page / "out.txt").symlink_to(tmp_path / "secret.txt")
    (page / "zero").symlink_to("/dev/zero")
    (page / "assets").mkdir()
    (page / "assets" / "app.js").write_text("console.log(1)")
    (page / "inside.js").symlink_to(page / "assets" / "app.js")
    monkeypatch.setattr(serve_demo._Handler, "timeout", 0.5)
    handler = functools.partial(serve_demo._Handler, model=model.read_bytes(),
                                page=os.path.realpath(page))
    server = serve_demo._Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], model.read_bytes(), page
    server.shutdown()
    server.server_close()


def _request(port: int, path: str, method: str = "GET", host: str | None = "127.0.0.1:{port}"):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    if host is not None:
        connection.putheader("Host", host.format(port=port))
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body, response


@pytest.mark.parametrize(
    ("path", "status"),
    [("/", 200), ("/index.html", 200), ("/assets/app.js", 200), ("/inside.js", 200),
     ("/model.tflite", 200), ("/model.tflite?v=2", 200),
     ("/root/etc/passwd", 404), ("/root/", 404), ("/out.txt", 404), ("/zero", 404),
     ("/assets/", 404), ("/missing.js", 404),
     ("/%00", 400), ("/a%00b.js", 400), ("/%ff", 400), ("/%0a", 400), ("/../etc/passwd", 400),
     ("/assets/..%2f..%2fsecret.txt", 400), ("//etc/passwd", 404), ("*", 400)],
)
def test_only_page_files_and_the_model_are_served(served, path, status):
    port, model, _ = served
    got, body, response = _request(port, path)
    assert got == status, (path, body[:200])
    if status == 200 and path.startswith("/model.tflite"):
        assert body == model
    if status != 200:
        assert b"outside" not in body and b"root:" not in body


@pytest.mark.parametrize(
    ("host", "status"),
    [("127.0.0.1:{port}", 200), ("localhost:{port}", 200), ("LOCALHOST:{port}", 200),
     ("[::1]:{port}", 200), ("evil.example.com", 421), ("evil.example.com:{port}", 421),
     ("127.0.0.1", 421), ("localhost:1", 421), ("", 421), (None, 421)],
)
def test_host_must_name_this_server(served, host, status):
    port, _, _ = served
    assert _request(port, "/model.tflite", host=host)[0] == status


def test_head_is_get_without_the_body(served):
    port, model, _ = served
    status, body, response = _request(port, "/model.tflite", method="HEAD")
    assert status == 200 and body == b"" and int(response.headers["Content-Length"]) == len(model)
    status, body, response = _request(port, "/assets/app.js", method="HEAD")
    assert status == 200 and body == b"" and response.headers["Content-Length"] == "14"
    assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"


def test_idle_connections_are_closed(served):
    import socket
    import time

    port, _, _ = served
    with socket.create_connection(("127.0.0.1", port), timeout=5) as idle:
        idle.sendall(b"GET / HTTP/1.1\r\n")  # half a request, then nothing
        started = time.monotonic()
        assert idle.recv(1024) == b""  # the server hung up
        assert time.monotonic() - started < 4


def test_a_client_going_away_is_one_line(served, capfd):
    import socket
    import struct
    import time

    port, _, _ = served
    # Larger than what loopback buffers hold, so the server is still writing at the reset.
    (served[2] / "big.bin").write_bytes(bytes(32 << 20))
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(f"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            client.recv(100)
            # Reset rather than close, so the server's next write fails at once.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(0.5)
    err = capfd.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line]
    assert lines and all(line.startswith("tfuq serve-demo: 127.0.0.1:") and "went away" in line
                         for line in lines), err


def test_help_says_what_it_serves():
    result = subprocess.run(
        [sys.executable, "-m", "tfuq.cli.main", "serve-demo", "--help"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    text = " ".join(result.stdout.split())
    assert "real path" in text and "Host 127.0.0.1, localhost or [::1]" in text and "421" in text


def test_a_fifo_as_the_model_is_refused(site, tmp_path, capsys):
    import os

    page, _ = site
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    assert main(["serve-demo", "--model", str(fifo), "--page", str(page), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a FIFO" in err[0]
