import type { Redis } from 'ioredis';

/*
 * Every Lua script of the library, in one place. Each declares all keys it touches in KEYS (ACL checks and
 * Redis Cluster routing depend on that) and every key of one script shares one hash tag (see stream-keys.ts).
 * Time inside scripts comes from the Redis server's clock (TIME), so producers' and consumers' clocks never matter.
 */

/** Common helper: the server's time in milliseconds. */
const NOW_MS = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** Common helper: the milliseconds part of a stream entry id (the score of claim-check blob indexes). */
const ID_MS = `local function idMs(id) return tonumber(string.match(id, '^(%d+)')) end`;

/**
 * deadLetter: move one pending entry to the dead-letter stream and acknowledge it, atomically. A claim-checked entry
 * (field `blob`) keeps its reference; its blob is indexed beside the dead-letter stream too, so it lives as long as
 * either the entry or the dead letter does (see dropBlobs).
 * KEYS[1] stream, KEYS[2] dead-letter stream, KEYS[3] retry schedule of the group, KEYS[4] first-failure times,
 * KEYS[5] blob index of the dead-letter stream
 * ARGV[1] group, ARGV[2] entry id, ARGV[3] dead-letter MAXLEN (~), ARGV[4..] metadata field/value pairs
 * Returns the dead-letter entry id, or false when the entry was no longer pending (someone else settled it),
 * so a crash or a race can never produce two dead letters or lose one.
 */
const DEAD_LETTER = `
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 then return false end
${NOW_MS}
${ID_MS}
local fields = {}
local blobId
local original = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #original > 0 then
  for i, v in ipairs(original[1][2]) do
    fields[#fields + 1] = v
    if i % 2 == 0 and original[1][2][i - 1] == 'blob' then blobId = v end
  end
else
  fields[#fields + 1] = 'rse.dlq.missing'
  fields[#fields + 1] = '1'
end
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
local first = redis.call('HGET', KEYS[4], ARGV[2])
fields[#fields + 1] = 'rse.dlq.deliveries'
fields[#fields + 1] = tostring(pending[1][4])
fields[#fields + 1] = 'rse.dlq.firstFailedAt'
fields[#fields + 1] = first or tostring(now)
fields[#fields + 1] = 'rse.dlq.lastFailedAt'
fields[#fields + 1] = tostring(now)
local dlqId = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
if blobId then redis.call('ZADD', KEYS[5], idMs(dlqId), blobId) end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
return dlqId
`;

/**
 * scheduleRetry: record when a failed entry may be attempted again (and when it first failed). The entry stays in
 * the group's pending list, so nothing is lost if every consumer dies; the schedule only keeps the reclaimer away
 * until it is due.
 * KEYS[1] stream, KEYS[2] retry schedule of the group, KEYS[3] first-failure times
 * ARGV[1] group, ARGV[2] consumer, ARGV[3] entry id, ARGV[4] delay ms
 * Returns 1 when scheduled, 0 when the entry is no longer pending on this consumer.
 */
const SCHEDULE_RETRY = `
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #pending == 0 then return 0 end
${NOW_MS}
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
redis.call('HSETNX', KEYS[3], ARGV[3], tostring(now))
return 1
`;

/**
 * claimDue: take over entries whose retry is due. XCLAIM increments the delivery counter, which is what counts
 * attempts across consumers and restarts.
 * KEYS[1] stream, KEYS[2] retry schedule of the group
 * ARGV[1] group, ARGV[2] consumer, ARGV[3] max entries
 * Returns ['0-0', [[id, fields, deliveryCount], ...], [deletedId, ...], time the next retry is due (ms) or false].
 */
const CLAIM_DUE = `
${NOW_MS}
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local entries, deleted = {}, {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[2], id)
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #pending > 0 then
    local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
    if #claimed > 0 and claimed[1] and claimed[1][2] then
      entries[#entries + 1] = { claimed[1][1], claimed[1][2], pending[1][4] + 1 }
    else
      deleted[#deleted + 1] = id
    end
  end
end
local following = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return { '0-0', entries, deleted, following[2] or false }
`;

