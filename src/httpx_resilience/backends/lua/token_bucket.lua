-- GCRA token bucket: grant `tokens` now, reserve them for a later time, or refuse.
--
-- The bucket is one number, its theoretical arrival time (TAT): the time at
-- which it would be full again. `tokens` fit when now >= TAT + tokens*T - tau,
-- T being the time per token and tau = burst*T. A grant moves TAT forward by
-- tokens*T. Time is Redis' own clock (TIME), in microseconds, so hosts with
-- skewed clocks still share one bucket.
--
-- KEYS[1]  the bucket's TAT (absent: the bucket is full)
-- KEYS[2]  the limiter's pause: no grant before this time (absent: no pause)
-- ARGV[1]  microseconds per token (1e6 / rate)
-- ARGV[2]  burst: the tokens the bucket holds
-- ARGV[3]  tokens asked for (1 <= tokens <= burst, checked by the caller)
-- ARGV[4]  the longest wait that may be reserved, microseconds (-1: any)
-- ARGV[5]  a pause the caller knows of, microseconds from now (0: none)
-- Returns {granted, wait}: granted 1 with wait 0 (now) or wait > 0 (reserved:
-- the caller proceeds after `wait` microseconds, without asking again);
-- granted 0 with the wait needed (longer than ARGV[4]; nothing changed).
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = interval * tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local horizon = tonumber(ARGV[4])

-- The earliest time anything may be granted: now, or the end of a pause.
local start = now + tonumber(ARGV[5])
local paused = tonumber(redis.call('GET', KEYS[2]))
if paused and paused > start then start = paused end

local tat = tonumber(redis.call('GET', KEYS[1])) or start
if tat < start then tat = start end
local new_tat = tat + tokens * interval
local at = new_tat - tau
if at < start then at = start end
local wait = at - now

if wait > 0 and horizon >= 0 and wait > horizon then
  return {0, math.ceil(wait)}
end
-- The key expires when the bucket is full again: absent means full.
redis.call('SET', KEYS[1], string.format('%.1f', new_tat),
           'PX', math.ceil((new_tat - now) / 1000) + 1)
if wait < 0 then wait = 0 end
return {1, math.ceil(wait)}
