-- budget_sync: deposit a process's requests and retries into a shared retry
-- budget, optionally withdraw one retry, and read the shared totals (atomic).
--
-- The Redis twin of RetryBudget (policies/budget.py) for one key:
-- * the ratio: requests and ratio-paid retries counted in N time slices of
--   width ttl/N (slice i holds fields q<i> and r<i>); slices that fell out of
--   the window are cleared as time moves (Redis TIME), and the running totals
--   tq / tr are the sums over the window;
-- * the floor: a reserve that accrues min_per_second retries per second up to
--   its cap (one second's worth, at least one retry), shared by every process;
--   a new key starts full. Deposits may take it below zero: retries a process
--   paid from its local view before this sync; accrual pays the debt back.
-- A withdrawal (ARGV[4] = 1) pays one retry as RetryBudget.try_spend does:
-- the floor's reserve first (up to the whole retry), then the ratio.
--
-- KEYS[1] the budget hash: q<i>, r<i>, head, tq, tr, floor, floor_at
-- ARGV[1] requests to deposit          ARGV[2] ratio-paid retries to deposit
-- ARGV[3] floor-paid retries to deposit ARGV[4] 1 to withdraw one retry now, else 0
-- ARGV[5] ratio   ARGV[6] slice width (ms)   ARGV[7] slices (N)
-- ARGV[8] min_per_second   ARGV[9] floor cap   ARGV[10] the key's TTL (ms)
-- Returns {granted, total requests, total ratio-paid retries, floor reserve} as strings
-- (Lua numbers would be truncated to integers on the way out).

-- Writes after TIME: Redis < 5 must replicate effects, not the script.
if redis.replicate_commands then redis.replicate_commands() end
local K = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local width, n = tonumber(ARGV[6]), tonumber(ARGV[7])
local epoch = math.floor(now / width)
local h = redis.call('HMGET', K, 'head', 'tq', 'tr', 'floor', 'floor_at')
local head = tonumber(h[1])
local tq, tr = tonumber(h[2]) or 0, tonumber(h[3]) or 0
local cap, rate = tonumber(ARGV[9]), tonumber(ARGV[8])
local floor = tonumber(h[4])
local floor_at = tonumber(h[5]) or now
if floor == nil then floor = cap end

-- Roll the ratio's window forward to this slice.
if head == nil or epoch - head >= n then
  if head ~= nil then
    for i = 0, n - 1 do redis.call('HDEL', K, 'q' .. i, 'r' .. i) end
  end
  tq, tr = 0, 0
  head = epoch
elseif epoch > head then
  for e = head + 1, epoch do
    local i = e % n
    local old = redis.call('HMGET', K, 'q' .. i, 'r' .. i)
    tq = tq - (tonumber(old[1]) or 0)
    tr = tr - (tonumber(old[2]) or 0)
    redis.call('HDEL', K, 'q' .. i, 'r' .. i)
  end
  head = epoch
end
if tq < 1e-9 then tq = 0 end
if tr < 1e-9 then tr = 0 end

-- Top the floor's reserve up for the time since it was last read.
if now > floor_at then
  floor = math.min(cap, floor + (now - floor_at) / 1000 * rate)
  floor_at = now
end

local slot = head % n
local dq, dr, df = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local granted = 0
if ARGV[4] == '1' then
  local from_floor = math.max(0, math.min(1, floor))
  local need = 1 - from_floor
  if need <= 0 or tonumber(ARGV[5]) * (tq + dq) - (tr + dr) >= need - 1e-9 then
    granted = 1
    df = df + from_floor
    dr = dr + need
  end
end
if dq ~= 0 then redis.call('HINCRBYFLOAT', K, 'q' .. slot, dq) end
if dr ~= 0 then redis.call('HINCRBYFLOAT', K, 'r' .. slot, dr) end
tq, tr, floor = tq + dq, tr + dr, floor - df
redis.call('HSET', K, 'head', head, 'tq', string.format('%.17g', tq),
           'tr', string.format('%.17g', tr), 'floor', string.format('%.17g', floor),
           'floor_at', string.format('%.17g', floor_at))
redis.call('PEXPIRE', K, tonumber(ARGV[10]))
return {granted, string.format('%.17g', tq), string.format('%.17g', tr),
        string.format('%.17g', floor)}
