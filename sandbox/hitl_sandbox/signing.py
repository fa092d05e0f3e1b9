"""Requests as Slack sends them to an app: signed bodies and interaction payloads.

Tests and the sandbox page drive the real Bolt app by POSTing what Slack would POST to
``/slack/events``: a body signed with the signing secret, interactions as a form field
``payload=<json>``, slash commands as plain form fields, events as JSON. Payload shapes
follow Slack's docs and bolt-python's own test fixtures.

Two layers:
- pure builders (``block_actions``, ``view_submission``, ``view_closed``,
  ``slash_command``, ``event_callback``, ``app_home_opened``) take every value explicitly;
- ``Interactions`` fills them from a ``Workspace``: clicking a button of a stored
  message, submitting an open modal, with fresh trigger ids and response URLs.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from hitl_sandbox.workspace import APP_ID, TEAM_ID, Workspace

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
VERIFICATION_TOKEN = "sandbox-verification-token"


def sign(signing_secret: str, body: bytes | str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's signature headers for ``body``: ``v0=`` + HMAC-SHA256 of ``v0:{timestamp}:{body}``.

    ``timestamp`` defaults to now; Bolt refuses timestamps more than 5 minutes off.
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    raw = body.encode("utf-8") if isinstance(body, str) else body
    digest = hmac.new(signing_secret.encode("utf-8"), b"v0:" + str(ts).encode() + b":" + raw, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest.hexdigest()}"}


@dataclass(frozen=True)
class SignedRequest:
    """A body ready to POST to the app's ``/slack/events``, with its headers."""

    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        """The body as text (what ``slack_bolt.BoltRequest(body=...)`` takes)."""
        return self.body.decode("utf-8")


def payload_body(payload: dict[str, Any]) -> bytes:
    """Encode an interaction payload the way Slack does: ``payload=<url-encoded JSON>``."""
    return ("payload=" + quote(json.dumps(payload, separators=(",", ":")))).encode("utf-8")


def form_body(fields: dict[str, str]) -> bytes:
    """Encode slash-command fields as Slack does (application/x-www-form-urlencoded)."""
    return urlencode(fields).encode("utf-8")


def signed_interaction(
    signing_secret: str, payload: dict[str, Any], timestamp: int | None = None
) -> SignedRequest:
    """A signed interaction request (block_actions, view_submission, view_closed...)."""
    body = payload_body(payload)
    return SignedRequest(body, {"Content-Type": FORM_CONTENT_TYPE, **sign(signing_secret, body, timestamp)})


def signed_command(
    signing_secret: str, fields: dict[str, str], timestamp: int | None = None
) -> SignedRequest:
    """A signed slash-command request."""
    body = form_body(fields)
    return SignedRequest(body, {"Content-Type": FORM_CONTENT_TYPE, **sign(signing_secret, body, timestamp)})


def signed_event(signing_secret: str, payload: dict[str, Any], timestamp: int | None = None) -> SignedRequest:
    """A signed Events API request (JSON body)."""
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return SignedRequest(body, {"Content-Type": JSON_CONTENT_TYPE, **sign(signing_secret, body, timestamp)})


# -- pure payload builders -------------------------------------------------------------------


def _action_ts() -> str:
    """An ``action_ts`` / ``event_ts`` in Slack's seconds.micros format."""
    now = time.time()
    return f"{int(now)}.{int((now % 1) * 1_000_000):06d}"


def _user(user_id: str, username: str, team_id: str) -> dict[str, Any]:
    """The ``user`` object of interaction payloads."""
    return {"id": user_id, "username": username, "name": username, "team_id": team_id}


def _team(team_id: str, domain: str) -> dict[str, Any]:
    """The ``team`` object of interaction payloads."""
    return {"id": team_id, "domain": domain}


def block_actions(
    *,
    user_id: str,
    actions: list[dict[str, Any]],
    trigger_id: str,
    channel_id: str | None = None,
    channel_name: str | None = None,
    message: dict[str, Any] | None = None,
    message_ts: str | None = None,
    view: dict[str, Any] | None = None,
    response_url: str | None = None,
    username: str | None = None,
    team_id: str = TEAM_ID,
    team_domain: str = "sandbox",
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
    is_ephemeral: bool = False,
) -> dict[str, Any]:
    """A ``block_actions`` payload for a click in a message (``message``) or a modal (``view``).

    Each entry of ``actions`` is what Slack puts there, e.g. ``{"action_id", "block_id",
    "text", "value", "type": "button", "action_ts"}`` (see ``button_action``).
    """
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, username or user_id.lower(), team_id),
        "api_app_id": api_app_id,
        "token": token,
    }
    if view is not None:
        payload["container"] = {"type": "view", "view_id": view["id"]}
    else:
        payload["container"] = {
            "type": "message",
            "message_ts": message_ts or (message or {}).get("ts"),
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        }
    payload["trigger_id"] = trigger_id
    payload["team"] = _team(team_id, team_domain)
    payload["enterprise"] = None
    payload["is_enterprise_install"] = False
    if view is not None:
        payload["view"] = view
    else:
        payload["channel"] = {"id": channel_id, "name": channel_name or channel_id}
        if message is not None:
            payload["message"] = message
        payload["state"] = {"values": {}}
        if response_url is not None:
            payload["response_url"] = response_url
    payload["actions"] = actions
    return payload


