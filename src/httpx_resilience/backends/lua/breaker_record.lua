-- breaker_record: record one call's outcome in a shared circuit breaker and
-- apply the transition it causes (atomic).
--
-- The Redis twin of BreakerMachine.record (policies/breaker/_machine.py) with
-- its windows (_windows.py):
-- * an outcome from an older generation is ignored, except a failed probe of
--   this half-open period (gen >= ho_since), which reopens the breaker;
-- * a probe (ARGV[2] is its lease id) frees its lease; a failed or slow probe
--   reopens the breaker; half_open_max_calls successes close it. A probe whose
--   lease already expired (given up on as hung) no longer counts when it
--   succeeds, but still reopens the breaker when it fails;
-- * CLOSED: consecutive failures (failure_threshold opens), and with a rate
--   rule the sliding window: a count window (the last N calls, a list) or a
--   time window (N buckets of seconds/N, as the local TimeWindow), opening
--   when at least minimum_calls calls are in it and the failure rate or the
--   slow-call rate reaches its threshold.
-- Opening sets open_until = Redis TIME + recovery_timeout; closing clears the
-- counters and the window. Every transition bumps the generation.
--
-- KEYS[1] state hash   KEYS[2] leases sorted set   KEYS[3] window (list or hash)
-- ARGV[1]  the generation the call was admitted in (-1: the current one)
-- ARGV[2]  the probe's lease id, '' for an ordinary call
-- ARGV[3]  failed (0/1)            ARGV[4]  slow (0/1)
-- ARGV[5]  failure_threshold       ARGV[6]  recovery_timeout (ms)
-- ARGV[7]  half_open_max_calls
-- ARGV[8]  window type: 'none', 'count' or 'time'
-- ARGV[9]  window size (calls, or ms)   ARGV[10] buckets of a time window
-- ARGV[11] minimum_calls
-- ARGV[12] failure_rate_threshold (-1: off)   ARGV[13] slow_call_rate_threshold (-1: off)
-- ARGV[14] the TTL of every key (ms)
-- Returns {changed, gen, state, retry_in_ms, reason, a, b, c}
--   changed 1 when this call moved the state; reason 'consecutive' (a = failures),
--   'rate' / 'slow' (a = failures or slow calls, b = calls), 'probe_failed',
--   'probe_slow', 'probes_ok' (a = successes); '' when nothing changed.

-- Writes after TIME: Redis < 5 must replicate effects, not the script.
if redis.replicate_commands then redis.replicate_commands() end
local S, L, W = KEYS[1], KEYS[2], KEYS[3]
local key_ttl = tonumber(ARGV[14])
local st = redis.call('HMGET', S, 'state', 'gen', 'ho_since', 'succ', 'cf', 'open_until')
local state = st[1] or 'closed'
local gen = tonumber(st[2]) or 0
local call_gen = tonumber(ARGV[1])
if call_gen < 0 then call_gen = gen end  -- an outcome reported by hand: the current generation
local lease = ARGV[2]
local probe = lease ~= ''
local failed = ARGV[3] == '1'
local slow = ARGV[4] == '1'
local now = nil

local function clock()
  if now == nil then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  end
  return now
end

local function touch()
  redis.call('PEXPIRE', S, key_ttl)
  redis.call('PEXPIRE', L, key_ttl)
  redis.call('PEXPIRE', W, key_ttl)
end

local function to_open(reason, a, b)
  local rt = tonumber(ARGV[6])
  gen = gen + 1
  redis.call('HSET', S, 'state', 'open', 'gen', gen, 'open_until', clock() + rt, 'cf', 0, 'succ', 0)
  redis.call('DEL', L)
  touch()
  return {1, gen, 'open', tostring(rt), reason, a or 0, b or 0, 0}
end

local function unchanged()
  local retry = 0
  if state == 'open' then
    retry = math.max(0, (tonumber(st[6]) or 0) - clock())
  end
  return {0, gen, state, tostring(retry), '', 0, 0, 0}
end

if call_gen ~= gen then
  if probe then
    redis.call('ZREM', L, lease)
    if failed and state == 'half_open' and call_gen >= (tonumber(st[3]) or 0) then
      return to_open('probe_failed')
    end
  end
  return unchanged()  -- stale: from before the last transition
