-- token_lock: take or give back the refresh lock of one token key (atomic),
-- so one process at a time asks the token endpoint (single flight).
-- The lock is a lease: a holder that dies stops blocking the others once
-- its TTL passes; giving it back deletes it only if it is still this holder's.
--
-- KEYS[1] the lock key
-- ARGV[1] 'acquire' or 'release'   ARGV[2] the holder's id   ARGV[3] the lease TTL (ms)
-- Returns for 'acquire': {1, 0} when taken, {0, ms until the lease expires} when held;
--         for 'release': {1, 0} when given back, {0, 0} when it was not ours any more.
if ARGV[1] == 'acquire' then
  if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', tonumber(ARGV[3])) then
    return {1, 0}
  end
  return {0, math.max(0, redis.call('PTTL', KEYS[1]))}
end
if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return {1, 0}
end
return {0, 0}