def button_action(
    action_id: str, block_id: str, *, value: str | None = None, text: str = "Button", style: str | None = None
) -> dict[str, Any]:
    """One ``actions[]`` entry for a button click, as Slack sends it."""
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": text, "emoji": True},
    }
    if value is not None:
        action["value"] = value
    if style is not None:
        action["style"] = style
    action["type"] = "button"
    action["action_ts"] = _action_ts()
    return action


def view_submission(
    view: dict[str, Any],
    *,
    user_id: str,
    trigger_id: str,
    username: str | None = None,
    team_id: str = TEAM_ID,
    team_domain: str = "sandbox",
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
    response_urls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A ``view_submission`` payload; ``view`` carries ``state.values`` with the user's inputs."""
    return {
        "type": "view_submission",
        "team": _team(team_id, team_domain),
        "user": _user(user_id, username or user_id.lower(), team_id),
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": trigger_id,
        "view": view,
        "response_urls": response_urls or [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_closed(
    view: dict[str, Any],
    *,
    user_id: str,
    is_cleared: bool = False,
    username: str | None = None,
    team_id: str = TEAM_ID,
    team_domain: str = "sandbox",
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
) -> dict[str, Any]:
    """A ``view_closed`` payload (sent only for views opened with ``notify_on_close``)."""
    return {
        "type": "view_closed",
        "team": _team(team_id, team_domain),
        "user": _user(user_id, username or user_id.lower(), team_id),
        "api_app_id": api_app_id,
        "token": token,
        "view": view,
        "is_cleared": is_cleared,
        "is_enterprise_install": False,
        "enterprise": None,
    }


def slash_command(
    command: str,
    text: str = "",
    *,
    user_id: str,
    channel_id: str,
    trigger_id: str,
    response_url: str,
    user_name: str | None = None,
    channel_name: str | None = None,
    team_id: str = TEAM_ID,
    team_domain: str = "sandbox",
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
) -> dict[str, str]:
    """The form fields of a slash command invocation (encode with ``form_body``)."""
    return {
        "token": token,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name or channel_id,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def event_callback(
    event: dict[str, Any],
    *,
    bot_user_id: str,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
    event_id: str | None = None,
    event_time: int | None = None,
) -> dict[str, Any]:
    """An Events API ``event_callback`` envelope around ``event``."""
    return {
        "token": token,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or "Ev0" + secrets.token_hex(5).upper(),
        "event_time": event_time or int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_urlsafe(24),
    }


def app_home_opened(
    user_id: str, *, channel_id: str, tab: str = "home", view: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``app_home_opened`` event (wrap it with ``event_callback``)."""
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": channel_id,
        "tab": tab,
        "event_ts": _action_ts(),
    }
    if view is not None:
        event["view"] = view
    return event


# -- payloads filled from a workspace -----------------------------------------------------------


def _find_element(blocks: list[Any], action_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The (block, element) pair holding ``action_id`` in ``blocks``."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        candidates: list[Any] = []
        if block.get("type") == "actions":
            candidates = list(block.get("elements", []))
        elif block.get("type") == "section" and "accessory" in block:
            candidates = [block["accessory"]]
        elif block.get("type") == "input" and "element" in block:
            candidates = [block["element"]]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block, element
    return None


def _all_options(element: dict[str, Any]) -> list[dict[str, Any]]:
    """Options of an element, including those inside option_groups."""
    options = list(element.get("options", []))
    for group in element.get("option_groups", []):
        options.extend(group.get("options", []))
    return options


def _pick_options(element: dict[str, Any], values: list[str]) -> list[dict[str, Any]]:
    """The option objects for ``values``; unknown values are a test bug, so raise."""
    by_value = {o.get("value"): o for o in _all_options(element)}
    missing = [v for v in values if v not in by_value]
    if missing:
        raise ValueError(f"no option with value {missing} in element {element.get('action_id')!r}")
    return [copy.deepcopy(by_value[v]) for v in values]


def element_action(block: dict[str, Any], element: dict[str, Any], selected: Any = None) -> dict[str, Any]:
    """The ``actions[]`` entry Slack sends when the user uses ``element`` (picking ``selected``)."""
    kind = element["type"]
    action: dict[str, Any] = {"type": kind, "action_id": element["action_id"], "block_id": block["block_id"]}
    if kind == "button":
        action["text"] = copy.deepcopy(element.get("text"))
        if "value" in element:
            action["value"] = element["value"]
        if "style" in element:
            action["style"] = element["style"]
    elif kind in ("static_select", "external_select", "overflow", "radio_buttons"):
        action["selected_option"] = (
            _pick_options(element, [str(selected)])[0] if selected is not None else None
        )
    elif kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        action["selected_options"] = _pick_options(element, [str(v) for v in (selected or [])])
    else:
        field_name = _SELECTED_FIELD.get(kind)
        if field_name is not None:
            action[field_name] = selected
    if "placeholder" in element:
        action["placeholder"] = copy.deepcopy(element["placeholder"])
    action["action_ts"] = _action_ts()
    return action


# Where each element type reports its current value, in actions[] and in view state.
_SELECTED_FIELD = {
    "users_select": "selected_user",
    "multi_users_select": "selected_users",
    "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
    "plain_text_input": "value",
    "email_text_input": "value",
    "url_text_input": "value",
    "number_input": "value",
}
_INITIAL_FIELD = {
    "users_select": "initial_user",
    "multi_users_select": "initial_users",
    "conversations_select": "initial_conversation",
    "multi_conversations_select": "initial_conversations",
    "channels_select": "initial_channel",
    "multi_channels_select": "initial_channels",
    "datepicker": "initial_date",
    "timepicker": "initial_time",
    "datetimepicker": "initial_date_time",
    "plain_text_input": "initial_value",
    "email_text_input": "initial_value",
    "url_text_input": "initial_value",
    "number_input": "initial_value",
}


def input_state(element: dict[str, Any], value: Any = None, *, use_initial: bool = True) -> dict[str, Any]:
    """One ``state.values[block_id][action_id]`` entry for an input element.

    ``value`` is what the user entered: text, an option value (or list of them for
    multi-selects and checkboxes), a user/channel id, a date. ``None`` keeps the
    element's initial value (as the modal shows it) when ``use_initial``.
    """
    kind = element["type"]
    state: dict[str, Any] = {"type": kind}
    if kind in ("static_select", "external_select", "radio_buttons"):
        if value is None and use_initial:
            state["selected_option"] = copy.deepcopy(element.get("initial_option"))
        else:
            state["selected_option"] = _pick_options(element, [str(value)])[0] if value is not None else None
    elif kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        if value is None and use_initial:
            state["selected_options"] = copy.deepcopy(element.get("initial_options", []))
        else:
            state["selected_options"] = _pick_options(element, [str(v) for v in (value or [])])
    else:
        field_name = _SELECTED_FIELD.get(kind, "value")
        if value is None and use_initial:
            value = copy.deepcopy(element.get(_INITIAL_FIELD.get(kind, "initial_value")))
        if kind.startswith("multi_") and value is None:
            value = []
        state[field_name] = value
    return state


def _is_empty(state: dict[str, Any]) -> bool:
    """Whether an input's state holds no value (Slack's client then blocks submission)."""
    values = [v for k, v in state.items() if k != "type"]
    return all(v in (None, "", []) for v in values)


class Interactions:
    """Builds the payloads Slack would send after a user acts in ``workspace``.

    Every payload gets a fresh trigger_id (3 s, single use) and, for message clicks and
    commands, a response_url served by the stand-in.
    """

    def __init__(self, workspace: Workspace, *, token: str = VERIFICATION_TOKEN) -> None:
        self.workspace = workspace
        self.token = token

    def _username(self, user_id: str) -> str:
        """The Slack handle of ``user_id`` (payloads carry it as username and name)."""
        user = self.workspace.user(user_id)
        return user.name if user else user_id.lower()

    def _common(self) -> dict[str, Any]:
        """Team, app and verification token fields shared by every payload."""
        ws = self.workspace
        return {"team_id": ws.team_id, "team_domain": ws.domain, "api_app_id": ws.app_id, "token": self.token}

    def click(
        self,
        channel: str,
        message_ts: str,
        action_id: str,
        *,
        user_id: str = "U0ALICE",
        selected: Any = None,
    ) -> dict[str, Any]:
        """``block_actions`` for ``user_id`` using element ``action_id`` of a stored message.

        Raises ``LookupError`` when the message or the element is gone (a stale card the
        user could not click any more).
        """
        ws = self.workspace
        found_channel = ws.channel(channel)
        message = ws.message(channel, message_ts)
        if found_channel is None or message is None:
            raise LookupError(f"no message {message_ts} in {channel}")
        located = _find_element(message.blocks or [], action_id)
        if located is None:
            raise LookupError(f"message {message_ts} has no element with action_id {action_id!r}")
        block, element = located
        return block_actions(
            user_id=user_id,
            username=self._username(user_id),
            actions=[element_action(block, element, selected)],
            trigger_id=ws.issue_trigger_id(user_id),
            channel_id=found_channel.id,
            channel_name=found_channel.name if not found_channel.is_im else "directmessage",
            message=message.to_api(ws.bot_profile() if message.bot_id else None),
            message_ts=message.ts,
            response_url=ws.issue_response_url(user_id, found_channel.id, message.ts),
            **self._common(),
        )

    def click_in_view(
        self, view_id: str, action_id: str, *, user_id: str | None = None, selected: Any = None
    ) -> dict[str, Any]:
        """``block_actions`` for an element inside an open modal or Home tab."""
        ws = self.workspace
        view = ws.view(view_id)
        if view is None:
            raise LookupError(f"no view {view_id}")
        located = _find_element(view.blocks, action_id)
        if located is None:
            raise LookupError(f"view {view_id} has no element with action_id {action_id!r}")
        block, element = located
        who = user_id or view.user_id
        return block_actions(
            user_id=who,
            username=self._username(who),
            actions=[element_action(block, element, selected)],
            trigger_id=ws.issue_trigger_id(who, view_id=view_id),
            view=view.to_api(),
            **self._common(),
        )

    def submit(
        self, view_id: str, values: dict[str, Any] | None = None, *, user_id: str | None = None
    ) -> dict[str, Any]:
        """``view_submission`` for an open modal, with ``values`` typed into its inputs.

        ``values`` maps an input's action_id (or its block_id) to what the user entered;
        inputs left out keep their initial value. Like Slack's client, refuses to submit
        when a required input is empty (raises ``ValueError``). The stored view's state
        is updated too.
        """
        ws = self.workspace
        view = ws.view(view_id)
        if view is None:
            raise LookupError(f"no view {view_id}")
        given = dict(values or {})
        state: dict[str, dict[str, Any]] = {}
        for block in view.blocks:
            if not isinstance(block, dict) or block.get("type") != "input":
                continue
            element = block["element"]
            action_id = element["action_id"]
            key = action_id if action_id in given else block["block_id"]
            entry = input_state(element, given.pop(key, None))
            if not block.get("optional", False) and _is_empty(entry):
                raise ValueError(f"required input {block['block_id']}/{action_id} is empty")
            state[block["block_id"]] = {action_id: entry}
        if given:
            raise ValueError(f"no input with action_id or block_id {sorted(given)} in view {view_id}")
        stored = ws.set_view_state(view_id, state)
        who = user_id or view.user_id
        return view_submission(
            stored.to_api(),
            user_id=who,
            username=self._username(who),
            trigger_id=ws.issue_trigger_id(who, view_id=view_id),
            **self._common(),
        )

    def close(self, view_id: str, *, user_id: str | None = None, is_cleared: bool = False) -> dict[str, Any]:
        """``view_closed`` for a modal the user dismissed."""
        ws = self.workspace
        view = ws.view(view_id)
        if view is None:
            raise LookupError(f"no view {view_id}")
        who = user_id or view.user_id
        return view_closed(
            view.to_api(), user_id=who, username=self._username(who), is_cleared=is_cleared, **self._common()
        )

    def command(
        self, command: str, text: str = "", *, user_id: str = "U0ALICE", channel: str = "C0APPROVALS"
    ) -> dict[str, str]:
        """The form fields of ``/command text`` typed by ``user_id`` in ``channel``."""
        ws = self.workspace
        found = ws.resolve_channel(channel)
        if found is None:
            raise LookupError(f"no channel {channel}")
        return slash_command(
            command,
            text,
            user_id=user_id,
            user_name=self._username(user_id),
            channel_id=found.id,
            channel_name="directmessage" if found.is_im else found.name,
            trigger_id=ws.issue_trigger_id(user_id),
            response_url=ws.issue_response_url(user_id, found.id),
            **self._common(),
        )

    def home_opened(self, user_id: str = "U0ALICE") -> dict[str, Any]:
        """``event_callback`` for ``app_home_opened`` (with the current Home view, if any)."""
        ws = self.workspace
        dm = ws.resolve_channel(user_id)
        home = ws.home_view(user_id)
        view = home.to_api() if home is not None else None
        event = app_home_opened(user_id, channel_id=dm.id if dm else "D" + user_id[1:], view=view)
        return event_callback(
            event, bot_user_id=ws.bot_user_id, team_id=ws.team_id, api_app_id=ws.app_id, token=self.token
        )


__all__ = [
    "Interactions",
    "SignedRequest",
    "app_home_opened",
    "block_actions",
    "button_action",
    "element_action",
    "event_callback",
    "form_body",
    "input_state",
    "payload_body",
    "sign",
    "signed_command",
    "signed_event",
    "signed_interaction",
    "slash_command",
    "view_closed",
    "view_submission",
]
