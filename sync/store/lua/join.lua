-- A new player: room limits checked here, the authority on counts and sizes.
-- ARGV[4..]: pid player_json patch payload max_players max_bytes conn_id token_hash token_ttl
local pid, player, patch, payload = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local max_players, max_bytes = tonumber(ARGV[8]), tonumber(ARGV[9])
local conn_id, token_hash, token_ttl = ARGV[10], ARGV[11], ARGV[12]
local refused = unusable()
if refused then return refused end
local n, b = unpack(redis.call('HMGET', META, 'n', 'b'))
if tonumber(n or '0') >= max_players then return {'full'} end
if tonumber(b or '0') + #player > max_bytes then return {'big'} end
local f = 'p:' .. pid
redis.call('HINCRBY', META, 'n', 1)
local nv = bump('J', patch, payload, #player)
redis.call('HSET', OBJ, f, player)
redis.call('HSET', OV, f, nv)
redis.call('HSET', INIT, pid, player)
redis.call('HSET', CONN, pid, conn_id)
redis.call('HSET', TOK, pid, token_hash)
redis.call('SET', PREFIX .. 'token:' .. token_hash, ROOM .. '\n' .. pid, 'EX', token_ttl)
redis.call('SADD', proc_players(conn_id), member(pid))
redis.call('SADD', PREFIX .. 'procs', string.match(conn_id, '^(.*)|'))
return {'ok', nv}
