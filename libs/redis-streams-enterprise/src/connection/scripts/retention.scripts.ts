/** Retention of a stream (streams.maxLen / retentionMs): safe or hard trimming and what it costs each group. See ../scripts.ts for the rules every script follows. */
import { NOW_MS } from './lua-helpers.js';

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
export const RETENTION = `
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
