-- A consistent read: version, objects, their versions, initial players, last log id.
local v, closed = unpack(redis.call('HMGET', META, 'v', 'closed'))
if closed == '1' then return {'closed'} end
if not v then return {'missing'} end
local last = redis.call('XREVRANGE', LOG, '+', '-', 'COUNT', 1)
local last_id = '0-0'
if #last > 0 then last_id = last[1][1] end
return {'ok', v, redis.call('HGETALL', OBJ), redis.call('HGETALL', OV),
        redis.call('HGETALL', INIT), last_id}
