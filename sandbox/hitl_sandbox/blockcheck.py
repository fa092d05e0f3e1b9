"""Block Kit validation the way Slack's Web API rejects payloads.

slack_sdk's model classes check some limits before sending, but plain dicts, block counts
and duplicate ids slip through and only fail once they reach Slack. The stand-in runs
this module on every message and view so those bugs fail in tests instead of production.

Error strings copy Slack's wording and JSON pointers as seen in real responses, for
example ``must be less than 151 characters [json-pointer:/blocks/0/text/text]`` or
``no more than 50 items allowed [json-pointer:/blocks]``. Callers add the ``[ERROR] ``
prefix that Slack uses in ``response_metadata.messages``.

Where Slack's schema offers alternatives (a text object that may be ``plain_text`` or
``mrkdwn``, an accessory that may be one of many elements), Slack reports an extra
``failed to match all allowed schemas`` line at the alternative's pointer before the
precise complaint; this module does the same.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_VIEW_BYTES = 250_000

TEXT_TYPES = ("plain_text", "mrkdwn")
TEXT_KEYS = frozenset({"type", "text", "emoji", "verbatim"})

# Interactive elements (they carry an action_id that must be unique on the surface).
INTERACTIVE_ELEMENTS = frozenset(
    {
        "button",
        "checkboxes",
        "channels_select",
        "conversations_select",
        "datepicker",
        "datetimepicker",
        "email_text_input",
        "external_select",
        "file_input",
        "multi_channels_select",
        "multi_conversations_select",
        "multi_external_select",
        "multi_static_select",
        "multi_users_select",
        "number_input",
        "overflow",
        "plain_text_input",
        "radio_buttons",
        "rich_text_input",
        "static_select",
        "timepicker",
        "url_text_input",
        "users_select",
        "workflow_button",
    }
)

# Which element types each container accepts (from the Block Kit reference).
ACTIONS_ELEMENTS = frozenset(
    {
        "button",
        "checkboxes",
        "channels_select",
        "conversations_select",
        "datepicker",
        "datetimepicker",
        "external_select",
        "multi_channels_select",
        "multi_conversations_select",
        "multi_external_select",
        "multi_static_select",
        "multi_users_select",
        "overflow",
        "radio_buttons",
        "rich_text_input",
        "static_select",
        "timepicker",
        "users_select",
        "workflow_button",
    }
)
ACCESSORY_ELEMENTS = (ACTIONS_ELEMENTS - {"rich_text_input"}) | {"image"}
INPUT_ELEMENTS = (ACTIONS_ELEMENTS - {"button", "overflow", "workflow_button"}) | {
    "plain_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
    "file_input",
}

# Blocks this checker knows. The first group is checked field by field; the second is
# accepted with only the generic block_id checks (Slack has them, the app rarely uses them).
DETAILED_BLOCKS = frozenset({"header", "section", "divider", "context", "actions", "input", "image"})
LIGHT_BLOCKS = frozenset({"rich_text", "video", "file", "markdown", "table", "call", "context_actions"})

BLOCK_KEYS: dict[str, frozenset[str]] = {
    "header": frozenset({"type", "block_id", "text"}),
    "section": frozenset({"type", "block_id", "text", "fields", "accessory", "expand"}),
    "divider": frozenset({"type", "block_id"}),
    "context": frozenset({"type", "block_id", "elements"}),
    "actions": frozenset({"type", "block_id", "elements"}),
    "input": frozenset({"type", "block_id", "label", "element", "dispatch_action", "hint", "optional"}),
    # Slack adds image_width/height/bytes, fallback and is_animated when it stores an
    # image block; apps that echo a stored message back must not be refused for them.
    "image": frozenset(
        {
            "type",
            "block_id",
            "image_url",
            "slack_file",
            "alt_text",
            "title",
            "image_width",
            "image_height",
            "image_bytes",
            "fallback",
            "is_animated",
        }
    ),
}

_SELECT_COMMON = {"type", "action_id", "confirm", "focus_on_load", "placeholder"}
ELEMENT_KEYS: dict[str, frozenset[str]] = {
    "button": frozenset(
        {"type", "text", "action_id", "url", "value", "style", "confirm", "accessibility_label"}
    ),
    "plain_text_input": frozenset(
        {
            "type",
            "action_id",
            "initial_value",
            "multiline",
            "min_length",
            "max_length",
            "dispatch_action_config",
            "focus_on_load",
            "placeholder",
        }
    ),
    "static_select": frozenset(_SELECT_COMMON | {"options", "option_groups", "initial_option"}),
    "multi_static_select": frozenset(
        _SELECT_COMMON | {"options", "option_groups", "initial_options", "max_selected_items"}
    ),
    "users_select": frozenset(_SELECT_COMMON | {"initial_user"}),
    "conversations_select": frozenset(
        _SELECT_COMMON
        | {"initial_conversation", "default_to_current_conversation", "response_url_enabled", "filter"}
    ),
    "datepicker": frozenset(_SELECT_COMMON | {"initial_date"}),
    "checkboxes": frozenset({"type", "action_id", "options", "initial_options", "confirm", "focus_on_load"}),
    "radio_buttons": frozenset(
        {"type", "action_id", "options", "initial_option", "confirm", "focus_on_load"}
    ),
    "overflow": frozenset({"type", "action_id", "options", "confirm"}),
    "image": frozenset({"type", "image_url", "slack_file", "alt_text"}),
}

_ID_ALPHABET = string.ascii_letters + string.digits


def _random_id(length: int = 5) -> str:
    """Return an id like the ones Slack invents for blocks and actions left without one."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


