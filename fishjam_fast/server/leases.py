"""The Redis side of the agent server on several boxes: key names and atomic scripts.

Every change to shared state is one Lua script, so Redis runs it atomically: two boxes
can never both take a room, a job request is queued once however many boxes see the
notification, and a box that lost its lease learns it at its next renewal. The scripts
name keys from a prefix (one Redis primary; Redis Cluster's key slots are not
supported).

Keys, under the prefix ``P``:

- ``P:jobs``: the stream of job requests (field ``key``), read by the consumer group
  ``P:boxes``, one consumer per box;
- ``P:rooms``: the set of job keys that should run (cluster-wide);
- ``P:job:{key}``: a hash describing the job: room, triggering peer, metadata and,
  once created, the agent peer's id, token and URL (reused on failover);
- ``P:lease:{key}``: the owning box's id, with a ``PX`` expiry renewed by its owner;
- ``P:queued:{key}``: set while a request for the key waits in the stream (so the
  orphan scan does not queue it twice);
- ``P:box:{id}``: a box's liveness, with expiry; ``P:load``: a hash box -> load;
  ``P:seen``: a hash box -> 0 while it renews, else when it was first seen gone;
- ``P:epoch``: a random value set once; a Redis that lost its data (restarted without
  persistence) has none, and the boxes register their running jobs again.
"""

from __future__ import annotations

__all__ = [
    "CLAIM",
    "END",
    "MIN_LOAD",
    "ORPHANS",
    "RECORD",
    "REFUSE",
    "RELEASE",
    "RENEW",
    "RESTORE",
    "SUBMIT",
    "TAKE",
    "check_cluster_options",
]

MIN_LEASE_TTL = 0.5
"""Shortest lease allowed, in seconds (renewals go every third of it)."""


def check_cluster_options(redis_url: object, lease_ttl: object, prefix: object) -> None:
    """Validates the Redis options.

    Raises:
        ValueError: A URL that is not ``redis://``, ``rediss://`` or ``unix://``, a
            lease shorter than 0.5 s, or an empty prefix or one with spaces.
    """
    if not isinstance(redis_url, str) or not redis_url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise ValueError("redis_url must be a redis://, rediss:// or unix:// URL")
    if (
        not isinstance(lease_ttl, int | float)
        or isinstance(lease_ttl, bool)
        or not lease_ttl >= MIN_LEASE_TTL
    ):
        raise ValueError(f"lease_ttl must be at least {MIN_LEASE_TTL} seconds, not {lease_ttl!r}")
    if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
        raise ValueError(f"redis_prefix must be a non-empty word, not {prefix!r}")


# KEYS: none. ARGV: prefix, key, ttl_ms, maxlen, then the job hash's field/value pairs.
# Queues a job once: a key already wanted is left alone (returns 0).
SUBMIT = """
local p, k = ARGV[1], ARGV[2]
if redis.call('SADD', p .. ':rooms', k) == 0 then return 0 end
redis.call('DEL', p .. ':job:' .. k)
redis.call('HSET', p .. ':job:' .. k, unpack(ARGV, 5))
redis.call('SET', p .. ':queued:' .. k, '1', 'PX', ARGV[3])
redis.call('XADD', p .. ':jobs', 'MAXLEN', '~', ARGV[4], '*', 'key', k)
return 1
"""

# ARGV: prefix, box, group, entry id, key, ttl_ms, load. Acknowledges the entry and
# takes the job's lease if the job is still wanted and nobody holds it. Returns
# {'ok', hash pairs...}, {'gone'} or {'taken'}.
CLAIM = """
local p, box, k = ARGV[1], ARGV[2], ARGV[5]
redis.call('XACK', p .. ':jobs', ARGV[3], ARGV[4])
redis.call('DEL', p .. ':queued:' .. k)
if redis.call('SISMEMBER', p .. ':rooms', k) == 0 then return {'gone'} end
if not redis.call('SET', p .. ':lease:' .. k, box, 'NX', 'PX', ARGV[6]) then
  return {'taken'}
end
redis.call('HSET', p .. ':load', box, ARGV[7])
local out = {'ok'}
for _, v in ipairs(redis.call('HGETALL', p .. ':job:' .. k)) do out[#out + 1] = v end
return out
"""

