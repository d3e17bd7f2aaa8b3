"""Serves the built game (clients/web/dist) for the local stack, with /sd-config.js telling it where the services are.

    python -m scalediffusion.stack.webserver --dir clients/web/dist --port 8088 --config '{"ingestUrl": "http://127.0.0.1:8080"}'
"""

from __future__ import annotations

import argparse
import functools
import json
import signal
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class GameHandler(SimpleHTTPRequestHandler):
    config_js: bytes = b""

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/sd-config.js":
            self.send_response(200)
            self.send_header("Content-Type", "application/javascript")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(self.config_js)))
            self.end_headers()
            self.wfile.write(self.config_js)
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # quiet: the stack's logs are for services
        return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", default="{}", help="JSON for window.__SD_CONFIG__")
    args = parser.parse_args(argv)
    root = Path(args.dir)
    if not (root / "index.html").exists():
        print(f"webserver: {root}/index.html is missing: build the game first (cd clients/web && npm run build)", file=sys.stderr)
        return 2
    handler = type("Handler", (GameHandler,), {"config_js": f"window.__SD_CONFIG__ = {json.dumps(json.loads(args.config))};\n".encode()})
    server = ThreadingHTTPServer((args.host, args.port), functools.partial(handler, directory=str(root)))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
