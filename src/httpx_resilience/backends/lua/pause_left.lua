-- Host pause: the microseconds left of it (0: not paused). Time is Redis' TIME.
--
-- KEYS[1]  the pause: its end, microseconds on Redis' clock
-- Returns the microseconds left, >= 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local current = tonumber(redis.call('GET', KEYS[1]))
if not current or current <= now then return 0 end
return math.ceil(current - now)
