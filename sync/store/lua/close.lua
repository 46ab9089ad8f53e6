-- Close a room: every player leaves with reason 'closed', then an 'X' entry; the closed
-- flag stays so that no process re-seeds the room.
local refused = unusable()
if refused then return refused end
local tokens = {}
for _, pid in ipairs(redis.call('HKEYS', INIT)) do
  local nv, tok = remove_player(pid, 'closed')
  if nv and tok ~= '' then table.insert(tokens, tok) end
end
redis.call('XADD', LOG, 'MAXLEN', '~', MAXLEN, '*', 'k', 'X')
redis.call('HSET', META, 'closed', '1')
redis.call('DEL', OBJ, OV, INIT, CONN, TOK)
return {'ok', tokens}
