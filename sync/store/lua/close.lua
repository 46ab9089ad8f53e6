-- Close a room: every player leaves with reason 'closed', then an 'X' entry; the closed
-- flag stays so that no process re-seeds the room.
-- ARGV[2]: [author] of the leaves   → {'ok', {pid, token_hash, owner, ...}} (owner '' for a
-- disconnected player)
local refused = unusable()
if refused then return refused end
local left = {}
for _, pid in ipairs(redis.call('HKEYS', INIT)) do
  local nv, tok, conn = remove_player(pid, 'closed', ARGV[2])
  if nv then
    table.insert(left, pid)
    table.insert(left, tok)
    table.insert(left, conn)
  end
end
redis.call('XADD', LOG, 'MAXLEN', '~', MAXLEN, '*', 'k', 'X')
redis.call('HSET', META, 'closed', '1')
redis.call('DEL', OBJ, OV, INIT, CONN, TOK, BYTOKEN, GRACE)
return {'ok', left}
