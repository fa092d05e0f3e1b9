"""``SlackStandIn``: a local HTTP server that answers like Slack's Web API.

Slack cannot be reached from tests, so the bot and workers talk to this server
instead, through the very same slack_sdk ``WebClient`` they use in production::

    with SlackStandIn(bot_token="xoxb-test") as slack:
        client = WebClient(token="xoxb-test", base_url=slack.url)
        client.chat_postMessage(channel="#agent-approvals", text="hi")
        slack.workspace.wait_for(lambda: slack.workspace.latest_message("C0APPROVALS"))

Requests are decoded exactly as slack_sdk sends them (it always POSTs: JSON bodies for
write methods, form bodies for read methods, the token in ``Authorization: Bearer``)
and as curl or a browser might (GET with a query string, ``token`` as a parameter,
multipart forms). Routes:

- ``/api/<method>``: the Web API (``hitl_sandbox.webapi``);
- ``/actions/<team>/<id>/<secret>``: response URLs handed out in interaction payloads;
- ``/_sandbox/...``: reserved for the browser page, mounted with ``add_route``.

Standard library only, so it can run anywhere the product runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from hitl_sandbox.faults import Faults
from hitl_sandbox.webapi import RAW_BODY_KEY, ConnectionDropped, call
from hitl_sandbox.workspace import SlackError, Workspace

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
SANDBOX_PREFIX = "/_sandbox/"
ACTIONS_PREFIX = "/actions/"


@dataclass
class SandboxRequest:
    """An HTTP request handed to a route mounted with ``SlackStandIn.add_route``."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class SandboxResponse:
    """What a mounted route answers."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/plain; charset=utf-8"})
    body: bytes = b""


Route = Callable[[SandboxRequest], SandboxResponse]


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its SlackStandIn (daemon threads: stopping never waits on clients)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], stand_in: SlackStandIn) -> None:
        self.stand_in = stand_in
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Decodes one HTTP request and hands it to the matching route."""

    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "SlackStandIn/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Route http.server's access log to logging (debug) instead of stderr."""
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    # -- plumbing ----------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        """The request body (Content-Length bytes; clients here never send chunked bodies)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """Write a complete response with Content-Length (keep-alive safe)."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
        """Write a JSON response."""
        self._send(status, headers, json.dumps(body).encode("utf-8"))

    def _drop(self) -> None:
        """Close the socket without a response, like a connection reset mid-request."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _dispatch(self) -> None:
        """Route by path prefix: mounted routes, then /api/, then response URLs."""
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        body = self._read_body()
        stand_in = self.server.stand_in
        for prefix, route in stand_in.routes():
            if parts.path.startswith(prefix):
                request = SandboxRequest(self.command, parts.path, query, dict(self.headers.items()), body)
                response = route(request)
                self._send(response.status, response.headers, response.body)
                return
        if parts.path.startswith(API_PREFIX):
            self._api(parts.path[len(API_PREFIX) :].strip("/"), query, body)
        elif parts.path.startswith(ACTIONS_PREFIX) and self.command == "POST":
            self._response_url(parts.path, body)
        else:
            self._send_json(
                404, {"content-type": "application/json; charset=utf-8"}, {"ok": False, "error": "not_found"}
            )

    # -- the Web API -------------------------------------------------------------------------

    def _api(self, method: str, query: dict[str, str], body: bytes) -> None:
        """Decode arguments and token as Slack does, then answer with ``webapi.call``."""
        args: dict[str, Any] = dict(query)
        json_body: dict[str, Any] | None = None
        body_error: str | None = None
        content_type = (self.headers.get("Content-Type") or "").lower()
        media_type = content_type.split(";")[0].strip()
        if body:
            if media_type == "application/json":
                try:
                    decoded = json.loads(body.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    body_error = "invalid_json"
                else:
                    if isinstance(decoded, dict):
                        json_body = decoded
                    else:
                        body_error = "json_not_object"
            elif media_type == "multipart/form-data":
                args.update(_parse_multipart(content_type, body))
            else:
                args.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        token = None
        authorization = self.headers.get("Authorization") or ""
        if authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
        elif args.get("token"):
            token = str(args["token"])
        workspace = self.server.stand_in.workspace
        try:
            status, headers, answer = call(
                workspace, method, args, token, json_body=json_body, body_error=body_error
            )
        except ConnectionDropped:
            self._drop()
            return
        if RAW_BODY_KEY in answer:
            self._send(status, headers, str(answer[RAW_BODY_KEY]).encode("utf-8"))
        else:
            self._send_json(status, headers, answer)

    def _response_url(self, path: str, body: bytes) -> None:
        # /actions/<team>/<digits>/<secret>
        """Apply a post to a response_url (what Bolt's ``respond()`` sends)."""
        pieces = path[len(ACTIONS_PREFIX) :].split("/", 1)
        token = pieces[1] if len(pieces) == 2 else ""
        headers = {"content-type": "application/json; charset=utf-8"}
        try:
            payload = json.loads(body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError):
            form = dict(parse_qsl(body.decode("utf-8", "replace")))
            payload = json.loads(form["payload"]) if "payload" in form else form
        try:
            self.server.stand_in.workspace.use_response_url(
                token, payload if isinstance(payload, dict) else {}
            )
        except SlackError as exc:
            self._send_json(exc.status, headers, {"ok": False, "error": exc.error})
            return
        self._send_json(200, headers, {"ok": True})


def _parse_multipart(content_type: str, body: bytes) -> dict[str, str]:
    """Text fields of a multipart/form-data body (files are not modelled)."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name and not part.get_filename():
            payload = part.get_payload(decode=True)
            fields[str(name)] = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return fields


class SlackStandIn:
    """A running stand-in for Slack's Web API with its in-memory workspace.

    ``port=0`` picks a free port. Use as a context manager, or call ``start()`` and
    ``stop()``. ``url`` is what ``WebClient(base_url=...)`` wants.
    """

    def __init__(
        self,
        bot_token: str = "xoxb-sandbox",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        workspace: Workspace | None = None,
        non_marketplace: bool = False,
    ) -> None:
        """``non_marketplace`` applies Slack's limits for apps outside the Marketplace to
        conversations.history and conversations.replies (``Faults.non_marketplace_limits``)."""
        self.bot_token = bot_token
        self.host = host
        self._port = port
        self.workspace = workspace or Workspace()
        self.workspace.add_token(bot_token, self.workspace.bot_user_id)
        if non_marketplace:
            self.workspace.faults.non_marketplace_limits()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._routes: list[tuple[str, Route]] = []
        self._routes_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self._port), self)
        self._port = self._server.server_address[1]
        self.workspace.public_url = self.base_url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name=f"slack-stand-in:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        # shutdown() only takes effect when serve_forever's select() wakes up; poke the
        # listening socket until it has, so stopping takes milliseconds, not a poll period.
        stopper = threading.Thread(target=server.shutdown, name="slack-stand-in-stop", daemon=True)
        stopper.start()
        while stopper.is_alive():
            with contextlib.suppress(OSError):
                socket.create_connection((self.host, self._port), timeout=0.2).close()
            stopper.join(0.005)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (after ``start()``)."""
        return self._port

    @property
    def base_url(self) -> str:
        """``http://host:port`` without a trailing slash."""
        return f"http://{self.host}:{self._port}"

    @property
    def url(self) -> str:
        """The Web API base URL for ``WebClient(base_url=...)``: ``http://host:port/api/``."""
        return f"{self.base_url}{API_PREFIX}"

    @property
    def faults(self) -> Faults:
        """Fault injection and rate limits (``slack.faults.ratelimit("chat.postMessage")``)."""
        return self.workspace.faults

    # -- helpers -----------------------------------------------------------------------------

    def issue_trigger_id(
        self, user_id: str = "U0ALICE", *, view_id: str | None = None, age: float = 0.0
    ) -> str:
        """A trigger_id for an interaction payload (valid 3 s, single use)."""
        return self.workspace.issue_trigger_id(user_id, view_id=view_id, age=age)

    def add_route(self, prefix: str, route: Route) -> None:
        """Serve requests whose path starts with ``prefix`` (e.g. ``/_sandbox/``) with ``route``."""
        with self._routes_lock:
            self._routes.append((prefix, route))
            self._routes.sort(key=lambda item: len(item[0]), reverse=True)

    def routes(self) -> list[tuple[str, Route]]:
        """Mounted routes, longest prefix first."""
        with self._routes_lock:
            return list(self._routes)


def main(argv: list[str] | None = None) -> None:
    """Run a stand-in from the command line (``python -m hitl_sandbox --port 8900``)."""
    import argparse

    parser = argparse.ArgumentParser(description="Local stand-in for Slack's Web API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="xoxb-sandbox", help="bot token to accept")
    options = parser.parse_args(argv)
    stand_in = SlackStandIn(bot_token=options.token, host=options.host, port=options.port).start()
    print(f"Slack Web API stand-in at {stand_in.url} (token {options.token}); Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        stand_in.stop()


if __name__ == "__main__":
    main()
