-- Server reset: whole-room compare-and-set on the version, then every object rewritten.
-- ARGV[2..]: expected_v patch bytes count, then count pairs (field json), then [author]
-- (a restore, §15, is the same step: its author names it)
local expected, patch, bytes, count = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local refused = unusable()
if refused then return refused end
local v = redis.call('HGET', META, 'v')
if v ~= expected then return {'miss', v} end
local nv = tonumber(v) + 1
redis.call('DEL', OBJ, OV)
for i = 0, count - 1 do
  redis.call('HSET', OBJ, ARGV[6 + 2 * i], ARGV[7 + 2 * i])
  redis.call('HSET', OV, ARGV[6 + 2 * i], nv)
end
redis.call('HSET', META, 'b', bytes)
bump('D', patch, '', 0, nil, ARGV[6 + 2 * count])
return {'ok', nv}
