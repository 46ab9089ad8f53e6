-- The room's runner lease (one process runs a room's code). KEYS: runner fence (one room)
-- ARGV: me px → the lease token ("me|n") if this process holds it now, else ''.
-- A new holder gets a new n (INCR fence): the fencing token commits are checked against.
local cur = redis.call('GET', KEYS[1])
if cur then
  if string.sub(cur, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return cur
  end
  return ''
end
local token = ARGV[1] .. '|' .. redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return token