/**
 * reclaimIdle: claim entries idle for at least min-idle ms (their consumer died or stalled), skipping entries that
 * wait for a scheduled retry. With an owner in ARGV[6] it takes back only that consumer's entries (a restart under
 * a fixed consumer name re-processes its own pending history).
 * KEYS[1] stream, KEYS[2] retry schedule of the group
 * ARGV[1] group, ARGV[2] consumer, ARGV[3] min idle ms, ARGV[4] max entries, ARGV[5] start cursor, ARGV[6] owner or ''
 * Returns [nextCursor ('0-0' when the scan is complete), [[id, fields, deliveryCount], ...], [deletedId, ...]].
 */
const RECLAIM_IDLE = `
local count = tonumber(ARGV[4])
local pending
if ARGV[6] ~= '' then
  pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], ARGV[5], '+', count, ARGV[6])
else
  pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], ARGV[5], '+', count)
end
local entries, deleted = {}, {}
for _, p in ipairs(pending) do
  local id = p[1]
  if not redis.call('ZSCORE', KEYS[2], id) then
    local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], id)
    if #claimed > 0 and claimed[1] and claimed[1][2] then
      entries[#entries + 1] = { claimed[1][1], claimed[1][2], p[4] + 1 }
    else
      deleted[#deleted + 1] = id
    end
  end
end
local nextCursor = '0-0'
if #pending == count then nextCursor = '(' .. pending[#pending][1] end
return { nextCursor, entries, deleted }
`;

/**
 * extendClaims: reset the idle time of entries this consumer is still handling, so the reclaimer of another
 * consumer does not take them. Only entries still owned by this consumer are touched (JUSTID: the delivery
 * counter does not change).
 * KEYS[1] stream
 * ARGV[1] group, ARGV[2] consumer, ARGV[3..] entry ids
 * Returns how many were extended.
 */
const EXTEND_CLAIMS = `
local extended = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #pending > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    extended = extended + 1
  end
end
return extended
`;

/**
 * removeIdleConsumers: delete consumers of a group that own no pending entries and have been idle for long
 * (processes that went away). The check and the delete run in one script, so an entry cannot be delivered to a
 * consumer between them; a consumer that still owns entries is never deleted (its entries would become
 * unclaimable), it is left for the reclaimer to empty first.
 * KEYS[1] stream
 * ARGV[1] group, ARGV[2] min idle ms, ARGV[3] this consumer (never deleted)
 * Returns the names of the deleted consumers.
 */
const REMOVE_IDLE_CONSUMERS = `
local removed = {}
local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
for _, c in ipairs(consumers) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['name'] ~= ARGV[3] and tonumber(info['pending']) == 0 and tonumber(info['idle']) >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed[#removed + 1] = info['name']
  end
end
return removed
`;

/**
 * sendReply: append one reply to a client's reply stream and push its expiry forward, so streams of clients that
 * went away disappear by themselves.
 * KEYS[1] reply stream
 * ARGV[1] MAXLEN (~), ARGV[2] ttl ms, ARGV[3..] field/value pairs
 * Returns the reply entry id.
 */
const SEND_REPLY = `
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return id
`;

/**
 * redrive: move one dead letter back to its stream, atomically, so a repeated or concurrent redrive cannot
 * duplicate it. The original fields are restored; `rse.redrive.group` (when given) limits the redelivery to the
 * group that gave up, since the other groups already processed the message. A claim-check reference is indexed
 * again under the new entry's time, so its blob outlives the new entry's trimming horizon.
 * KEYS[1] dead-letter stream, KEYS[2] stream, KEYS[3] blob index of the stream
 * ARGV[1] dead-letter id, ARGV[2] target group or ''
 * Returns the new entry id, false when the dead letter is gone (already redriven or deleted), or 'missing' when it
 * holds no original payload (that entry had been trimmed before it was dead-lettered).
 */
