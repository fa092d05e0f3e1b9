"""Every state change of a request, as Lua run atomically inside Redis.

One script per transition kind, each checking the current state before it writes, so two
reviewers clicking at once, a Slack retry or a timer firing twice leave exactly one
transition behind and the losers learn why. Scripts build a few derived key names from
the prefix (channel and mode indexes, stats): hitl-router targets a single Redis (or a
primary with replicas), not Redis Cluster.

Results are flat arrays because Lua tables cannot carry nil: see `hitl.store` for the
parsing.
"""

from __future__ import annotations

# Helpers shared by the scripts below (prepended to each).
_COMMON = r"""
local function list_json(t)
  if #t == 0 then return '[]' end
  return cjson.encode(t)
end
local function contains(t, v)
  for _, x in ipairs(t) do if x == v then return true end end
  return false
end
-- The final outcome, pushed on the done list so a waiter needs no second read.
local function outcome(status, by_json, comment, params_json, verdict, decided_ms)
  return '{"status":' .. cjson.encode(status) .. ',"by":' .. by_json .. ',"comment":' .. cjson.encode(comment)
    .. ',"params":' .. (params_json ~= '' and params_json or 'null') .. ',"verdict":' .. cjson.encode(verdict)
    .. ',"decided_ms":' .. decided_ms .. '}'
end
local function unindex(prefix, id, channel, mode)
  redis.call('ZREM', prefix .. ':pending', id)
  redis.call('ZREM', prefix .. ':deadlines', id)
  if channel and channel ~= '' then redis.call('ZREM', prefix .. ':pending:ch:' .. channel, id) end
  redis.call('ZREM', prefix .. ':pending:mode:' .. mode, id)
end
"""

# CREATE: store a new request, index it, schedule its timers, audit it.
# KEYS[1] req hash   KEYS[2] idempotency key   KEYS[3] done list   KEYS[4] timers zset
# KEYS[5] events stream   KEYS[6] paused set
# ARGV[1] prefix  ARGV[2] id  ARGV[3] doc JSON  ARGV[4] mode  ARGV[5] now (ms)
# ARGV[6] "1" when an idempotency key was given  ARGV[7] retention (s)
# ARGV[8] timers JSON {member: due_ms}  ARGV[9] channel  ARGV[10] action  ARGV[11] quorum
# ARGV[12] requested_by  ARGV[13] approvers JSON  ARGV[14] deadline (epoch s or "")
# ARGV[15] timers JSON if the kill switch raises the mode to gate  ARGV[16] gate deadline
# ARGV[17] risk (or "")
# Returns {1, id, mode, status, paused} when created, {0, existing id} for a known key.
CREATE = _COMMON + r"""
local prefix, id, mode, now = ARGV[1], ARGV[2], ARGV[4], tonumber(ARGV[5])
if ARGV[6] == '1' then
  local existing = redis.call('GET', KEYS[2])
  if existing then return {0, existing} end
end
local action, channel = ARGV[10], ARGV[9]
local paused = 0
if mode ~= 'gate' and mode ~= 'shadow' and
   (redis.call('SISMEMBER', KEYS[6], '*') == 1 or redis.call('SISMEMBER', KEYS[6], action) == 1) then
  mode, paused = 'gate', 1
end
local timers, deadline = ARGV[8], ARGV[14]
if paused == 1 then timers, deadline = ARGV[15], ARGV[16] end
local status = 'pending'
if mode == 'auto' or mode == 'notify' then status = 'approved'
elseif mode == 'override' then status = 'open' end
local members = {}
for member, due in pairs(cjson.decode(timers)) do
  redis.call('ZADD', KEYS[4], due, member)
  if not string.find(member, '|sync', 1, true) then table.insert(members, member) end
end
redis.call('HSET', KEYS[1], 'status', status, 'mode', mode, 'version', 1,
  'action', action, 'channel', channel, 'quorum', ARGV[11], 'requested_by', ARGV[12],
  'approvers', ARGV[13], 'votes', '[]', 'by', '[]', 'timers', list_json(members),
  'created_ms', now, 'deadline', deadline, 'paused', paused, 'escalated', 0, 'risk', ARGV[17])
local stats = prefix .. ':stats:' .. action
redis.call('SADD', prefix .. ':actions', action)
redis.call('HINCRBY', stats, 'created', 1)
if status == 'approved' then
  local comment = 'automatic (' .. mode .. ')'
  redis.call('HSET', KEYS[1], 'by', '[]', 'comment', comment, 'decided_ms', now)
  redis.call('HINCRBY', stats, 'auto', 1)
  redis.call('RPUSH', KEYS[3], outcome(status, '[]', comment, '', '', ARGV[5]))
  redis.call('EXPIRE', KEYS[3], ARGV[7])
  redis.call('EXPIRE', KEYS[1], ARGV[7])
else
  redis.call('ZADD', prefix .. ':pending', now, id)
  redis.call('ZADD', prefix .. ':pending:mode:' .. mode, now, id)
  if deadline ~= '' then redis.call('ZADD', prefix .. ':deadlines', deadline, id) end
  if channel ~= '' then
    redis.call('ZADD', prefix .. ':pending:ch:' .. channel, now, id)
    redis.call('SADD', prefix .. ':channels', channel)
  end
end
if ARGV[6] == '1' then redis.call('SET', KEYS[2], id, 'EX', ARGV[7]) end
local eid = redis.call('XADD', KEYS[5], '*', 'type', 'created', 'id', id, 'action', action, 'mode', mode,
  'status', status, 'by', ARGV[12], 'doc', ARGV[3])
redis.call('HSET', KEYS[1], 'ev', eid)
return {1, id, mode, status, paused}
"""

