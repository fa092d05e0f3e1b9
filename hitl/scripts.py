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

from __future__ import annotations

import json

from hitl.metrics import DECISION_BOUNDS, DEFAULT_MAX_ACTIONS, HOUR_TTL, OTHER_ACTION

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

# CREATE: store new requests (one, or a plan and its steps, all or nothing), index them,
# schedule their timers, audit them. The first request is the head: a repeat of its
# idempotency key with the same fingerprint returns it; a different fingerprint, or a
# known key on any other request, is a conflict, and then nothing is written.
# KEYS[1] timers zset   KEYS[2] events stream   KEYS[3] paused set (kill switch scopes)
# ARGV[1] JSON input:
#   names      key name templates (see _COMMON)
#   now        creation time (ms);  retention  seconds a final request is kept
#   metrics    true to count into the shared Prometheus figures (see _COMMON), absent when off
#   requests   list of {id, mode, action, channel, quorum, requested_by, approvers (JSON text), risk,
#              idem (idempotency key or ""), fingerprint, timers {member: due ms},
#              deadline (epoch s or ""), gate_timers and gate_deadline (used instead when
#              the kill switch raises the mode to gate), batch (plan id or ""), items
#              (a plan's step ids as JSON text, or ""), trace (the W3C trace context as
#              JSON text, kept in the hash so transitions can join the trace, or "")}
# ARGV[1 + n] the n-th request's document as JSON text, stored verbatim in its audit event
# Returns {"created", id, mode, status, ...one triple per request} |
# {"existing", head id} | {"conflict", key, holder id, holder action}.
CREATE = _COMMON + r"""
local TIMERS, EVENTS, PAUSED = KEYS[1], KEYS[2], KEYS[3]
local input = cjson.decode(ARGV[1])
local names, now, retention = input.names, input.now, input.retention
local requests = input.requests

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

local all_paused = redis.call('SISMEMBER', PAUSED, '*') == 1
local result = {'created'}
for n, spec in ipairs(requests) do
  local id, action, channel = spec.id, spec.action, spec.channel
  local req_key = named(names.req, id)
  local mode, paused = spec.mode, 0
  local timers, deadline = spec.timers, spec.deadline
  -- The kill switch: nothing acts without a decision, shadow requests included.
  if mode ~= 'gate' and (all_paused or redis.call('SISMEMBER', PAUSED, action) == 1) then
    mode, paused = 'gate', 1
    timers, deadline = spec.gate_timers, spec.gate_deadline
  end
  local status = 'pending'
  if mode == 'auto' or mode == 'notify' then status = 'approved'
  elseif mode == 'override' then status = 'open' end
  local members = {}
  for member, due in pairs(timers) do
    redis.call('ZADD', TIMERS, due, member)
    if not string.find(member, '|sync', 1, true) then table.insert(members, member) end
  end
  redis.call('HSET', req_key, 'status', status, 'mode', mode, 'version', 1,
    'action', action, 'channel', channel, 'quorum', spec.quorum, 'requested_by', spec.requested_by,
    'approvers', spec.approvers, 'votes', '[]', 'by', '[]', 'timers', list_json(members),
    'created_ms', now, 'deadline', deadline, 'paused', paused, 'escalated', 0, 'risk', spec.risk,
    'fingerprint', spec.fingerprint, 'batch', spec.batch, 'items', spec.items)
  if spec.trace ~= '' then redis.call('HSET', req_key, 'trace', spec.trace) end
  local scope = scope_of(names, action, channel)
  bump(names, scope, 'created', 1, retention)
  if input.metrics then observe_created(names, scope, mode, status) end
  if status == 'approved' then
    local comment = 'automatic (' .. mode .. ')'
    local done_key = named(names.done, id)
    redis.call('HSET', req_key, 'comment', comment, 'decided_ms', now)
    bump(names, scope, 'auto', 1, retention)
    redis.call('RPUSH', done_key, outcome(status, '[]', comment, '', '', now))
    redis.call('EXPIRE', done_key, retention)
    redis.call('EXPIRE', req_key, retention)
  else
    redis.call('ZADD', names.pending, now, id)
    redis.call('ZADD', named(names.pending_mode, mode), now, id)
    if deadline ~= '' then redis.call('ZADD', names.deadlines, deadline, id) end
    if channel ~= '' then
      redis.call('ZADD', named(names.pending_channel, channel), now, id)
      redis.call('SADD', names.channels, channel)
    end
  end
  if spec.idem ~= '' then redis.call('SET', named(names.idem, spec.idem), id, 'EX', retention) end
  local eid = redis.call('XADD', EVENTS, '*', 'type', 'created', 'id', id, 'action', action, 'mode', mode,
    'status', status, 'by', spec.requested_by, 'doc', ARGV[1 + n])
  redis.call('HSET', req_key, 'ev', eid)
  table.insert(result, id); table.insert(result, mode); table.insert(result, status)
end
return result
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
  redis.call('ZADD', TIMERS, now, r.id .. '|sync')
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
    redis.call('ZADD', TIMERS, now, r.id .. '|sync')
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
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1] .. '|sync')
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
audit({'type', input.events.finished, 'id', input.id, 'action', action, 'status', status,
  'ok', input.ok and '1' or '0'})
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
