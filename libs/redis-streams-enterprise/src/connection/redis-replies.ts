/**
 * Parsers from raw Redis replies to typed objects. Nothing else in the library indexes into reply arrays, so the
 * wire protocol (RESP2 arrays today, RESP3 maps if ioredis switches) is a one-file concern.
 */

/** One stream entry: id and its field/value pairs. */
export interface StreamEntry {
  readonly id: string;
  readonly fields: Record<string, string>;
}

/** An entry handed to a consumer, with how often Redis has delivered it. */
export interface DeliveredEntry extends StreamEntry {
  readonly stream: string;
  readonly deliveryCount: number;
}

/** Entries claimed by a script, and the ids whose payload had already been trimmed away. */
export interface ClaimResult {
  readonly entries: DeliveredEntry[];
  readonly deletedIds: string[];
  readonly nextCursor: string;
  /** claimDue only: when the stream's next scheduled retry is due (ms, Redis clock), or null when none is left. */
  readonly nextDueMs?: number | null;
}

/** One consumer group as reported by XINFO GROUPS. */
export interface GroupInfo {
  readonly name: string;
  readonly consumers: number;
  readonly pending: number;
  readonly lastDeliveredId: string;
  /** Entries not yet delivered to the group; null when Redis cannot tell (after some deletions). */
  readonly lag: number | null;
}

type Raw = unknown;

function asArray(value: Raw): Raw[] {
  if (Array.isArray(value)) return value;
  if (value instanceof Map) return [...value.entries()].flat();
  if (value && typeof value === 'object') return Object.entries(value).flat();
  return [];
}

/**
 * A flat [f1, v1, f2, v2, ...] list (or a map) into a record. A plain object (V8 keeps null-prototype objects in
 * slow dictionary mode, and this runs for every entry); names that could reach a prototype are skipped.
 */
export function parseFields(raw: Raw): Record<string, string> {
  const list = asArray(raw);
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = String(list[i]);
    if (name === '__proto__' || name === 'constructor' || name === 'prototype') continue;
    fields[name] = String(list[i + 1]);
  }
  return fields;
}

/** `[id, fields]` into an entry; null when the payload is gone (a pending entry whose data was trimmed). */
export function parseEntry(raw: Raw): StreamEntry | null {
  const [id, fields] = asArray(raw);
  if (typeof id !== 'string') return null;
  if (fields === null || fields === undefined) return null;
  return { id, fields: parseFields(fields) };
}

/**
 * XREADGROUP reply of new entries (`>`), straight into delivered entries (delivery count 1); ids whose payload is
 * gone are returned apart. One pass, no intermediate objects: this runs for every message.
 */
export function parseNewEntries(raw: Raw, onStream: (stream: string, entries: DeliveredEntry[], deletedIds: string[]) => void): void {
  if (!Array.isArray(raw)) {
    for (const { stream, entries } of parseReadGroupReply(raw)) {
      const delivered: DeliveredEntry[] = [];
      const deleted: string[] = [];
      for (const e of entries) {
        if ('deleted' in e) deleted.push(e.id);
        else delivered.push({ stream, id: e.id, fields: e.fields, deliveryCount: 1 });
      }
      onStream(stream, delivered, deleted);
    }
    return;
  }
  for (const item of raw as Raw[][]) {
    const stream = String(item[0]);
    const delivered: DeliveredEntry[] = [];
    const deleted: string[] = [];
    for (const e of item[1] as Raw[][]) {
      const id = String(e[0]);
      if (e[1] === null || e[1] === undefined) deleted.push(id);
      else delivered.push({ stream, id, fields: parseFields(e[1]), deliveryCount: 1 });
    }
    onStream(stream, delivered, deleted);
  }
}

/** XREADGROUP reply: `[[stream, [[id, fields], ...]], ...]` or null on timeout. */
export function parseReadGroupReply(raw: Raw): { stream: string; entries: (StreamEntry | { id: string; deleted: true })[] }[] {
  if (raw === null || raw === undefined) return [];
  const out: { stream: string; entries: (StreamEntry | { id: string; deleted: true })[] }[] = [];
  const streams = Array.isArray(raw) ? raw : asArray(raw).reduce<Raw[][]>((acc, v, i, all) => {
    if (i % 2 === 0) acc.push([v, all[i + 1]]);
    return acc;
  }, []);
  for (const item of streams) {
    const [stream, rawEntries] = asArray(item);
    const entries = asArray(rawEntries).map((e) => {
      const parsed = parseEntry(e);
      return parsed ?? { id: String(asArray(e)[0]), deleted: true as const };
    });
    out.push({ stream: String(stream), entries });
  }
  return out;
}

/** Reply of the claim scripts: `[nextCursor, [[id, fields, deliveryCount], ...], [deletedId, ...]]`. */
export function parseClaimReply(raw: Raw, stream: string): ClaimResult {
  const [cursor, rawEntries, rawDeleted, nextDue] = asArray(raw);
  const entries: DeliveredEntry[] = [];
  for (const item of asArray(rawEntries)) {
    const [id, fields, count] = asArray(item);
    entries.push({ stream, id: String(id), fields: parseFields(fields), deliveryCount: Number(count) || 1 });
  }
  const nextDueMs = nextDue === undefined ? undefined : nextDue === null || nextDue === false ? null : Number(nextDue);
  return { entries, deletedIds: asArray(rawDeleted).map(String), nextCursor: String(cursor ?? '0-0'), nextDueMs };
}

