"""Every state change of a request, as Lua run atomically inside Redis.

One script per transition kind, each checking the current state before it writes, so two
reviewers clicking at once, a Slack retry or a timer firing twice leave exactly one
transition behind and the losers learn why.

CREATE and TRANSITION take one JSON document of named inputs (ARGV[1]) and bind what they
read to named locals. The key names they derive (a plan's steps, channel and mode indexes,
stats) come from templates built by `hitl.keys.Keys` (see `hitl.store.key_names`), so no
key name is spelled in Lua; hitl-router targets a single Redis (or a primary with
replicas), not Redis Cluster. TRANSITION reads the clock from Redis (`TIME`): deadlines and
decision times are judged by one clock, whatever the callers' clocks say.

Results are flat arrays because Lua tables cannot carry nil: see `hitl.store` for the
parsing.
"""


# Timer kinds: the scripts get most timer members from `key_names` (built from
# `hitl.keys.TimerKind`), but a few spell one as a literal (`r.id .. '|sync'`, marked
# `-- TimerKind.SYNC`): Lua cannot import the enum, and tests/test_timer_kinds.py checks
# every such literal is a TimerKind value.

from __future__ import annotations

import json

from hitl.metrics import DECISION_BOUNDS, DEFAULT_MAX_ACTIONS, HOUR_TTL, OTHER_ACTION
from hitl.models import MAX_DURATION, MAX_QUORUM
from hitl.policy import DEFAULT_GATE_BELOW, DEFAULT_TIMEOUT, DEFAULT_URGENT_BELOW, DEFAULT_WINDOW
from hitl.status import OVERSIGHT_ORDER

# Helpers shared by CREATE and TRANSITION (prepended to each). `names` is the table of key
# name templates built by `hitl.store.key_names` from `hitl.keys.Keys` ("{}" marks where an
# id, action, channel or mode goes), so no key name is spelled out in Lua.
_COMMON = f"""
local DECISION_BOUNDS = {{{", ".join(f"{b:g}" for b in DECISION_BOUNDS)}}}
local HOUR_TTL = {HOUR_TTL}
local DEFAULT_MAX_ACTIONS = {DEFAULT_MAX_ACTIONS}
local OTHER_ACTION = {json.dumps(OTHER_ACTION)}
""" + r"""
local function list_json(t)
  if #t == 0 then return '[]' end
  return cjson.encode(t)
end
local function contains(t, v)
  for _, x in ipairs(t) do if x == v then return true end end
  return false
end
local function named(template, value)
  local s, e = string.find(template, '{}', 1, true)
  return string.sub(template, 1, s - 1) .. value .. string.sub(template, e + 1)
end
-- Agents choose action names, so labels are bounded where they are written: an action the
-- policy names (set names.actions_policy) keeps its name; any other takes one of at most
-- GET names.actions_limit (default DEFAULT_MAX_ACTIONS) places in names.actions_admitted,
-- first come first served; past that it is counted as OTHER_ACTION. `scope_of` answers,
-- for a request's action and channel: its label, whether the policy lists it, and whether
-- its channel is known to be public (names.chprivate = "0", learnt from Slack by
-- hitl.membership.ChannelPrivacy; unknown counts as private).
local SCOPES = {}
local function scope_of(names, action, channel)
  local memo = action .. '\0' .. (channel or '')
  if SCOPES[memo] then return SCOPES[memo] end
  local label, listed = action, redis.call('SISMEMBER', names.actions_policy, action) == 1
  if not listed and redis.call('SISMEMBER', names.actions_admitted, action) == 0 then
    local limit = tonumber(redis.call('GET', names.actions_limit) or DEFAULT_MAX_ACTIONS)
    if redis.call('SCARD', names.actions_admitted) < limit then
      redis.call('SADD', names.actions_admitted, action)
    else
      label = OTHER_ACTION
    end
  end
  local public = channel ~= nil and channel ~= ''
    and redis.call('GET', named(names.chprivate, channel)) == '0'
  local scope = {label = label, listed = listed, public = public}
  SCOPES[memo] = scope
  return scope
end
-- Per-action stats (hitl.stats), under the scope's label. Those of an action the policy
-- does not list expire `retention` seconds after their last change.
local function stats_of(names, scope)
  redis.call('SADD', names.actions, scope.label)
  if not scope.public then redis.call('SADD', names.actions_private, scope.label) end
  return named(names.stats, scope.label)
end
local function bump(names, scope, field, by, retention)
  local key = stats_of(names, scope)
  redis.call('HINCRBY', key, field, by)
  if not scope.listed then redis.call('EXPIRE', key, retention) end
end
local function stamp(names, scope, field, value, retention)
  local key = stats_of(names, scope)
  redis.call('HSET', key, field, value)
  if not scope.listed then redis.call('EXPIRE', key, retention) end
end
local function record_duration(names, scope, ms, retention)
  local durations = named(names.durations, scope.label)
  redis.call('LPUSH', durations, ms)
  redis.call('LTRIM', durations, 0, 999)
  if not scope.listed then redis.call('EXPIRE', durations, retention) end
end
-- The shared Prometheus counters (see hitl.metrics), written when the input says
-- `metrics`: hashes names.m_created, names.m_final, names.m_decision, and names.m_hour
-- (a template per epoch hour, kept HOUR_TTL seconds), each with a public twin (names.pm_*)
-- counting requests in public channels only, which is what the dashboard shows people
-- who are not admins. Fields are JSON label lists whose action is the scope's label; a
-- histogram bucket field ends with its bucket's index (1-based into DECISION_BOUNDS, the
-- one past the last bound is +Inf); readers sum fields that decode to the same labels.
local function count(key, public_key, scope, labels, by)
  local field = cjson.encode(labels)
  redis.call('HINCRBY', key, field, by or 1)
  if scope.public then redis.call('HINCRBY', public_key, field, by or 1) end
end
local function observe_created(names, scope, mode, status)
  count(names.m_created, names.pm_created, scope, {scope.label, mode})
  if status == 'approved' then count(names.m_final, names.pm_final, scope, {scope.label, status}) end
end
local function observe_decision(names, scope, status, seconds, now_ms)
  local action = scope.label
  count(names.m_final, names.pm_final, scope, {action, status})
  local bucket = #DECISION_BOUNDS + 1
  for i, bound in ipairs(DECISION_BOUNDS) do
    if seconds <= bound then bucket = i; break end
  end
  count(names.m_decision, names.pm_decision, scope, {action, bucket})
  count(names.m_decision, names.pm_decision, scope, {action, 'count'})
  local sum = cjson.encode({action, 'sum'})
  redis.call('HINCRBYFLOAT', names.m_decision, sum, seconds)
  if scope.public then redis.call('HINCRBYFLOAT', names.pm_decision, sum, seconds) end
  local slot = math.floor(now_ms / 3600000)
  local hour, public_hour = named(names.m_hour, slot), named(names.pm_hour, slot)
  count(hour, public_hour, scope, {'final', action, status})
  count(hour, public_hour, scope, {'decision', action, bucket})
  redis.call('EXPIRE', hour, HOUR_TTL)
  if scope.public then redis.call('EXPIRE', public_hour, HOUR_TTL) end
end
-- Drop an undecided request from every index of undecided requests.
local function unindex(names, id, channel, mode)
  redis.call('ZREM', names.pending, id)
  redis.call('ZREM', names.deadlines, id)
  if channel and channel ~= '' then redis.call('ZREM', named(names.pending_channel, channel), id) end
  redis.call('ZREM', named(names.pending_mode, mode), id)
end
-- The final outcome, pushed on the done list so a waiter needs no second read.
local function outcome(status, by_json, comment, params_json, verdict, decided_ms)
  return '{"status":' .. cjson.encode(status) .. ',"by":' .. by_json .. ',"comment":' .. cjson.encode(comment)
    .. ',"params":' .. (params_json ~= '' and params_json or 'null') .. ',"verdict":' .. cjson.encode(verdict)
    .. ',"decided_ms":' .. decided_ms .. '}'
end
"""

