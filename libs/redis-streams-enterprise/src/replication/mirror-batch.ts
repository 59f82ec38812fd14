import type { RawStreamEntry } from '../connection/redis-replies.js';

/** Field every copy carries: the region the entry was born in (its first stream). */
export const ORIGIN_FIELD = 'rse.origin';
/** Field every copy carries: the entry's id in the stream of its origin region. */
export const ORIGIN_ID_FIELD = 'rse.origin.id';
/**
 * Most field/value strings one entry may have to be copied (Lua's `unpack` fails above about 8,000 values); a larger
 * entry is not copied and counted as rejected.
 */
export const MAX_ENTRY_VALUES = 2_000;

/** What one batch read from a source stream turns into. */
export interface MirrorBatch {
  /** For the mirrorAppend script: per copied entry its source id, its field count and the fields. */
  readonly args: string[];
  readonly copied: number;
  /** Entries born in another region (they reached the source through another mirror), and the library's control entries: never copied. */
  readonly skipped: number;
  /** Entries that cannot be copied (odd or too many fields), with why. */
  readonly rejected: readonly { readonly id: string; readonly reason: string }[];
  /** Blob id of the last copied entry, when it is claim-checked (its payload must travel with it). */
  readonly blobId?: string;
}

/**
 * Splits a read batch after every claim-checked entry (`blob` field), so each write carries at most one blob, as its
 * last entry: a stream of large payloads is copied one payload at a time, never a batch of them in memory at once.
 */
export function chunksAtBlobs(entries: readonly RawStreamEntry[]): RawStreamEntry[][] {
  const chunks: RawStreamEntry[][] = [];
  let chunk: RawStreamEntry[] = [];
  for (const entry of entries) {
    chunk.push(entry);
    if (fieldOf(entry.fields, 'blob') !== undefined) {
      chunks.push(chunk);
      chunk = [];
    }
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/**
 * Decides, entry by entry, what a mirror from `sourceRegion` copies. An entry is copied when it was born in the source
 * region: it has no origin field (written there by a producer), or its origin is that region. An entry whose origin is
 * another region came into the source through a mirror and is skipped, so in active-active (A to B and B to A, or a
 * full mesh of three regions) nothing comes back to where it was born, and nothing arrives twice by two paths.
 * A copy keeps every field of the source entry in order, with the origin fields set (replaced if present).
 */
export function buildMirrorBatch(entries: readonly RawStreamEntry[], sourceRegion: string): MirrorBatch {
  const args: string[] = [];
  const rejected: { id: string; reason: string }[] = [];
  let copied = 0;
  let skipped = 0;
  let blobId: string | undefined;
  for (const entry of entries) {
    blobId = undefined;
    const { fields } = entry;
    if (fields.length % 2 !== 0) {
      rejected.push({ id: entry.id, reason: 'odd number of field/value strings' });
      continue;
    }
    if (fields.length + 4 > MAX_ENTRY_VALUES) {
      rejected.push({ id: entry.id, reason: `more than ${MAX_ENTRY_VALUES - 4} field/value strings` });
      continue;
    }
    const origin = originOf(fields);
    // Control entries belong to the source's own partition layout changes (which are not mirrored).
    if ((origin !== undefined && origin !== sourceRegion) || fieldOf(fields, 'rse.control') !== undefined) {
      skipped++;
      continue;
    }
    const kept: string[] = [];
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] === ORIGIN_FIELD || fields[i] === ORIGIN_ID_FIELD) continue;
      kept.push(fields[i], fields[i + 1]);
    }
    kept.push(ORIGIN_FIELD, sourceRegion, ORIGIN_ID_FIELD, origin === undefined ? entry.id : (idOfOrigin(fields) ?? entry.id));
    args.push(entry.id, String(kept.length), ...kept);
    copied++;
    blobId = fieldOf(fields, 'blob');
  }
  return { args, copied, skipped, rejected, ...(blobId === undefined ? {} : { blobId }) };
}

/** The origin region an entry names, if any. */
export function originOf(fields: readonly string[]): string | undefined {
  return fieldOf(fields, ORIGIN_FIELD);
}

/** The value of a field (the last one when repeated, as the library's reader sees it). */
function fieldOf(fields: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) value = fields[i + 1];
  return value;
}

function idOfOrigin(fields: readonly string[]): string | undefined {
  let id: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === ORIGIN_ID_FIELD && /^\d{1,20}-\d{1,20}$/.test(fields[i + 1])) id = fields[i + 1];
  return id;
}
