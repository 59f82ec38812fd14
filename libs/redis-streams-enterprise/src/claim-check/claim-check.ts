import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { firstEntryId, parseDropBlobsReply } from '../connection/redis-replies.js';
import type { DeliveredEntry } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { MessageDecodeError } from '../errors/message-decode.error.js';
import { errorText, logIds } from '../observability/log-format.js';
import type { BlobReference } from '../wire/envelope.js';
import { exceedsBytes } from '../wire/envelope.js';
import { idTimeMs } from '../retention/retention-check.js';

/*
 * Claim-check for large payloads. A payload whose JSON is above streams.claimCheckThresholdBytes is SET once in its
 * own key beside the stream (same hash slot) and the entry carries `blob` (its id) and `size` instead of `data`:
 *   produce: SET <stream>:blob:<id> <json> PX <upload ttl>, then the publish script (scripts.ts) PERSISTs it, XADDs
 *            the entry and indexes the blob in <stream>:blobs (score: ms time of the entry), in one pipeline;
 *   consume: one GET of the blob, then the usual decode; a blob that is gone dead-letters the entry (decode-failed);
 *   remove:  the sweep below drops blobs whose entries were trimmed (and that no dead letter refers to).
 * Stream reads (XREADGROUP COUNT n) therefore stay small whatever the payload size, and Redis keeps one copy.
 */

/**
 * Lifetime of an uploaded blob until the publish script commits it. The commit follows in the same pipeline, so this
 * only bounds the memory an upload costs when its producer dies between the two.
 */
export const BLOB_UPLOAD_TTL_MS = 10 * 60_000;

/** Blobs examined per index per sweep pass: bounds the script's run time and keys per call. */
export const BLOB_SWEEP_BATCH = 1_000;

/** Sweep interval when streams.retentionMs does not set one (the retention timer's interval is used then). */
export const BLOB_SWEEP_INTERVAL_MS = 10_000;

/** True when a consumer may meet claim-checked payloads it accepts, so its server sweeps their blobs. */
export function claimCheckApplies(streams: { readonly claimCheckThresholdBytes: number; readonly maxPayloadBytes: number }): boolean {
  return streams.claimCheckThresholdBytes > 0 && streams.claimCheckThresholdBytes < streams.maxPayloadBytes;
}

/** The reference to write instead of `data`, when the payload is above the threshold (0 disables the claim-check). */
export function claimCheckOf(json: string, thresholdBytes: number): BlobReference | undefined {
  if (thresholdBytes <= 0 || !exceedsBytes(json, thresholdBytes)) return undefined;
  return { id: randomUUID(), bytes: Buffer.byteLength(json) };
}

/** The entry's fields with the payload in `data`, or why not: `invalid` dead-letters it, `unavailable` retries it. */
export type ClaimCheckOutcome =
  | { readonly fields: Record<string, string> }
  | { readonly invalid: MessageDecodeError }
  | { readonly unavailable: unknown };

/**
 * Fetches the payload of a claim-checked entry (one GET). The declared size is checked first, so an entry above
 * streams.maxPayloadBytes is refused without loading its blob. The payload is fetched as a string: ioredis 6 copies
 * Buffer arguments and replies once more than strings (measured: GET + JSON.parse of 64 MB took 316 ms as a string,
 * 442 ms through getBuffer), so a Buffer saves nothing here.
 */
export async function fetchClaimChecked(
  redis: Pick<ScriptedRedis, 'get'>,
  keys: StreamKeys,
  entry: DeliveredEntry,
  maxPayloadBytes: number,
): Promise<ClaimCheckOutcome> {
  const blobId = entry.fields.blob;
  if (entry.fields.data !== undefined || blobId === undefined) return { fields: entry.fields };
  const declared = Number(entry.fields.size);
  // An encoded payload (`enc`: encrypted, so base64) may take up to 4/3 of the limit, plus the cipher's overhead.
  const limit = entry.fields.enc === undefined ? maxPayloadBytes : Math.ceil((maxPayloadBytes + 64) / 3) * 4;
  if (Number.isFinite(declared) && declared > limit) {
    return { invalid: new MessageDecodeError(`claim-checked payload of ${declared} bytes is larger than streams.maxPayloadBytes (${maxPayloadBytes})`) };
  }
  let json: string | null;
  try {
    json = await redis.get(keys.blobOf(entry.stream, blobId));
  } catch (error) {
    return { unavailable: error };
  }
  if (json === null) {
    return {
      invalid: new MessageDecodeError(
        `the claim-checked payload (blob "${blobId.slice(0, 64)}") is gone: it was removed with its trimmed entry, evicted, or ` +
          'the entry is a copy made outside its stream; raise streams.maxLen/retentionMs or check maxmemory-policy',
      ),
    };
  }
  return { fields: { ...entry.fields, data: json } };
}

/**
 * Removes blobs whose entries were trimmed: per stream, the members of its blob index older than the stream's first
 * entry, and the same for its dead-letter stream (see the dropBlobs script for why a blob referred to by a dead letter
 * survives its stream's trimming, and the other way round). Up to BLOB_SWEEP_BATCH per index and pass; a longer
 * backlog continues on the next pass.
 */
export class BlobSweeper {
  private readonly logger = new Logger('RedisStreamsServer');
  private failing = false;

  constructor(
    private readonly redis: ScriptedRedis,
    private readonly keys: StreamKeys,
  ) {}

  /** Sweeps a stream and its dead-letter stream; returns how many blobs were deleted. Never rejects. */
  async sweep(stream: string): Promise<number> {
    const dlq = this.keys.deadLetterOf(stream);
    const streamIndex = this.keys.blobIndexOf(stream);
    const dlqIndex = this.keys.blobIndexOf(dlq);
    try {
      const deleted = (await this.sweepIndex(stream, stream, streamIndex, dlqIndex)) + (await this.sweepIndex(stream, dlq, dlqIndex, streamIndex));
      if (this.failing) this.logger.log(`Claim-check sweep works again ${logIds({ stream })}`);
      this.failing = false;
      return deleted;
    } catch (error) {
      // The next pass retries; blobs only live a little longer meanwhile.
      if (!this.failing) this.logger.warn(`Claim-check sweep failed, the next pass retries: ${errorText(error)} ${logIds({ stream })}`);
      this.failing = true;
      return 0;
    }
  }

  private async sweepIndex(stream: string, holder: string, index: string, otherIndex: string): Promise<number> {
    // Most streams never had a large message: one O(1) command each.
    if ((await this.redis.zcard(index)) === 0) return 0;
    const first = firstEntryId(await this.redis.xrange(holder, '-', '+', 'COUNT', 1));
    // Members older than the first entry; an empty (or deleted) stream refers to none of its members.
    const below = first === undefined ? '+inf' : `(${idTimeMs(first)}`;
    const ids = await this.redis.zrangebyscore(index, '-inf', below, 'LIMIT', 0, BLOB_SWEEP_BATCH);
    if (ids.length === 0) return 0;
    const blobKeys = ids.map((id) => this.keys.blobOf(stream, id));
    const reply = await this.redis.rseDropBlobs(3 + ids.length, holder, index, otherIndex, ...blobKeys, ...ids);
    return parseDropBlobsReply(reply).deleted;
  }
}
