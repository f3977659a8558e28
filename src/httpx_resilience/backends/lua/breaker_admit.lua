-- breaker_admit: may one call start through a shared circuit breaker? (atomic)
--
-- The Redis twin of BreakerMachine.try_admit (policies/breaker/_machine.py):
--   CLOSED    -> admitted (a read-only HMGET; no TIME, no write);
--   OPEN      -> refused until open_until; once due, the breaker moves to
--                HALF_OPEN (a new generation) and this caller takes a probe lease;
--   HALF_OPEN -> a probe lease while (live leases + probe successes) <
--                half_open_max_calls, across every process; refused otherwise.
-- A probe lease is a member of the leases sorted set, scored with its expiry
-- (Redis TIME + lease TTL): a prober that dies never releases it, so the
-- lease expires and the slot frees itself. When a lease has expired, the
-- probe round starts afresh (successes counted so far are dropped), as the
-- local machine does for probes it gave up on as hung.
--
-- KEYS[1] state hash: state, gen, open_until (ms), succ, ho_since, cf, ...
-- KEYS[2] leases sorted set: lease id -> expiry (ms)
-- ARGV[1] recovery_timeout (ms)
-- ARGV[2] half_open_max_calls
-- ARGV[3] this caller's lease id (used only when a probe is granted)
-- ARGV[4] the lease TTL (ms)
-- ARGV[5] the TTL of every key (ms)
-- Returns {verdict, gen, state, retry_in_ms, reason, consecutive failures}
--   verdict: 0 refused, 1 admitted, 2 probe (the lease ARGV[3] is held);
--   retry_in_ms as a string; reason: 'recovery' when this call moved
--   OPEN -> HALF_OPEN, 'round' when expired leases restarted the probe round, else '';
--   the consecutive failures of a CLOSED breaker (0 otherwise): when there are
--   none, the caller need not record a quick success (it would change nothing).

-- Writes after TIME: Redis < 5 must replicate effects, not the script.
if redis.replicate_commands then redis.replicate_commands() end
local st = redis.call('HMGET', KEYS[1], 'state', 'gen', 'open_until', 'succ', 'cf')
local state = st[1] or 'closed'
local gen = tonumber(st[2]) or 0
if state == 'closed' then
  return {1, gen, 'closed', '0', '', tonumber(st[5]) or 0}
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local key_ttl = tonumber(ARGV[5])
local reason = ''
local succ = tonumber(st[4]) or 0

if state == 'open' then
  local open_until = tonumber(st[3]) or 0
  if now < open_until then
    return {0, gen, 'open', tostring(open_until - now), '', 0}
  end
  -- OPEN -> HALF_OPEN: a new generation; every probe slot is free.
  gen = gen + 1
  state = 'half_open'
  succ = 0
  redis.call('HSET', KEYS[1], 'state', state, 'gen', gen, 'ho_since', gen, 'succ', 0)
  redis.call('DEL', KEYS[2])
  reason = 'recovery'
end

-- HALF_OPEN: forget expired leases (their probers died or hang); a new round.
local expired = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if expired > 0 and succ > 0 then
  succ = 0
  redis.call('HSET', KEYS[1], 'succ', 0)
end
if expired > 0 and reason == '' then
  reason = 'round'
end
local live = redis.call('ZCARD', KEYS[2])
local verdict = 0
if live + succ < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
  verdict = 2
end
redis.call('PEXPIRE', KEYS[1], key_ttl)
redis.call('PEXPIRE', KEYS[2], key_ttl)
return {verdict, gen, state, '0', reason, 0}
