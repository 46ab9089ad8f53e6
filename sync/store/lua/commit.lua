-- Compare-and-set of ONE player/entity object, then bump + log.
-- KEYS[10]: the object's turn key.
-- ARGV[2..]: field expect_ov expected_version new_json patch max_bytes noop writer claim fence
-- [author] (the history's author of the change, §15; optional)
-- A writer that keeps missing (a hot object, a slow process) passes claim='1': on its next
-- miss it takes a short per-object turn that makes every other writer wait ('locked'),
-- so its retry cannot miss again and nobody starves.
local field, expect_ov, expected = ARGV[2], ARGV[3], ARGV[4]
local new_json, patch, max_bytes, noop = ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8]
local writer, claim, fence, author = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local turn = KEYS[10]
local refused = unusable()
if refused then return refused end
-- a room code runner's write (KEYS[11]: the runner lease) only while its lease is current
if fence ~= '' and redis.call('GET', KEYS[11]) ~= fence then return {'fenced'} end
local holder = redis.call('GET', turn)
if holder and holder ~= writer then return {'locked'} end
local cur_ov = redis.call('HGET', OV, field) or ''
if cur_ov ~= expect_ov then
  if claim == '1' and not holder then redis.call('SET', turn, writer, 'PX', 500) end
  return {'miss', redis.call('HGET', OBJ, field) or '', cur_ov}
end
if holder then redis.call('DEL', turn) end
local v = tonumber(redis.call('HGET', META, 'v'))
if expected ~= '' and tonumber(expected) ~= v then return {'conflict', v} end
if noop == '1' then return {'noop', v} end
local old = redis.call('HGET', OBJ, field) or ''
local delta = #new_json - #old
if delta > 0 and tonumber(redis.call('HGET', META, 'b') or '0') + delta > max_bytes then
  return {'big'}
end
local nv = bump('D', patch, '', delta, fence ~= '' and 'r' or nil, author)
if new_json == '' then
  redis.call('HDEL', OBJ, field)
  redis.call('HDEL', OV, field)
else
  redis.call('HSET', OBJ, field, new_json)
  redis.call('HSET', OV, field, nv)
end
return {'ok', nv}