# TRANSITION: a decision (approve, reject, veto, confirm) or a system move (cancel,
# expire, finalize). Checks state, version, and who may decide; counts quorum votes.
# KEYS[1] req hash   KEYS[2] done list   KEYS[3] timers zset   KEYS[4] events stream
# ARGV[1] prefix  ARGV[2] id  ARGV[3] verb  ARGV[4] by (user id, "" for the system)
# ARGV[5] groups JSON the user belongs to  ARGV[6] comment  ARGV[7] edited params JSON or ""
# ARGV[8] expected version or ""  ARGV[9] now (ms)  ARGV[10] retention (s)
# Returns {"ok", status, version, votes JSON, by JSON} | {"refused", reason, status,
# version, by JSON} | {"missing"}.
TRANSITION = _COMMON + r"""
local h = redis.call('HMGET', KEYS[1], 'status', 'mode', 'version', 'quorum', 'requested_by',
  'approvers', 'votes', 'by', 'channel', 'action', 'timers', 'created_ms', 'params', 'ev', 'risk')
if not h[1] then return {'missing'} end
local prefix, id, verb, by, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[9])
local status, mode, version = h[1], h[2], tonumber(h[3])
local function refuse(reason) return {'refused', reason, status, version, h[8]} end
if status ~= 'pending' and status ~= 'open' then return refuse('final') end
local new
if verb == 'approve' or verb == 'reject' then
  if status ~= 'pending' then return refuse('verb') end
  if mode == 'shadow' then new = 'judged'
  elseif verb == 'approve' then new = 'approved'
  else new = 'rejected' end
elseif verb == 'veto' or verb == 'confirm' or verb == 'finalize' then
  if status ~= 'open' then return refuse('verb') end
  if verb == 'veto' then new = 'vetoed' else new = 'finalized' end
elseif verb == 'expire' or verb == 'cancel' then
  if status ~= 'pending' then return refuse('verb') end
  if verb == 'expire' then new = 'expired' else new = 'cancelled' end
else
  return refuse('verb')
end
local person = verb ~= 'expire' and verb ~= 'finalize' and verb ~= 'cancel'
if person then
  if ARGV[8] ~= '' and tonumber(ARGV[8]) ~= version then return refuse('stale') end
  if by == '' then return refuse('anonymous') end
  if by == h[5] and (verb == 'approve' or verb == 'confirm') then return refuse('requester') end
  local approvers = cjson.decode(h[6])
  if #approvers > 0 and not contains(approvers, by) then
    local member = false
    for _, g in ipairs(cjson.decode(ARGV[5])) do
      if contains(approvers, g) then member = true end
    end
    if not member then return refuse('not_approver') end
  end
end
local edited = ARGV[7] ~= ''
local votes = cjson.decode(h[7])
local stats = prefix .. ':stats:' .. h[10]
version = version + 1
if edited then
  -- approvals given for the old parameters no longer count
  votes = {}
  redis.call('HSET', KEYS[1], 'params', ARGV[7])
  redis.call('HINCRBY', stats, 'edited', 1)
end
if verb == 'approve' and mode == 'gate' then
  if contains(votes, by) then version = version - 1; return refuse('voted') end
  table.insert(votes, by)
  if #votes < tonumber(h[4]) then
    redis.call('HSET', KEYS[1], 'version', version, 'votes', list_json(votes))
    redis.call('ZADD', KEYS[3], now, id .. '|sync')
    local eid = redis.call('XADD', KEYS[4], '*', 'type', 'voted', 'id', id, 'action', h[10],
      'status', status, 'by', by, 'votes', list_json(votes), 'quorum', h[4], 'params', ARGV[7])
    redis.call('HSET', KEYS[1], 'ev', h[14] .. ',' .. eid)
    return {'ok', status, version, list_json(votes), h[8]}
  end
end
local decided_by = {}
if verb == 'approve' and mode == 'gate' then decided_by = votes
elseif by ~= '' then decided_by = {by} end
redis.call('HSET', KEYS[1], 'status', new, 'version', version, 'votes', list_json(votes),
  'by', list_json(decided_by), 'comment', ARGV[6], 'decided_ms', now)
if mode == 'shadow' then redis.call('HSET', KEYS[1], 'verdict', verb) end
unindex(prefix, id, h[9], mode)
for _, member in ipairs(cjson.decode(h[11])) do redis.call('ZREM', KEYS[3], member) end
redis.call('ZADD', KEYS[3], now, id .. '|sync')
local event = 'decided'
if new == 'expired' or new == 'vetoed' or new == 'finalized' or new == 'cancelled' then event = new end
local eid = redis.call('XADD', KEYS[4], '*', 'type', event, 'id', id, 'action', h[10], 'status', new,
  'by', list_json(decided_by), 'comment', ARGV[6], 'params', ARGV[7], 'verdict', verb)
redis.call('HSET', KEYS[1], 'ev', h[14] .. ',' .. eid)
redis.call('HINCRBY', stats, new, 1)
if new == 'approved' and not edited and not h[13] then
  redis.call('HINCRBY', stats, 'approved_unedited', 1)
end
if new == 'rejected' and h[15] == 'critical' then redis.call('HSET', stats, 'critical_rejected_ms', now) end
if mode == 'shadow' then redis.call('HINCRBY', stats, 'shadow_' .. verb, 1) end
local durations = prefix .. ':durations:' .. h[10]
redis.call('LPUSH', durations, now - tonumber(h[12]))
redis.call('LTRIM', durations, 0, 999)
local verdict = ''
if mode == 'shadow' then verdict = verb end
local final_params = ARGV[7]
if final_params == '' and h[13] then final_params = h[13] end
redis.call('RPUSH', KEYS[2], outcome(new, list_json(decided_by), ARGV[6], final_params, verdict, ARGV[9]))
redis.call('EXPIRE', KEYS[2], ARGV[10])
redis.call('EXPIRE', KEYS[1], ARGV[10])
return {'ok', new, version, list_json(votes), list_json(decided_by)}
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

# SETTLE_SYNC: drop the pending "sync" timers of requests a card already shows as they are
# (same version), so a digest of 48 requests is not redrawn 48 times.
# KEYS[1] timers zset   ARGV[1] prefix  ARGV[2..] request id, version, request id, version...
SETTLE_SYNC = r"""
local dropped = 0
for i = 2, #ARGV, 2 do
  local v = redis.call('HGET', ARGV[1] .. ':req:' .. ARGV[i], 'version')
  if v == ARGV[i + 1] then dropped = dropped + redis.call('ZREM', KEYS[1], ARGV[i] .. '|sync') end
end
return dropped
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
