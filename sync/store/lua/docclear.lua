-- Staff cleared a document (§16): its compacted state goes, and a 'Y' entry with 'x'
-- tells every process to drop its copy (a loader skips the updates before it).
-- KEYS: docs docpos log (one room)   ARGV: docId maxlen → the entry id
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'k', 'Y', 'd', ARGV[1], 'x', '1')
