import type { Cluster, Redis } from 'ioredis';
import { parseEntry, parseGroupsInfo, type StreamEntry } from '../connection/redis-replies.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { errorText } from '../observability/log-format.js';
import type { PayloadCodec } from '../payload-codec/payload-codec.js';
import { decodeMessage, parseJsonSafely, validateHeaders } from '../wire/envelope.js';
import type { SubjectLocation } from '../config/compliance.options.js';
import { classifyKey, type CatalogStream } from './stream-catalog.js';
import { isAboutSubject, type SubjectLocator } from './subject-locator.js';

/** Entries read per XRANGE page (and deleted per MULTI). */
export const ERASURE_PAGE = 200;
/** Unreadable entries listed in a report, at most (all are counted). */
export const MAX_UNREADABLE_LISTED = 100;

/** What the erasure did to one stream. */
export interface StreamErasure {
  readonly stream: string;
  readonly kind: 'live' | 'dead-letter';
  /** Entries of the subject found (deleted unless it was a dry run). */
  readonly matched: number;
  /** Of them, replay copies (entries with `rse.replay.from`). */
  readonly replayCopies: number;
  /** Entries deleted (XDEL). */
  readonly deleted: number;
  /** Pending entries of consumer groups that pointed at deleted entries, acknowledged (XACK). */
  readonly pendingAcked: number;
}

/** An entry whose subject could not be checked (its payload is encrypted with an unknown key, gone, or malformed). */
export interface UnreadableEntry {
  readonly stream: string;
  readonly entryId: string;
  readonly reason: string;
}

/** The outcome of one pass over the streams. */
export interface ErasurePass {
  readonly streamsScanned: number;
  readonly entriesScanned: number;
  readonly streams: StreamErasure[];
  /** Claim-check blobs of deleted entries removed. */
  readonly blobsDeleted: number;
  readonly unreadableCount: number;
  readonly unreadable: UnreadableEntry[];
}

interface Match {
  readonly id: string;
  readonly copy: boolean;
  /** Claim-check blob: its key and the stream whose blob indexes list it. */
  readonly blob?: { readonly key: string; readonly owner: string; readonly id: string };
}

type Verdict = { readonly match: Match } | { readonly unreadable: string } | null;

/** What one pass needs: the connection, keys, locations, the codec that opens encrypted payloads. */
export interface ErasureContext {
  readonly redis: Redis | Cluster;
  readonly keys: StreamKeys;
  readonly locator: SubjectLocator;
  readonly codec: PayloadCodec;
  readonly maxPayloadBytes: number;
  readonly subject: string;
  readonly topics?: (pattern: string) => boolean;
}

/**
 * One pass over `streams`: every entry is read (XRANGE pages), the subject looked up where its topic keeps it, and,
 * unless `erase` is false, the entries of the subject deleted page by page with their pending entries in every group
 * and their retry records. Their claim-check blobs are deleted at the end of the pass: a blob may be shared by an
 * entry, its dead letter and its replay copies, and each of them is read (to find its subject) through it.
 */
export async function erasurePass(ctx: ErasureContext, streams: readonly CatalogStream[], erase: boolean): Promise<ErasurePass> {
  const pass: { -readonly [K in keyof ErasurePass]: ErasurePass[K] } = { streamsScanned: 0, entriesScanned: 0, streams: [], blobsDeleted: 0, unreadableCount: 0, unreadable: [] };
  const blobs = new Map<string, NonNullable<Match['blob']>>();
  for (const stream of streams) {
    const tally = { stream: stream.key, kind: stream.kind, matched: 0, replayCopies: 0, deleted: 0, pendingAcked: 0 };
    const groups = erase && stream.kind === 'live' ? await groupsOf(ctx.redis, stream.key) : [];
    let start = '-';
    for (;;) {
      const page = (await ctx.redis.xrange(stream.key, start, '+', 'COUNT', ERASURE_PAGE)).map(parseEntry).filter((e): e is StreamEntry => e !== null);
      const matches: Match[] = [];
      for (const entry of page) {
        const verdict = await judge(ctx, stream, entry);
        if (verdict === null) continue;
        if ('unreadable' in verdict) {
          pass.unreadableCount++;
          if (pass.unreadable.length < MAX_UNREADABLE_LISTED) pass.unreadable.push({ stream: stream.key, entryId: entry.id, reason: verdict.unreadable });
        } else matches.push(verdict.match);
      }
      pass.entriesScanned += page.length;
      tally.matched += matches.length;
      tally.replayCopies += matches.filter((m) => m.copy).length;
      if (erase && matches.length > 0) await deleteMatches(ctx, stream.key, groups, matches, tally);
      for (const match of matches) if (match.blob) blobs.set(match.blob.key, match.blob);
      if (page.length < ERASURE_PAGE) break;
      start = `(${page.at(-1)!.id}`;
    }
    pass.streamsScanned++;
    if (tally.matched > 0) pass.streams.push(tally);
  }
  if (erase) pass.blobsDeleted = await deleteBlobs(ctx, blobs.values());
  return pass;
}

async function groupsOf(redis: Redis | Cluster, key: string): Promise<string[]> {
  try {
    return parseGroupsInfo(await redis.xinfo('GROUPS', key)).map((g) => g.name);
  } catch (error) {
    // The stream was deleted since it was listed (XINFO answers "no such key"): nothing of it is left to erase.
    if (/no such key/i.test(errorText(error))) return [];
    throw error;
  }
}