# The routing rule of `hitl.policy.route`, in Lua, for CREATE: the policy in force (the
# compiled table `hitl.policystore` publishes, KEYS[4] of CREATE) applied to what the
# agent asked. Arguments only ever add oversight. Python routes first, for friendly errors;
# this is where the rule holds, whatever the client sent.
_ROUTING = f"""
local DEFAULT_TIMEOUT, DEFAULT_WINDOW = {DEFAULT_TIMEOUT!r}, {DEFAULT_WINDOW!r}
local DEFAULT_GATE_BELOW, DEFAULT_URGENT_BELOW = {DEFAULT_GATE_BELOW!r}, {DEFAULT_URGENT_BELOW!r}
local MAX_DURATION, MAX_QUORUM = {MAX_DURATION!r}, {MAX_QUORUM}
local OVERSIGHT = {{{", ".join(f"{m.value} = {n}" for n, m in enumerate(OVERSIGHT_ORDER, start=1))}}}
""" + r"""
local function val(x) if x == cjson.null then return nil end return x end
local function nonempty(t) if t ~= nil and #t > 0 then return t end return nil end
-- A refusal naming the field, caught by CREATE's pcall: nothing is written.
local function invalid(field, message) error({field = field, message = message}) end
local function stricter(a, b) if OVERSIGHT[a] >= OVERSIGHT[b] then return a end return b end
local function mentionable(who)
  return type(who) == 'string' and #who >= 3 and #who <= 31 and string.match(who, '^[UWS][A-Z0-9]+$') ~= nil
end
local function is_group(who) return string.sub(who, 1, 1) == 'S' end
-- Whether `quorum` distinct people can come from `approvers` (a group may hold many).
local function reachable(approvers, quorum)
  for _, a in ipairs(approvers) do if is_group(a) then return true end end
  return #approvers >= quorum
end
local function duration(x, field)
  x = val(x)
  if x == nil then return nil end
  if type(x) ~= 'number' or x <= 0 or x > MAX_DURATION then
    invalid(field, 'must be a number of seconds between 0 and 30 days')
  end
  return x
end

-- The policy table's action entries and rules, read once per script call.
local function policy_in_force(key)
  local f = redis.call('HMGET', key, 'version', 'defaults', 'confidence', 'rules')
  return {
    key = key, version = tonumber(f[1]) or 0, entries = {},
    defaults = cjson.decode(f[2] or '{}'), confidence = cjson.decode(f[3] or '{}'),
    rules = cjson.decode(f[4] or '[]'),
  }
end

-- A rule's glob patterns arrive compiled to anchored Lua patterns (hitl.patterns.lua); a
-- parameter value matches only when plain (hitl.patterns.plain: a string of at most 4096
-- bytes with no control character, none of ;&|<>$`(){} and no `..` path segment).
local function any_pattern(pats, value)
  for _, p in ipairs(pats) do if string.find(value, p) then return true end end
  return false
end
local function plain(value)
  if type(value) ~= 'string' or #value > 4096 or string.find(value, '[%c;&|<>$`(){}]') then
    return false
  end
  return string.find('/' .. value .. '/', '/../', 1, true) == nil
end

local function rule_matches(when, doc)
  if when.reversible ~= nil and val(doc.reversible) ~= when.reversible then return false end
  if when.risk ~= nil and not contains(when.risk, val(doc.risk)) then return false end
  if when.agent ~= nil and not contains(when.agent, val(doc.agent)) then return false end
  if when.action ~= nil and not any_pattern(when.action, doc.action) then return false end
  if when.params ~= nil then
    local params = val(doc.params)
    if type(params) ~= 'table' then return false end
    for name, pats in pairs(when.params) do
      local value = val(params[name])
      if not plain(value) or not any_pattern(pats, value) then return false end
    end
  end
  return true
end

-- The action's own entry, else the first matching rule, else nothing (Policy.for_action).
local function entry_for(policy, doc)
  local action = doc.action
  if policy.entries[action] == nil then
    local raw = redis.call('HGET', policy.key, 'a:' .. action)
    policy.entries[action] = raw and cjson.decode(raw) or false
  end
  if policy.entries[action] then return policy.entries[action] end
  for _, rule in ipairs(policy.rules) do
    if rule_matches(rule.when, doc) then return rule end
  end
  return {}
end

-- The request's approvers checked against the policy's (see hitl.policy._approvers).
local function route_approvers(entry, d, asked, quorum, action)
  local allowed = nonempty(entry.approvers) or nonempty(d.approvers) or {}
  local chosen = allowed
  if asked ~= nil then
    local agent_ok = entry.agent_approvers
    if agent_ok == nil then agent_ok = d.agent_approvers end
    if agent_ok == false then
      invalid('approvers', 'the policy does not let agents name approvers for ' .. action
        .. '; leave approvers out')
    end
    if type(asked) ~= 'table' or #asked == 0 then
      invalid('approvers', "name at least one approver, or leave it out to use the policy's")
    end
    local outside = {}
    for _, who in ipairs(asked) do
      if not mentionable(who) then
        invalid('approvers', 'must be Slack user (U…/W…) or user group (S…) ids')
      end
      if #allowed > 0 and not contains(allowed, who) then table.insert(outside, who) end
    end
    if #outside > 0 then
      invalid('approvers', table.concat(outside, ', ')
        .. " not among the policy's approvers for this action; choose from "
        .. table.concat(allowed, ', ') .. ', or leave approvers out')
    end
    chosen = asked
  end
  if #chosen > 0 and not reachable(chosen, quorum) then
    invalid(asked ~= nil and 'approvers' or 'quorum', #chosen .. ' approver(s) can never meet the quorum of '
      .. quorum .. '; name at least ' .. quorum .. ' (or a user group)')
  end
  local source = ''
  if #chosen > 0 then source = (#allowed > 0) and 'policy' or 'agent' end
  return chosen, source
end

-- Route one request document: mode, channel, approvers, quorum, timers' inputs.
-- `asked` is what the agent asked for (the document's `asked`); the rest is the policy's.
local function route(policy, doc, default_channel)
  local asked = val(doc.asked) or {}
  if type(asked) ~= 'table' then invalid('request', 'asked must be an object') end
  local entry, d = entry_for(policy, doc), policy.defaults
  local asked_mode = val(asked.mode)
  if asked_mode ~= nil and not OVERSIGHT[asked_mode] then invalid('mode', 'is not a known mode') end
  local policy_mode = entry.mode or d.mode
  local mode = asked_mode or policy_mode or 'gate'
  if policy_mode then mode = stricter(mode, policy_mode) end
  local urgent, low = false, false
  local confidence = val(doc.confidence)
  if confidence ~= nil then
    if type(confidence) ~= 'number' then invalid('confidence', 'must be a number from 0 to 1') end
    low = confidence < (policy.confidence.gate_below or DEFAULT_GATE_BELOW)
    if low then mode = 'gate' end
    urgent = confidence < (policy.confidence.urgent_below or DEFAULT_URGENT_BELOW)
  end
  local asked_quorum = val(asked.quorum) or 1
  if type(asked_quorum) ~= 'number' or asked_quorum < 1 or asked_quorum > MAX_QUORUM
    or asked_quorum ~= math.floor(asked_quorum) then
    invalid('quorum', 'must be a whole number from 1 to ' .. MAX_QUORUM)
  end
  local quorum = math.max(asked_quorum, entry.quorum or d.quorum or 1)
  local approvers, approvers_from = route_approvers(entry, d, val(asked.approvers), quorum, doc.action)
  local asked_channel = val(asked.channel)
  if asked_channel ~= nil and (type(asked_channel) ~= 'string' or #asked_channel > 100) then
    invalid('channel', 'must be a channel id or #name')
  end
  if asked_channel == '' then asked_channel = nil end
  local channel, mirrors = entry.channel or d.channel, {}
  if channel == nil then
    channel = asked_channel or default_channel
  elseif asked_channel and asked_channel ~= channel then
    mirrors = {asked_channel}
  end
  local timeout = duration(asked.timeout, 'timeout') or entry.timeout or d.timeout or DEFAULT_TIMEOUT
  local asked_window = duration(asked.window, 'window')
  local floor = entry.window or d.window
  local window = asked_window or DEFAULT_WINDOW
  if floor ~= nil then window = math.max(asked_window or 0, floor) end
  -- What a grant may cover (hitl.grants): the entry's `grants`, else the defaults'; an
  -- irreversible or critical request only with its action's own `irreversible: true`.
  local grants = entry.grants or d.grants
  if grants ~= nil and (val(doc.reversible) == false or val(doc.risk) == 'critical') then
    local own = policy.entries[doc.action]
    if not (own and own == entry and entry.grants and entry.grants.irreversible) then grants = nil end
  end
  local ladder = entry.escalation
  if ladder == nil then ladder = d.escalation end
  if ladder == nil then ladder = {{after = timeout / 2, notify = approvers}} end
  local escalation = {}
  for _, step in ipairs(ladder) do
    if step.after < timeout then table.insert(escalation, step) end
  end
  return {
    mode = mode, urgent = urgent, low_confidence = low, channel = channel or '', mirrors = mirrors,
    approvers = approvers, approvers_from = approvers_from, quorum = quorum, timeout = timeout,
    window = window, escalation = escalation, grants = grants,
  }
end

-- Timer members and due times (ms) for a request routed as `r` in `mode`, and its
-- deadline (ms, or nil): see the timer kinds in hitl.keys.
local function timers_for(names, id, mode, r, now)
  local timers, deadline = {}, nil
  if mode == 'gate' or mode == 'shadow' then
    deadline = now + math.floor(r.timeout * 1000)
    timers[named(names.t_timeout, id)] = deadline
    if mode == 'gate' then
      for n, step in ipairs(r.escalation) do
        timers[named(named(names.t_esc, id), n)] = now + math.floor(step.after * 1000)
      end
    end
  elseif mode == 'override' then
    deadline = now + math.floor(r.window * 1000)
    timers[named(names.t_window, id)] = deadline
  end
  if mode ~= 'auto' then timers[named(names.t_sync, id)] = now end
  return timers, deadline
end

local function grantable_json(g)
  if g == nil then return 'null' end
  return '{"max":' .. cjson.encode(g.max) .. ',"max_uses":' .. g.max_uses .. '}'
end
local function seconds_text(ms) return string.format('%.3f', ms / 1000) end
local function text_or_null(s) if s == nil or s == '' then return 'null' end return cjson.encode(s) end

-- The routed fields as a JSON object's text, appended to the stored document (so the
-- document says what the script decided, whatever the caller sent).
local function route_json(r, created_ms, deadline_ms, batch, items, version)
  local steps = {}
  for _, step in ipairs(r.escalation) do
    table.insert(steps, '{"after":' .. cjson.encode(step.after)
      .. ',"notify":' .. list_json(step.notify or {}) .. ',"channel":' .. text_or_null(step.channel) .. '}')
  end
  return '{"mode":' .. cjson.encode(r.mode) .. ',"urgent":' .. tostring(r.urgent)
    .. ',"low_confidence":' .. tostring(r.low_confidence) .. ',"channel":' .. text_or_null(r.channel)
    .. ',"mirror_channels":' .. list_json(r.mirrors) .. ',"approvers":' .. list_json(r.approvers)
    .. ',"approvers_from":' .. text_or_null(r.approvers_from) .. ',"quorum":' .. r.quorum
    .. ',"timeout":' .. cjson.encode(r.timeout) .. ',"window":' .. cjson.encode(r.window)
    .. ',"escalation":[' .. table.concat(steps, ',') .. '],"created_at":' .. seconds_text(created_ms)
    .. ',"deadline":' .. (deadline_ms and seconds_text(deadline_ms) or 'null')
    .. ',"batch":' .. text_or_null(batch) .. ',"items":' .. list_json(items)
    .. ',"policy_version":' .. version .. ',"grantable":' .. grantable_json(r.grants) .. '}'
end
"""

