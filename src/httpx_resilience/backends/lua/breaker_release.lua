-- breaker_release: a half-open probe ended without an outcome (cancelled, a
-- hedge that lost): give its lease back so another caller may probe (atomic).
-- The Redis twin of BreakerMachine.release.
--
-- KEYS[1] leases sorted set
-- ARGV[1] the probe's lease id
-- Returns 1 when the lease was still held, else 0 (it had expired).
return redis.call('ZREM', KEYS[1], ARGV[1])
