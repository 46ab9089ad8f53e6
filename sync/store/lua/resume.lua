-- A session token resumes (or, after a Redis restart, a process reclaims) its player.
-- ARGV[2..]: pid token_hash conn_id force   → {'ok', previous owner or ''}
local pid, token_hash, conn_id, force = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local refused = unusable()
if refused then return refused end
if redis.call('HEXISTS', OBJ, 'p:' .. pid) == 0 then return {'absent'} end
local stored = redis.call('HGET', TOK, pid)
if stored and stored ~= token_hash and force ~= '1' then return {'mismatch'} end
local previous = redis.call('HGET', CONN, pid)
if previous and previous ~= conn_id then
  -- not a version: tells the process holding the old socket to let it go
  redis.call('XADD', LOG, 'MAXLEN', '~', MAXLEN, '*', 'k', 'T', 'pid', pid, 'c', conn_id)
end
if stored and stored ~= token_hash then redis.call('HDEL', BYTOKEN, stored) end
redis.call('HSET', CONN, pid, conn_id)
redis.call('HSET', TOK, pid, token_hash)
redis.call('HSET', BYTOKEN, token_hash, pid)
redis.call('ZREM', GRACE, pid)
return {'ok', previous or ''}
