-- A runner's write that is not a state change, refused unless its lease is still current.
-- KEYS: runner log code handled (one room)   ARGV: token op payload maxlen → 1, or 0 (fenced)
-- op 'e': an EVENT into the room's log; 'c': save the code state; 'm': the log id of the
-- last MESSAGE handled (where the next runner replays from); 'r': release the lease.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == 'e' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'k', 'E', 'e', ARGV[3])
elseif ARGV[2] == 'c' then
  redis.call('SET', KEYS[3], ARGV[3])
elseif ARGV[2] == 'm' then
  redis.call('SET', KEYS[4], ARGV[3])
else
  redis.call('DEL', KEYS[1])
end
return 1