end

if probe then
  if redis.call('ZREM', L, lease) == 0 then
    -- The lease expired: this probe was given up on. Only a failure still counts.
    if failed and state == 'half_open' then
      return to_open('probe_failed')
    end
    return unchanged()
  end
  if failed then return to_open('probe_failed') end
  if slow then return to_open('probe_slow') end
  local succ = (tonumber(st[4]) or 0) + 1
  if succ >= tonumber(ARGV[7]) then
    gen = gen + 1
    redis.call('HSET', S, 'state', 'closed', 'gen', gen, 'cf', 0, 'succ', 0, 'open_until', 0,
               'wt', 0, 'wf', 0, 'ws', 0, 'wh', -1)
    redis.call('DEL', L, W)
    touch()
    return {1, gen, 'closed', '0', 'probes_ok', succ, 0, 0}
  end
  redis.call('HSET', S, 'succ', succ)
  touch()
  return unchanged()
end

if state ~= 'closed' then
  return unchanged()
end

local cf = 0
if failed then cf = (tonumber(st[5]) or 0) + 1 end
local threshold = tonumber(ARGV[5])
local wtype = ARGV[8]
if wtype == 'none' then
  if failed and cf >= threshold then return to_open('consecutive', cf) end
  -- A success on a breaker with no failures to clear writes nothing.
  if failed or (tonumber(st[5]) or 0) ~= 0 then
    redis.call('HSET', S, 'cf', cf)
    touch()
  end
  return unchanged()
end

-- The sliding window: running totals wt (calls), wf (failures), ws (slow) in S.
local w = redis.call('HMGET', S, 'wt', 'wf', 'ws', 'wh')
local wt, wf, ws = tonumber(w[1]) or 0, tonumber(w[2]) or 0, tonumber(w[3]) or 0
local f = failed and 1 or 0
local s = slow and 1 or 0
if wtype == 'count' then
  -- The last N calls: a list of codes (1 = failed, 2 = slow), newest first.
  redis.call('LPUSH', W, f + 2 * s)
  if redis.call('LLEN', W) > tonumber(ARGV[9]) then
    local old = tonumber(redis.call('RPOP', W))
    wt = wt - 1
    wf = wf - (old % 2)
    ws = ws - math.floor(old / 2)
  end
else
  -- N buckets of width size/N; bucket i holds fields t<i>, f<i>, s<i> of W.
  local n = tonumber(ARGV[10])
  local width = tonumber(ARGV[9]) / n
  local epoch = math.floor(clock() / width)
  local head = tonumber(w[4])
  if head == nil or head < 0 or epoch - head >= n then
    redis.call('DEL', W)
    wt, wf, ws = 0, 0, 0
  elseif epoch > head then
    for e = head + 1, epoch do
      local i = e % n
      local old = redis.call('HMGET', W, 't' .. i, 'f' .. i, 's' .. i)
      wt = wt - (tonumber(old[1]) or 0)
      wf = wf - (tonumber(old[2]) or 0)
      ws = ws - (tonumber(old[3]) or 0)
      redis.call('HDEL', W, 't' .. i, 'f' .. i, 's' .. i)
    end
  end
  if epoch > (head or -1) then head = epoch end
  local i = head % n
  redis.call('HINCRBY', W, 't' .. i, 1)
  if f == 1 then redis.call('HINCRBY', W, 'f' .. i, 1) end
  if s == 1 then redis.call('HINCRBY', W, 's' .. i, 1) end
  redis.call('HSET', S, 'wh', head)
end
wt, wf, ws = wt + 1, wf + f, ws + s
redis.call('HSET', S, 'cf', cf, 'wt', wt, 'wf', wf, 'ws', ws)
touch()

if failed and cf >= threshold then return to_open('consecutive', cf) end
if wt >= tonumber(ARGV[11]) then
  local frt = tonumber(ARGV[12])
  if failed and frt >= 0 and wf >= frt * wt then return to_open('rate', wf, wt) end
  local srt = tonumber(ARGV[13])
  if slow and srt >= 0 and ws >= srt * wt then return to_open('slow', ws, wt) end
end
return unchanged()
