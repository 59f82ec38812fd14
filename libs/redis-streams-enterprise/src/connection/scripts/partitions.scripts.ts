/** Partition ownership and layout: leases with fencing tokens, group membership, the switch to a new layout epoch. See ../scripts.ts for the rules every script follows. */
import { NOW_MS } from './lua-helpers.js';

/**
 * acquireLease: take a free partition (or renew one's own) and get a fencing token that grows with every new owner.
 * KEYS[1] lease key, KEYS[2] fencing counter
 * ARGV[1] consumer, ARGV[2] ttl ms
 * Returns the lease value '<consumer>|<token>', or false when another consumer holds it.
 */
export const ACQUIRE_LEASE = `
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
export const RENEW_LEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/**
 * releaseLease: give a partition or a consumer name up (rebalance, shutdown) if this consumer still holds it.
 * KEYS[1] lease key; ARGV[1] lease value. Returns 1 when released.
 */
export const RELEASE_LEASE = `
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
export const HEARTBEAT = `
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
export const CLOSE_EPOCH = `
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local target = tonumber(ARGV[1])
if current >= target then return false end
redis.call('SET', KEYS[2], ARGV[1])
local id
for e = current + 1, target do id = redis.call('XADD', KEYS[1], '*', 'rse.control', 'epoch', 'epoch', tostring(e)) end
return id
`;

/**
 * swapLayout: replace a topic's partition layout only if it is still at the epoch the caller read (compare and set),
 * so two scalers never both apply a change to the same layout.
 * KEYS[1] layout of the topic; ARGV[1] epoch the caller read, ARGV[2] new layout (JSON)
 * Returns 1 when swapped, 0 when the layout had changed meanwhile.
 */
export const SWAP_LAYOUT = `
local current = redis.call('GET', KEYS[1])
local epoch = -1
if current then epoch = cjson.decode(current)['epoch'] end
if epoch ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`;