class BlocksFormatError(ValueError):
    """Raised when ``blocks`` is not a JSON array (Slack answers ``invalid_blocks_format``)."""


def parse_json_arg(value: Any) -> Any:
    """Decode a JSON argument that may arrive as a string (form posts) or as a value (JSON posts).

    Slack accepts ``blocks`` and ``view`` both ways, so the stand-in does too.
    Raises ``ValueError`` when a string is not valid JSON.
    """
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


def parse_blocks(value: Any) -> list[Any]:
    """Return ``blocks`` as a list, or raise ``BlocksFormatError`` like Slack's ``invalid_blocks_format``."""
    try:
        blocks = parse_json_arg(value)
    except ValueError as exc:
        raise BlocksFormatError("blocks is not valid JSON") from exc
    if not isinstance(blocks, list):
        raise BlocksFormatError("blocks must be a JSON array")
    return blocks


class _Checker:
    """Walks one surface (a message's blocks or a view) and collects Slack-style errors.

    One instance per surface because action_id and block_id uniqueness is per surface.
    """

    def __init__(self, surface: str) -> None:
        self.surface = surface  # "message", "modal" or "home"
        self.errors: list[str] = []
        self.action_ids: set[str] = set()
        self.block_ids: set[str] = set()

    # -- helpers ---------------------------------------------------------------------------

    def err(self, pointer: str, message: str) -> None:
        """Record one error in Slack's ``<message> [json-pointer:<pointer>]`` form."""
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def alternatives(self, pointer: str, check: Callable[[], None]) -> None:
        """Run ``check`` for a field Slack validates with anyOf; prefix its errors with the wrapper line."""
        saved = self.errors
        self.errors = []
        check()
        inner = self.errors
        self.errors = saved
        if inner:
            self.err(pointer, "failed to match all allowed schemas")
            self.errors.extend(inner)

    def unknown_keys(self, obj: dict[str, Any], allowed: Iterable[str], pointer: str) -> None:
        """Slack's schemas forbid extra properties; a typo'd key must fail here too."""
        allowed_set = set(allowed)
        for key in obj:
            if key not in allowed_set:
                self.err(pointer, f"invalid additional property: {key}")

    def string(
        self,
        obj: dict[str, Any],
        key: str,
        pointer: str,
        *,
        max_len: int | None = None,
        min_len: int = 0,
        required: bool = False,
    ) -> str | None:
        """Check a string field's type and length; return it when it is a string."""
        if key not in obj:
            if required:
                self.err(pointer, f"missing required field: {key}")
            return None
        value = obj[key]
        here = f"{pointer}/{key}"
        if not isinstance(value, str):
            self.err(here, "must provide a string")
            return None
        if len(value) < min_len:
            self.err(here, f"must be more than {min_len - 1} characters")
        if max_len is not None and len(value) > max_len:
            self.err(here, f"must be less than {max_len + 1} characters")
        return value

    def boolean(self, obj: dict[str, Any], key: str, pointer: str) -> None:
        """Check that an optional field is a JSON boolean."""
        if key in obj and not isinstance(obj[key], bool):
            self.err(f"{pointer}/{key}", "must provide a boolean")

    def integer(self, obj: dict[str, Any], key: str, pointer: str, low: int, high: int) -> None:
        """Check that an optional field is an integer within Slack's bounds."""
        if key not in obj:
            return
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(f"{pointer}/{key}", "must provide an integer")
        elif value < low:
            self.err(f"{pointer}/{key}", f"must be at least {low}")
        elif value > high:
            self.err(f"{pointer}/{key}", f"must be at most {high}")

    def array(
        self,
        obj: dict[str, Any],
        key: str,
        pointer: str,
        *,
        max_items: int | None = None,
        min_items: int = 0,
        required: bool = False,
    ) -> list[Any] | None:
        """Check an array field's type and item count; return it when it is a list."""
        if key not in obj:
            if required:
                self.err(pointer, f"missing required field: {key}")
            return None
        value = obj[key]
        here = f"{pointer}/{key}"
        if not isinstance(value, list):
            self.err(here, "must provide an array")
            return None
        if len(value) < min_items:
            self.err(here, f"must provide at least {min_items} items")
        if max_items is not None and len(value) > max_items:
            self.err(here, f"no more than {max_items} items allowed")
        return value

    def obj(self, value: Any, pointer: str) -> dict[str, Any] | None:
        """Return ``value`` when it is an object, else record ``must provide an object``."""
        if not isinstance(value, dict):
            self.err(pointer, "must provide an object")
            return None
        return value

    def text(
        self,
        parent: dict[str, Any],
        key: str,
        pointer: str,
        *,
        max_len: int,
        kinds: tuple[str, ...] = TEXT_TYPES,
        required: bool = False,
    ) -> None:
        """Check a text composition object at ``parent[key]``."""
        if key not in parent:
            if required:
                self.err(pointer, f"missing required field: {key}")
            return
        here = f"{pointer}/{key}"
        if len(kinds) > 1:
            self.alternatives(here, lambda: self._text_object(parent[key], here, max_len, kinds))
        else:
            self._text_object(parent[key], here, max_len, kinds)

    def _text_object(self, value: Any, pointer: str, max_len: int, kinds: tuple[str, ...]) -> None:
        """Check one text object: allowed type, no stray keys, 1..max_len characters."""
        obj = self.obj(value, pointer)
        if obj is None:
            return
        kind = obj.get("type")
        if kind is None:
            self.err(pointer, "missing required field: type")
        elif kind not in kinds:
            self.err(f"{pointer}/type", "must be a valid enum value")
            return
        self.unknown_keys(obj, TEXT_KEYS if kind == "mrkdwn" else TEXT_KEYS - {"verbatim"}, pointer)
        self.string(obj, "text", pointer, max_len=max_len, min_len=1, required=True)
        self.boolean(obj, "emoji", pointer)
        self.boolean(obj, "verbatim", pointer)

    def remember_action_id(self, element: dict[str, Any], pointer: str) -> None:
        """Check an action_id and that no other element on the surface uses it."""
        action_id = self.string(element, "action_id", pointer, max_len=255, min_len=1)
        if action_id is None:
            return
        if action_id in self.action_ids:
            self.err(f"{pointer}/action_id", f'`action_id` "{action_id}" already exists')
        self.action_ids.add(action_id)

    # -- composition objects ---------------------------------------------------------------

    def confirm(self, parent: dict[str, Any], pointer: str) -> None:
        """Check a confirmation dialog: all four texts required, each within its limit."""
        if "confirm" not in parent:
            return
        here = f"{pointer}/confirm"
        obj = self.obj(parent["confirm"], here)
        if obj is None:
            return
        self.unknown_keys(obj, {"title", "text", "confirm", "deny", "style"}, here)
        self.text(obj, "title", here, max_len=100, kinds=("plain_text",), required=True)
        self.text(obj, "text", here, max_len=300, required=True)
        self.text(obj, "confirm", here, max_len=30, kinds=("plain_text",), required=True)
        self.text(obj, "deny", here, max_len=30, kinds=("plain_text",), required=True)
        self.style(obj, here)

    def style(self, obj: dict[str, Any], pointer: str) -> None:
        """Buttons and confirms accept only ``primary`` or ``danger``."""
        if "style" in obj:
            if not isinstance(obj["style"], str):
                self.err(f"{pointer}/style", "must provide a string")
            elif obj["style"] not in ("primary", "danger"):
                self.err(f"{pointer}/style", "must be a valid enum value")

    def options(
        self,
        parent: dict[str, Any],
        key: str,
        pointer: str,
        *,
        max_items: int,
        min_items: int = 1,
        required: bool,
        text_kinds: tuple[str, ...] = ("plain_text",),
        value_max: int = 150,
    ) -> None:
        """Check an options array and each option in it."""
        items = self.array(parent, key, pointer, max_items=max_items, min_items=min_items, required=required)
        for index, item in enumerate(items or []):
            self.option(item, f"{pointer}/{key}/{index}", text_kinds=text_kinds, value_max=value_max)

    def option(
        self, value: Any, pointer: str, *, text_kinds: tuple[str, ...] = ("plain_text",), value_max: int = 150
    ) -> None:
        """Check one option object (text, value, description, url)."""
        obj = self.obj(value, pointer)
        if obj is None:
            return
        self.unknown_keys(obj, {"text", "value", "description", "url"}, pointer)
        self.text(obj, "text", pointer, max_len=75, kinds=text_kinds, required=True)
        self.string(obj, "value", pointer, max_len=value_max, min_len=1, required=True)
        self.text(obj, "description", pointer, max_len=75, kinds=text_kinds)
        self.string(obj, "url", pointer, max_len=3000, min_len=1)

    def placeholder(self, obj: dict[str, Any], pointer: str) -> None:
        """Placeholders are plain_text of at most 150 characters."""
        self.text(obj, "placeholder", pointer, max_len=150, kinds=("plain_text",))

    # -- elements --------------------------------------------------------------------------

    def element(self, value: Any, pointer: str, allowed: frozenset[str]) -> None:
        """Check one element; ``allowed`` is the set the container accepts."""
        obj = self.obj(value, pointer)
        if obj is None:
            return
        kind = obj.get("type")
        if kind is None:
            self.err(pointer, "missing required field: type")
            return
        if kind not in allowed:
            self.err(f"{pointer}/type", "must be a valid enum value")
            return
        if kind in ELEMENT_KEYS:
            self.unknown_keys(obj, ELEMENT_KEYS[kind], pointer)
        if kind in INTERACTIVE_ELEMENTS:
            self.remember_action_id(obj, pointer)
        checker = getattr(self, f"el_{kind}", None)
        if checker is not None:
            checker(obj, pointer)
        elif kind in INTERACTIVE_ELEMENTS:
            self.confirm(obj, pointer)

    def el_button(self, obj: dict[str, Any], pointer: str) -> None:
        """Button limits: text 75, value 2000, url 3000, style, confirm."""
        self.text(obj, "text", pointer, max_len=75, kinds=("plain_text",), required=True)
        self.string(obj, "value", pointer, max_len=2000, min_len=1)
        self.string(obj, "url", pointer, max_len=3000, min_len=1)
        self.string(obj, "accessibility_label", pointer, max_len=75, min_len=1)
        self.style(obj, pointer)
        self.confirm(obj, pointer)

    def el_plain_text_input(self, obj: dict[str, Any], pointer: str) -> None:
        """plain_text_input: placeholder, initial value, length bounds."""
        self.placeholder(obj, pointer)
        self.string(obj, "initial_value", pointer)
        self.boolean(obj, "multiline", pointer)
        self.boolean(obj, "focus_on_load", pointer)
        self.integer(obj, "min_length", pointer, 0, 3000)
        self.integer(obj, "max_length", pointer, 1, 3000)

    def el_static_select(self, obj: dict[str, Any], pointer: str) -> None:
        """Static selects need options or option_groups (at most 100)."""
        self.placeholder(obj, pointer)
        if "options" not in obj and "option_groups" not in obj:
            self.err(pointer, "missing required field: options")
        self.options(obj, "options", pointer, max_items=100, required=False)
        groups = self.array(obj, "option_groups", pointer, max_items=100, min_items=1)
        for index, group in enumerate(groups or []):
            here = f"{pointer}/option_groups/{index}"
            group_obj = self.obj(group, here)
            if group_obj is not None:
                self.text(group_obj, "label", here, max_len=75, kinds=("plain_text",), required=True)
                self.options(group_obj, "options", here, max_items=100, required=True)
        if "initial_option" in obj:
            self.option(obj["initial_option"], f"{pointer}/initial_option")
        self.confirm(obj, pointer)

    def el_multi_static_select(self, obj: dict[str, Any], pointer: str) -> None:
        """Multi-selects: a static select plus max_selected_items and initial_options."""
        self.el_static_select(obj, pointer)
        self.integer(obj, "max_selected_items", pointer, 1, 100)
        for index, option in enumerate(self.array(obj, "initial_options", pointer) or []):
            self.option(option, f"{pointer}/initial_options/{index}")

    def el_users_select(self, obj: dict[str, Any], pointer: str) -> None:
        """users_select: placeholder, initial_user, confirm."""
        self.placeholder(obj, pointer)
        self.string(obj, "initial_user", pointer, min_len=1)
        self.confirm(obj, pointer)

    def el_conversations_select(self, obj: dict[str, Any], pointer: str) -> None:
        """conversations_select: placeholder, initial_conversation, flags, confirm."""
        self.placeholder(obj, pointer)
        self.string(obj, "initial_conversation", pointer, min_len=1)
        self.boolean(obj, "default_to_current_conversation", pointer)
        self.boolean(obj, "response_url_enabled", pointer)
        self.confirm(obj, pointer)

    def el_datepicker(self, obj: dict[str, Any], pointer: str) -> None:
        """datepicker: placeholder, an ISO initial_date, confirm."""
        self.placeholder(obj, pointer)
        date = self.string(obj, "initial_date", pointer)
        if date is not None and not _is_iso_date(date):
            self.err(f"{pointer}/initial_date", "must match the format YYYY-MM-DD")
        self.confirm(obj, pointer)

    def el_checkboxes(self, obj: dict[str, Any], pointer: str) -> None:
        """checkboxes: 1..10 options whose text may be mrkdwn."""
        self.options(obj, "options", pointer, max_items=10, required=True, text_kinds=TEXT_TYPES)
        for index, option in enumerate(self.array(obj, "initial_options", pointer) or []):
            self.option(option, f"{pointer}/initial_options/{index}", text_kinds=TEXT_TYPES)
        self.confirm(obj, pointer)

    def el_radio_buttons(self, obj: dict[str, Any], pointer: str) -> None:
        """radio_buttons: 1..10 options whose text may be mrkdwn."""
        self.options(obj, "options", pointer, max_items=10, required=True, text_kinds=TEXT_TYPES)
        if "initial_option" in obj:
            self.option(obj["initial_option"], f"{pointer}/initial_option", text_kinds=TEXT_TYPES)
        self.confirm(obj, pointer)

    def el_overflow(self, obj: dict[str, Any], pointer: str) -> None:
        """overflow menus hold 2..5 options."""
        self.options(obj, "options", pointer, max_items=5, min_items=2, required=True)
        self.confirm(obj, pointer)

    def el_image(self, obj: dict[str, Any], pointer: str) -> None:
        """Image elements need a URL (or slack_file) and alt_text."""
        if "image_url" not in obj and "slack_file" not in obj:
            self.err(pointer, "missing required field: image_url")
        self.string(obj, "image_url", pointer, max_len=3000, min_len=1)
        self.string(obj, "alt_text", pointer, max_len=2000, min_len=1, required=True)

    # -- blocks ----------------------------------------------------------------------------

    def blocks(self, blocks: list[Any], pointer: str, max_blocks: int) -> None:
        """Check the block count for the surface, then every block."""
        if len(blocks) > max_blocks:
            self.err(pointer, f"no more than {max_blocks} items allowed")
        for index, block in enumerate(blocks):
            self.block(block, f"{pointer}/{index}")

    def block(self, value: Any, pointer: str) -> None:
        """Check one block: known type, allowed on the surface, unique block_id, its fields."""
        obj = self.obj(value, pointer)
        if obj is None:
            return
        kind = obj.get("type")
        if kind is None:
            self.err(pointer, "missing required field: type")
            return
        if not isinstance(kind, str) or kind not in DETAILED_BLOCKS | LIGHT_BLOCKS:
            self.err(pointer, "failed to match all allowed schemas")
            self.err(f"{pointer}/type", "must be a valid enum value")
            return
        if kind == "input" and self.surface == "message":
            # The lead's contract: approval cards never carry input blocks; a message with
            # one is refused so a card that would render as a broken form fails in tests.
            self.err(pointer, "failed to match all allowed schemas")
            self.err(f"{pointer}/type", "must be a valid enum value")
            return
        block_id = self.string(obj, "block_id", pointer, max_len=255, min_len=1)
        if block_id is not None:
            if block_id in self.block_ids:
                self.err(f"{pointer}/block_id", f'`block_id` "{block_id}" already exists')
            self.block_ids.add(block_id)
        if kind in BLOCK_KEYS:
            self.unknown_keys(obj, BLOCK_KEYS[kind], pointer)
        checker = getattr(self, f"bl_{kind}", None)
        if checker is not None:
            checker(obj, pointer)

    def bl_header(self, obj: dict[str, Any], pointer: str) -> None:
        """Headers: plain_text only, at most 150 characters."""
        self.text(obj, "text", pointer, max_len=150, kinds=("plain_text",), required=True)

    def bl_section(self, obj: dict[str, Any], pointer: str) -> None:
        """Sections: text (3000) or fields (10 x 2000), optional accessory."""
        if "text" not in obj and "fields" not in obj:
            self.err(pointer, "missing required field: text")
        self.text(obj, "text", pointer, max_len=3000)
        fields = self.array(obj, "fields", pointer, max_items=10, min_items=1)
        for index, field in enumerate(fields or []):
            here = f"{pointer}/fields/{index}"
            self.alternatives(here, partial(self._text_object, field, here, 2000, TEXT_TYPES))
        if "accessory" in obj:
            here = f"{pointer}/accessory"
            self.alternatives(here, lambda: self.element(obj["accessory"], here, ACCESSORY_ELEMENTS))
        self.boolean(obj, "expand", pointer)

    def bl_divider(self, obj: dict[str, Any], pointer: str) -> None:
        """Dividers carry nothing but type and block_id."""

    def bl_context(self, obj: dict[str, Any], pointer: str) -> None:
        """Context: 1..10 images or text objects."""
        elements = self.array(obj, "elements", pointer, max_items=10, min_items=1, required=True)
        for index, element in enumerate(elements or []):
            here = f"{pointer}/elements/{index}"
            if isinstance(element, dict) and element.get("type") == "image":
                self.alternatives(here, partial(self.element, element, here, frozenset({"image"})))
            else:
                self.alternatives(here, partial(self._text_object, element, here, 3000, TEXT_TYPES))

    def bl_actions(self, obj: dict[str, Any], pointer: str) -> None:
        """Actions: 1..25 interactive elements."""
        elements = self.array(obj, "elements", pointer, max_items=25, min_items=1, required=True)
        for index, element in enumerate(elements or []):
            here = f"{pointer}/elements/{index}"
            self.alternatives(here, partial(self.element, element, here, ACTIONS_ELEMENTS))

    def bl_input(self, obj: dict[str, Any], pointer: str) -> None:
        """Inputs need a label and an element of an input-capable type."""
        self.text(obj, "label", pointer, max_len=2000, kinds=("plain_text",), required=True)
        self.text(obj, "hint", pointer, max_len=2000, kinds=("plain_text",))
        self.boolean(obj, "optional", pointer)
        self.boolean(obj, "dispatch_action", pointer)
        if "element" not in obj:
            self.err(pointer, "missing required field: element")
        else:
            here = f"{pointer}/element"
            self.alternatives(here, lambda: self.element(obj["element"], here, INPUT_ELEMENTS))

    def bl_image(self, obj: dict[str, Any], pointer: str) -> None:
        """Image blocks: URL or slack_file plus alt_text; Slack reports them as alternatives."""

        def check() -> None:
            """The image block's alternatives, checked as one unit."""
            if "image_url" not in obj and "slack_file" not in obj:
                self.err(pointer, "missing required field: image_url")
            self.string(obj, "image_url", pointer, max_len=3000, min_len=1)
            self.string(obj, "alt_text", pointer, max_len=2000, min_len=1, required=True)
            self.text(obj, "title", pointer, max_len=2000, kinds=("plain_text",))

        self.alternatives(pointer, check)

    # -- views -----------------------------------------------------------------------------

    def view(self, view: dict[str, Any], pointer: str) -> None:
        """Check a view's own fields (title/submit/close 24, private_metadata 3000) and blocks."""
        kind = view.get("type")
        modal = kind == "modal"
        if modal:
            self.text(view, "title", pointer, max_len=24, kinds=("plain_text",), required=True)
            self.text(view, "submit", pointer, max_len=24, kinds=("plain_text",))
            self.text(view, "close", pointer, max_len=24, kinds=("plain_text",))
            self.boolean(view, "clear_on_close", pointer)
            self.boolean(view, "notify_on_close", pointer)
            self.boolean(view, "submit_disabled", pointer)
        self.string(view, "private_metadata", pointer, max_len=3000)
        self.string(view, "callback_id", pointer, max_len=255)
        self.string(view, "external_id", pointer, max_len=255)
        blocks = self.array(view, "blocks", pointer, required=True)
        if blocks is not None:
            self.blocks(blocks, f"{pointer}/blocks", MAX_VIEW_BLOCKS)
            has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
            if modal and has_input and "submit" not in view:
                self.err(pointer, "missing required field: submit")


