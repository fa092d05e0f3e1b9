"""The sandbox's browser page: a local Slack channel, served by the stand-in under ``/_sandbox/``.

Someone evaluating hitl-router has no Slack workspace at hand, so ``hitl dev`` shows the
product in a page that looks and behaves like Slack: the bot's cards rendered from their
Block Kit, buttons, confirm dialogs, modals, threads, ephemeral messages, App Home and a
message box for ``/hitl``. Nothing here imitates the bot: every click and submission is
turned into the very payload Slack would send (``hitl_sandbox.signing``), signed with the
app's signing secret and POSTed to the bot's ``/slack/events``; the bot's HTTP answer is
then handled as Slack handles it (a slash command's ack body becomes an ephemeral reply,
a view_submission's ack body closes, updates or annotates the modal). What the page shows
is read back from the stand-in's ``Workspace``, i.e. from what the bot really did through
the Web API. So a bug seen here is a bug in the product, not in a demo double.

Routes (all under ``/_sandbox/``):

- ``GET /`` and ``GET /static/<file>``: the page (``sandbox/hitl_sandbox/static``, no build step);
- ``GET /api/state?as=U…``: a JSON snapshot of what user ``U…`` sees;
- ``GET /api/events?as=U…``: Server-Sent Events carrying that snapshot whenever it changes;
- ``POST /api/click|submit|close|send|home``: the user's actions, relayed to the bot.

The stand-in's mounted routes answer with complete bodies (no streaming), so the event
stream is served as SSE long-polling: each response carries one event whose ``id`` is the
workspace version and snapshot hash; EventSource reconnects at once (``retry:``) and sends
``Last-Event-ID``, and the next response waits on ``Workspace.wait_for_change`` until the
snapshot differs. No change is lost between two responses: the version says where to go on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from hitl_sandbox.server import SANDBOX_PREFIX, SandboxRequest, SandboxResponse, SlackStandIn
from hitl_sandbox.signing import (
    Interactions,
    SignedRequest,
    block_actions,
    element_action,
    signed_command,
    signed_event,
    signed_interaction,
)
from hitl_sandbox.workspace import SlackError, Workspace

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Slash commands the app registers (manifest.yml); others get Slack's "not a valid command".
COMMANDS = ("/hitl",)
# Seconds one event-stream response waits for a change before it answers with a keep-alive.
EVENTS_WAIT = 15.0
# Slices of that wait, so a stopping page releases its waiting threads quickly.
EVENTS_SLICE = 0.5
# What EventSource waits before it asks again (ms): at once, the server does the waiting.
EVENTS_RETRY_MS = 10
# Seconds the page waits for the bot to answer a relayed request (Slack gives apps 3 s).
BOT_TIMEOUT = 10.0
# Largest JSON body the page API accepts.
MAX_BODY = 256 * 1024
# Header the page's own fetches carry: a cross-site form cannot set it without a CORS
# preflight, which this server never grants, so other web pages cannot click for you.
CSRF_HEADER = "x-sandbox"

_JSON = {"content-type": "application/json; charset=utf-8", "cache-control": "no-store"}


class PageError(Exception):
    """A request the page API refuses: HTTP ``status`` and a short message for the page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _json_response(body: dict[str, Any], status: int = 200) -> SandboxResponse:
    """A JSON answer (the page's fetches expect JSON even for errors)."""
    return SandboxResponse(status, dict(_JSON), json.dumps(body).encode("utf-8"))


def escape_text(text: str) -> str:
    """Escape typed text as Slack's client does before it sends it (``&``, ``<``, ``>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _find_block_element(
    blocks: list[Any], block_id: str | None, action_id: str
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The (block, element) a click targets: by block_id *and* action_id.

    ``Interactions.click`` finds the first element with an action_id, which is right for a
    card but not for lists (digest, App Home, ``/hitl list``), where every request has
    its own actions block with the same action ids; the block_id tells them apart.
    """
    for block in blocks:
        if not isinstance(block, dict) or (block_id is not None and block.get("block_id") != block_id):
            continue
        kind = block.get("type")
        candidates: list[Any] = []
        if kind == "actions":
            candidates = list(block.get("elements", []))
        elif kind == "section" and "accessory" in block:
            candidates = [block["accessory"]]
        elif kind == "input" and "element" in block:
            candidates = [block["element"]]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block, element
    return None


