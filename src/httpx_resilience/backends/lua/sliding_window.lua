-- Exact sliding window: never more than `limit` tokens in any `window`.
--
-- A sorted set holds one member per granted token, scored by its grant time
-- (microseconds on Redis' clock, TIME). Grants are made in time order, so the
-- earliest time `tokens` fit is after the (count + tokens - limit)-th oldest
-- grant leaves the window, and never before the latest grant (FIFO across
-- processes: a reservation already made is not overtaken).
--
-- KEYS[1]  the sorted set of grant times
-- KEYS[2]  the limiter's pause: no grant before this time (absent: no pause)
-- ARGV[1]  limit: tokens per window
-- ARGV[2]  the window, microseconds
-- ARGV[3]  tokens asked for (1 <= tokens <= limit, checked by the caller)
-- ARGV[4]  the longest wait that may be reserved, microseconds (-1: any)
-- ARGV[5]  a pause the caller knows of, microseconds from now (0: none)
-- ARGV[6]  a nonce unique to this call (members must be unique)
-- Returns {granted, wait} as token_bucket.lua does.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local horizon = tonumber(ARGV[4])

local at = now + tonumber(ARGV[5])
local paused = tonumber(redis.call('GET', KEYS[2]))
if paused and paused > at then at = paused end

-- Forget the grants that left the window; what is left all counts.
-- (Times are formatted in full: a bare number may be shortened on the way to Redis.)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.17g', now - window))
local count = redis.call('ZCARD', KEYS[1])
if count > 0 then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  local latest = tonumber(last[2])
  if latest > at then at = latest end
end
local excess = count + tokens - limit
if excess > 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], excess - 1, excess - 1, 'WITHSCORES')
  local free = tonumber(oldest[2]) + window
  if free > at then at = free end
end
local wait = at - now

if wait > 0 and horizon >= 0 and wait > horizon then
  return {0, math.ceil(wait)}
end
-- One member per token, added in batches (unpack has a stack limit).
local args = {}
local score = string.format('%.17g', at)
for i = 1, tokens do
  args[#args + 1] = score
  args[#args + 1] = ARGV[6] .. ':' .. i
  if #args >= 1000 or i == tokens then
    redis.call('ZADD', KEYS[1], unpack(args))
    args = {}
  end
end
-- The set expires when its latest grant leaves the window.
redis.call('PEXPIRE', KEYS[1], math.ceil((at + window - now) / 1000) + 1)
if wait < 0 then wait = 0 end
return {1, math.ceil(wait)}
