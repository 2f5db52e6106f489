"""Serve the web demo (``web_demo/``) with a model of your choice, on this computer only.

The page runs everything in the browser (LiteRT.js): the model file, the photos and the
results never leave it. This serves the built page, the chosen model as ``model.tflite``,
and the headers that let LiteRT.js use threads, from 127.0.0.1 with the standard library.

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
import sys
from pathlib import Path

from tfuq.cli._common import CliError

HELP = "serve the browser demo page with a model, on 127.0.0.1"
_DEFAULT_PAGE = Path(__file__).resolve().parents[2] / "web_demo" / "dist"
# Cross-origin isolation: SharedArrayBuffer, so LiteRT.js can load its threaded build.
_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cache-Control": "no-store",
}


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="a .tflite made by tfuq convert")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument(
        "--page", default=str(_DEFAULT_PAGE), help="the built page folder (default web_demo/dist)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the address as JSON when ready, for scripts"
    )


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript",
                      ".tflite": "application/octet-stream"}

    def __init__(self, *args, model: bytes, **kwargs):
        self._model = model
        super().__init__(*args, **kwargs)

    def end_headers(self) -> None:
        for name, value in _HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.split("?", 1)[0] == "/model.tflite":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(self._model)))
            self.end_headers()
            self.wfile.write(self._model)
            return
        super().do_GET()

    def log_message(self, format: str, *args) -> None:  # quiet: one line per request is noise
        pass


def run(args) -> int:
    from tfuq.runtime import modelfile

    page = Path(args.page)
    if not (page / "index.html").is_file():
        raise CliError(f"no built page in {page}: run `cd web_demo && npm ci && npm run build` first")
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be in [0, 65535], got {args.port}")
    model_path = Path(args.model)
    try:
        data = model_path.read_bytes()
    except OSError as error:
        raise CliError(f"cannot read model file {model_path}: {error.strerror}") from error
    modelfile.split(data, str(model_path))  # a one-line error now rather than in the browser
    handler = functools.partial(_Handler, model=data, directory=str(page))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    except OSError as error:
        raise CliError(f"cannot listen on 127.0.0.1:{args.port}: {error.strerror}") from error
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    if args.json:
        print(json.dumps({"url": url, "model": str(model_path)}), flush=True)
    else:
        print(f"serving {model_path} at {url} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