const REDRIVE = `
${ID_MS}
local letter = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #letter == 0 then return false end
local source = letter[1][2]
local fields = {}
local blobId
for i = 1, #source, 2 do
  local name = source[i]
  if name == 'rse.dlq.missing' then return 'missing' end
  if name == 'blob' then blobId = source[i + 1] end
  if string.sub(name, 1, 8) ~= 'rse.dlq.' and string.sub(name, 1, 12) ~= 'rse.redrive.' then
    fields[#fields + 1] = name
    fields[#fields + 1] = source[i + 1]
  end
end
if ARGV[2] ~= '' then
  fields[#fields + 1] = 'rse.redrive.group'
  fields[#fields + 1] = ARGV[2]
end
fields[#fields + 1] = 'rse.redrive.from'
fields[#fields + 1] = ARGV[1]
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
if blobId then redis.call('ZADD', KEYS[3], idMs(id), blobId) end
redis.call('XDEL', KEYS[1], ARGV[1])
return id
`;

/**
 * replayCopy: copy entries into a target stream once each. The dedupe set beside the target remembers which source
 * entries were copied, so replaying the same range again (or overlapping ranges) adds nothing twice.
 * KEYS[1] target stream, KEYS[2] its dedupe set
 * ARGV[1] number of entries n; then for each entry: source key ('<stream>/<id>'), field count f, f field/values
 * Returns how many entries were added.
 */
const REPLAY_COPY = `
local added = 0
local i = 2
for _ = 1, tonumber(ARGV[1]) do
  local source = ARGV[i]
  local count = tonumber(ARGV[i + 1])
  local fields = {}
  for j = 1, count do fields[j] = ARGV[i + 1 + j] end
  i = i + 2 + count
  if redis.call('SADD', KEYS[2], source) == 1 then
    redis.call('XADD', KEYS[1], '*', unpack(fields))
    added = added + 1
  end
end
return added
`;

/**
 * registerSchema: add a schema version if the registration is still based on the latest version the caller checked
 * compatibility against (optimistic: two instances registering at once cannot both pass a check against a stale
 * latest).
 * KEYS[1] versions hash, KEYS[2] order list
 * ARGV[1] expected latest version ('' when none), ARGV[2] new version, ARGV[3] canonical schema
 * Returns 'ok', 'exists' (this version is registered already) or 'stale' (another version was registered meanwhile).
 */
const REGISTER_SCHEMA = `
local latest = redis.call('LINDEX', KEYS[2], -1)
if (latest or '') ~= ARGV[1] then return 'stale' end
if redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3]) == 0 then return 'exists' end
redis.call('RPUSH', KEYS[2], ARGV[2])
return 'ok'
`;


/**
 * publish: append one message with the options that need an atomic check: an idempotency key (a publish repeated
 * within the window returns the first entry id and adds nothing), a global sequence number, the partition layout
 * epoch (a producer that routed by an outdated layout is told to reload it instead of writing), and a claim-checked
 * payload. The payload itself is not an argument here (a Lua argument costs Redis two more copies of it, one kept in
 * the Lua heap until its GC runs): the producer SETs it with an expiry just before, in the same pipeline, and this
 * script commits it (PERSIST) together with the entry and its index record, or drops it when nothing is written. An
 * upload whose commit never comes (the producer died) expires by itself.
 * KEYS[1] stream, KEYS[2] publish record of the idempotency key, KEYS[3] sequence counter, KEYS[4] epoch of the stream,
 * KEYS[5] uploaded blob (KEYS[1] when none), KEYS[6] blob index of the stream (KEYS[1] when none)
 * ARGV[1] '1' to deduplicate, ARGV[2] window ms, ARGV[3] '1' to stamp a sequence number, ARGV[4] producer's layout
 * epoch or '', ARGV[5] trim kind ('MAXLEN', 'MINID' or ''), ARGV[6] trim threshold, ARGV[7] blob id or '',
 * ARGV[8..] field/value pairs
 * Returns {'ok', id}, {'duplicate', first id}, {'stale', current epoch} (the partition is at a newer epoch than the
 * producer's layout; a partition still at an older one is switched first, see closeEpoch) or {'blob-missing', ''}
 * (the upload expired before this commit; nothing was written).
 */
