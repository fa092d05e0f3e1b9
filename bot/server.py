"""`hitl bot` over HTTP: Slack's endpoint at POST /slack/events, and GET /healthz.

A small threading HTTP server in front of `App.dispatch`: Bolt verifies signatures and
acks; /healthz answers 200 only while Redis does, so a load balancer stops sending
clicks to a bot that could not record them.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import redis
from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.app import health

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# Largest request body accepted; Slack's payloads are far smaller.
MAX_BODY = 1024 * 1024
_JSON = {"Content-Type": "application/json"}


class BotServer:
    """Serve a Bolt app; `port=0` picks a free port (tests)."""

    def __init__(
        self, app: App, conn: redis.Redis, port: int = 3000, host: str = "0.0.0.0", signing_secret: str = ""
    ) -> None:
        self.app = app
        self.verifier = SignatureVerifier(signing_secret)
        self.conn = conn
        handler = self._handler()
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{EVENTS_PATH}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: object) -> None:
                log.debug("%s " + fmt, self.address_string(), *args)

            def _send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
                data = body.encode()
                self.send_response(status)
                for key, value in (headers or {"Content-Type": "text/plain; charset=utf-8"}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if urlsplit(self.path).path == HEALTH_PATH:
                    ok = health(server.conn)
                    body = json.dumps({"ok": ok, "redis": "up" if ok else "down"})
                    self._send(200 if ok else 503, body, _JSON)
                else:
                    self._send(404, "Not Found")

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != EVENTS_PATH:
                    self._send(404, "Not Found")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._send(413, "Payload Too Large")
                    return
                body = self.rfile.read(length).decode("utf-8", errors="replace")
                headers: dict[str, list[str]] = {}
                for key, value in self.headers.items():
                    headers.setdefault(key.lower(), []).append(value)
                try:
                    request = BoltRequest(body=body, query=parts.query, headers=headers)
                except ValueError:
                    # Bolt parses before it verifies: answer as it would, without the traceback.
                    if not server.verifier.is_valid_request(body, {k: v[0] for k, v in headers.items()}):
                        self._send(401, json.dumps({"error": "invalid request"}), _JSON)
                    else:
                        self._send(400, json.dumps({"error": "malformed payload: not valid JSON"}), _JSON)
                    return
                resp = server.app.dispatch(request)
                out = {k: ", ".join(v) for k, v in resp.headers.items()}
                self._send(resp.status, resp.body or "", out)

        return Handler

    def start(self) -> BotServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="hitl-bot-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
