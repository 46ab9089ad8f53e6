-- The room's epoch (§14). A room seeded without one (Redis had lost it, or it was seeded
-- before epochs existed) gets ARGV[2], first caller wins; never on a room that is gone.
-- ARGV[3], when not empty: an epoch to replace by ARGV[2] if the room still has it (state
-- may have been lost since it was handed out: a fail-over), first caller wins.
-- → {'ok', epoch} or {'missing'}
if redis.call('HEXISTS', META, 'v') == 0 then return {'missing'} end
if ARGV[3] and ARGV[3] ~= '' and redis.call('HGET', META, 'e') == ARGV[3] then
  redis.call('HSET', META, 'e', ARGV[2])
end
redis.call('HSETNX', META, 'e', ARGV[2])
return {'ok', redis.call('HGET', META, 'e')}