# Grants (hitl.grants) as CREATE spends them: a live grant approves a matching request at
# once, one use per request, inside the same script call that files it, so concurrent
# requests never spend more uses than the grant has. `names.grant`, `names.grants` and
# `names.grants_action` are the key templates (see hitl.keys).
_GRANTS = r"""
-- The first live grant (by id) that covers this request: the same action, API key (via),
-- requested_by, channel, approvers (so a grant never widens who decides), a quorum no
-- larger than the one that granted it, and every pinned parameter equal. Spends one use;
-- a grant used up leaves the live indexes. Returns {id, by_json, until_ms, uses_left} or nil.
local function spend_grant(names, doc, r, now)
  local index = named(names.grants_action, doc.action)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
  redis.call('ZREMRANGEBYSCORE', names.grants, '-inf', now)
  local ids = redis.call('ZRANGEBYSCORE', index, '(' .. now, '+inf')
  table.sort(ids)
  local params = val(doc.params) or {}
  local approvers = list_json(r.approvers)
  for _, gid in ipairs(ids) do
    local key = named(names.grant, gid)
    local g = redis.call('HMGET', key, 'via', 'requested_by', 'channel', 'approvers', 'quorum', 'pins',
      'uses_left', 'until_ms', 'by')
    local ok = g[1] ~= false and g[1] == (val(doc.via) or '') and g[2] == (val(doc.requested_by) or '')
      and g[3] == (r.channel or '') and g[4] == approvers and r.quorum <= tonumber(g[5] or 0)
      and tonumber(g[7] or 0) > 0 and tonumber(g[8] or 0) > now
    if ok then
      for name, want in pairs(cjson.decode(g[6] or '{}')) do
        if type(params) ~= 'table' or params[name] ~= want then ok = false end
      end
    end
    if ok then
      local left = redis.call('HINCRBY', key, 'uses_left', -1)
      if left <= 0 then
        redis.call('ZREM', index, gid)
        redis.call('ZREM', names.grants, gid)
        redis.call('HSET', key, 'ended', 'used_up', 'ended_ms', now)
      end
      return {id = gid, by_json = g[9] or '[]', until_ms = tonumber(g[8]), uses_left = left}
    end
  end
  return nil
end
local function grant_json(g)
  return '{"id":' .. cjson.encode(g.id) .. ',"by":' .. g.by_json .. ',"until":' .. seconds_text(g.until_ms)
    .. ',"uses_left":' .. g.uses_left .. '}'
end
"""

