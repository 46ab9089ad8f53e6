-- Server reset: whole-room compare-and-set on the version, then every object rewritten.
-- ARGV[4..]: expected_v patch bytes count, then count pairs (field json)
local expected, patch, bytes, count = ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local refused = unusable()
if refused then return refused end
local v = redis.call('HGET', META, 'v')
if v ~= expected then return {'miss', v} end
local nv = tonumber(v) + 1
redis.call('DEL', OBJ, OV)
for i = 0, count - 1 do
  redis.call('HSET', OBJ, ARGV[8 + 2 * i], ARGV[9 + 2 * i])
  redis.call('HSET', OV, ARGV[8 + 2 * i], nv)
end
redis.call('HSET', META, 'b', bytes)
bump('D', patch, '', 0)
return {'ok', nv}