/** XINFO GROUPS reply. */
export function parseGroupsInfo(raw: Raw): GroupInfo[] {
  return asArray(raw).map((group) => {
    const f = parseFieldsLoose(group);
    return {
      name: String(f.name),
      consumers: Number(f.consumers ?? 0),
      pending: Number(f.pending ?? 0),
      lastDeliveredId: String(f['last-delivered-id'] ?? '0-0'),
      lag: f.lag === null || f.lag === undefined ? null : Number(f.lag),
    };
  });
}

/** One consumer of a group as reported by XINFO CONSUMERS. */
export interface ConsumerInfo {
  readonly name: string;
  /** Entries delivered to it and not yet acknowledged. */
  readonly pending: number;
  /** Milliseconds since it last interacted with Redis (read, claim). */
  readonly idleMs: number;
  /** Milliseconds since its last successful read or claim (Redis 7.2+; null before). */
  readonly inactiveMs: number | null;
}

/** XINFO CONSUMERS reply. */
export function parseConsumersInfo(raw: Raw): ConsumerInfo[] {
  return asArray(raw).map((consumer) => {
    const f = parseFieldsLoose(consumer);
    const inactive = f.inactive === undefined || f.inactive === null ? null : Number(f.inactive);
    // Redis 7.2 reports -1 for a consumer that never read successfully.
    return { name: String(f.name), pending: Number(f.pending ?? 0), idleMs: Number(f.idle ?? 0), inactiveMs: inactive !== null && inactive < 0 ? null : inactive };
  });
}

/** One consumer group of a stream, as the retention script (connection/scripts.ts) reports it. */
export interface RetentionGroup {
  readonly name: string;
  readonly consumers: number;
  readonly pending: number;
  readonly lastDeliveredId: string;
  /** Entries Redis counts as read by the group (7.0+); null on 6.2 or when Redis lost track (XGROUP SETID, XDEL). */
  readonly entriesRead: number | null;
  /** Redis' lag: entries-added minus entries-read (7.0+), so it also counts entries trimmed before the group read them. */
  readonly lag: number | null;
  /** The oldest entry the group still needs: its oldest pending entry, or the id right after its last-delivered id. */
  readonly neededId: string;
  /** Pending entries of the group whose data is gone (below the stream's first entry), at most the scan limit. */
  readonly pendingGone: number;
  /** Entries after the last-delivered id, when counted (group inside the stream, loss counting asked, within limit). */
  readonly unreadInStream: number | null;
}

/** Reply of the retention script: the stream's counters, the boundaries it found and what it trimmed. */
export interface RetentionReply {
  readonly length: number;
  /** XINFO STREAM entries-added (7.0+), null on 6.2. */
  readonly entriesAdded: number | null;
  readonly firstId: string | null;
  readonly lastId: string | null;
  /** XINFO STREAM max-deleted-entry-id (7.0+): '0-0' unless XDEL removed an entry. */
  readonly maxDeletedId: string | null;
  /** The Redis server's clock (ms). */
  readonly nowMs: number;
  /** First id the limits (maxLen, retentionMs) keep; null when they delete nothing, or when not known (held back by length). */
  readonly policyBoundaryId: string | null;
  /** Smallest id some group still needs; null when the stream has no group. */
  readonly safeBoundaryId: string | null;
  /** The limits cut into entries some group still needs (held back in 'safe' mode, deleted in 'hard' mode). */
  readonly cutsIntoGroups: boolean;
  readonly trimmed: number;
  readonly groups: readonly RetentionGroup[];
}

const idOrNull = (value: Raw): string | null => (value === null || value === undefined || value === false ? null : String(value));
const numberOrNull = (value: Raw): number | null => (value === null || value === undefined || value === false ? null : Number(value));

/** Reply of the retention script; null when the stream does not exist. */
export function parseRetentionReply(raw: Raw): RetentionReply | null {
  if (raw === null || raw === undefined || raw === false) return null;
  const [length, added, first, last, maxDeleted, now, policy, safe, held, trimmed, groups] = asArray(raw);
  return {
    length: Number(length ?? 0),
    entriesAdded: numberOrNull(added),
    firstId: idOrNull(first),
    lastId: idOrNull(last),
    maxDeletedId: idOrNull(maxDeleted),
    nowMs: Number(now),
    policyBoundaryId: idOrNull(policy),
    safeBoundaryId: idOrNull(safe),
    cutsIntoGroups: Number(held) === 1,
    trimmed: Number(trimmed ?? 0),
    groups: asArray(groups).map((item) => {
      const [name, consumers, pending, lastDelivered, entriesRead, lag, needed, gone, after] = asArray(item);
      return {
        name: String(name),
        consumers: Number(consumers ?? 0),
        pending: Number(pending ?? 0),
        lastDeliveredId: String(lastDelivered),
        entriesRead: numberOrNull(entriesRead),
        lag: numberOrNull(lag),
        neededId: String(needed),
        pendingGone: Number(gone ?? 0),
        unreadInStream: numberOrNull(after),
      };
    }),
  };
}

