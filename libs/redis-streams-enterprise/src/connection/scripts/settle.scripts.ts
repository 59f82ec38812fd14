/** How a delivered entry is settled: acknowledged with its effects (commit), retried later, reclaimed, or dead-lettered. See ../scripts.ts for the rules every script follows. */
import { NOW_MS, ID_MS } from './lua-helpers.js';

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
export const DEAD_LETTER = `
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
export const SCHEDULE_RETRY = `
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
export const CLAIM_DUE = `
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
 * a fixed consumer name re-processes its own pending history). With a lease in ARGV[7] (taking over an owned
 * partition) it claims nothing unless the partition's lease still holds that value: a consumer that lost the partition
 * must not take entries from the new owner, whose later entries of a key would then overtake them.
 * KEYS[1] stream, KEYS[2] retry schedule of the group, KEYS[3] the partition's lease (or the stream when unfenced)
 * ARGV[1] group, ARGV[2] consumer, ARGV[3] min idle ms, ARGV[4] max entries, ARGV[5] start cursor, ARGV[6] owner or '',
 * ARGV[7] expected lease value or ''
 * Returns [nextCursor ('0-0' when the scan is complete, 'fenced' when the lease is not held), [[id, fields,
 * deliveryCount], ...], [deletedId, ...]].
 */
export const RECLAIM_IDLE = `
if ARGV[7] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[7] then return { 'fenced', {}, {} } end
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
export const EXTEND_CLAIMS = `
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
export const REMOVE_IDLE_CONSUMERS = `
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
export const COMMIT = `
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
