"""The promotion loop's schedule: every `interval` seconds, `bot.slack.listeners.autonomy.check`.

Opening a proposal is atomic in Redis (one per action while open), so several workers
running this loop post one card, not several. A pass that fails (Redis or Slack away) is
logged and retried on the next tick.
"""

from __future__ import annotations

import logging

import redis
from slack_sdk.errors import SlackApiError

from bot.slack.client import web_client
from bot.slack.listeners.autonomy import check
from hitl import Approvals
from hitl.errors import ConfigError
from hitl.settings import Settings
from workers.loop import Loop, ThreadSpec

log = logging.getLogger(__name__)

# Seconds between passes: the evidence moves by decisions, not by the second.
INTERVAL = 60.0


class AutonomyLoop(Loop):
    name = "autonomy"

    def __init__(self, settings: Settings, *, interval: float = INTERVAL) -> None:
        super().__init__()
        self.settings = settings
        self.interval = interval
        self.passes = 0  # checks completed, for tests and health

    def _threads(self) -> list[ThreadSpec]:
        return [("hitl-autonomy", self._run)]

    def _run(self) -> None:
        try:
            client = web_client(self.settings)
        except ConfigError as exc:  # no Slack token: nowhere to propose, nothing to do
            log.warning("autonomy proposals off: %s", exc)
            return
        with Approvals(settings=self.settings) as approvals:
            while not self._stop.is_set():
                try:
                    check(approvals, client, self.settings)
                    self.passes += 1
                except (redis.RedisError, SlackApiError) as exc:
                    log.warning("autonomy check skipped, retried next pass: %s", exc)
                self._stop.wait(self.interval)
