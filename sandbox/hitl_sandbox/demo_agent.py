"""The demo agent: files realistic requests and prints every decision as it arrives.

``hitl dev`` runs it so that the loop from a click in the browser to the agent is visible
in the terminal: a reviewer approves the email in the sandbox page, and a few
milliseconds later this process prints "approved by alice, sending". It uses nothing but
the public client (``hitl.Approvals``) and the settings from the environment, so it runs
just as well against a real deployment: ``python -m hitl_sandbox.demo_agent``.

The requests cover the risk matrix: a gate for an irreversible email that Dave asked for
(so Dave may not approve it), a production deploy needing two leads, a config change made
at once under a 10-minute veto window, a shadow-mode refund (the agent does not wait; the
verdict is measured), a notify-mode post, and an urgent low-confidence key rotation.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hitl.client import Approvals, RequestHandle
from hitl.errors import HitlError, WaitTimeout
from hitl.models import Decision
from hitl.status import Mode, Status

# The people of the sandbox workspace, so the terminal says "alice", not "U0ALICE".
NAMES = {"U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol", "U0DAVE": "dave"}


@dataclass(frozen=True)
class Sample:
    """One request the demo agent files, and what it does with each outcome."""

    name: str
    kwargs: dict[str, Any]
    on_approve: str
    on_stop: str


SAMPLES: tuple[Sample, ...] = (
    Sample(
        name="email",
        kwargs=dict(
            action="send_email",
            summary="Send the overdue-invoice reminder to 200 customers",
            params={
                "template": "overdue-invoice-v3",
                "recipients": 200,
                "segment": "invoices overdue by more than 30 days",
                "sender": "billing@acme.example",
            },
            context=(
                "Task: chase unpaid November invoices for Dave.\n"
                "Reasoning: 200 customers are more than 30 days overdue; this template was "
                "approved by Finance last quarter. Emails cannot be recalled once sent."
            ),
            agent="billing-agent",
            risk="high",
            reversible=False,
            confidence=0.91,
            mode="gate",
            requested_by="U0DAVE",
            timeout=3600,
        ),
        on_approve="sending {recipients} emails with template {template}",
        on_stop="no email sent",
    ),
    Sample(
        name="deploy",
        kwargs=dict(
            action="deploy",
            summary="Deploy checkout-service v2.14.0 to production",
            params={
                "service": "checkout-service",
                "tag": "v2.14.0",
                "environment": "production",
                "replicas": 6,
                "strategy": "rolling",
            },
            context=(
                "Task: ship the release train.\n"
                "Reasoning: staging has been green for 24 h, error budget is healthy, no open incidents."
            ),
            agent="release-agent",
            risk="critical",
            reversible=True,
            confidence=0.88,
            mode="gate",
            channel="C0ENGLEADS",
            approvers=["S0LEADS"],
            quorum=2,
            timeout=1800,
        ),
        on_approve="deploying {tag} of {service} ({replicas} replicas)",
        on_stop="not deploying",
    ),
    Sample(
        name="config",
        kwargs=dict(
            action="update_config",
            summary="Raise the checkout API rate limit from 200 to 350 requests/s",
            params={"service": "checkout-api", "key": "rate_limit_rps", "old": 200, "new": 350},
            context="Reasoning: traffic is 30% above last week and 4% of requests get a 429.",
            agent="ops-agent",
            risk="medium",
            reversible=True,
            confidence=0.93,
            mode="override",
            window=600,
        ),
        on_approve="keeping rate_limit_rps = {new}",
        on_stop="rolling back to rate_limit_rps = {old}",
    ),
    Sample(
        name="refund",
        kwargs=dict(
            action="issue_refund",
            summary="Refund order A-10423 (EUR 49.00): the carrier reported the parcel lost",
            params={"order_id": "A-10423", "amount": 49.0, "currency": "EUR", "reason": "lost_in_transit"},
            context="Reasoning: the tracking shows 'lost' for 6 days; policy allows refunds under EUR 100.",
            agent="support-agent",
            risk="medium",
            reversible=False,
            confidence=0.86,
            mode="shadow",
            timeout=3600,
        ),
        on_approve="",
        on_stop="",
    ),
    Sample(
        name="status-post",
        kwargs=dict(
            action="post_message",
            summary="Post the weekly uptime summary to #status",
            params={
                "channel": "#status",
                "text": "Uptime last week: 99.97%. One 12-minute incident, resolved.",
            },
            agent="reporting-agent",
            risk="low",
            reversible=True,
            confidence=0.97,
            mode="notify",
        ),
        on_approve="posted the uptime summary",
        on_stop="",
    ),
    Sample(
        name="rotate-key",
        kwargs=dict(
            action="rotate_credentials",
            summary="Rotate the Stripe API key that appeared in a public CI log",
            params={
                "provider": "stripe",
                "key_name": "payments-prod",
                "api_key": "sk_live_51Hdemo0nlyN0tReal",
            },
            context="Reasoning: the key was printed in build #8812's log, which is public. Rotating breaks "
            "the payments worker until it restarts with the new key.",
            agent="security-agent",
            risk="high",
            reversible=False,
            confidence=0.55,
            approvers=["U0CAROL", "U0BOB"],
            timeout=900,
        ),
        on_approve="rotating payments-prod",
        on_stop="leaving the key in place",
    ),
)


class Printer:
    """Thread-safe terminal lines with a clock, so decisions from several threads stay readable."""

    def __init__(self, out: Any = None) -> None:
        self.out = out or sys.stdout
        self.lock = threading.Lock()

    def __call__(self, text: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        with self.lock:
            print(f"[{stamp}] agent: {text}", file=self.out, flush=True)


def who(ids: list[str]) -> str:
    """Slack ids as names where the sandbox knows them."""
    return ", ".join(NAMES.get(i, i) for i in ids) or "nobody"


def _fill(template: str, params: dict[str, Any]) -> str:
    """``template`` with the (possibly edited) parameters filled in."""
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template


def describe(sample: Sample, decision: Decision) -> str:
    """One line for a decision: what happened, by whom, and what the agent does now."""
    action = sample.kwargs["action"]
    by = who(decision.by)
    reason = f': "{decision.comment}"' if decision.comment else ""
    status = decision.status
    if decision.mode is Mode.SHADOW:
        if status is Status.JUDGED:
            return f"🕶️  {action}: {by} would {decision.verdict}{reason} (measured; the agent did not wait)"
        return f"⌛ {action}: no verdict before the deadline (nothing measured)"
    if status is Status.APPROVED:
        edited = " with edited parameters" if decision.params != sample.kwargs.get("params") else ""
        return f"✅ {action} approved by {by}{edited}{reason} → {_fill(sample.on_approve, decision.params)}"
    if status is Status.FINALIZED:
        confirmed = f"confirmed by {by}" if decision.by else "window closed without a veto"
        return f"✅ {action}: {confirmed} → {_fill(sample.on_approve, decision.params)}"
    if status is Status.VETOED:
        return f"🛑 {action} vetoed by {by}{reason} → {_fill(sample.on_stop, decision.params)}"
    if status is Status.REJECTED:
        return (
            f"❌ {action} rejected by {by}{reason} → {_fill(sample.on_stop, decision.params)}; "
            "the reason goes back to the model"
        )
    if status is Status.EXPIRED:
        return f"⌛ {action} expired with no decision → {_fill(sample.on_stop, decision.params)}"
    return f"🚫 {action} {status.value} → {_fill(sample.on_stop, decision.params)}"


def file_requests(approvals: Approvals, *, run: str | None = None) -> list[tuple[Sample, RequestHandle]]:
    """File every sample (idempotently per ``run``) and return (sample, handle) pairs."""
    run = run or f"demo-{int(time.time())}"
    handles = []
    for sample in SAMPLES:
        handle = approvals.request(
            **sample.kwargs, run_id=run, idempotency_key=f"{run}-{sample.name}"
        )
        handles.append((sample, handle))
    return handles


def filed_line(sample: Sample, handle: RequestHandle) -> str:
    """What the agent says right after filing: what it waits for, or what it already did."""
    action = f"{sample.kwargs['action']} ({handle.id})"
    if handle.mode is Mode.GATE:
        extra = []
        if sample.kwargs.get("quorum", 1) > 1:
            extra.append(f"needs {sample.kwargs['quorum']} approvals")
        if sample.kwargs.get("requested_by"):
            extra.append(f"on behalf of {who([sample.kwargs['requested_by']])}, who cannot approve it")
        if sample.kwargs.get("confidence", 1) < 0.6:
            extra.append("low confidence, so urgent")
        note = f" ({'; '.join(extra)})" if extra else ""
        return f"⏳ {action}: waiting for approval{note}"
    if handle.mode is Mode.OVERRIDE:
        window = int(sample.kwargs.get("window", 0)) // 60
        return f"⏱️  {action}: done now; a reviewer may veto it within {window} min"
    if handle.mode is Mode.SHADOW:
        return f"🕶️  {action}: trial run; acting on its own, asking what a reviewer would do"
    return f"ℹ️  {action}: done now ({handle.mode.value} mode); reviewers were told"


def watch(
    handles: list[tuple[Sample, RequestHandle]],
    say: Callable[[str], None],
    stop: threading.Event,
) -> list[threading.Thread]:
    """One thread per request: wait for its decision and print it the moment it lands."""

    def wait_one(sample: Sample, handle: RequestHandle) -> None:
        while not stop.is_set():
            try:
                decision = handle.wait(timeout=1.0)
            except WaitTimeout:
                continue  # look at `stop` now and then, so Ctrl-C is not held up
            except HitlError as exc:
                say(f"⚠️  {sample.kwargs['action']}: {exc}")
                return
            say(describe(sample, decision))
            return

    threads = []
    for sample, handle in handles:
        if handle.mode in (Mode.AUTO, Mode.NOTIFY):
            continue  # already done and logged: there is no decision to wait for
        thread = threading.Thread(
            target=wait_one, args=(sample, handle), name=f"wait-{sample.name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    return threads


def main(argv: Sequence[str] | None = None) -> int:
    """File the samples, then print decisions until all are settled (or Ctrl-C)."""
    parser = argparse.ArgumentParser(description="hitl-router demo agent")
    parser.add_argument("--page-url", help="the sandbox page, to point reviewers at")
    args = parser.parse_args(argv)
    say = Printer()
    stop = threading.Event()
    try:
        with Approvals() as approvals:
            handles = file_requests(approvals)
            where = f" in {args.page_url}" if args.page_url else " in Slack"
            say(f"filed {len(handles)} requests; decide them{where} (try acting as different people)")
            for sample, handle in handles:
                say(filed_line(sample, handle))
            threads = watch(handles, say, stop)
            while any(t.is_alive() for t in threads):
                for thread in threads:
                    thread.join(0.5)
            say("every request is settled. File more with `hitl request ... --wait`.")
    except KeyboardInterrupt:
        stop.set()
        return 0
    except HitlError as exc:
        print(f"demo agent: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
