-- A dead process's player (found in its players set): if a socket of that process still
-- owns it, the owner goes and its grace period starts. Idempotent: janitors may race.
-- ARGV[2..]: pid proc grace_ms   → 1 when a grace period started, else 0
local pid, proc, grace_ms = ARGV[2], ARGV[3], tonumber(ARGV[4])
local owner = redis.call('HGET', CONN, pid)
if not owner or string.sub(owner, 1, #proc + 1) ~= proc .. '|' then return 0 end
redis.call('HDEL', CONN, pid)
if redis.call('HEXISTS', OBJ, 'p:' .. pid) == 0 then return 0 end
redis.call('ZADD', GRACE, now_ms() + grace_ms, pid)
return 1