/** Whether an entry is about the subject; null when it is not examined (control entry, other topic, no location). */
async function judge(ctx: ErasureContext, stream: CatalogStream, entry: StreamEntry): Promise<Verdict> {
  const f = entry.fields;
  if (f['rse.control'] !== undefined) return null;
  const pattern = f.pattern ?? stream.pattern;
  if (pattern === undefined) return { unreadable: 'the entry names no pattern and its stream key (hashed) does not either' };
  if (ctx.topics && !ctx.topics(pattern)) return null;
  const location = ctx.locator.locate(pattern);
  if (!location) return null;
  const blob = f.blob === undefined ? undefined : await findBlob(ctx, stream, f, f.blob);
  try {
    const matches = await subjectMatches(ctx, location, pattern, entry, blob?.json);
    if (matches === 'no-payload') {
      return { unreadable: `the claim-checked payload (blob "${f.blob!.slice(0, 64)}") is gone, so the entry holds no payload` };
    }
    if (!matches) return null;
  } catch (error) {
    return { unreadable: errorText(error).slice(0, 300) };
  }
  const copy = f['rse.replay.from'] !== undefined;
  return { match: { id: entry.id, copy, ...(blob?.key === undefined ? {} : { blob: { key: blob.key, owner: blob.owner, id: f.blob! } }) } };
}

async function subjectMatches(ctx: ErasureContext, location: SubjectLocation, pattern: string, entry: StreamEntry, blobJson: string | undefined): Promise<boolean | 'no-payload'> {
  const f = entry.fields;
  if (location.header !== undefined && f.eheaders === undefined) {
    // Clear-text headers: no need to open the payload.
    const headers = f.headers === undefined ? {} : validateHeaders(parseJsonSafely(f.headers));
    return isAboutSubject(location, { headers }, ctx.subject);
  }
  let fields: Record<string, string> = f;
  if (f.data === undefined && f.blob !== undefined) {
    if (blobJson === undefined) return 'no-payload';
    fields = { ...f, data: blobJson };
  }
  if (f.data === undefined && f.blob === undefined) return false; // a dead letter of an entry trimmed before it failed: no payload
  if (fields.enc !== undefined || fields.eheaders !== undefined) fields = await ctx.codec.decode(fields, pattern, entry.id);
  const message = decodeMessage(entry.id, fields, pattern, ctx.maxPayloadBytes);
  return isAboutSubject(location, message, ctx.subject);
}

/**
 * The blob a claim-checked entry refers to: beside its own stream (a dead letter's: beside the stream it came from),
 * else, for a replay copy, beside the stream it was copied from. `json` is undefined when it is gone.
 */
async function findBlob(ctx: ErasureContext, stream: CatalogStream, f: Record<string, string>, blobId: string): Promise<{ key?: string; owner: string; json?: string }> {
  const own = ctx.keys.blobOf(stream.owner, blobId);
  const json = await ctx.redis.get(own);
  if (json !== null) return { key: own, owner: stream.owner, json };
  const from = f['rse.replay.from'];
  const source = from === undefined ? null : classifyKey(ctx.keys, from.slice(0, Math.max(0, from.lastIndexOf('/'))));
  if (source?.kind === 'live') {
    const key = ctx.keys.blobOf(source.key, blobId);
    const sourceJson = await ctx.redis.get(key);
    if (sourceJson !== null) return { key, owner: source.key, json: sourceJson };
  }
  return { owner: stream.owner };
}

/**
 * Deletes one page's matches of a stream in one MULTI (every key shares the stream's hash tag): XDEL, and per group
 * XACK (a pending entry of a deleted entry would otherwise stay in the group's pending list), the retry schedule
 * and the first-failure record.
 */
async function deleteMatches(ctx: ErasureContext, key: string, groups: readonly string[], matches: readonly Match[], tally: { deleted: number; pendingAcked: number }): Promise<void> {
  const ids = matches.map((m) => m.id);
  const multi = ctx.redis.multi().xdel(key, ...ids);
  for (const group of groups) {
    multi.xack(key, group, ...ids).zrem(ctx.keys.retryScheduleOf(key, group), ...ids).hdel(ctx.keys.failuresOf(key, group), ...ids);
  }
  const replies = (await multi.exec()) ?? [];
  for (const [error] of replies) if (error) throw error;
  tally.deleted += Number(replies[0]?.[1] ?? 0);
  for (let g = 0; g < groups.length; g++) tally.pendingAcked += Number(replies[1 + g * 3]?.[1] ?? 0);
}

/** Deletes blobs and their index entries, one MULTI per blob (its key and indexes share its stream's hash tag). */
async function deleteBlobs(ctx: ErasureContext, blobs: Iterable<NonNullable<Match['blob']>>): Promise<number> {
  let deleted = 0;
  for (const { key, owner, id } of blobs) {
    const replies = (await ctx.redis
      .multi()
      .del(key)
      .zrem(ctx.keys.blobIndexOf(owner), id)
      .zrem(ctx.keys.blobIndexOf(ctx.keys.deadLetterOf(owner)), id)
      .exec()) ?? [];
    deleted += Number(replies[0]?.[1] ?? 0);
  }
  return deleted;
}
