-- Recovery by version (§14): the room's epoch and its log's changes after version ARGV[2],
-- newest first, read back until the change whose base is ARGV[2] or older (ARGV[3] at most).
-- → {'ok', epoch, found (1/0), fields of each change...} or {'missing'}
local since, most = tonumber(ARGV[2]), tonumber(ARGV[3])
local epoch = redis.call('HGET', META, 'e')
if not epoch then return {'missing'} end
local out, found, last = {'ok', epoch, 0}, false, '+'
local read = 0
while not found and read < most do
  local page = redis.call('XREVRANGE', LOG, last, '-', 'COUNT', 100)
  if #page == 0 then break end
  for _, entry in ipairs(page) do
    last = '(' .. entry[1]
    read = read + 1
    local fields, base = entry[2], nil
    for i = 1, #fields, 2 do
      if fields[i] == 'b' then base = tonumber(fields[i + 1]) end
    end
    if base then
      table.insert(out, fields)
      if base <= since then found = true break end
    end
  end
end
if found then out[3] = 1 end
return out