def _is_iso_date(value: str) -> bool:
    """Datepicker values are YYYY-MM-DD; Slack refuses anything else."""
    parts = value.split("-")
    return (
        len(parts) == 3
        and [len(p) for p in parts] == [4, 2, 2]
        and all(p.isdigit() for p in parts)
        and 1 <= int(parts[1]) <= 12
        and 1 <= int(parts[2]) <= 31
    )


def check_message_blocks(blocks: list[Any]) -> list[str]:
    """Validate a message's ``blocks``; return Slack's error strings (empty when valid).

    Slack answers ``invalid_blocks`` with these strings, prefixed ``[ERROR] ``, in
    ``response_metadata.messages``.
    """
    checker = _Checker("message")
    checker.blocks(blocks, "/blocks", MAX_MESSAGE_BLOCKS)
    return checker.errors


def check_view(view: Any, *, expected_type: str | None = None) -> list[str]:
    """Validate a view payload for views.open/push/update/publish; return Slack's error strings.

    Slack answers ``invalid_arguments`` for bad views (not ``invalid_blocks``) and opens the
    list with ``failed to match all allowed schemas [json-pointer:/view]``.
    ``expected_type`` is ``"modal"`` for views.open/push and ``"home"`` for views.publish.
    """
    checker = _Checker("modal")
    if not isinstance(view, dict):
        return ["must provide an object [json-pointer:/view]"]
    kind = view.get("type")
    if kind is None:
        checker.err("/view", "missing required field: type")
    elif kind not in ("modal", "home") or (expected_type is not None and kind != expected_type):
        checker.err("/view/type", "must be a valid enum value")
    else:
        checker.surface = kind
        checker.unknown_keys(
            view,
            {
                "type",
                "title",
                "blocks",
                "close",
                "submit",
                "private_metadata",
                "callback_id",
                "clear_on_close",
                "notify_on_close",
                "external_id",
                "submit_disabled",
            },
            "/view",
        )
        checker.view(view, "/view")
    if checker.errors:
        return ["failed to match all allowed schemas [json-pointer:/view]", *checker.errors]
    return []


