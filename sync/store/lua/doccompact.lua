-- Compaction of a document (§16): store its merged state, which holds every update of the
-- room's log up to entry ARGV[3], unless a state covering a later entry is already
-- there. Positions only move forward, so two processes compacting at once never lose
-- each other's updates: whatever state wins, the log entries after its position (each
-- loader applies them again, Yjs updates are idempotent) hold the rest.
-- KEYS: docs docpos (one room)   ARGV: docId state position → 1 written, 0 not
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then
  local old_ms, old_seq = parse(old)
  local new_ms, new_seq = parse(ARGV[3])
  if new_ms < old_ms or (new_ms == old_ms and new_seq <= old_seq) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
