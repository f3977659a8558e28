-- Host pause: grant nothing until now + ARGV[1] microseconds (Retry-After,
-- RateLimit headers). Pauses never shorten one another. Time is Redis' TIME.
--
-- KEYS[1]  the pause: its end, microseconds on Redis' clock
-- ARGV[1]  the pause asked for, microseconds (>= 0)
-- Returns the microseconds of pause left after the call.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local seconds = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]))
if current and current >= now + seconds then
  return math.ceil(current - now)
end
if seconds <= 0 then return 0 end
-- The key expires with the pause: absent means not paused.
redis.call('SET', KEYS[1], string.format('%.1f', now + seconds),
           'PX', math.ceil(seconds / 1000) + 1)
return math.ceil(seconds)
