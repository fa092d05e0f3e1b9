"""Slack card jobs: make the card match Redis, and escalation pings.

Placeholder until the Slack surface lands: acknowledges sync timers so they don't pile up.
"""

from __future__ import annotations

import logging

from workers.context import store_for

log = logging.getLogger(__name__)


def sync_card(prefix: str, request_id: str, lease: int) -> str:
    store = store_for(prefix)
    store.ack_timer(f"{request_id}|sync", lease)
    return "no slack"


def escalation_ping(prefix: str, request_id: str, step: int) -> str:
    return "no slack"
