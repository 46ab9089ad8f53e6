-- The socket of a player went away: start its grace period if that socket still owns it.
-- ARGV[2..]: pid conn_id grace_ms   → 1 when a grace period started, else 0
-- conn_id 'proc|' (a process after an outage): any socket of that process
local pid, conn_id, grace_ms = ARGV[2], ARGV[3], tonumber(ARGV[4])
local owner = redis.call('HGET', CONN, pid)
if not owner then return 0 end
if owner ~= conn_id and not (string.sub(conn_id, -1) == '|'
    and string.sub(owner, 1, #conn_id) == conn_id) then
  return 0
end
redis.call('HDEL', CONN, pid)
if redis.call('HEXISTS', OBJ, 'p:' .. pid) == 1 then
  redis.call('ZADD', GRACE, now_ms() + grace_ms, pid)
  return 1
end
return 0