# CREATE: store new requests (one, or a plan and its steps, all or nothing), route them
# with the policy in force, index them, schedule their timers, audit them. The first
# request is the head: a repeat of its idempotency key with the same fingerprint returns
# it; a different fingerprint, or a known key on any other request, is a conflict, and
# then nothing is written. With more than one document the head is a plan and the rest
# its steps: each step waits at a gate with the plan's channel and deadline.
# Routing and timers are decided here from the documents' `asked` fields and the policy
# table (KEYS[4]); the callers' own routing is never read. The creation time is Redis's.
# A single gate request that a live grant covers (see _GRANTS: its `via`, `requested_by`
# and `params` are read from the document) is approved at once, by the grant.
# KEYS[1] timers zset   KEYS[2] events stream   KEYS[3] paused set (kill switch scopes)
# KEYS[4] policy table hash (see hitl.keys; absent = version 0, the empty policy)
# ARGV[1] JSON input:
#   names      key name and timer member templates (see _COMMON)
#   retention  seconds a final request is kept
#   metrics    true to count into the shared Prometheus figures (see _COMMON), absent when off
#   default_channel  the card's channel when neither policy nor request names one, or ""
#   requests   list, one per document: {idem (idempotency key or ""), fingerprint,
#              trace (the W3C trace context as JSON text, kept in the hash so transitions
#              can join the trace, or "")}
# ARGV[1 + n] the n-th request's document as JSON text (`hitl.clientbase.build_doc`
#   without its routed fields): id, action, requested_by, risk, reversible, agent,
#   confidence, and `asked` {mode, channel, approvers, quorum, timeout, window}. Stored in
#   its audit event with the routed fields appended.
# Returns {"created", id, mode, status, routed fields JSON, ...one per request} |
# {"existing", head id} | {"conflict", key, holder id, holder action} |
# {"invalid", field, message}.
CREATE = _COMMON + _ROUTING + _GRANTS + r"""
local TIMERS, EVENTS, PAUSED, POLICY = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local input = cjson.decode(ARGV[1])
local names, retention = input.names, input.retention
local requests = input.requests
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- Idempotency first, for every request, before anything is written.
for n, spec in ipairs(requests) do
  if spec.idem ~= '' then
    local holder = redis.call('GET', named(names.idem, spec.idem))
    if holder then
      local held = redis.call('HMGET', named(names.req, holder), 'fingerprint', 'action')
      local fingerprint, held_action = held[1], held[2] or ''
      if n == 1 and (not fingerprint or fingerprint == spec.fingerprint) then
        return {'existing', holder}
      end
      return {'conflict', spec.idem, holder, held_action}
    end
  end
end

-- Then every document is checked and routed, still before anything is written.
local policy = policy_in_force(POLICY)
local docs, routes = {}, {}
for n = 1, #requests do
  local text = ARGV[1 + n]
  local ok, doc = pcall(cjson.decode, text)
  if not ok or type(doc) ~= 'table' or string.sub(text, -1) ~= '}' then
    return {'invalid', 'request', 'the request document is not a JSON object'}
  end
  if type(doc.id) ~= 'string' or not string.match(doc.id, '^%w+$')
    or redis.call('EXISTS', named(names.req, doc.id)) == 1 then
    return {'invalid', 'id', 'must be a new request id'}
  end
  if type(doc.action) ~= 'string' or #doc.action > 100 or not string.match(doc.action, '^[%w_%.:/%-]+$') then
    return {'invalid', 'action', 'may only contain letters, digits and _ . : / - (no spaces)'}
  end
  local routed, r = pcall(route, policy, doc, input.default_channel or '')
  if not routed then
    if type(r) == 'table' then return {'invalid', r.field, r.message} end
    error(r)
  end
  docs[n], routes[n] = doc, r
end
-- A plan: the head waits at a gate; each step with the plan's channel, timeout and
-- mirrors, and no escalation of its own (the plan's card escalates).
local plan_id, step_ids = '', {}
if #docs > 1 then
  plan_id = docs[1].id
  routes[1].mode = 'gate'
  for n = 2, #docs do
    local r, plan = routes[n], routes[1]
    r.mode, r.channel, r.mirrors = 'gate', plan.channel, plan.mirrors
    r.timeout, r.escalation = plan.timeout, {}
    table.insert(step_ids, docs[n].id)
  end
  for n = 1, #docs do routes[n].grants = nil end  -- a plan is never granted
end

local all_paused = redis.call('SISMEMBER', PAUSED, '*') == 1
local result = {'created'}
for n, spec in ipairs(requests) do
  local doc, r = docs[n], routes[n]
  local id, action, channel = doc.id, doc.action, r.channel
  local requested_by, risk = val(doc.requested_by) or '', val(doc.risk) or ''
  local req_key = named(names.req, id)
  local mode, paused = r.mode, 0
  -- The kill switch: nothing acts without a decision, shadow requests included.
  if mode ~= 'gate' and (all_paused or redis.call('SISMEMBER', PAUSED, action) == 1) then
    mode, paused = 'gate', 1
  end
  -- A live grant approves a gate request at once (spend_grant), never while the kill
  -- switch holds its action or everything, nor a low-confidence request: a grant suspends.
  local granted = nil
  if #docs == 1 and mode == 'gate' and r.grants ~= nil and not r.low_confidence and not all_paused
    and redis.call('SISMEMBER', PAUSED, action) == 0 then
    granted = spend_grant(names, doc, r, now)
  end
  local timers, deadline_ms
  if granted then
    timers = {[named(names.t_sync, id)] = now}
  else
    timers, deadline_ms = timers_for(names, id, mode, r, now)
  end
  local batch, items = '', {}
  if n == 1 then items = step_ids else batch = plan_id end
  local status = 'pending'
  if granted or mode == 'auto' or mode == 'notify' then status = 'approved'
  elseif mode == 'override' then status = 'open' end
  local members = {}
  for member, due in pairs(timers) do
    redis.call('ZADD', TIMERS, due, member)
    if member ~= named(names.t_sync, id) then table.insert(members, member) end
  end
  redis.call('HSET', req_key, 'status', status, 'mode', mode, 'version', 1,
    'action', action, 'channel', channel, 'quorum', r.quorum, 'requested_by', requested_by,
    'approvers', list_json(r.approvers), 'approvers_from', r.approvers_from, 'votes', '[]', 'by', '[]',
    'timers', list_json(members), 'created_ms', now,
    'deadline', deadline_ms and seconds_text(deadline_ms) or '',
    'paused', paused, 'escalated', 0, 'risk', risk, 'fingerprint', spec.fingerprint, 'batch', batch,
    'items', #items > 0 and list_json(items) or '', 'policy_version', policy.version)
  if spec.trace ~= '' then redis.call('HSET', req_key, 'trace', spec.trace) end
  local scope = scope_of(names, action, channel)
  bump(names, scope, 'created', 1, retention)
  -- an irreversible or critical request: the action's promotions stop at gate (hitl.autonomy)
  if val(doc.reversible) == false or risk == 'critical' then
    bump(names, scope, 'irreversible', 1, retention)
  end
  if input.metrics then observe_created(names, scope, mode, status) end
  if status == 'approved' then
    local comment = 'automatic (' .. mode .. ')'
    local done_key = named(names.done, id)
    local by_json, done = '[]', nil
    if granted then
      comment, by_json = 'approved by grant ' .. granted.id, granted.by_json
      redis.call('HSET', req_key, 'by', by_json, 'grant', grant_json(granted))
      bump(names, scope, 'granted', 1, retention)
      done = outcome(status, by_json, comment, '', '', now)
      done = string.sub(done, 1, -2) .. ',"grant":' .. grant_json(granted) .. '}'
    else
      bump(names, scope, 'auto', 1, retention)
      done = outcome(status, by_json, comment, '', '', now)
    end
    redis.call('HSET', req_key, 'comment', comment, 'decided_ms', now)
    redis.call('RPUSH', done_key, done)
    redis.call('EXPIRE', done_key, retention)
    redis.call('EXPIRE', req_key, retention)
  else
    redis.call('ZADD', names.pending, now, id)
    redis.call('ZADD', named(names.pending_mode, mode), now, id)
    if deadline_ms then redis.call('ZADD', names.deadlines, seconds_text(deadline_ms), id) end
    if channel ~= '' then
      redis.call('ZADD', named(names.pending_channel, channel), now, id)
      redis.call('SADD', names.channels, channel)
    end
  end
  if spec.idem ~= '' then redis.call('SET', named(names.idem, spec.idem), id, 'EX', retention) end
  local routed = route_json(r, now, deadline_ms, batch, items, policy.version)
  local text = ARGV[1 + n]
  local stored = string.sub(text, 1, -2) .. ',' .. string.sub(routed, 2)
  local eid = redis.call('XADD', EVENTS, '*', 'type', 'created', 'id', id, 'action', action, 'mode', mode,
    'status', status, 'by', requested_by, 'policy_version', policy.version, 'doc', stored)
  if granted then  -- the audit names the grant and who granted it: GrantEvent.USED
    local used = redis.call('XADD', EVENTS, '*', 'type', 'grant_used', 'id', id, 'action', action,
      'grant', granted.id, 'by', granted.by_json, 'uses_left', granted.uses_left)
    eid = eid .. ',' .. used
  end
  redis.call('HSET', req_key, 'ev', eid)
  table.insert(result, id); table.insert(result, mode); table.insert(result, status)
  table.insert(result, routed)
end
return result
"""

