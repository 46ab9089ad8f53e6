-- First writer wins: put a room's state into Redis if it has none. Every player seeded is
-- disconnected (its grace period starts) until a socket resumes or a process reclaims it.
-- ARGV[2..]: version grace_ms count, then count triples (field json init)
-- → {'ok', players seeded} or {'noop'} when the room was there
if redis.call('EXISTS', META) == 1 then return {'noop'} end
local version, grace_ms, count = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local deadline = now_ms() + grace_ms
local n, bytes = 0, 0
for i = 0, count - 1 do
  local field, json, init = ARGV[5 + 3 * i], ARGV[6 + 3 * i], ARGV[7 + 3 * i]
  redis.call('HSET', OBJ, field, json)
  redis.call('HSET', OV, field, version)
  bytes = bytes + #json
  if string.sub(field, 1, 2) == 'p:' then
    local pid = string.sub(field, 3)
    n = n + 1
    redis.call('HSET', INIT, pid, init)
    redis.call('ZADD', GRACE, deadline, pid)
  end
end
redis.call('HSET', META, 'v', version, 'n', n, 'b', bytes)
return {'ok', n}