const PUBLISH = `
${ID_MS}
local blob = ARGV[7] ~= ''
if ARGV[4] ~= '' then
  local current = tonumber(redis.call('GET', KEYS[4]) or '0')
  local routed = tonumber(ARGV[4])
  if current > routed then
    if blob then redis.call('UNLINK', KEYS[5]) end
    return { 'stale', tostring(current) }
  end
  if current < routed then
    -- The layout moved on (the producer read it) but the scaler has not switched this partition yet: switch it
    -- here, exactly as closeEpoch does, so 'stale' only ever means "route again by a newer layout".
    redis.call('SET', KEYS[4], ARGV[4])
    for e = current + 1, routed do redis.call('XADD', KEYS[1], '*', 'rse.control', 'epoch', 'epoch', tostring(e)) end
  end
end
if ARGV[1] == '1' then
  local first = redis.call('GET', KEYS[2])
  if first then
    if blob then redis.call('UNLINK', KEYS[5]) end
    return { 'duplicate', first }
  end
end
if blob then
  if redis.call('EXISTS', KEYS[5]) == 0 then return { 'blob-missing', '' } end
  redis.call('PERSIST', KEYS[5])
end
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
if ARGV[3] == '1' then
  fields[#fields + 1] = 'seq'
  fields[#fields + 1] = tostring(redis.call('INCR', KEYS[3]))
end
local id
if ARGV[5] ~= '' then
  id = redis.call('XADD', KEYS[1], ARGV[5], '~', ARGV[6], '*', unpack(fields))
else
  id = redis.call('XADD', KEYS[1], '*', unpack(fields))
end
if ARGV[1] == '1' then redis.call('SET', KEYS[2], id, 'PX', ARGV[2]) end
if blob then redis.call('ZADD', KEYS[6], idMs(id), ARGV[7]) end
return { 'ok', id }
`;

/**
 * dropBlobs: remove claim-checked blobs whose entries are gone. A blob is indexed (blob id -> ms time of the newest
 * entry referring to it) beside each stream holding such an entry: its stream, and its dead-letter stream once it
 * was dead-lettered. Trimming removes entries from the head of a stream, so a member older than the stream's first
 * entry refers to nothing there any more: it leaves the index, and the blob is deleted unless the other index still
 * holds it. The head is read inside this script, so an entry written meanwhile can never lose its blob.
 * KEYS[1] stream or dead-letter stream, KEYS[2] its blob index, KEYS[3] the other blob index (dead-letter stream's
 * for a stream, the stream's for a dead-letter stream), KEYS[4..] blob keys
 * ARGV[1..] blob ids, ARGV[i] stored in KEYS[3 + i]
 * Returns {members removed from the index, blobs deleted}.
 */
const DROP_BLOBS = `
${ID_MS}
local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local firstMs = math.huge
if #head > 0 then firstMs = idMs(head[1][1]) end
local removed, deleted = 0, 0
for i = 1, #ARGV do
  local score = redis.call('ZSCORE', KEYS[2], ARGV[i])
  if score and tonumber(score) < firstMs then
    redis.call('ZREM', KEYS[2], ARGV[i])
    removed = removed + 1
    if not redis.call('ZSCORE', KEYS[3], ARGV[i]) then deleted = deleted + redis.call('UNLINK', KEYS[3 + i]) end
  end
end
return { removed, deleted }
`;

/**
 * commit: settle one handled entry together with its effects, atomically: check that this consumer still owns the
 * entry (and, for partitions, still holds the lease with the same fencing token), skip the effects when the
 * message was processed already, apply the handler's transactional writes, record the message as processed and
 * XACK. A consumer that lost its entry or lease while it was paused (GC, network) commits nothing.
 * KEYS[1] stream, KEYS[2] lease key (or KEYS[1] when none), KEYS[3] processed record (or KEYS[1] when none),
 * KEYS[4..] keys of the writes, one per write
 * ARGV[1] group, ARGV[2] consumer, ARGV[3] entry id, ARGV[4] expected lease value or '', ARGV[5] window ms or ''
 * (no processed record), ARGV[6] number of writes; then per write: command, argument count a, a arguments (the
 * write's key is KEYS[3 + i], inserted as the command's first argument)
 * Returns 'ok', 'duplicate' (acknowledged without effects), 'fenced' (lease lost; nothing done) or 'gone' (the entry
 * is no longer pending for this consumer: reclaimed or settled elsewhere; nothing done).
 */
