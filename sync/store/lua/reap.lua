-- A process whose heartbeat expired: its connected players start their grace period.
-- KEYS: procs heartbeat players grace   ARGV: prefix proc grace_ms
local PROCS, HEARTBEAT, PLAYERS, GRACE = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, proc, grace_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', HEARTBEAT) == 1 then return 0 end
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + grace_ms
local count = 0
for _, m in ipairs(redis.call('SMEMBERS', PLAYERS)) do
  local room, pid = string.match(m, '^(.*)\n(.*)$')
  local conn = prefix .. 'room:{' .. room .. '}:conn'
  local owner = redis.call('HGET', conn, pid)
  if owner and string.sub(owner, 1, #proc + 1) == proc .. '|' then
    redis.call('HDEL', conn, pid)
    redis.call('ZADD', GRACE, deadline, m)
    count = count + 1
  end
end
redis.call('DEL', PLAYERS)
redis.call('SREM', PROCS, proc)
return count