# PUBLISH_POLICY: make a policy the version in force, unless it already is (the same
# sha256: a restart republishing its file creates no version). Every version is kept.
# KEYS[1] policy table hash   KEYS[2] version counter   KEYS[3] events stream
# KEYS[4] policy error hash (cleared: the publisher's file is good again)
# ARGV[1] JSON input:
#   version_key  template of a version's hash key ("{}" for the number)
#   event        the audit event's type (EventType.POLICY_APPLIED)
#   sha256       of `canonical`;  canonical  the policy as canonical JSON;  text  its source
#   applied_by   who published it;  source  where from (a file path, or "")
#   table        the compiled table: {defaults, confidence, rules: JSON text each,
#                actions: {name: JSON text}} (see hitl.policystore.compile_table)
# Returns {"applied", version} | {"unchanged", version in force}.
PUBLISH_POLICY = r"""
local TABLE, SEQ, EVENTS, ERROR = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local input = cjson.decode(ARGV[1])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('DEL', ERROR)
local in_force = redis.call('HMGET', TABLE, 'version', 'sha256')
if in_force[2] == input.sha256 then return {'unchanged', tonumber(in_force[1])} end

local version = redis.call('INCR', SEQ)
local s, e = string.find(input.version_key, '{}', 1, true)
local version_key = string.sub(input.version_key, 1, s - 1) .. version .. string.sub(input.version_key, e + 1)
redis.call('HSET', version_key, 'version', version, 'sha256', input.sha256, 'canonical', input.canonical,
  'text', input.text, 'applied_by', input.applied_by, 'applied_at', now, 'source', input.source)

local t = input.table
redis.call('DEL', TABLE)
redis.call('HSET', TABLE, 'version', version, 'sha256', input.sha256, 'defaults', t.defaults,
  'confidence', t.confidence, 'rules', t.rules)
-- Actions in chunks: unpack() of thousands of arguments would overflow Lua's stack.
local chunk = {}
for name, entry in pairs(t.actions) do
  table.insert(chunk, 'a:' .. name); table.insert(chunk, entry)
  if #chunk >= 500 then redis.call('HSET', TABLE, unpack(chunk)); chunk = {} end
end
if #chunk > 0 then redis.call('HSET', TABLE, unpack(chunk)) end
redis.call('XADD', EVENTS, '*', 'type', input.event, 'version', version, 'by', input.applied_by,
  'sha256', input.sha256, 'source', input.source)
return {'applied', version}
"""