const COMMIT = `
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then return 'fenced' end
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #pending == 0 then return 'gone' end
if ARGV[5] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
  return 'duplicate'
end
local i = 7
for w = 1, tonumber(ARGV[6]) do
  local command = ARGV[i]
  local count = tonumber(ARGV[i + 1])
  local args = { KEYS[3 + w] }
  for j = 1, count do args[#args + 1] = ARGV[i + 1 + j] end
  i = i + 2 + count
  redis.call(command, unpack(args))
end
if ARGV[5] ~= '' then redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[5]) end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
return 'ok'
`;

/**
 * acquireLease: take a free partition (or renew one's own) and get a fencing token that grows with every new owner.
 * KEYS[1] lease key, KEYS[2] fencing counter
 * ARGV[1] consumer, ARGV[2] ttl ms
 * Returns the lease value '<consumer>|<token>', or false when another consumer holds it.
 */
const ACQUIRE_LEASE = `
local current = redis.call('GET', KEYS[1])
if current then
  local owner = string.match(current, '^(.*)|')
  if owner ~= ARGV[1] then return false end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return current
end
local value = ARGV[1] .. '|' .. tostring(redis.call('INCR', KEYS[2]))
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return value
`;

/**
 * renewLease: extend a lease this consumer still holds with the same token (a partition's lease, or a consumer name's
 * presence lease, transport/consumer-name-lease.ts).
 * KEYS[1] lease key; ARGV[1] lease value, ARGV[2] ttl ms
 * Returns 1 when renewed, 0 when the lease expired or belongs to someone else.
 */
const RENEW_LEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/**
 * releaseLease: give a partition or a consumer name up (rebalance, shutdown) if this consumer still holds it.
 * KEYS[1] lease key; ARGV[1] lease value. Returns 1 when released.
 */
const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

/**
 * heartbeat: record this consumer as a live member of the group until now + ttl, drop members whose time passed,
 * and return the live ones. Times come from the Redis server's clock.
 * KEYS[1] members sorted set; ARGV[1] consumer, ARGV[2] ttl ms, ARGV[3] '1' to leave instead
 * Returns the live member names.
 */
