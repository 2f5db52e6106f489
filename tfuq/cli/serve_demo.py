"""Serve the web demo (``web_demo/``) with a model of your choice, on this computer only.

The page runs everything in the browser (LiteRT.js): the model file, the photos and the
results never leave it. This serves the built page, the chosen model as ``model.tflite``,
and the headers that let LiteRT.js use threads, from 127.0.0.1 with the standard library.

What it serves, and to whom:
  - GET and HEAD only: /model.tflite is the model given (read once at start); any other path
    is a regular file whose real path (symbolic links followed) is inside the page folder;
    a folder serves its index.html. No listings, nothing outside, no devices (404).
  - Only requests addressed to this server, Host 127.0.0.1, localhost or [::1] with its port
    (421 otherwise: a page on another site cannot read the model through DNS rebinding).
  - A malformed path (a NUL byte, bad %-escapes, not UTF-8) is 400; an idle connection is
    closed after 30 s; a client that goes away is one line on stderr.

Build the page once (needs Node.js 20.19 or newer):
  cd web_demo && npm ci && npm run build

example:
  tfuq serve-demo --model model.tflite              # then open the address it prints
  tfuq serve-demo --model model.tflite --port 8000
"""

from __future__ import annotations

import functools
import http.server
import json
import mimetypes
import os
import shutil
import stat
import sys
import urllib.parse
from pathlib import Path

from tfuq.cli._common import CliError

HELP = "serve the browser demo page with a model, on 127.0.0.1"
_DEFAULT_PAGE = Path(__file__).resolve().parents[2] / "web_demo" / "dist"
# Cross-origin isolation: SharedArrayBuffer, so LiteRT.js can load its threaded build.
_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
_TYPES = {".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript",
          ".tflite": "application/octet-stream", ".html": "text/html; charset=utf-8",
          ".json": "application/json", ".css": "text/css"}
IDLE_SECONDS = 30


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="a .tflite made by tfuq convert")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument(
        "--page", default=str(_DEFAULT_PAGE), help="the built page folder (default web_demo/dist)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the address as JSON when ready, for scripts"
    )


def _say(message: str) -> None:
    from tfuq._files import shown

    print(f"tfuq serve-demo: {shown(message)}", file=sys.stderr, flush=True)


class _BadPath(Exception):
    """A request path that is not a clean, absolute, UTF-8 path."""


def _clean_path(target: str) -> str:
    """The decoded path of a request target, or _BadPath."""
    path = urllib.parse.urlsplit(target).path
    if not path.startswith("/"):
        raise _BadPath(target)
    try:
        decoded = urllib.parse.unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise _BadPath(target) from None
    if "\\" in decoded or any(ord(c) < 32 or ord(c) == 127 for c in decoded):
        raise _BadPath(target)
    if ".." in decoded.split("/"):
        raise _BadPath(target)
    return decoded


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "tfuq-serve-demo"
    timeout = IDLE_SECONDS  # an idle or half-open connection does not hold a thread forever

    def __init__(self, *args, model: bytes, page: str, **kwargs):
        self._model = model
        self._page = page  # real path of the page folder
        super().__init__(*args, **kwargs)

    def end_headers(self) -> None:
        for name, value in _HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    # -- who may ask --------------------------------------------------------------------------
    def _host_ok(self) -> bool:
        port = self.server.server_address[1]
        host = (self.headers.get("Host") or "").strip().lower()
        return host in {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}

    # -- what is served -------------------------------------------------------------------------
    def _file(self, path: str) -> str | None:
        """The real path of the page file ``path`` names, or None (not inside, not a file)."""
        candidate = os.path.realpath(os.path.join(self._page, path.lstrip("/")))
        if candidate != self._page and not candidate.startswith(self._page + os.sep):
            return None
        try:
            mode = os.stat(candidate).st_mode
        except (OSError, ValueError):
            return None
        if stat.S_ISDIR(mode):
            return self._file(path.rstrip("/") + "/index.html")
        return candidate if stat.S_ISREG(mode) else None

    def _serve(self, body: bool) -> None:
        if not self._host_ok():
            self.send_error(421, "Misdirected Request: this server answers to 127.0.0.1, "
                            "localhost and [::1] only")
            return
        try:
            path = _clean_path(self.path)
        except _BadPath:
            self.send_error(400, "Bad Request: malformed path")
            return
        if path == "/model.tflite":
            self._send(len(self._model), "application/octet-stream")
            if body:
                self.wfile.write(self._model)
            return
        found = self._file(path)
        if found is None:
            self.send_error(404, "Not Found")
            return
        try:
            handle = open(found, "rb")  # noqa: SIM115 (closed below)
        except OSError:
            self.send_error(404, "Not Found")
            return
        with handle:
            size = os.fstat(handle.fileno()).st_size
            kind = _TYPES.get(Path(found).suffix.lower()) or (
                mimetypes.guess_type(found)[0] or "application/octet-stream")
            self._send(size, kind)
            if body:
                shutil.copyfileobj(handle, self.wfile)

    def _send(self, size: int, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(size))
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._serve(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError) as error:  # the client went away: one line
            _say(f"{self.client_address[0]}:{self.client_address[1]} went away "
                 f"({type(error).__name__})")

    def log_message(self, format: str, *args) -> None:  # quiet: one line per request is noise
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # Anything a handler did not catch: one line, never a traceback on the terminal.
        error = sys.exc_info()[1]
        _say(f"{client_address[0]}:{client_address[1]}: {type(error).__name__}: {error}")


def run(args) -> int:
    from tfuq._files import check_input, shown
    from tfuq.runtime import modelfile

    page = Path(args.page)
    if not (page / "index.html").is_file():
        raise CliError(f"no built page in {page}: run `cd web_demo && npm ci && npm run build` first")
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be in [0, 65535], got {args.port}")
    model_path = Path(args.model)
    check_input(model_path, "model file")  # a FIFO would hang the start, /dev/zero never end
    try:
        data = model_path.read_bytes()
    except OSError as error:
        raise CliError(f"cannot read model file {shown(model_path)}: {error.strerror}") from error
    modelfile.split(data, str(model_path))  # a one-line error now rather than in the browser
    handler = functools.partial(_Handler, model=data, page=os.path.realpath(page))
    try:
        server = _Server(("127.0.0.1", args.port), handler)
    except OSError as error:
        raise CliError(f"cannot listen on 127.0.0.1:{args.port}: {error.strerror}") from error
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    if args.json:
        print(json.dumps({"url": url, "model": str(model_path)}), flush=True)
    else:
        print(f"serving {shown(model_path)} at {url} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
