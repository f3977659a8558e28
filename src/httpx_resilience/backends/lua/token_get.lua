-- token_get: the cached access token under a key, or nil (atomic read).
--
-- KEYS[1] the token hash: tok (the token's JSON), fp (its fingerprint)
-- Returns the JSON, or nil when there is none (the key's TTL removed it).
return redis.call('HGET', KEYS[1], 'tok')
