/** Writing messages: the atomic publish, replies to requests, and the clean-up of claim-checked payloads. See ../scripts.ts for the rules every script follows. */
import { ID_MS } from './lua-helpers.js';

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
export const PUBLISH = `
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
 * publishBatch: append several messages to one stream in one call, each with the checks of publish (its own
 * idempotency key, the layout epoch it was routed by) and, for a topic under global order, the next sequence number.
 * The producer sends the scripted emits of one event-loop turn as one batch (producer/publish-batcher.ts): one round
 * trip and one script run instead of one per message. Entries are appended in argument order (the order of the emits).
 * A refused XADD (redis.pcall: an error reply, not a script error) ends the batch: it and the messages after it are
 * reported as errors and nothing after it is written, so a caller that retries them keeps their order. Claim-checked
 * payloads are not batched (publish above commits their upload).
 * KEYS[1] stream, KEYS[2] sequence counter, KEYS[3] epoch of the stream, KEYS[4..] publish records of the messages'
 * idempotency keys
 * ARGV[1] window ms, ARGV[2] '1' to stamp sequence numbers, ARGV[3] trim kind ('MAXLEN', 'MINID' or ''), ARGV[4] trim
 * threshold, then per message: index in KEYS of its publish record (0: no idempotency key), its layout epoch or '', the
 * number of field/value arguments that follow, the field/value pairs
 * Returns a flat list of status, value per message: 'ok' id, 'duplicate' first id, 'stale' current epoch (as publish),
 * or 'error' reason.
 */
export const PUBLISH_BATCH = `
local replies = {}
local failed = nil
local a = 5
while a <= #ARGV do
  local recordAt, epoch, count = tonumber(ARGV[a]), ARGV[a + 1], tonumber(ARGV[a + 2])
  local first, last = a + 3, a + 2 + count
  a = last + 1
  local status, value = nil, nil
  if failed then
    status, value = 'error', 'not written: an earlier message of the batch was refused (' .. failed .. ')'
  end
  if not status and epoch ~= '' then
    local current = tonumber(redis.call('GET', KEYS[3]) or '0')
    local routed = tonumber(epoch)
    if current > routed then
      status, value = 'stale', tostring(current)
    elseif current < routed then
      redis.call('SET', KEYS[3], epoch)
      for e = current + 1, routed do redis.call('XADD', KEYS[1], '*', 'rse.control', 'epoch', 'epoch', tostring(e)) end
    end
  end
  if not status and recordAt > 0 then
    local seen = redis.call('GET', KEYS[recordAt])
    if seen then status, value = 'duplicate', seen end
  end
  if not status then
    -- The fields straight from ARGV (no copy into a table of their own); the sequence number, when stamped, first.
    local added
    if ARGV[2] == '1' then
      local seq = tostring(redis.call('INCR', KEYS[2]))
      if ARGV[3] ~= '' then
        added = redis.pcall('XADD', KEYS[1], ARGV[3], '~', ARGV[4], '*', 'seq', seq, unpack(ARGV, first, last))
      else
        added = redis.pcall('XADD', KEYS[1], '*', 'seq', seq, unpack(ARGV, first, last))
      end
    elseif ARGV[3] ~= '' then
      added = redis.pcall('XADD', KEYS[1], ARGV[3], '~', ARGV[4], '*', unpack(ARGV, first, last))
    else
      added = redis.pcall('XADD', KEYS[1], '*', unpack(ARGV, first, last))
    end
    if type(added) == 'table' and added.err then
      failed = added.err
      status, value = 'error', added.err
    else
      if recordAt > 0 then redis.call('SET', KEYS[recordAt], added, 'PX', ARGV[1]) end
      status, value = 'ok', added
    end
  end
  replies[#replies + 1] = status
  replies[#replies + 1] = value
end
return replies
`;

/**
 * sendReply: append one reply to a client's reply stream and push its expiry forward, so streams of clients that
 * went away disappear by themselves.
 * KEYS[1] reply stream
 * ARGV[1] MAXLEN (~), ARGV[2] ttl ms, ARGV[3..] field/value pairs
 * Returns the reply entry id.
 */
export const SEND_REPLY = `
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return id
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
export const DROP_BLOBS = `
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
