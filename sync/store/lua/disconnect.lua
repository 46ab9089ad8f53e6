-- The socket of a player went away: start its grace period if that socket still owns it.
-- ARGV[4..]: pid conn_id grace_ms
local pid, conn_id, grace_ms = ARGV[4], ARGV[5], tonumber(ARGV[6])
-- conn_id 'proc|' (a process after an outage): any socket of that process
local owner = redis.call('HGET', CONN, pid)
if not owner then return 0 end
if owner ~= conn_id and not (string.sub(conn_id, -1) == '|'
    and string.sub(owner, 1, #conn_id) == conn_id) then
  return 0
end
redis.call('HDEL', CONN, pid)
redis.call('SREM', proc_players(owner), member(pid))
if redis.call('HEXISTS', OBJ, 'p:' .. pid) == 1 then
  redis.call('ZADD', GRACE, now_ms() + grace_ms, member(pid))
end
return 1