def view_size(view: Any) -> int:
    """Bytes of the view's JSON, for Slack's 250 kB ``view_too_large`` limit."""
    return len(json.dumps(view, separators=(",", ":")).encode("utf-8"))


def normalize_blocks(blocks: list[Any]) -> list[Any]:
    """Return a copy of ``blocks`` as Slack stores and returns them.

    Slack fills in a ``block_id`` for every block and an ``action_id`` for every
    interactive element that lacks one, sets ``emoji: true`` on plain_text and
    ``verbatim: false`` on mrkdwn. Interaction payloads carry these generated ids, so the
    stand-in must invent them too.
    """
    result = copy.deepcopy(blocks)
    for block in result:
        if isinstance(block, dict):
            if "block_id" not in block:
                block["block_id"] = _random_id()
            _normalize_node(block)
    return result


def _normalize_node(node: Any) -> None:
    """Fill Slack's defaults into one node and recurse (rich_text is stored untouched)."""
    if isinstance(node, list):
        for item in node:
            _normalize_node(item)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "plain_text" and isinstance(node.get("text"), str):
        node.setdefault("emoji", True)
    elif kind == "mrkdwn" and isinstance(node.get("text"), str):
        node.setdefault("verbatim", False)
    elif kind in INTERACTIVE_ELEMENTS and "action_id" not in node:
        node["action_id"] = _random_id(4)
    if kind == "rich_text":
        return  # stored as sent
    for value in node.values():
        _normalize_node(value)
