-- breaker_force: force a shared circuit breaker OPEN or CLOSED (atomic), for
-- CircuitBreaker.force_open / force_closed / reset: every process sees it on
-- its next call. Like the local BreakerMachine.force: a new generation (calls
-- in flight from before are ignored), probe leases dropped; OPEN starts a
-- fresh cooldown on Redis's clock, CLOSED clears the counters and the window.
--
-- KEYS[1] state hash   KEYS[2] leases sorted set   KEYS[3] window
-- ARGV[1] 'open' or 'closed'   ARGV[2] recovery_timeout (ms)   ARGV[3] the TTL of every key (ms)
-- Returns {gen, state}.
if redis.replicate_commands then redis.replicate_commands() end
local gen = (tonumber(redis.call('HGET', KEYS[1], 'gen')) or 0) + 1
redis.call('DEL', KEYS[2])
if ARGV[1] == 'open' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  redis.call('HSET', KEYS[1], 'state', 'open', 'gen', gen, 'open_until', now + tonumber(ARGV[2]),
             'cf', 0, 'succ', 0)
else
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[1], 'state', 'closed', 'gen', gen, 'open_until', 0, 'cf', 0, 'succ', 0,
             'wt', 0, 'wf', 0, 'ws', 0, 'wh', -1)
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return {gen, ARGV[1]}
