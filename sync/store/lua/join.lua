-- A new player: room limits checked here, the authority on counts and sizes.
-- ARGV[2..]: pid player_json patch payload max_players max_bytes conn_id token_hash [author]
local pid, player, patch, payload = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local max_players, max_bytes = tonumber(ARGV[6]), tonumber(ARGV[7])
local conn_id, token_hash, author = ARGV[8], ARGV[9], ARGV[10]
local refused = unusable()
if refused then return refused end
local n, b = unpack(redis.call('HMGET', META, 'n', 'b'))
if tonumber(n or '0') >= max_players then return {'full'} end
if tonumber(b or '0') + #player > max_bytes then return {'big'} end
local f = 'p:' .. pid
redis.call('HINCRBY', META, 'n', 1)
local nv = bump('J', patch, payload, #player, nil, author)
redis.call('HSET', OBJ, f, player)
redis.call('HSET', OV, f, nv)
redis.call('HSET', INIT, pid, player)
redis.call('HSET', CONN, pid, conn_id)
redis.call('HSET', TOK, pid, token_hash)
redis.call('HSET', BYTOKEN, token_hash, pid)
return {'ok', nv}
