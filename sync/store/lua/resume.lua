-- A session token resumes (or, after a Redis restart, a process reclaims) its player.
-- ARGV[4..]: pid token_hash conn_id token_ttl force
local pid, token_hash, conn_id, token_ttl, force = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local refused = unusable()
if refused then return refused end
if redis.call('HEXISTS', OBJ, 'p:' .. pid) == 0 then return {'absent'} end
local stored = redis.call('HGET', TOK, pid)
if stored and stored ~= token_hash and force ~= '1' then return {'mismatch'} end
local previous = redis.call('HGET', CONN, pid)
if previous and previous ~= conn_id then
  redis.call('SREM', proc_players(previous), member(pid))
  -- not a version: tells the process holding the old socket to let it go
  redis.call('XADD', LOG, 'MAXLEN', '~', MAXLEN, '*', 'k', 'T', 'pid', pid, 'c', conn_id)
end
redis.call('HSET', CONN, pid, conn_id)
redis.call('HSET', TOK, pid, token_hash)
redis.call('SET', PREFIX .. 'token:' .. token_hash, ROOM .. '\n' .. pid, 'EX', token_ttl)
redis.call('SADD', proc_players(conn_id), member(pid))
redis.call('SADD', PREFIX .. 'procs', string.match(conn_id, '^(.*)|'))
redis.call('ZREM', GRACE, member(pid))
return {'ok', previous or ''}