# ARGV: prefix, box, group, count, jobs, capacity, slack, ttl_ms, full. One round trip
# per look at the stream: reads up to `count` job requests for this box (which runs
# `jobs` of `capacity`) unless that would put it more than `slack` jobs ahead of the
# least loaded other live box (dead boxes are forgotten), then does for each what CLAIM
# does, and publishes the box's load. Returns {'wait'} (a less loaded box goes first),
# {'empty', last entry id} (nothing to read: wait for an entry after that id), or
# {'take', {key, 'ok', hash pairs...} | {key, 'gone'} | {key, 'taken'}, ...}.
TAKE = """
local p, box, group = ARGV[1], ARGV[2], ARGV[3]
local count, jobs, cap = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local stream = p .. ':jobs'
local lowest = nil
local loads = redis.call('HGETALL', p .. ':load')
for i = 1, #loads, 2 do
  local other = loads[i]
  if other ~= box then
    if redis.call('EXISTS', p .. ':box:' .. other) == 0 then
      redis.call('HDEL', p .. ':load', other)
    else
      local load = tonumber(loads[i + 1])
      if lowest == nil or load < lowest then lowest = load end
    end
  end
end
if lowest ~= nil then
  local allowed = math.floor((lowest - jobs / cap) * cap + tonumber(ARGV[7]) + 1e-6)
  if allowed < count then count = allowed end
end
if count < 1 then return {'wait'} end
local read = redis.call('XREADGROUP', 'GROUP', group, box, 'COUNT', count, 'STREAMS', stream, '>')
if not read or #read[1][2] == 0 then
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  return {'empty', last[1] and last[1][1] or '0-0'}
end
local out, taken = {'take'}, 0
for _, e in ipairs(read[1][2]) do
  redis.call('XACK', stream, group, e[1])
  local k = e[2][2]
  local lease = p .. ':lease:' .. k
  redis.call('DEL', p .. ':queued:' .. k)
  if redis.call('SISMEMBER', p .. ':rooms', k) == 0 then
    out[#out + 1] = {k, 'gone'}
  elseif not redis.call('SET', lease, box, 'NX', 'PX', ARGV[8]) then
    out[#out + 1] = {k, 'taken'}
  else
    taken = taken + 1
    local one = {k, 'ok'}
    for _, v in ipairs(redis.call('HGETALL', p .. ':job:' .. k)) do one[#one + 1] = v end
    out[#out + 1] = one
  end
end
local load = (jobs + taken) / cap
if jobs + taken >= cap then load = tonumber(ARGV[9]) end
redis.call('HSET', p .. ':load', box, string.format('%.17g', load))
return out
"""

# ARGV: prefix, box, key, then field/value pairs. Records the agent peer of a job this
# box owns (so the box taking it over reuses it).
RECORD = """
local p, box, k = ARGV[1], ARGV[2], ARGV[3]
if redis.call('GET', p .. ':lease:' .. k) ~= box then return 0 end
if redis.call('SISMEMBER', p .. ':rooms', k) == 0 then return 0 end
redis.call('HSET', p .. ':job:' .. k, unpack(ARGV, 4))
return 1
"""

# ARGV: prefix, box (or '' for any), key. The job ends cluster-wide: no longer wanted,
# its description gone, its lease dropped if this box holds it (the owner, if another
# box, learns it at its next renewal).
END = """
local p, box, k = ARGV[1], ARGV[2], ARGV[3]
redis.call('SREM', p .. ':rooms', k)
redis.call('DEL', p .. ':job:' .. k, p .. ':queued:' .. k)
if box ~= '' and redis.call('GET', p .. ':lease:' .. k) == box then
  redis.call('DEL', p .. ':lease:' .. k)
end
return 1
"""

# ARGV: prefix, box, key, maxlen, ttl_ms. Hands a job this box owns over: the lease is
# dropped and, if the job is still wanted, a request queued for another box.
RELEASE = """
local p, box, k = ARGV[1], ARGV[2], ARGV[3]
if redis.call('GET', p .. ':lease:' .. k) ~= box then return 0 end
redis.call('DEL', p .. ':lease:' .. k)
if redis.call('SISMEMBER', p .. ':rooms', k) == 0 then return 0 end
redis.call('SET', p .. ':queued:' .. k, '1', 'PX', ARGV[5])
redis.call('XADD', p .. ':jobs', 'MAXLEN', '~', ARGV[4], '*', 'key', k)
return 1
"""

# ARGV: prefix, box, epoch, ttl_ms, load, jobs, then the keys this box runs.
# Renews the box's liveness (and marks it seen alive, for ORPHANS), load and leases.
# Returns {'reset'} when Redis lost its data (no epoch), else {'ok', ended keys...,
# '|', lost keys...}: ended = no longer wanted, lost = another box holds the lease now.
RENEW = """
local p, box, ttl = ARGV[1], ARGV[2], ARGV[4]
if redis.call('GET', p .. ':epoch') ~= ARGV[3] then return {'reset'} end
redis.call('SET', p .. ':box:' .. box, ARGV[6], 'PX', ttl)
redis.call('HSET', p .. ':load', box, ARGV[5])
redis.call('HSET', p .. ':seen', box, '0')
local ended, lost = {'ok'}, {}
for i = 7, #ARGV do
  local k = ARGV[i]
  local lease = p .. ':lease:' .. k
  if redis.call('SISMEMBER', p .. ':rooms', k) == 0 then
    ended[#ended + 1] = k
  else
    -- one command for the usual case: renewed if it exists, its owner returned
    local owner = redis.call('SET', lease, box, 'XX', 'PX', ttl, 'GET')
    if not owner then
      redis.call('SET', lease, box, 'PX', ttl)
    elseif owner ~= box then
      -- another box's lease, given back (a lease longer by at most one lease: rare)
      redis.call('SET', lease, owner, 'PX', ttl)
      lost[#lost + 1] = k
    end
  end
end
ended[#ended + 1] = '|'
for _, k in ipairs(lost) do ended[#ended + 1] = k end
return ended
"""

