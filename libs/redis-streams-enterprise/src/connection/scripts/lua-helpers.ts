/** Lua fragments shared by several scripts. */

/** Common helper: the server's time in milliseconds. */
export const NOW_MS = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** Common helper: the milliseconds part of a stream entry id (the score of claim-check blob indexes). */
export const ID_MS = `local function idMs(id) return tonumber(string.match(id, '^(%d+)')) end`;
