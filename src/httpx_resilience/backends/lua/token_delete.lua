-- token_delete: compare-and-delete a cached access token (atomic).
-- With a fingerprint, the token is removed only if it is still the one with
-- that fingerprint: after a 401, many requests that carried the same refused
-- token remove it once, and never a newer token another process stored.
--
-- KEYS[1] the token hash
-- ARGV[1] the fingerprint to match, or '' to delete whatever is there
-- Returns 1 when a token was removed, else 0.
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'fp') ~= ARGV[1] then
  return 0
end
return redis.call('DEL', KEYS[1])
