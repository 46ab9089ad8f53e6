-- Shared by every room script (prepended by redis_scripts.py).
-- KEYS: meta obj ov init conn tok log grace   ARGV: prefix maxlen roomId ...
local META, OBJ, OV, INIT = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local CONN, TOK, LOG, GRACE = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local PREFIX, MAXLEN, ROOM = ARGV[1], ARGV[2], ARGV[3]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- nil when the room is usable, else the refusal to return
local function unusable()
  local v, closed = unpack(redis.call('HMGET', META, 'v', 'closed'))
  if closed == '1' then return {'closed'} end
  if not v then return {'gone'} end
  return nil
end

-- one version bump and its log entry
local function bump(kind, patch, payload, bytes_delta)
  local v = tonumber(redis.call('HGET', META, 'v'))
  local nv = v + 1
  redis.call('HSET', META, 'v', nv)
  if bytes_delta ~= 0 then redis.call('HINCRBY', META, 'b', bytes_delta) end
  if payload ~= '' then
    redis.call('XADD', LOG, 'MAXLEN', '~', MAXLEN, '*',
      'v', nv, 'b', v, 'k', kind, 'p', patch, 'd', payload)
  else
    redis.call('XADD', LOG, 'MAXLEN', '~', MAXLEN, '*', 'v', nv, 'b', v, 'k', kind, 'p', patch)
  end
  return nv
end

local function proc_players(conn_id)
  return PREFIX .. 'proc:' .. string.match(conn_id, '^(.*)|') .. ':players'
end

local function member(pid)
  return ROOM .. '\n' .. pid
end

-- remove a player with a PLAYER_LEFT; returns new version and its token hash
local function remove_player(pid, reason)
  local f = 'p:' .. pid
  local old = redis.call('HGET', OBJ, f)
  if not old then return nil end
  local conn = redis.call('HGET', CONN, pid)
  if conn then redis.call('SREM', proc_players(conn), member(pid)) end
  local tok = redis.call('HGET', TOK, pid)
  if tok then redis.call('DEL', PREFIX .. 'token:' .. tok) end
  redis.call('HDEL', OBJ, f)
  redis.call('HDEL', OV, f)
  redis.call('HDEL', INIT, pid)
  redis.call('HDEL', CONN, pid)
  redis.call('HDEL', TOK, pid)
  redis.call('ZREM', GRACE, member(pid))
  redis.call('HINCRBY', META, 'n', -1)
  local nv = bump('L', '{"players":{"' .. pid .. '":null}}',
    '{"playerId":"' .. pid .. '","reason":"' .. reason .. '"}', -#old)
  return nv, tok or ''
end