# ARGV: prefix, ttl_ms, maxlen, full ('1' or '0'), lease_ms. Queues every wanted job
# nobody holds a lease on and none is queued for (its box died or lost Redis). The scan
# reads every wanted job, so it runs only while a box that renewed before has no
# liveness key (and for two leases after: its last leases expire after its liveness),
# or when the caller asks for it (`full`: a box's periodic safety net). Returns how
# many jobs it queued, or -1 when it did not scan.
ORPHANS = """
local p = ARGV[1]
local scan = ARGV[4] == '1'
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local seen = redis.call('HGETALL', p .. ':seen')
for i = 1, #seen, 2 do
  local box, since = seen[i], tonumber(seen[i + 1])
  if redis.call('EXISTS', p .. ':box:' .. box) == 0 then
    scan = true
    if since == 0 then
      redis.call('HSET', p .. ':seen', box, now_ms)
    elseif now_ms - since > 2 * tonumber(ARGV[5]) then
      redis.call('HDEL', p .. ':seen', box)
    end
  end
end
if not scan then return -1 end
local n = 0
for _, k in ipairs(redis.call('SMEMBERS', p .. ':rooms')) do
  if redis.call('EXISTS', p .. ':lease:' .. k) == 0
      and redis.call('SET', p .. ':queued:' .. k, '1', 'NX', 'PX', ARGV[2]) then
    redis.call('XADD', p .. ':jobs', 'MAXLEN', '~', ARGV[3], '*', 'key', k)
    n = n + 1
  end
end
return n
"""

# ARGV: prefix. The lowest load among live boxes (dead ones are forgotten), and how
# many boxes are alive: {min as a string, alive}.
MIN_LOAD = """
local p = ARGV[1]
local best, alive = nil, 0
local pairs_ = redis.call('HGETALL', p .. ':load')
for i = 1, #pairs_, 2 do
  local box, load = pairs_[i], tonumber(pairs_[i + 1])
  if redis.call('EXISTS', p .. ':box:' .. box) == 0 then
    redis.call('HDEL', p .. ':load', box)
  else
    alive = alive + 1
    if best == nil or load < best then best = load end
  end
end
return {tostring(best or 0), alive}
"""

# ARGV: prefix, box, epoch, ttl_ms, key (or ''), then the job hash's field/value pairs.
# After Redis lost its data: the epoch set again (the first box's wins), and this box's
# running job registered with its lease. Returns {epoch, 'ok' | 'lost'} ('lost': another
# box holds the lease already).
RESTORE = """
local p, box, k = ARGV[1], ARGV[2], ARGV[5]
redis.call('SET', p .. ':epoch', ARGV[3], 'NX')
local epoch = redis.call('GET', p .. ':epoch')
if k == '' then return {epoch, 'ok'} end
if not redis.call('SET', p .. ':lease:' .. k, box, 'NX', 'PX', ARGV[4]) then
  if redis.call('GET', p .. ':lease:' .. k) ~= box then return {epoch, 'lost'} end
end
redis.call('SADD', p .. ':rooms', k)
redis.call('DEL', p .. ':job:' .. k)
if #ARGV >= 7 then redis.call('HSET', p .. ':job:' .. k, unpack(ARGV, 6)) end
return {epoch, 'ok'}
"""

# ARGV: prefix, group, wait_ms, count. Refuses the job requests no box has read for
# wait_ms (their entry id is the time they were queued): each leaves the stream and,
# unless a box holds its lease, the fleet's wanted jobs. Returns {key, room id, ...}.
REFUSE = """
local p, group = ARGV[1], ARGV[2]
local stream = p .. ':jobs'
if redis.call('EXISTS', stream) == 0 then return {} end
local last = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local name, delivered = nil, nil
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
  end
  if name == group then last = delivered end
end
if last == nil then return {} end
local now = redis.call('TIME')
local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  - tonumber(ARGV[3])
local out = {}
local entries = redis.call(
  'XRANGE', stream, '(' .. last, string.format('%d', cutoff), 'COUNT', ARGV[4])
for _, e in ipairs(entries) do
  redis.call('XDEL', stream, e[1])
  local k = e[2][2]
  if k then
    redis.call('DEL', p .. ':queued:' .. k)
    if redis.call('EXISTS', p .. ':lease:' .. k) == 0
        and redis.call('SREM', p .. ':rooms', k) == 1 then
      out[#out + 1] = k
      out[#out + 1] = redis.call('HGET', p .. ':job:' .. k, 'room_id') or ''
      redis.call('DEL', p .. ':job:' .. k)
    end
  end
end
return out
"""
