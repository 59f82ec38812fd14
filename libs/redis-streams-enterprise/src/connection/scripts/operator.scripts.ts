/** Operator actions on stored messages: redrive a dead letter, copy for a replay, register a schema version. See ../scripts.ts for the rules every script follows. */
import { ID_MS } from './lua-helpers.js';

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
export const REDRIVE = `
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
export const REPLAY_COPY = `
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
export const REGISTER_SCHEMA = `
local latest = redis.call('LINDEX', KEYS[2], -1)
if (latest or '') ~= ARGV[1] then return 'stale' end
if redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3]) == 0 then return 'exists' end
redis.call('RPUSH', KEYS[2], ARGV[2])
return 'ok'
`;
