"""The Redis key layout, in one place.

Everything lives under one prefix (default ``hitl``; ``HITL_REDIS_PREFIX``), so a
deployment or a test run can share a Redis with others and be cleaned with one SCAN.

=====================================  ======  ================================================
key                                    type    what it holds
=====================================  ======  ================================================
``{p}:req:{id}``                       hash    a request's live state; ``ev`` lists its audit
                                               event ids, the first being the ``created``
                                               event, which holds the request document once
                                               (also: ``fingerprint`` of what its idempotency
                                               key promises; a plan's ``items``, a step's
                                               ``batch``; ``execution``, the `ExecutionState`
                                               of its tool call, with ``exec_started_ms`` and
                                               ``exec_finished_ms``: see `hitl.executions`)
``{p}:req:{id}:done``                  list    the outcome (JSON) pushed when the request turns
                                               final; a waiter woken by the final audit event
                                               reads it (LINDEX, see `hitl.waiters`) instead
                                               of the whole request
``{p}:idem:{key}``                     string  idempotency key -> request id
``{p}:pending``                        zset    every undecided request (pending or open),
                                               scored by creation time (ms)
``{p}:pending:ch:{channel}``           zset    the same, per Slack channel
``{p}:pending:mode:{mode}``            zset    the same, per mode
``{p}:deadlines``                      zset    undecided requests by deadline (epoch s)
``{p}:channels``                       set     channels that ever had a request
``{p}:timers``                         zset    due work, scored by due time (ms); members
                                               ``{id}|timeout``, ``{id}|window``,
                                               ``{id}|esc|{n}``, ``{id}|sync`` (make the
                                               Slack card match Redis) and ``{id}|hook|{n}``
                                               (decision-webhook attempt ``n``)
``{p}:events``                         stream  the audit log, one entry per transition
``{p}:stats:{action}``                 hash    per-action counters by outcome
``{p}:durations:{action}``             list    the last 1,000 times to decision (ms)
``{p}:actions``                        set     actions that have counters
``{p}:paused``                         set     kill switch scopes: ``*`` or action names
``{p}:maintenance:lock``               string  held for one maintenance period by the worker
                                               that trims the audit and cleans stale requests
``{p}:metrics:{family}``               hash    Prometheus counters shared by every process
                                               (``created``, ``final``, ``decision``,
                                               ``lateness``, ``slack``, ``webhooks``); fields
                                               are JSON label lists (a histogram's end with
                                               its bucket bound, ``sum`` or ``count``)
``{p}:metrics:hour:{n}``               hash    the same per hour ``n`` (epoch hours), for the
                                               dashboard's charts; expires after 8 days
``{p}:dashboard:team``                 string  the Slack workspace the dashboard serves
``{p}:dashboard:link:{token id}``      string  a dashboard link already used (links open it
                                               once), kept until the link expires (TTL)
``{p}:chmembers:{channel}``            string  a Slack channel's member ids (JSON), cached
                                               briefly for visibility checks (TTL)
``{p}:usergroup:{group}``              string  a Slack user group's member ids (JSON), cached
                                               for approver checks (TTL)
``{p}:req:{id}:posting``               string  a card post in flight: ``{owner}|{since ms}``
                                               (see `hitl.placement`)
``{p}:pace:{channel}``                 string  set while a channel's next post must wait
``{p}:unposted:{channel}``             zset    requests waiting for their first card, by
                                               creation time (ms)
``{p}:digest:{channel}:{ts}``          list    the request ids a digest card shows
``{p}:slack:next:{method}``            string  earliest time (ms) the next call of a
                                               workspace-limited Slack method may go out
``{p}:slack:read:{channel}``           string  set while a channel's next history read
                                               (card recovery) must wait: one a minute
``{p}:recovery:{channel}``             string  a card-recovery history scan in progress
                                               (JSON: window, cursor, ids sought, found)
``{p}:agents:runstate:{run_id}``       string  the serialized OpenAI Agents `RunState` (JSON)
                                               of a paused run (`hitl.runstates`); expires
                                               after the retention period
``{p}:apikeys``                        hash    API key name -> its record (JSON: name, admin,
                                               actions, rate, created, hash); never the secret
``{p}:apikeys:secrets``                hash    sha256 of a key's secret -> the same record, so
                                               authentication is one HGET (see `hitl.apikeys`)
``{p}:ratelimit:{name}``               hash    an API key's token bucket (``tokens``, ``ms``);
                                               expires once full again
``{p}:policy:table``                   hash    the policy version in force, compiled for the
                                               CREATE script: ``version``, ``sha256``,
                                               ``defaults``, ``confidence``, ``rules`` and
                                               ``a:{action}`` per action (JSON); absent means
                                               version 0 (see `hitl.policystore`)
``{p}:policy:seq``                     string  the last policy version assigned
``{p}:policy:v:{n}``                   hash    policy version ``n``, kept for good: source
                                               text, canonical JSON, sha256, applied_by,
                                               applied_at (ms), source (e.g. the file path)
``{p}:policy:error``                   hash    the last policy file that could not be
                                               published: ``message``, ``source``, ``at``
``{p}:grant:{id}``                     hash    a grant (`hitl.grants`): what it covers
                                               (``action``, ``via``, ``requested_by``,
                                               ``channel``, ``approvers``, ``quorum``,
                                               ``pins``), ``by`` (JSON list of who granted),
                                               ``until_ms``, ``uses``, ``uses_left``, the
                                               granting ``request``; ``ended``/``ended_by``
                                               once revoked or used up; kept for retention
``{p}:grants``                         zset    live grants by their end (ms)
``{p}:grants:a:{action}``              zset    the same, per action (what CREATE reads)
``{p}:grantvotes:{id}``               hash    who chose "approve for a while" on a quorum
                                               request, and their choice (JSON), until the
                                               quorum grants it
``{p}:autonomy:proposal:{action}``     string  the open promotion proposal (JSON), one per
                                               action, set NX (see `hitl.autonomy`)
``{p}:autonomy:votes:{action}``        set     admins who pressed Promote on it
``{p}:autonomy:snooze:{action}``       string  Not yet: no proposal until it expires
``{p}:autonomy:rejections:{action}``   zset    recent rejections (ms), for demote_after
``{p}:autonomy:reported:{n}``          string  the promotions file version n undid were told
``rq:queue:{p}-{kind}``                list    RQ's own keys for the queues `Keys.queue`
                                               names (``timers``, ``slack``, ``webhooks``,
                                               ``langgraph``); RQ adds ``rq:`` itself
=====================================  ======  ================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Separator inside timer members; request ids never contain it.
TIMER_SEP = "|"


class TimerKind(StrEnum):
    """What a member of the timers zset (``{id}|{kind}`` or ``{id}|{kind}|{n}``) is due for.
    The Lua scripts in `hitl.scripts` and `hitl.placement` spell these as literals (Lua
    cannot import them); tests/test_keys_timers.py checks each literal is one of these."""

    TIMEOUT = "timeout"  # the gate's deadline: expire it
    WINDOW = "window"  # the override window's end: finalize
    ESC = "esc"  # escalation step ``n`` (``{id}|esc|{n}``)
    SYNC = "sync"  # make the Slack card match Redis (the delivery loop)
    HOOK = "hook"  # decision-webhook delivery attempt ``n`` (``{id}|hook|{n}``)


@dataclass(frozen=True, slots=True)
class Keys:
    """Builds key names for one prefix."""

    prefix: str = "hitl"

    def req(self, request_id: str) -> str:
        return f"{self.prefix}:req:{request_id}"

    def done(self, request_id: str) -> str:
        return f"{self.prefix}:req:{request_id}:done"

    def idem(self, key: str) -> str:
        return f"{self.prefix}:idem:{key}"

    @property
    def pending(self) -> str:
        return f"{self.prefix}:pending"

    def pending_channel(self, channel: str) -> str:
        return f"{self.prefix}:pending:ch:{channel}"

    def pending_mode(self, mode: str) -> str:
        return f"{self.prefix}:pending:mode:{mode}"

    @property
    def deadlines(self) -> str:
        return f"{self.prefix}:deadlines"

    @property
    def channels(self) -> str:
        return f"{self.prefix}:channels"

    @property
    def timers(self) -> str:
        return f"{self.prefix}:timers"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    def stats(self, action: str) -> str:
        return f"{self.prefix}:stats:{action}"

    def durations(self, action: str) -> str:
        return f"{self.prefix}:durations:{action}"

    def queue(self, kind: str) -> str:
        """The name of an RQ queue of this deployment (RQ keeps it as ``rq:queue:{name}``):
        ``{p}-timers``, ``{p}-slack``, ``{p}-webhooks``, ``{p}-langgraph``."""
        return f"{self.prefix}-{kind}"

    @property
    def actions(self) -> str:
        return f"{self.prefix}:actions"

    @property
    def paused(self) -> str:
        return f"{self.prefix}:paused"

    @property
    def maintenance_lock(self) -> str:
        return f"{self.prefix}:maintenance:lock"

    def channel_members(self, channel: str) -> str:
        return f"{self.prefix}:chmembers:{channel}"

    def group_members(self, group: str) -> str:
        return f"{self.prefix}:usergroup:{group}"

    # -- Slack placement (hitl.placement) ----------------------------------------------------

    def posting(self, request_id: str) -> str:
        return f"{self.prefix}:req:{request_id}:posting"

    def pace(self, channel: str) -> str:
        return f"{self.prefix}:pace:{channel}"

    def unposted(self, channel: str) -> str:
        return f"{self.prefix}:unposted:{channel}"

    def digest(self, channel: str, ts: str) -> str:
        return f"{self.prefix}:digest:{channel}:{ts}"

    def slack_next(self, method: str) -> str:
        return f"{self.prefix}:slack:next:{method}"

    def history_read(self, channel: str) -> str:
        return f"{self.prefix}:slack:read:{channel}"

    def recovery(self, channel: str) -> str:
        return f"{self.prefix}:recovery:{channel}"

    def metrics(self, family: str) -> str:
        return f"{self.prefix}:metrics:{family}"

    def metrics_hour(self, hour: int | str) -> str:
        return f"{self.prefix}:metrics:hour:{hour}"

    def run_state(self, run_id: str) -> str:
        return f"{self.prefix}:agents:runstate:{run_id}"

    def metrics_public(self, family: str) -> str:
        """A family's twin counting requests in public channels only (what non-members see)."""
        return f"{self.prefix}:metrics:public:{family}"

    def metrics_public_hour(self, hour: int | str) -> str:
        return f"{self.prefix}:metrics:public:hour:{hour}"

    @property
    def actions_policy(self) -> str:
        """Action names the policy names: each always gets its own metric and stats labels."""
        return f"{self.prefix}:actions:policy"

    @property
    def actions_admitted(self) -> str:
        """Other action names given their own labels, at most `actions_limit` of them."""
        return f"{self.prefix}:actions:admitted"

    @property
    def actions_limit(self) -> str:
        """How many `actions_admitted` may hold (HITL_METRICS_MAX_ACTIONS, written at start)."""
        return f"{self.prefix}:actions:limit"

    @property
    def actions_private(self) -> str:
        """Action labels that a request in a private (or unknown) channel used."""
        return f"{self.prefix}:actions:private"

    def channel_privacy(self, channel: str) -> str:
        """"1" private, "0" public (conversations.info `is_private`), kept a while."""
        return f"{self.prefix}:chprivate:{channel}"

    @property
    def dashboard_team(self) -> str:
        return f"{self.prefix}:dashboard:team"

    def dashboard_link(self, token_id: str) -> str:
        return f"{self.prefix}:dashboard:link:{token_id}"

    # -- API keys (hitl.apikeys) -------------------------------------------------------------

    @property
    def api_keys(self) -> str:
        return f"{self.prefix}:apikeys"

    @property
    def api_key_secrets(self) -> str:
        return f"{self.prefix}:apikeys:secrets"

    def rate_limit(self, name: str) -> str:
        return f"{self.prefix}:ratelimit:{name}"

    # -- the published policy (hitl.policystore) ---------------------------------------------

    @property
    def policy_table(self) -> str:
        return f"{self.prefix}:policy:table"

    @property
    def policy_seq(self) -> str:
        return f"{self.prefix}:policy:seq"

    def policy_version(self, version: int | str) -> str:
        return f"{self.prefix}:policy:v:{version}"

    def grant(self, grant_id: str) -> str:
        return f"{self.prefix}:grant:{grant_id}"

    @property
    def grants(self) -> str:
        return f"{self.prefix}:grants"

    def grants_action(self, action: str) -> str:
        return f"{self.prefix}:grants:a:{action}"

    def grant_votes(self, request_id: str) -> str:
        return f"{self.prefix}:grantvotes:{request_id}"

    @property
    def policy_error(self) -> str:
        return f"{self.prefix}:policy:error"

    # -- the promotion loop (hitl.autonomy) ---------------------------------------------------
    def autonomy_proposal(self, action: str) -> str:
        """The open promotion proposal for `action` (one at a time: SET NX)."""
        return f"{self.prefix}:autonomy:proposal:{action}"

    def autonomy_votes(self, action: str) -> str:
        """Admins who pressed Promote on the open proposal (toward `autonomy.quorum`)."""
        return f"{self.prefix}:autonomy:votes:{action}"

    def autonomy_snooze(self, action: str) -> str:
        """Not yet: no proposal for `action` until this key expires."""
        return f"{self.prefix}:autonomy:snooze:{action}"

    def autonomy_rejections(self, action: str) -> str:
        """Recent rejections of `action` (epoch ms), for `autonomy.demote_after`."""
        return f"{self.prefix}:autonomy:rejections:{action}"

    @property
    def autonomy_demotions(self) -> str:
        """Demotions not yet told to the admins (JSON records, oldest first)."""
        return f"{self.prefix}:autonomy:demotions"

    def autonomy_reported(self, version: int | str) -> str:
        """Set once the promotions a file version undid have been reported."""
        return f"{self.prefix}:autonomy:reported:{version}"


def timer_member(request_id: str, kind: str, step: int | None = None) -> str:
    """The member for `kind` (a `TimerKind`; typed str while hitl.placement still passes
    its literal) and, for escalations and webhook attempts, `step`."""
    parts = [request_id, kind] if step is None else [request_id, kind, str(step)]
    return TIMER_SEP.join(parts)


def sync_member(request_id: str) -> str:
    """The card-sync member ``{id}|sync`` of a request."""
    return timer_member(request_id, TimerKind.SYNC)


def parse_timer_member(member: str) -> tuple[str, TimerKind, int | None]:
    """(request id, kind, step) of a timer member; ValueError for a kind no `TimerKind`
    names (a member written by some other version: the caller logs and drops it)."""
    parts = member.split(TIMER_SEP)
    if len(parts) < 2:
        raise ValueError(f"not a timer member: {member!r}")
    step = int(parts[2]) if len(parts) > 2 else None
    return parts[0], TimerKind(parts[1]), step
