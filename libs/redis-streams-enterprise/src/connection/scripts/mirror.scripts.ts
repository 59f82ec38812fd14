/** Cross-region replication (replication/): copy a batch of another region's entries. See ../scripts.ts for the rules every script follows. */
import { ID_MS } from './lua-helpers.js';

/**
 * mirrorAppend: append a batch of entries copied from a source region's stream AND move the mirror's checkpoint, in
 * one step, so a crash between the two is impossible. The batch is refused unless the stored checkpoint is exactly the
 * one the mirror read after (compare-and-set): a restarted mirror, a second mirror of the same topics, or a command
 * re-sent after a lost reply therefore cannot append anything twice. Every id is checked before the first write (a
 * script's writes are not rolled back by a later error). Each entry gets a new id here (`*`): this region's own
 * producers write to the same stream, so source ids cannot be reused.
 * A claim-checked entry (`blob` field) travels with its payload: the last entry of a batch may bring its blob, stored
 * under the target stream and indexed under the copy's time (as the publish script does), so the copy's reference
 * resolves in this region and the blob outlives the copy's trimming horizon.
 * Variable key count (first argument): KEYS[1] target stream, KEYS[2] checkpoint hash (StreamKeys.mirrorCheckpointOf),
 * and with a blob: KEYS[3] the target stream's blob index, KEYS[4] the blob's key beside the target stream
 * ARGV[1] checkpoint the batch was read after ('' when none), ARGV[2] new checkpoint (the last source id read, copied
 * or skipped), ARGV[3] ordinal of that id in the source (entries added up to it), ARGV[4] number of entries n,
 * ARGV[5] blob id of the last entry ('' when none), ARGV[6] the blob's JSON ('' when none); then for each entry:
 * source id, field count f, f field/values
 * Returns {'ok', entries copied in total (all batches)} or {'stale', the stored checkpoint or ''}.
 */
export const MIRROR_APPEND = `
${ID_MS}
local function after(a, b)
  if b == '' then return true end
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am or not bm then return redis.error_reply('ERR mirrorAppend: not an entry id') end
  if #am ~= #bm then return #am > #bm end
  if am ~= bm then return am > bm end
  if #as ~= #bs then return #as > #bs end
  return as > bs
end
local stored = redis.call('HGET', KEYS[2], 'id') or ''
if stored ~= ARGV[1] then return {'stale', stored} end
if after(ARGV[2], stored) ~= true then return redis.error_reply('ERR mirrorAppend: the checkpoint must move forward') end
local batch = {}
local last = stored
local i = 7
for n = 1, tonumber(ARGV[4]) do
  local id = ARGV[i]
  local count = tonumber(ARGV[i + 1])
  if after(id, last) ~= true or after(id, ARGV[2]) == true then
    return redis.error_reply('ERR mirrorAppend: entries must be in id order, after the checkpoint and up to the new one')
  end
  batch[n] = {i + 2, i + 1 + count}
  last = id
  i = i + 2 + count
end
for n, range in ipairs(batch) do
  local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, range[1], range[2]))
  if n == #batch and ARGV[5] ~= '' and KEYS[4] then
    redis.call('SET', KEYS[4], ARGV[6])
    redis.call('ZADD', KEYS[3], idMs(id), ARGV[5])
  end
end
redis.call('HSET', KEYS[2], 'id', ARGV[2], 'n', ARGV[3])
local copied = redis.call('HINCRBY', KEYS[2], 'copied', #batch)
return {'ok', copied}
`;
