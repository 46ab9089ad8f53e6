-- A room's documents (§16) as one consistent read: the compacted states, the log
-- position each state covers, and every document update ('Y' entry) still in the log.
-- KEYS: docs docpos log (one room)
-- → {{docId, state, ...}, {docId, position, ...}, {{entryId, docId, update}, ...}}
-- (an empty update: the document was cleared there)
local updates = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[3], '-', '+')) do
  local fields = entry[2]
  if fields[1] == 'k' and fields[2] == 'Y' then
    local doc, update
    for i = 3, #fields, 2 do
      if fields[i] == 'd' then doc = fields[i + 1]
      elseif fields[i] == 'u' then update = fields[i + 1]
      elseif fields[i] == 'x' then update = '' end
    end
    if doc and update then updates[#updates + 1] = {entry[1], doc, update} end
  end
end
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]), updates}
