-- The room's epoch (§14). A room seeded without one (Redis had lost it, or it was seeded
-- before epochs existed) gets ARGV[2], first caller wins; never on a room that is gone.
-- → {'ok', epoch} or {'missing'}
if redis.call('HEXISTS', META, 'v') == 0 then return {'missing'} end
redis.call('HSETNX', META, 'e', ARGV[2])
return {'ok', redis.call('HGET', META, 'e')}