# TRANSITION: a decision (approve, reject, veto, confirm) or a system move (cancel,
# expire, finalize). Checks state, version, the deadline (against Redis TIME, so a late
# click cannot win over a late timer) and who may decide; counts quorum votes. A plan's
# step turning final closes the plan once every step is final; a plan expiring or
# cancelled takes its waiting steps with it. All of that in this one call.
# KEYS[1] timers zset   KEYS[2] events stream
# ARGV[1] JSON input:
#   names      key name templates (see _COMMON);  retention  seconds a final request is kept
#   metrics    true to count into the shared Prometheus figures (see _COMMON), absent when off
#   id, verb   the request and what to do to it
#   by         the person deciding ("" for the system);  groups  user groups `by` is in
#   comment    text or "";  params  edited parameters as JSON text, or ""
#   version    the version the person saw, or "" (no check)
# Returns {"ok", status, version, votes JSON, by JSON, trace context JSON or ""} |
# {"refused", reason, status,
# version, by JSON, deadline} | {"missing"}.
TRANSITION = _COMMON + r"""
local TIMERS, EVENTS = KEYS[1], KEYS[2]
local input = cjson.decode(ARGV[1])
local names, retention = input.names, input.retention
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local PERSON_VERBS = {approve = true, reject = true, veto = true, confirm = true}
local SYSTEM_EVENTS = {
  expired = 'expired', vetoed = 'vetoed', finalized = 'finalized', cancelled = 'cancelled',
}

-- A request's live fields, by name; nil when it does not exist.
local function load(id)
  local key = named(names.req, id)
  local f = redis.call('HMGET', key, 'status', 'mode', 'version', 'quorum', 'requested_by',
    'approvers', 'votes', 'by', 'channel', 'action', 'timers', 'created_ms', 'params', 'ev', 'risk',
    'deadline', 'batch', 'items', 'trace')
  if not f[1] then return nil end
  return {
    id = id, key = key, done = named(names.done, id),
    status = f[1], mode = f[2], version = tonumber(f[3]), quorum = tonumber(f[4]),
    requested_by = f[5] or '', approvers = cjson.decode(f[6] or '[]'), votes = cjson.decode(f[7] or '[]'),
    by_json = f[8] or '[]', channel = f[9] or '', action = f[10], timers = cjson.decode(f[11] or '[]'),
    created_ms = tonumber(f[12]), edited_params = f[13] or '', ev = f[14] or '', risk = f[15] or '',
    deadline = f[16] or '', batch = f[17] or '', items = f[18] or '', trace = f[19] or '',
  }
end

local function waiting(r) return r.status == 'pending' or r.status == 'open' end

local function audit(r, fields)
  local eid = redis.call('XADD', EVENTS, '*', unpack(fields))
  redis.call('HSET', r.key, 'ev', r.ev .. ',' .. eid)
  r.ev = r.ev .. ',' .. eid
end

-- Make `r` final as `new`: state, indexes, timers, audit, stats, and the done list.
-- `verb` is what caused it; `params` edited parameters given with this decision or "".
local function finish(r, new, verb, decided_by, comment, params)
  r.version = r.version + 1
  r.status = new
  r.by_json = list_json(decided_by)
  local verdict = ''
  if r.mode == 'shadow' then verdict = verb end
  redis.call('HSET', r.key, 'status', new, 'version', r.version, 'votes', list_json(r.votes),
    'by', r.by_json, 'comment', comment, 'decided_ms', now)
  if verdict ~= '' then redis.call('HSET', r.key, 'verdict', verdict) end
  unindex(names, r.id, r.channel, r.mode)
  for _, member in ipairs(r.timers) do redis.call('ZREM', TIMERS, member) end
  redis.call('ZADD', TIMERS, now, r.id .. '|sync')  -- TimerKind.SYNC
  audit(r, {'type', SYSTEM_EVENTS[new] or 'decided', 'id', r.id, 'action', r.action, 'status', new,
    'by', r.by_json, 'comment', comment, 'params', params, 'verdict', verb})
  local scope = scope_of(names, r.action, r.channel)
  bump(names, scope, new, 1, retention)
  if new == 'approved' and params == '' and r.edited_params == '' then
    bump(names, scope, 'approved_unedited', 1, retention)
  end
  if new == 'rejected' and r.risk == 'critical' then
    stamp(names, scope, 'critical_rejected_ms', now, retention)
  end
  if verdict ~= '' then bump(names, scope, 'shadow_' .. verb, 1, retention) end
  if input.metrics then observe_decision(names, scope, new, (now - r.created_ms) / 1000, now) end
  record_duration(names, scope, now - r.created_ms, retention)
  local final_params = params
  if final_params == '' then final_params = r.edited_params end
  redis.call('RPUSH', r.done, outcome(new, r.by_json, comment, final_params, verdict, now))
  redis.call('EXPIRE', r.done, retention)
  redis.call('EXPIRE', r.key, retention)
end

-- A plan's waiting steps follow the plan when it expires or is cancelled.
local function close_steps(plan, new, verb, comment)
  for _, step_id in ipairs(cjson.decode(plan.items)) do
    local step = load(step_id)
    if step and waiting(step) then finish(step, new, verb, {}, comment, '') end
  end
end

-- Close plan `plan_id` once every step is final: approved when any step was, else
-- rejected when any was, else cancelled when all were, else expired.
local function settle_plan(plan_id)
  local plan = load(plan_id)
  if not plan or not waiting(plan) then return end
  local steps = cjson.decode(plan.items)
  local count = {approved = 0, rejected = 0, cancelled = 0}
  for _, step_id in ipairs(steps) do
    local status = redis.call('HGET', named(names.req, step_id), 'status')
    if status == 'pending' or status == 'open' then return end
    if status and count[status] then count[status] = count[status] + 1 end
  end
  local new, verb = 'expired', 'expire'
  if count.approved > 0 then new, verb = 'approved', 'approve'
  elseif count.rejected > 0 then new, verb = 'rejected', 'reject'
  elseif count.cancelled == #steps then new, verb = 'cancelled', 'cancel' end
  finish(plan, new, verb, {}, count.approved .. ' of ' .. #steps .. ' steps approved', '')
end

-- Everything that follows a request turning final.
local function after_final(r, verb)
  if r.items ~= '' and (r.status == 'expired' or r.status == 'cancelled') then
    close_steps(r, r.status, verb, 'the plan ' .. r.status)
  end
  if r.batch ~= '' then settle_plan(r.batch) end
end

-- Past its deadline a request lapses: an override's window closes, anything else expires.
-- A plan expires its waiting steps first and then settles like any plan, so a step approved
-- in time counts whichever timer (the plan's or the step's) fires first.
local function lapse(r)
  if r.status == 'open' then
    finish(r, 'finalized', 'finalize', {}, '', '')
  elseif r.items ~= '' then
    close_steps(r, 'expired', 'expire', 'the plan expired')
    settle_plan(r.id)
    return
  else
    finish(r, 'expired', 'expire', {}, '', '')
  end
  after_final(r, r.status == 'finalized' and 'finalize' or 'expire')
end

local r = load(input.id)
if not r then return {'missing'} end
local verb, by = input.verb, input.by
local function refuse(reason) return {'refused', reason, r.status, r.version, r.by_json, r.deadline} end
if not waiting(r) then return refuse('final') end

-- Past the deadline the request has expired (an override's window has closed), whatever
-- the timers have done: do that transition here, and refuse the decision.
if (PERSON_VERBS[verb] or verb == 'cancel') and r.deadline ~= '' and now >= tonumber(r.deadline) * 1000 then
  lapse(r)
  return refuse('expired')
end
if verb == 'expire' and r.items ~= '' and r.status == 'pending' then
  lapse(r)
  local plan = load(r.id)
  return {'ok', plan.status, plan.version, list_json(plan.votes), plan.by_json, r.trace}
end

local new
if verb == 'approve' or verb == 'reject' then
  if r.status ~= 'pending' then return refuse('verb') end
  if r.mode == 'shadow' then new = 'judged'
  elseif verb == 'approve' then new = 'approved'
  else new = 'rejected' end
elseif verb == 'veto' or verb == 'confirm' or verb == 'finalize' then
  if r.status ~= 'open' then return refuse('verb') end
  if verb == 'veto' then new = 'vetoed' else new = 'finalized' end
elseif verb == 'expire' or verb == 'cancel' then
  if r.status ~= 'pending' then return refuse('verb') end
  if verb == 'expire' then new = 'expired' else new = 'cancelled' end
else
  return refuse('verb')
end

if PERSON_VERBS[verb] then
  if input.version ~= '' and tonumber(input.version) ~= r.version then return refuse('stale') end
  if by == '' then return refuse('anonymous') end
  if r.items ~= '' then return refuse('plan') end
  if by == r.requested_by and (verb == 'approve' or verb == 'confirm') then return refuse('requester') end
  if #r.approvers > 0 and not contains(r.approvers, by) then
    local member = false
    for _, group in ipairs(input.groups) do
      if contains(r.approvers, group) then member = true end
    end
    if not member then return refuse('not_approver') end
  end
end

local params = input.params
if params ~= '' then
  -- approvals given for the old parameters no longer count
  r.votes = {}
  redis.call('HSET', r.key, 'params', params)
  bump(names, scope_of(names, r.action, r.channel), 'edited', 1, retention)
end
if verb == 'approve' and r.mode == 'gate' then
  if contains(r.votes, by) then return refuse('voted') end
  table.insert(r.votes, by)
  if #r.votes < r.quorum then
    r.version = r.version + 1
    local votes_json = list_json(r.votes)
    redis.call('HSET', r.key, 'version', r.version, 'votes', votes_json)
    redis.call('ZADD', TIMERS, now, r.id .. '|sync')  -- TimerKind.SYNC
    audit(r, {'type', 'voted', 'id', r.id, 'action', r.action, 'status', r.status, 'by', by,
      'votes', votes_json, 'quorum', r.quorum, 'params', params})
    return {'ok', r.status, r.version, votes_json, r.by_json, r.trace}
  end
end
local decided_by = {}
if verb == 'approve' and r.mode == 'gate' then decided_by = r.votes
elseif by ~= '' then decided_by = {by} end
finish(r, new, verb, decided_by, input.comment, params)
after_final(r, verb)
return {'ok', new, r.version, list_json(r.votes), r.by_json, r.trace}
"""