def _quiet_disconnects(stand_in: SlackStandIn) -> None:
    """Let a browser that went away mid-answer pass without a traceback in the terminal.

    A pending event-stream answer is written after its tab closed, or after the page
    switched people and dropped its old stream; socketserver would print a BrokenPipe
    traceback each time. Only connection errors are hushed; anything else still prints.
    (The stand-in's server has no hook for this yet, hence the instance-level wrapper.)
    """
    server = getattr(stand_in, "_server", None)
    if server is None or getattr(server, "_hitl_quiet", False):
        return
    original = server.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("sandbox page: %s went away before its answer", client_address)
            return
        original(request, client_address)

    server.handle_error = handle_error
    server._hitl_quiet = True


class SandboxPage:
    """The page and its JSON API, mounted on a running ``SlackStandIn``.

    ``bot_url`` is the app's ``/slack/events`` endpoint and ``signing_secret`` the secret
    the app verifies requests with: the page signs what it relays exactly as Slack would.
    """

    def __init__(self, stand_in: SlackStandIn, bot_url: str, signing_secret: str) -> None:
        self.stand_in = stand_in
        self.workspace: Workspace = stand_in.workspace
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.interactions = Interactions(self.workspace)
        self._closed = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    def mount(self) -> SandboxPage:
        """Serve the page under ``/_sandbox/`` on the stand-in; returns self."""
        self.stand_in.add_route(SANDBOX_PREFIX, self.handle)
        _quiet_disconnects(self.stand_in)
        return self

    def close(self) -> None:
        """Release waiting event streams (they answer within ``EVENTS_SLICE`` seconds)."""
        self._closed.set()

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8080/_sandbox/``."""
        return f"{self.stand_in.base_url}{SANDBOX_PREFIX}"

    # -- routing -------------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one request under ``/_sandbox/``; never raises (errors become JSON)."""
        path = request.path[len(SANDBOX_PREFIX) :]
        try:
            if path.startswith("api/"):
                self._check_origin(request)
            if request.method == "GET":
                if path in ("", "index.html"):
                    return self._static("index.html")
                if path.startswith("static/"):
                    return self._static(path[len("static/") :])
                if path == "api/state":
                    return _json_response(self.snapshot(self._user(request.query.get("as"))))
                if path == "api/events":
                    return self._events(request)
                raise PageError("not found", 404)
            if request.method == "POST" and path.startswith("api/"):
                body = self._body(request)
                user = self._user(body.get("as"))
                actions = {
                    "api/click": self.click,
                    "api/submit": self.submit,
                    "api/close": self.close_view,
                    "api/send": self.send,
                    "api/home": self.open_home,
                }
                action = actions.get(path)
                if action is None:
                    raise PageError("not found", 404)
                return _json_response({"ok": True, **action(user, body)})
            raise PageError("method not allowed", 405)
        except PageError as exc:
            return _json_response({"ok": False, "error": str(exc)}, exc.status)
        except Exception:  # the page must keep working whatever one request hit
            log.exception("sandbox page: %s %s failed", request.method, request.path)
            return _json_response({"ok": False, "error": "internal error (see the terminal)"}, 500)

    def _static(self, name: str) -> SandboxResponse:
        """A file of ``sandbox/hitl_sandbox/static`` by exact name (no paths, so no traversal)."""
        allowed = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()} if STATIC_DIR.is_dir() else {}
        target = allowed.get(name)
        if target is None:
            raise PageError("not found", 404)
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "text/javascript"):
            kind += "; charset=utf-8"
        headers = {
            "content-type": kind,
            "cache-control": "no-cache",
            "x-content-type-options": "nosniff",
        }
        if name.endswith(".html"):
            # The page builds every node with textContent; this forbids anything else too.
            headers["content-security-policy"] = (
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
            )
        return SandboxResponse(200, headers, target.read_bytes())

    def allowed_hosts(self) -> set[str]:
        """The `Host` values that name this page: its bound address and the loopback names.

        Anything else means the browser was pointed here under a foreign name (DNS
        rebinding: `attacker.example` resolving to 127.0.0.1), so the page refuses it.
        """
        port = self.stand_in.port
        names = {"127.0.0.1", "localhost", "[::1]", self.stand_in.host}
        return {f"{name}:{port}" for name in names}

    def _check_origin(self, request: SandboxRequest) -> None:
        """403 unless `Host` (and `Origin`, when sent) is this page's own address."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        allowed = self.allowed_hosts()
        host = headers.get("host", "").strip().lower()
        if host not in allowed:
            raise PageError(
                f"refused: Host {host or '(none)'!r} is not this page's address; "
                f"open the page at http://127.0.0.1:{self.stand_in.port}/_sandbox/",
                403,
            )
        origin = headers.get("origin")
        if origin is not None and origin.strip().lower() not in {f"http://{h}" for h in allowed}:
            raise PageError(f"refused: Origin {origin!r} is not this page's address", 403)

    def _body(self, request: SandboxRequest) -> dict[str, Any]:
        """The JSON object a page fetch sent; refuses other senders (see ``CSRF_HEADER``)."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        if headers.get(CSRF_HEADER) != "1":
            raise PageError(f"missing {CSRF_HEADER} header", 403)
        if len(request.body) > MAX_BODY:
            raise PageError("body too large", 413)
        try:
            body = json.loads(request.body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError) as exc:
            raise PageError("body is not JSON") from exc
        if not isinstance(body, dict):
            raise PageError("body must be a JSON object")
        return body

    def _user(self, user_id: Any) -> str:
        """The person the page acts as: a real, non-bot user of the workspace."""
        user = self.workspace.user(str(user_id)) if isinstance(user_id, str) else None
        if user is None or user.is_bot:
            raise PageError(f"unknown user {user_id!r}; use one of {', '.join(self.people())}")
        return user.id

    def people(self) -> list[str]:
        """Ids of the people one can act as (everyone but bots)."""
        return [u.id for u in self.workspace.users() if not u.is_bot and not u.deleted]

    # -- what a user sees ----------------------------------------------------------------------

    def _channel_ids(self) -> list[str]:
        """Every conversation id, in creation order.

        Workspace offers no listing method yet, so read its table under its lock (a public
        ``channels()`` would be the clean way; see the report that came with this page).
        """
        listing = getattr(self.workspace, "channels", None)
        if callable(listing):
            return [c.id for c in listing()]
        with self.workspace.lock:
            return list(getattr(self.workspace, "_channels", {}).keys())

    def snapshot(self, user_id: str) -> dict[str, Any]:
        """Everything ``user_id`` sees, as plain JSON: people, channels, messages, modal, Home."""
        ws = self.workspace
        with ws.lock:  # one consistent picture, not half of a change
            version = ws.version
            users = {
                u.id: {"name": u.name, "real_name": u.real_name, "is_bot": u.is_bot, "tz": u.tz}
                for u in ws.users()
            }
            groups = {g.id: {"handle": g.handle, "name": g.name} for g in ws.usergroups()}
            channels: list[dict[str, Any]] = []
            messages: dict[str, list[dict[str, Any]]] = {}
            for channel_id in self._channel_ids():
                channel = ws.channel(channel_id)
                if channel is None or channel.is_archived:
                    continue
                if channel.is_im and channel.im_user != user_id:
                    continue
                if not channel.is_im and not channel.has_member(user_id):
                    continue
                channels.append(
                    {"id": channel.id, "name": channel.name, "is_im": channel.is_im,
                     "is_private": channel.is_private}
                )
                items = []
                for message in ws.messages(channel.id):
                    data = message.to_api()
                    data.pop("metadata", None)  # the app's own bookkeeping, not shown by Slack
                    items.append(data)
                messages[channel.id] = items
            ephemerals = [
                {"channel": e.channel, "ts": e.message_ts, "text": e.text, "blocks": e.blocks,
                 "thread_ts": e.thread_ts}
                for e in ws.ephemerals(user=user_id)
            ]
            stack = ws.view_stack(user_id)
            modal = stack[-1].to_api() if stack else None
            home = ws.home_view(user_id)
        return {
            "version": version,
            "me": user_id,
            "team": {"id": ws.team_id, "name": ws.team_name, "domain": ws.domain},
            "bot": {"user_id": ws.bot_user_id, "name": "hitl-bot"},
            "people": self.people(),
            "users": users,
            "groups": groups,
            "channels": channels,
            "messages": messages,
            "ephemerals": ephemerals,
            "modal": modal,
            "modal_depth": len(stack),
            "home": home.to_api() if home else None,
        }

    @staticmethod
    def _digest(snapshot: dict[str, Any]) -> str:
        """A short hash of a snapshot without its version (unchanged pictures are not resent)."""
        data = {k: v for k, v in snapshot.items() if k != "version"}
        raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
        return hashlib.sha256(raw).hexdigest()[:16]

    def _events(self, request: SandboxRequest) -> SandboxResponse:
        """One Server-Sent Event with the user's snapshot once it differs from ``Last-Event-ID``.

        ``Last-Event-ID`` is ``<version>-<digest>`` of what the page shows. The version
        moves on every workspace change (API calls are logged too), so changes that leave
        this user's picture as it was are skipped here instead of redrawn there.
        """
        user = self._user(request.query.get("as"))
        headers = {k.lower(): v for k, v in request.headers.items()}
        since, seen = -1, ""
        last = headers.get("last-event-id", "")
        if "-" in last:
            raw_version, seen = last.split("-", 1)
            if raw_version.isdigit():
                since = int(raw_version)
        waited = 0.0
        version = self.workspace.version
        while True:
            if since >= 0:
                version = self.workspace.wait_for_change(since, timeout=EVENTS_SLICE)
                if version <= since:
                    waited += EVENTS_SLICE
                    if waited < EVENTS_WAIT and not self._closed.is_set():
                        continue
                    # Nothing new: a keep-alive that keeps the page's place.
                    return self._sse(f"retry: {EVENTS_RETRY_MS}\nid: {since}-{seen}\n\n")
            snapshot = self.snapshot(user)
            digest = self._digest(snapshot)
            if digest != seen or self._closed.is_set():
                data = json.dumps(snapshot, separators=(",", ":"))
                event_id = f"{snapshot['version']}-{digest}"
                return self._sse(f"retry: {EVENTS_RETRY_MS}\nid: {event_id}\ndata: {data}\n\n")
            since = snapshot["version"]

    @staticmethod
    def _sse(text: str) -> SandboxResponse:
        """An ``text/event-stream`` response (complete; EventSource reconnects after it)."""
        headers = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store"}
        return SandboxResponse(200, headers, text.encode("utf-8"))

    # -- relaying to the bot -------------------------------------------------------------------

    def _post(self, signed: SignedRequest) -> tuple[int, str]:
        """POST a signed request to the bot; (status, body). Status 0: the bot did not answer."""
        req = urllib.request.Request(self.bot_url, data=signed.body, headers=signed.headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=BOT_TIMEOUT) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            log.warning("sandbox page: the bot at %s did not answer: %s", self.bot_url, exc)
            return 0, ""

    def _interact(self, payload: dict[str, Any]) -> tuple[int, str]:
        """Send an interaction payload, signed like Slack's."""
        return self._post(signed_interaction(self.signing_secret, payload))

    @staticmethod
    def _bot_failed(status: int) -> str | None:
        """What Slack's client would say when the app did not answer a click properly."""
        if status == 200:
            return None
        if status == 0:
            return "The app did not respond (is the bot running?)."
        return f"The app answered HTTP {status}."

    def click(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        """A click on an element of a message, an ephemeral message, a modal or App Home."""
        action_id = str(body.get("action_id") or "")
        block_id = body.get("block_id")
        block_id = str(block_id) if block_id is not None else None
        selected = body.get("selected")
        if not action_id:
            raise PageError("action_id is required")
        ws = self.workspace
        if body.get("view_id"):
            view = ws.view(str(body["view_id"]))
            if view is None or view.user_id != user:
                raise PageError("that view is not open any more", 409)
            located = _find_block_element(view.blocks, block_id, action_id)
            if located is None:
                raise PageError("that element is gone", 409)
            payload = block_actions(
                user_id=user,
                username=self._username(user),
                actions=[element_action(*located, selected)],
                trigger_id=ws.issue_trigger_id(user, view_id=view.id),
                view=view.to_api(),
                team_id=ws.team_id,
                team_domain=ws.domain,
                api_app_id=ws.app_id,
                token=self.interactions.token,
            )
        else:
            channel = ws.channel(str(body.get("channel") or ""))
            ts = str(body.get("ts") or "")
            if channel is None:
                raise PageError("unknown channel")
            message_json: dict[str, Any] | None
            if body.get("ephemeral"):
                found = [e for e in ws.ephemerals(channel.id, user) if e.message_ts == ts]
                if not found:
                    raise PageError("that message is gone", 409)
                blocks = found[0].blocks or []
                # Slack sends no message object for a click in an ephemeral message.
                message_json = None
            else:
                message = ws.message(channel.id, ts)
                if message is None:
                    raise PageError("that message is gone", 409)
                blocks = message.blocks or []
                message_json = message.to_api(ws.bot_profile() if message.bot_id else None)
            located = _find_block_element(blocks, block_id, action_id)
            if located is None:
                raise PageError("that button is gone (the card changed)", 409)
            payload = block_actions(
                user_id=user,
                username=self._username(user),
                actions=[element_action(*located, selected)],
                trigger_id=ws.issue_trigger_id(user),
                channel_id=channel.id,
                channel_name="directmessage" if channel.is_im else channel.name,
                message=message_json,
                message_ts=ts,
                response_url=ws.issue_response_url(user, channel.id, None if body.get("ephemeral") else ts),
                team_id=ws.team_id,
                team_domain=ws.domain,
                api_app_id=ws.app_id,
                token=self.interactions.token,
                is_ephemeral=bool(body.get("ephemeral")),
            )
        status, _ = self._interact(payload)
        problem = self._bot_failed(status)
        return {"status": status, "notice": problem} if problem else {"status": status}

    def _username(self, user_id: str) -> str:
        """The handle Slack puts in payloads for ``user_id``."""
        found = self.workspace.user(user_id)
        return found.name if found else user_id.lower()

    def submit(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        """Submit the user's open modal with what they typed; apply the app's answer.

        ``values`` maps each input's block_id to its value (text, an option value, a
        list of them). The app's ack body decides what happens, as in Slack: nothing
        (the view closes), ``errors`` (shown under the inputs), ``update``, ``push``, ``clear``.
        """
        ws = self.workspace
        view_id = str(body.get("view_id") or "")
        view = ws.view(view_id)
        if view is None or view.user_id != user:
            raise PageError("that form is not open any more", 409)
        values = body.get("values") or {}
        if not isinstance(values, dict):
            raise PageError("values must be an object")
        known = {b.get("block_id") for b in view.blocks if isinstance(b, dict) and b.get("type") == "input"}
        values = {k: v for k, v in values.items() if k in known}
        try:
            payload = self.interactions.submit(view_id, values, user_id=user)
        except ValueError as exc:
            raise PageError(str(exc)) from exc
        status, answer = self._interact(payload)
        problem = self._bot_failed(status)
        if problem:
            # Slack keeps the modal open and says it could not reach the app.
            return {"status": status, "notice": f"We had some trouble connecting. {problem}"}
        try:
            errors = ws.apply_view_response(view_id, answer)
        except (SlackError, ValueError) as exc:
            return {"status": status, "notice": f"The app answered with an invalid view: {exc}"}
        return {"status": status, "errors": errors} if errors else {"status": status}

    def close_view(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        """Cancel (``all=false``: back one view) or the X (``all=true``: the whole stack).

        The app hears about it (``view_closed``) only when the view asked with
        ``notify_on_close``, as in Slack.
        """
        ws = self.workspace
        view_id = str(body.get("view_id") or "")
        view = ws.view(view_id)
        if view is None or view.user_id != user:
            return {"closed": False}
        close_all = bool(body.get("all"))
        notify = bool(view.definition.get("notify_on_close"))
        payload = self.interactions.close(view_id, user_id=user, is_cleared=close_all) if notify else None
        if close_all:
            ws.close_views(user)
        else:
            ws.pop_view(user)
        if payload is not None:
            self._interact(payload)
        return {"closed": True}

    def open_home(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        """The user opened the app's Home tab: Slack sends ``app_home_opened`` every time."""
        status, _ = self._post(signed_event(self.signing_secret, self.interactions.home_opened(user)))
        problem = self._bot_failed(status)
        return {"status": status, "notice": problem} if problem else {"status": status}

    def send(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        """What the message box sends: a slash command, or a plain message (in a thread or not)."""
        ws = self.workspace
        text = str(body.get("text") or "").strip()
        ref = str(body.get("channel") or "")
        channel = ws.channel(ref)
        if channel is None and ref == "D" + user[1:]:
            channel = ws.resolve_channel(user)  # the DM with the app opens on first message
        if channel is None:
            raise PageError("unknown channel")
        if not text:
            raise PageError("nothing to send")
        if text.startswith("/"):
            return self._command(user, channel.id, text)
        thread_ts = body.get("thread_ts")
        ws.post_message(
            channel.id, escape_text(text), user=user, thread_ts=str(thread_ts) if thread_ts else None
        )
        return {}

    def _command(self, user: str, channel_id: str, text: str) -> dict[str, Any]:
        """Run ``/command args`` as Slack does and show the ack body as it would.

        Slack posts the app's ack body for the user: ``response_type: in_channel`` posts
        it in the channel, anything else (the default) is an ephemeral reply.
        """
        ws = self.workspace
        name, _, args = text.partition(" ")
        name = name.lower()
        if name not in COMMANDS:
            return {
                "notice": f"{name} is not a valid command. In Slack, all messages that start with "
                "the \"/\" character are interpreted as commands."
            }
        fields = self.interactions.command(name, args.strip(), user_id=user, channel=channel_id)
        status, answer = self._post(signed_command(self.signing_secret, fields))
        if status != 200:
            reason = "http_service_error" if status else "dispatch_failed"
            return {"notice": f"{name} failed with the error \"{reason}\""}
        if not answer.strip():
            return {}  # the app answers later through the response_url, or not at all
        try:
            reply = json.loads(answer)
        except ValueError:
            reply = {"text": answer}
        if not isinstance(reply, dict):
            reply = {"text": str(reply)}
        reply_text = str(reply.get("text") or "")
        blocks = reply.get("blocks") if isinstance(reply.get("blocks"), list) else None
        if reply.get("response_type") == "in_channel":
            # Everyone sees the command itself, then the app's answer.
            ws.post_message(channel_id, escape_text(text), user=user)
            ws.post_message(channel_id, reply_text, blocks=blocks)
        else:
            ws.post_ephemeral(channel_id, user, reply_text, blocks=blocks)
        return {}


__all__ = ["SandboxPage", "escape_text"]
