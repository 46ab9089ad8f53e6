-- Shared by every room script (prepended by redis_scripts.py).
-- KEYS: meta obj ov init conn tok bytoken log grace (redis_keys.ROOM_PARTS), then any
-- script-specific keys of the same room; ARGV: maxlen, then the script's own arguments.
-- A room script touches the keys of its room only (one hash slot on a cluster): the
-- global indexes (processes' player sets, rooms with graces) are kept by the caller.
local META, OBJ, OV, INIT = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local CONN, TOK, BYTOKEN, LOG, GRACE = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local MAXLEN = ARGV[1]

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

-- one version bump and its log entry (source 'r': made by the room's code runner;
-- author: who made it, for the room's history (§15), a short JSON list, omitted when '')
local function bump(kind, patch, payload, bytes_delta, source, author)
  local v = tonumber(redis.call('HGET', META, 'v'))
  local nv = v + 1
  redis.call('HSET', META, 'v', nv)
  if bytes_delta ~= 0 then redis.call('HINCRBY', META, 'b', bytes_delta) end
  local entry = {'v', nv, 'b', v, 'k', kind, 'p', patch}
  if payload ~= '' then
    entry[#entry + 1] = 'd'
    entry[#entry + 1] = payload
  elseif source then
    entry[#entry + 1] = 's'
    entry[#entry + 1] = source
  end
  if author and author ~= '' then
    entry[#entry + 1] = 'a'
    entry[#entry + 1] = author
  end
  redis.call('XADD', LOG, 'MAXLEN', '~', MAXLEN, '*', unpack(entry))
  return nv
end

-- remove a player with a PLAYER_LEFT (by author, '' for the server); returns the new
-- version, its token hash and the socket that owned it ('' when none)
local function remove_player(pid, reason, author)
  local f = 'p:' .. pid
  local old = redis.call('HGET', OBJ, f)
  if not old then return nil end
  local conn = redis.call('HGET', CONN, pid)
  local tok = redis.call('HGET', TOK, pid)
  if tok then redis.call('HDEL', BYTOKEN, tok) end
  redis.call('HDEL', OBJ, f)
  redis.call('HDEL', OV, f)
  redis.call('HDEL', INIT, pid)
  redis.call('HDEL', CONN, pid)
  redis.call('HDEL', TOK, pid)
  redis.call('ZREM', GRACE, pid)
  redis.call('HINCRBY', META, 'n', -1)
  local nv = bump('L', '{"players":{"' .. pid .. '":null}}',
    '{"playerId":"' .. pid .. '","reason":"' .. reason .. '"}', -#old, nil, author)
  return nv, tok or '', conn or ''
end
