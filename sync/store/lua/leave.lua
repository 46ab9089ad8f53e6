-- Remove a player (left / kicked / timeout). mode 'expire': only if its grace deadline
-- has passed and nobody reclaimed it, so a timeout happens exactly once cluster-wide.
-- ARGV[2..]: pid reason mode [author]  → {'ok', version, token_hash, owner} (owner: its socket)
local pid, reason, mode, author = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if mode == 'expire' then
  local deadline = redis.call('ZSCORE', GRACE, pid)
  if not deadline then return {'skip'} end
  if tonumber(deadline) > now_ms() then return {'skip'} end
  if redis.call('HEXISTS', CONN, pid) == 1 then
    redis.call('ZREM', GRACE, pid)
    return {'skip'}
  end
  if redis.call('HGET', META, 'closed') == '1' or not redis.call('HGET', META, 'v') then
    redis.call('ZREM', GRACE, pid)
    return {'skip'}
  end
end
local refused = unusable()
if refused then return refused end
local nv, tok, conn = remove_player(pid, reason, author)
if not nv then return {'absent'} end
return {'ok', nv, tok, conn}