/** XPENDING summary form: how many entries are pending and the smallest pending id (null when none is). */
export function parsePendingSummary(raw: Raw): { count: number; minId: string | null } {
  const [count, minId] = asArray(raw);
  return { count: Number(count ?? 0), minId: minId === null || minId === undefined ? null : String(minId) };
}

/** XPENDING summary form: how many entries each consumer holds. */
export function parsePendingOwners(raw: Raw): Map<string, number> {
  const owners = new Map<string, number>();
  const [, , , consumers] = asArray(raw);
  for (const item of asArray(consumers ?? [])) {
    const [name, count] = asArray(item);
    owners.set(String(name), Number(count));
  }
  return owners;
}

/** XINFO STREAM: length and, on Redis 7+, how many entries were ever added (null before 7.0). */
export function parseStreamInfo(raw: Raw): { length: number; entriesAdded: number | null; lastGeneratedId: string | null } {
  const f = parseFieldsLoose(raw);
  const last = f['last-generated-id'];
  return {
    length: Number(f.length ?? 0),
    entriesAdded: f['entries-added'] === undefined ? null : Number(f['entries-added']),
    lastGeneratedId: typeof last === 'string' ? last : null,
  };
}

/** `TIME` reply: the Redis server's clock in milliseconds. */
export function parseTimeMs(raw: Raw): number {
  const [seconds, micros] = asArray(raw);
  return Number(seconds) * 1_000 + Math.floor(Number(micros) / 1_000);
}

function parseFieldsLoose(raw: Raw): Record<string, unknown> {
  const list = asArray(raw);
  const out: Record<string, unknown> = Object.create(null);
  for (let i = 0; i + 1 < list.length; i += 2) out[String(list[i])] = list[i + 1];
  return out;
}

/** `XRANGE <stream> - + COUNT 1` reply: the id of the stream's first entry, or undefined when it has none. */
export function firstEntryId(raw: Raw): string | undefined {
  const [first] = asArray(raw);
  if (first === undefined) return undefined;
  const [id] = asArray(first);
  return typeof id === 'string' ? id : undefined;
}

/** Reply of the dropBlobs script: `[members removed from the index, blobs deleted]`. */
export function parseDropBlobsReply(raw: Raw): { unindexed: number; deleted: number } {
  const [unindexed, deleted] = asArray(raw);
  return { unindexed: Number(unindexed ?? 0), deleted: Number(deleted ?? 0) };
}

/** XREAD reply of a single stream (reply listener). */
export function parseReadReply(raw: Raw): StreamEntry[] {
  return parseReadGroupReply(raw).flatMap((s) => s.entries.filter((e): e is StreamEntry => !('deleted' in e)));
}

/** One entry as a mirror copies it: id and the field/value list exactly as stored (order and repeats kept). */
export interface RawStreamEntry {
  readonly id: string;
  readonly fields: readonly string[];
}

/** XREAD reply of several streams, keeping each entry's fields as a flat list (StreamMirror copies them unchanged). */
export function parseRawReadReply(raw: Raw): { stream: string; entries: RawStreamEntry[] }[] {
  if (raw === null || raw === undefined) return [];
  const streams = Array.isArray(raw) ? raw : asArray(raw).reduce<Raw[][]>((acc, v, i, all) => {
    if (i % 2 === 0) acc.push([v, all[i + 1]]);
    return acc;
  }, []);
  return streams.map((item) => {
    const [stream, rawEntries] = asArray(item);
    const entries: RawStreamEntry[] = [];
    for (const e of asArray(rawEntries)) {
      const [id, fields] = asArray(e);
      if (typeof id === 'string' && fields !== null && fields !== undefined) entries.push({ id, fields: asArray(fields).map(String) });
    }
    return { stream: String(stream), entries };
  });
}

/** Reply of the mirrorAppend script: copied (with the running total), or stale (with the stored checkpoint). */
export function parseMirrorAppendReply(raw: Raw): { outcome: 'ok'; copied: number } | { outcome: 'stale'; storedId: string } {
  const [outcome, value] = asArray(raw);
  if (outcome === 'ok') return { outcome: 'ok', copied: Number(value ?? 0) };
  return { outcome: 'stale', storedId: typeof value === 'string' ? value : '' };
}

/** The mirror checkpoint hash (StreamKeys.mirrorCheckpointOf): last source id covered, its ordinal, entries copied. */
export function parseMirrorCheckpoint(raw: Raw): { id: string; ordinal: number | null; copied: number } | null {
  const f = parseFieldsLoose(raw);
  if (typeof f.id !== 'string' || f.id === '') return null;
  const ordinal = typeof f.n === 'string' && /^\d{1,20}$/.test(f.n) ? Number(f.n) : null;
  return { id: f.id, ordinal, copied: Number(f.copied ?? 0) || 0 };
}