const HEARTBEAT = `
${NOW_MS}
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

/**
 * closeEpoch: switch one partition to a new layout epoch. Writes routed by the old layout are refused from now on
 * (publish checks the epoch), and a control entry per epoch marks where the previous one ends, so a consumer knows
 * when it has processed everything written before each change (one per epoch skipped too: a partition left behind
 * by a scaler that stopped half-way still gets every mark its children wait for). Idempotent: a partition at the
 * epoch already is left alone. The publish script does the same when a producer routed by a newer layout comes first.
 * KEYS[1] stream, KEYS[2] epoch of the stream; ARGV[1] new epoch
 * Returns the last control entry id, or false when the partition was at that epoch already.
 */
const CLOSE_EPOCH = `
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local target = tonumber(ARGV[1])
if current >= target then return false end
redis.call('SET', KEYS[2], ARGV[1])
local id
for e = current + 1, target do id = redis.call('XADD', KEYS[1], '*', 'rse.control', 'epoch', 'epoch', tostring(e)) end
return id
`;

/**
 * retention: the retention step of one stream (streams.maxLen / retentionMs, see retention/). It finds the safe
 * boundary (per group: its oldest pending entry, else the id right after its last-delivered id; the smallest over all
 * groups; none without groups) and the policy boundary (entries older than retentionMs by the server's clock; for
 * maxLen, the entry after the (XLEN - maxLen) oldest, found with one XRANGE of at most ARGV[6] + 1 entries, so a stream
 * far over maxLen is trimmed over several runs; in 'safe' mode that XRANGE stops at the safe boundary, so a held-back
 * stream costs little), then trims with XTRIM MINID ~ (approximate: whole nodes, never past the cut). The per-group
 * counts are taken after the trim: one round trip serves trimming, status and loss counting.
 * KEYS[1] stream
 * ARGV[1] mode: 'safe' (trim up to min(policy, safe boundary)) or 'hard' (up to the policy boundary), ARGV[2] '1' to
 * trim ('0': report only), ARGV[3] '1' to count, for each group inside the stream, the entries after its
 * last-delivered id (loss counting; at most ARGV[6] entries read for all groups together), ARGV[4] maxLen or '',
 * ARGV[5] retentionMs or '', ARGV[6] most entries one XRANGE or XPENDING may return
 * Returns false when the stream does not exist, else {length, entries-added|false, first id|false, last id|false,
 * max-deleted-entry-id|false, now ms, policy boundary|false (false also when not known: held back by length), safe
 * boundary|false, 1 when the limits cut into what a group needs else 0, trimmed count, groups}; each group {name,
 * consumers, pending, last-delivered-id, entries-read|false, lag|false, oldest needed id, pending entries whose data is
 * gone (at most ARGV[6]), entries after last-delivered-id|false (counted only with ARGV[3] '1', for a group between the
 * first and the last entry, while the budget lasts)}. Redis 6.2 has no entries-added, entries-read, lag or
 * max-deleted-entry-id: false there.
 */
const RETENTION = `
${NOW_MS}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local function cmpId(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if #am ~= #bm then return #am < #bm and -1 or 1 end
  if am ~= bm then return am < bm and -1 or 1 end
  if #as ~= #bs then return #as < #bs and -1 or 1 end
  if as ~= bs then return as < bs and -1 or 1 end
  return 0
end
local function incDigits(s)
  local d = { string.byte(s, 1, -1) }
  for i = #d, 1, -1 do
    if d[i] < 57 then d[i] = d[i] + 1; return string.char(unpack(d)) end
    d[i] = 48
  end
  return '1' .. string.char(unpack(d))
end
local function nextId(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if seq == '18446744073709551615' then return incDigits(ms) .. '-0' end
  return ms .. '-' .. incDigits(seq)
end
local function fields(list)
  local t = {}
  for i = 1, #list, 2 do t[list[i]] = list[i + 1] end
  return t
end
local scanMax = tonumber(ARGV[6])
local info = fields(redis.call('XINFO', 'STREAM', KEYS[1]))
local length = tonumber(info['length'])
local firstId = info['first-entry'] and info['first-entry'][1] or false
local lastId = info['last-entry'] and info['last-entry'][1] or false
local found, safe = {}, false
for _, raw in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local g = fields(raw)
  g['pending'] = tonumber(g['pending'])
  g['needed'] = nextId(g['last-delivered-id'])
  if g['pending'] > 0 then g['needed'] = redis.call('XPENDING', KEYS[1], g['name'])[2] end
  if not safe or cmpId(g['needed'], safe) < 0 then safe = g['needed'] end
  found[#found + 1] = g
end
local policy, held = false, false
if ARGV[5] ~= '' then policy = tostring(now - tonumber(ARGV[5])) .. '-0' end
if ARGV[4] ~= '' and length > tonumber(ARGV[4]) then
  local excess = length - tonumber(ARGV[4])
  local k = math.min(excess, scanMax)
  local r
  if ARGV[1] == 'safe' and safe then
    -- Only entries below the safe boundary may go: when a group holds retention back, this reads just those few.
    r = redis.call('XRANGE', KEYS[1], '-', '(' .. safe, 'COUNT', k + 1)
  else
    r = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', k + 1)
  end
  local lenCut = false
  if #r == k + 1 then lenCut = r[k + 1][1]
  elseif #r < excess then held = true
  else lenCut = safe end
  if lenCut and (not policy or cmpId(lenCut, policy) > 0) then policy = lenCut end
end
if safe and policy and cmpId(safe, policy) < 0 then held = true end
local cut = false
if ARGV[2] == '1' and ARGV[1] == 'hard' then cut = policy end
if ARGV[2] == '1' and ARGV[1] == 'safe' then
  cut = policy
  if held then cut = safe end
end
local trimmed = 0
if cut and firstId and cmpId(cut, firstId) > 0 then
  trimmed = redis.call('XTRIM', KEYS[1], 'MINID', '~', cut)
  if trimmed > 0 then
    length = redis.call('XLEN', KEYS[1])
    local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
    firstId = head[1] and head[1][1] or false
  end
end
local groups = {}
local budget = scanMax
for _, g in ipairs(found) do
  local last = g['last-delivered-id']
  local gone = 0
  if g['pending'] > 0 and not firstId then
    gone = math.min(g['pending'], scanMax)
  elseif g['pending'] > 0 and cmpId(g['needed'], firstId) < 0 then
    gone = #redis.call('XPENDING', KEYS[1], g['name'], '-', '(' .. firstId, scanMax)
  end
  local after = false
  if ARGV[3] == '1' and budget > 0 and firstId and cmpId(last, firstId) >= 0 and cmpId(last, lastId) < 0 then
    local r = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', budget + 1)
    if #r <= budget then after = #r end
    budget = budget - #r
  end
  groups[#groups + 1] = { g['name'], tonumber(g['consumers']), g['pending'], last, g['entries-read'] or false,
    g['lag'] or false, g['needed'], gone, after }
end
return { length, info['entries-added'] or false, firstId, lastId, info['max-deleted-entry-id'] or false, now, policy, safe,
  held and 1 or 0, trimmed, groups }
`;

const SCRIPTS = {
  rseDeadLetter: { numberOfKeys: 5, lua: DEAD_LETTER },
  rseScheduleRetry: { numberOfKeys: 3, lua: SCHEDULE_RETRY },
  rseRedrive: { numberOfKeys: 3, lua: REDRIVE },
  rseClaimDue: { numberOfKeys: 2, lua: CLAIM_DUE },
  rseReclaimIdle: { numberOfKeys: 2, lua: RECLAIM_IDLE },
  rseExtendClaims: { numberOfKeys: 1, lua: EXTEND_CLAIMS },
  rseSendReply: { numberOfKeys: 1, lua: SEND_REPLY },
  rseRemoveIdleConsumers: { numberOfKeys: 1, lua: REMOVE_IDLE_CONSUMERS },
  rseReplayCopy: { numberOfKeys: 2, lua: REPLAY_COPY },
  rseRegisterSchema: { numberOfKeys: 2, lua: REGISTER_SCHEMA },
  rsePublish: { numberOfKeys: 6, lua: PUBLISH },
  rseAcquireLease: { numberOfKeys: 2, lua: ACQUIRE_LEASE },
  rseRenewLease: { numberOfKeys: 1, lua: RENEW_LEASE },
  rseReleaseLease: { numberOfKeys: 1, lua: RELEASE_LEASE },
  rseHeartbeat: { numberOfKeys: 1, lua: HEARTBEAT },
  rseCloseEpoch: { numberOfKeys: 2, lua: CLOSE_EPOCH },
  rseRetention: { numberOfKeys: 1, lua: RETENTION },
  // Variable key count: the first argument is the number of keys.
  rseCommit: { numberOfKeys: undefined, lua: COMMIT },
  rseDropBlobs: { numberOfKeys: undefined, lua: DROP_BLOBS },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptArg = string | number | Buffer;

/** A connection with the library's scripts defined on it (EVALSHA, falling back to EVAL after a Redis restart). */
export type ScriptedRedis = Redis & { [K in ScriptName]: (...args: ScriptArg[]) => Promise<unknown> };

/** Defines every script on a connection; idempotent per connection. */
export function defineScripts(redis: Redis): ScriptedRedis {
  for (const [name, { numberOfKeys, lua }] of Object.entries(SCRIPTS)) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
  }
  return redis as ScriptedRedis;
}
