"""The system under test: one HTTP process holding one bit, whether the lamp is lit.

``GET /state`` -> ``{"lit": bool}``; ``PUT /state`` with ``{"lit": bool}`` sets it and answers
``{"lit": new, "previous": old}``. It starts lit. ``python -m toy_subject.lamp --port N``.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Lamp:
    def __init__(self) -> None:
        self.lit = True
        self.lock = threading.Lock()


def handler(lamp: Lamp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, doc: dict[str, object]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path != "/state":
                self._answer(404, {"error": "not found"})
                return
            self._answer(200, {"lit": lamp.lit})

        def do_PUT(self) -> None:
            try:
                doc = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                lit = doc["lit"]
                if self.path != "/state" or not isinstance(lit, bool):
                    raise ValueError("expected {\"lit\": true|false} on /state")
            except (ValueError, KeyError, TypeError) as exc:
                self._answer(400, {"error": str(exc)})
                return
            with lamp.lock:
                previous, lamp.lit = lamp.lit, lit
            self._answer(200, {"lit": lit, "previous": previous})

        def log_message(self, format: str, *args: object) -> None:  # quiet: no line per request
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="the toy lamp")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), handler(Lamp())).serve_forever()


if __name__ == "__main__":
    main()
