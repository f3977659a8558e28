-- token_set: store an access token with its fingerprint for a TTL (atomic).
-- A TTL of zero or less stores nothing and removes any token there.
--
-- KEYS[1] the token hash
-- ARGV[1] the token's JSON   ARGV[2] its fingerprint   ARGV[3] the TTL (ms)
-- Returns 1 when stored, 0 when the TTL removed it instead.
local ttl = tonumber(ARGV[3])
redis.call('DEL', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('HSET', KEYS[1], 'tok', ARGV[1], 'fp', ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl))
return 1