# ESCALATE: record that escalation step N fired, if the request still waits.
# KEYS[1] req hash   KEYS[2] timers zset   KEYS[3] events stream
# ARGV[1] id  ARGV[2] step  ARGV[3] now (ms)
# Returns {"ok", step} or {"skip", status}.
ESCALATE = r"""
local h = redis.call('HMGET', KEYS[1], 'status', 'escalated', 'action', 'ev')
if not h[1] then return {'skip', 'missing'} end
if h[1] ~= 'pending' then return {'skip', h[1]} end
local step = tonumber(ARGV[2])
if tonumber(h[2]) >= step then return {'skip', 'already'} end
redis.call('HSET', KEYS[1], 'escalated', step)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1] .. '|sync')  -- TimerKind.SYNC
local eid = redis.call('XADD', KEYS[3], '*', 'type', 'escalated', 'id', ARGV[1], 'action', h[3],
  'step', step)
redis.call('HSET', KEYS[1], 'ev', h[4] .. ',' .. eid)
return {'ok', step}
"""

# READ: a request's live fields plus its document, which lives once, in the audit
# stream's "created" event (the first id in the hash's `ev` field).
# KEYS[1] req hash   KEYS[2] events stream
# Returns the hash as a flat field/value list with a "doc" pair appended, or {}.
READ = r"""
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return h end
local ev = redis.call('HGET', KEYS[1], 'ev') or ''
local first = string.match(ev, '^[^,]+')
if not first then return {} end
local entry = redis.call('XRANGE', KEYS[2], first, first)[1]
if not entry then return {} end
for i = 1, #entry[2], 2 do
  if entry[2][i] == 'doc' then
    table.insert(h, 'doc'); table.insert(h, entry[2][i + 1])
  end
end
return h
"""

# PAUSE: switch the kill switch on or off for a scope ("*" or an action), audited.
# KEYS[1] paused set   KEYS[2] events stream
# ARGV[1] "pause" or "resume"  ARGV[2] scope  ARGV[3] by
# Returns 1 when it changed something, 0 when the scope already was in that state.
PAUSE = r"""
local changed
if ARGV[1] == 'pause' then changed = redis.call('SADD', KEYS[1], ARGV[2])
else changed = redis.call('SREM', KEYS[1], ARGV[2]) end
if changed == 1 then
  redis.call('XADD', KEYS[2], '*', 'type', ARGV[1] .. 'd', 'scope', ARGV[2], 'by', ARGV[3])
end
return changed
"""

# CLAIM: lease up to N due timers to this worker by pushing their score into the future;
# a worker that dies holding them loses the lease and another takes them over.
# KEYS[1] timers zset   ARGV[1] now (ms)  ARGV[2] lease (ms)  ARGV[3] limit
# Returns {member, original due, lease score, ...}.
CLAIM = r"""
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[3])
local lease = tonumber(ARGV[1]) + tonumber(ARGV[2])
local out = {}
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], lease, due[i])
  table.insert(out, due[i]); table.insert(out, due[i + 1]); table.insert(out, tostring(lease))
end
return out
"""

# ACK: drop a timer once handled, unless it was re-armed meanwhile (a newer score).
# KEYS[1] timers zset   ARGV[1] member  ARGV[2] lease score it was claimed with
ACK = r"""
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

# EXTEND_LEASES: keep the leases of timers whose work is still in progress (card syncs,
# webhook attempts), so no other worker takes them over and runs them again.
# KEYS[1] timers zset
# ARGV[1] JSON {"held": {member: lease score it holds}, "until": new lease score}
# A member whose score changed (re-armed by a transition, or taken over) is not touched.
# Returns the members extended.
EXTEND_LEASES = r"""
local arg = cjson.decode(ARGV[1])
local out = {}
for member, score in pairs(arg.held) do
  local current = redis.call('ZSCORE', KEYS[1], member)
  if current and tonumber(current) == tonumber(score) then
    redis.call('ZADD', KEYS[1], arg['until'], member)
    table.insert(out, member)
  end
end
return out
"""

# EXECUTION: record that the one tool call an approval allows is starting, or has ended,
# in the request's hash (field `execution`, an `ExecutionState`), audited. A request is
# executed at most once: a second start is refused, and a start that finds the first one
# never finished marks the request `unknown` (and schedules a card sync to say so).
# KEYS[1] req hash   KEYS[2] timers zset   KEYS[3] events stream
# ARGV[1] JSON input:
#   id       the request;  sync  its card-sync timer member (`{id}|sync`)
#   state    "started" or "finished";  ok  (finished) whether the tool call succeeded
#   result   (finished, optional) what the tool answered, masked and capped: into the audit event
#   events   the audit event types: {started, finished, unknown}
# Returns {"started"} | {"finished", previous state} | {"already", state} (a start refused:
# the call started before; state is "unknown" when that start never finished) |
# {"refused", status} (the request does not allow the tool to run) |
# {"not_started", state or ""} (a finish without a start) | {"missing"}.
EXECUTION = r"""
local REQ, TIMERS, EVENTS = KEYS[1], KEYS[2], KEYS[3]
local input = cjson.decode(ARGV[1])
local h = redis.call('HMGET', REQ, 'status', 'mode', 'action', 'execution', 'ev')
if not h[1] then return {'missing'} end
local status, mode, action, current, ev = h[1], h[2], h[3], h[4] or '', h[5] or ''
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function audit(fields)
  local eid = redis.call('XADD', EVENTS, '*', unpack(fields))
  ev = ev .. ',' .. eid
  redis.call('HSET', REQ, 'ev', ev)
end

if input.state == 'started' then
  -- What `Decision.approved` says: the agent may act (shadow never blocks it).
  local may_run = mode == 'shadow' or status == 'approved' or status == 'open' or status == 'finalized'
  if not may_run then return {'refused', status} end
  if current == 'started' then
    redis.call('HSET', REQ, 'execution', 'unknown')
    redis.call('ZADD', TIMERS, now, input.sync)
    audit({'type', input.events.unknown, 'id', input.id, 'action', action, 'status', status})
    return {'already', 'unknown'}
  end
  if current ~= '' then return {'already', current} end
  redis.call('HSET', REQ, 'execution', 'started', 'exec_started_ms', now)
  audit({'type', input.events.started, 'id', input.id, 'action', action, 'status', status})
  return {'started'}
end

if current ~= 'started' and current ~= 'unknown' then return {'not_started', current} end
local ended = 'finished'
if not input.ok then ended = 'failed' end
redis.call('HSET', REQ, 'execution', ended, 'exec_finished_ms', now)
-- The card said "outcome unknown": it can say what happened now.
if current == 'unknown' then redis.call('ZADD', TIMERS, now, input.sync) end
local finished = {'type', input.events.finished, 'id', input.id, 'action', action, 'status', status,
  'ok', input.ok and '1' or '0'}
