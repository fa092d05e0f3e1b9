"""Slack request signatures, checked so that any malformed header is a plain 401.

slack_sdk's `SignatureVerifier.is_valid` calls `int()` on `X-Slack-Request-Timestamp`, so
a non-integer timestamp raised `ValueError` inside Bolt's own verification middleware and
the bot answered 500 with a traceback. This middleware takes its place (same position in
Bolt's chain, before authorization and every listener), so the fix holds for whichever
HTTP server or adapter hands requests to `App.dispatch`.
"""

from __future__ import annotations

from slack_bolt.middleware.request_verification import RequestVerification
from slack_sdk.signature import SignatureVerifier


class _TolerantVerifier(SignatureVerifier):
    """A verifier for which an unparsable timestamp or signature is simply invalid."""

    def is_valid(self, body: str | bytes, timestamp: str | None, signature: str | None) -> bool:
        if timestamp is None or not str(timestamp).strip().lstrip("-").isdigit():
            return False
        try:
            return super().is_valid(body, timestamp, signature)
        except (ValueError, TypeError, OverflowError):
            return False


class SafeRequestVerification(RequestVerification):
    """Bolt's `RequestVerification`, answering 401 `invalid request` for malformed headers."""

    @property
    def verifier(self) -> SignatureVerifier:
        if self._verifier is None:
            self._verifier = _TolerantVerifier(signing_secret=self._signing_secret)
        return self._verifier