-- What the tool answered, masked and capped by the caller (hitl.masking.result_text).
if type(input.result) == 'string' then
  finished[#finished + 1] = 'result'
  finished[#finished + 1] = input.result
end
audit(finished)
return {'finished', current}
"""

# -- API keys (hitl.apikeys) -----------------------------------------------------------------

# KEY_CREATE: store a new API key's record under its name and under its secret's hash, both
# or neither, audited. A name already in use is refused (a key is never silently replaced).
# KEYS[1] names hash (name -> record)   KEYS[2] secrets hash (sha256 -> record)
# KEYS[3] events stream
# ARGV[1] JSON {"name": ..., "hash": sha256 hex of the secret, "record": the record as JSON
#   text, "by": who created it}
# Returns 1 when created, 0 when the name exists.
KEY_CREATE = r"""
local input = cjson.decode(ARGV[1])
if redis.call('HEXISTS', KEYS[1], input.name) == 1 then return 0 end
redis.call('HSET', KEYS[1], input.name, input.record)
redis.call('HSET', KEYS[2], input.hash, input.record)
redis.call('XADD', KEYS[3], '*', 'type', 'key_created', 'key', input.name, 'by', input.by)
return 1
"""

# KEY_REVOKE: forget an API key by name: both of its entries go in one step, so the next
# call with its secret finds nothing (401), in every web process at once. Audited.
# KEYS[1] names hash   KEYS[2] secrets hash   KEYS[3] events stream
# ARGV[1] JSON {"name": ..., "by": who revoked it}
# Returns 1 when revoked, 0 when no key has that name.
KEY_REVOKE = r"""
local input = cjson.decode(ARGV[1])
local record = redis.call('HGET', KEYS[1], input.name)
if not record then return 0 end
redis.call('HDEL', KEYS[2], cjson.decode(record).hash)
redis.call('HDEL', KEYS[1], input.name)
redis.call('XADD', KEYS[3], '*', 'type', 'key_revoked', 'key', input.name, 'by', input.by)
return 1
"""

# RATE_TAKE: one call's token from an API key's bucket, shared by every web process. The
# bucket holds up to `burst` tokens and refills at `rate` per second, by Redis's clock.
# KEYS[1] the key's bucket hash (tokens, ms); it expires once it would be full again
# ARGV[1] JSON {"rate": tokens per second, "burst": most tokens held}
# Returns {1, 0} when admitted, {0, ms until a token is there} when over the rate.
RATE_TAKE = r"""
local input = cjson.decode(ARGV[1])
local rate, burst = tonumber(input.rate), tonumber(input.burst)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local held = redis.call('HMGET', KEYS[1], 'tokens', 'ms')
local tokens, since = tonumber(held[1]) or burst, tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - since) * rate / 1000)
if tokens < 1 then
  return {0, math.ceil((1 - tokens) * 1000 / rate)}
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ms', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {1, 0}
"""

# -- Grants (hitl.grants) ---------------------------------------------------------------

# GRANT_VOTE: a reviewer who approved a request chose "approve, and the next ones like it
# for a while". Their choice is recorded; once as many people as the request's quorum
# chose so and the request is approved, the grant goes live with the shortest time, the
# fewest uses and every parameter pinned among the choices, audited (GrantEvent.CREATED).
# Only hitl's own processes call it (the bot, after the approval succeeded): an agent
# cannot grant.
# KEYS[1] the request's grant votes hash   KEYS[2] the request hash   KEYS[3] live grants zset
# KEYS[4] the action's live grants zset   KEYS[5] the new grant's hash   KEYS[6] events stream
# ARGV[1] JSON input:
#   id        the new grant's id;  request  the granting request's id;  by  who chose it
#   seconds   how long;  uses  how many requests at most;  pins  {param: value} to keep equal
#   covers    {action, via, requested_by, channel, approvers (JSON text), quorum}: what a
#             matching request must have (read by the bot from the stored request)
#   retention seconds the ended grant is kept;  events  {voted, created} audit event types
# Returns {"created", until_ms, uses} | {"voted", votes, quorum} | {"refused", status}; refused
# too when `by` is not among the approvals the request records (its `votes` or `by`).
GRANT_VOTE = r"""
local VOTES, REQ, LIVE, LIVE_ACTION, GRANT, EVENTS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local input = cjson.decode(ARGV[1])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local status = redis.call('HGET', REQ, 'status')
if status ~= 'pending' and status ~= 'approved' then return {'refused', status or 'missing'} end
-- only someone whose approval the request records may grant (read here, not from the caller)
local deciders = {}
for _, field in ipairs({'votes', 'by'}) do
  local raw = redis.call('HGET', REQ, field)
  if raw and raw ~= '' then
    for _, who in ipairs(cjson.decode(raw)) do deciders[who] = true end
  end
end
if not deciders[input.by] then return {'refused', 'not_an_approver'} end
local c = input.covers
local choice = {seconds = input.seconds, uses = input.uses, pins = input.pins}
redis.call('HSET', VOTES, input.by, cjson.encode(choice))
redis.call('EXPIRE', VOTES, input.retention)
local votes = redis.call('HGETALL', VOTES)
local count = #votes / 2
if count < c.quorum or status ~= 'approved' then
  redis.call('XADD', EVENTS, '*', 'type', input.events.voted, 'id', input.request, 'action', c.action,
    'by', input.by, 'votes', count, 'quorum', c.quorum)
  return {'voted', count, c.quorum}
end
local seconds, uses, pins, by = nil, nil, {}, {}
for i = 1, #votes, 2 do
  local choice = cjson.decode(votes[i + 1])
  table.insert(by, votes[i])
  if seconds == nil or choice.seconds < seconds then seconds = choice.seconds end
  if uses == nil or choice.uses < uses then uses = choice.uses end
  for name, value in pairs(choice.pins) do pins[name] = value end
end
table.sort(by)
local until_ms = now + math.floor(seconds * 1000)
local pins_json = next(pins) == nil and '{}' or cjson.encode(pins)
local by_json = cjson.encode(by)
redis.call('HSET', GRANT, 'id', input.id, 'action', c.action, 'via', c.via, 'requested_by', c.requested_by,
  'channel', c.channel, 'approvers', c.approvers, 'quorum', c.quorum, 'pins', pins_json, 'by', by_json,
  'created_ms', now, 'until_ms', until_ms, 'uses', uses, 'uses_left', uses, 'request', input.request)
redis.call('PEXPIREAT', GRANT, until_ms + input.retention * 1000)
redis.call('ZADD', LIVE, until_ms, input.id)
redis.call('ZADD', LIVE_ACTION, until_ms, input.id)
redis.call('DEL', VOTES)
redis.call('XADD', EVENTS, '*', 'type', input.events.created, 'id', input.request, 'action', c.action,
  'grant', input.id, 'by', by_json, 'until_ms', until_ms, 'uses', uses, 'pins', pins_json,
  'via', c.via, 'requested_by', c.requested_by)
return {'created', until_ms, uses}
"""

# GRANT_REVOKE: end live grants at once: the listed ids, or every grant on one action.
# The very next matching request gets a card. Audited (GrantEvent.REVOKED), one event each.
# KEYS[1] live grants zset   KEYS[2] events stream
# ARGV[1] JSON {"names": {grant, grants_action} templates, "ids": [...] or "action": name,
#   "by": who, "event": the audit event type}
# Returns the ids revoked (live ones only; an unknown or ended id is left out).
GRANT_REVOKE = r"""
local LIVE, EVENTS = KEYS[1], KEYS[2]
local input = cjson.decode(ARGV[1])
local names = input.names
local function named(template, value)
  local s, e = string.find(template, '{}', 1, true)
  return string.sub(template, 1, s - 1) .. value .. string.sub(template, e + 1)
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local ids = input.ids
if input.action then ids = redis.call('ZRANGE', named(names.grants_action, input.action), 0, -1) end
local out = {}
for _, gid in ipairs(ids) do
  if redis.call('ZSCORE', LIVE, gid) then
    local key = named(names.grant, gid)
    local action = redis.call('HGET', key, 'action') or ''
    redis.call('ZREM', LIVE, gid)
    redis.call('ZREM', named(names.grants_action, action), gid)
    redis.call('HSET', key, 'ended', 'revoked', 'ended_by', input.by, 'ended_ms', now)
    redis.call('XADD', EVENTS, '*', 'type', input.event, 'grant', gid, 'action', action, 'by', input.by)
    table.insert(out, gid)
  end
end
return out
"""
