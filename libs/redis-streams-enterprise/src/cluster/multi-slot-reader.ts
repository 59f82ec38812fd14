import type { Redis } from 'ioredis';
import { isCluster } from '../connection/redis-connection.factory.js';
import { withReadWatchdog } from '../connection/blocking-read.js';
import type { DoorbellListener } from './doorbell.js';
import { keySlot } from './key-slot.js';

export interface MultiSlotReaderSettings {
  readonly group: string;
  readonly consumer: string;
  /** Every stream is read at least this often, rung or not (`consumer.sweepMs`). */
  readonly sweepMs: number;
  /** Extra time a round of reads may take before its connection is presumed dead and replaced. */
  readonly watchdogMs: number;
}

export interface SlotReadResult {
  readonly replies: unknown[];
  readonly entries: number;
  readonly error?: unknown;
}

/** Slot reads sent at once; each returns at most its COUNT, so this also bounds the entries one chunk can bring. */
const SLOTS_PER_CHUNK = 256;

/**
 * Reads new entries of streams spread over many Redis Cluster hash slots (see doorbell.ts for why): each round
 * sends one non-blocking XREADGROUP per slot — all slots at once, so ioredis pipelines them per node and a round
 * costs one round trip per node — for the streams that may have entries: those rung on the doorbell, those that
 * returned entries last time (a burst is read to its end), those marked due (`markDue`: a newly assigned
 * partition), and every stream once per sweep interval (the first round is one). When a round found nothing, `wait()` waits on the doorbell. On a single server (`streams.doorbell:
 * 'always'`) the same rounds name only those streams, in one read, instead of every stream the server consumes.
 */
export class MultiSlotReader {
  /**
   * Streams that returned entries on their last read, were skipped for lack of room, or were marked due: read them
   * next round. Pruned to the streams given at each full sweep.
   */
  private readonly hot = new Set<string>();
  private lastFullSweep = 0;
  /** Rotates the start of each round so that, with a budget, no slot is always served last. */
  private rotation = 0;

  private readonly cluster: boolean;

  constructor(
    private readonly redis: Redis,
    private readonly doorbell: DoorbellListener,
    private readonly settings: MultiSlotReaderSettings,
  ) {
    this.cluster = isCluster(redis);
  }

  /**
   * One round of non-blocking reads. `countOf(stream)` is the COUNT for a stream (0: do not read it now, keep it
   * due). Stops sending further chunks once `budget` entries arrived; the unread streams stay due. Returns the
   * XREADGROUP replies (parse each with parseNewEntries), how many entries they hold (none: wait() before the next
   * round), and the first error of a slot read, if any: entries read from the other slots are pending on this
   * consumer already, so the caller handles them before the error.
   */
  async read(
    streams: readonly string[],
    countOf: (stream: string) => number,
    budget = Number.POSITIVE_INFINITY,
  ): Promise<SlotReadResult> {
    const { streams: rung, missed } = this.doorbell.take();
    const now = Date.now();
    const full = missed || now - this.lastFullSweep >= this.settings.sweepMs;
    if (full) this.lastFullSweep = now;
    if (full) this.pruneHot(streams);
    const bySlot = new Map<number, { streams: string[]; count: number }>();
    for (const stream of streams) {
      if (!full && !rung.has(stream) && !this.hot.has(stream)) continue;
      const count = countOf(stream);
      if (count <= 0) {
        this.hot.add(stream);
        continue;
      }
      // One read per slot on a Cluster; on a single server one read per distinct COUNT (usually just one).
      const slot = this.cluster ? keySlot(stream) : count;
      const group = bySlot.get(slot);
      if (group) {
        group.streams.push(stream);
        group.count = Math.min(group.count, count);
      } else bySlot.set(slot, { streams: [stream], count });
    }
    const groups = [...bySlot.values()];
    const start = groups.length === 0 ? 0 : this.rotation++ % groups.length;
    const ordered = [...groups.slice(start), ...groups.slice(0, start)];
    const replies: unknown[] = [];
    let entries = 0;
    for (let at = 0; at < ordered.length; at += SLOTS_PER_CHUNK) {
      const chunk = ordered.slice(at, at + SLOTS_PER_CHUNK);
      if (entries >= budget) {
        for (const group of chunk) for (const stream of group.streams) this.hot.add(stream);
        continue;
      }
      const results = await withReadWatchdog(
        this.redis,
        Promise.allSettled(chunk.map((group) => this.readSlot(group.streams, group.count))),
        this.settings.watchdogMs,
      );
      const chunkResult = this.collect(chunk, results, replies);
      entries += chunkResult.entries;
      const firstError = chunkResult.error;
      if (firstError !== undefined) return { replies, entries, error: firstError };
    }
    return { replies, entries };
  }

  /**
   * Takes the replies of one chunk of slot reads: keeps the streams that returned entries (or failed, or answered in
   * an unexpected shape) due for the next round, forgets those that returned none. Returns how many entries came and
   * the first error.
   */
  private collect(
    chunk: readonly { streams: string[] }[],
    results: PromiseSettledResult<unknown>[],
    replies: unknown[],
  ): { entries: number; error?: unknown } {
    let entries = 0;
    let firstError: unknown;
    results.forEach((result, i) => {
      if (result.status === 'rejected') {
        firstError ??= result.reason;
        for (const stream of chunk[i].streams) this.hot.add(stream);
        return;
      }
      const reply = result.value;
      if (reply === null || reply === undefined) {
        for (const stream of chunk[i].streams) this.hot.delete(stream);
        return;
      }
      replies.push(reply);
      if (!Array.isArray(reply)) {
        // Not the usual [[stream, entries], ...] shape: read these streams again rather than guess.
        for (const stream of chunk[i].streams) this.hot.add(stream);
        entries += 1;
        return;
      }
      const found = new Map((reply as [string, unknown[]][]).map(([stream, list]) => [String(stream), list.length]));
      for (const stream of chunk[i].streams) {
        const n = found.get(stream) ?? 0;
        entries += n;
        if (n > 0) this.hot.add(stream);
        else this.hot.delete(stream);
      }
    });
    return firstError === undefined ? { entries } : { entries, error: firstError };
  }

  /** Waits for a doorbell ring, at most `ms` and never past the next full sweep. */
  async wait(ms: number): Promise<void> {
    const untilSweep = this.lastFullSweep + this.settings.sweepMs - Date.now();
    await this.doorbell.wait(Math.min(ms, untilSweep));
  }

  /** Reads `stream` in the next round (a newly assigned partition: entries may have been rung while it was not ours). */
  markDue(stream: string): void {
    this.hot.add(stream);
  }

  /** Forgets due streams that are not read any more (revoked partitions). */
  private pruneHot(streams: readonly string[]): void {
    if (this.hot.size === 0) return;
    const given = new Set(streams);
    for (const stream of this.hot) if (!given.has(stream)) this.hot.delete(stream);
  }

  /** Ends a wait() early (a new stream to read, shutdown). */
  wake(): void {
    this.doorbell.wake();
  }

  private readSlot(streams: string[], count: number): Promise<unknown> {
    const { group, consumer } = this.settings;
    // Arrays, not spread arguments (thousands of streams overflow the call stack); no BLOCK: a plain read.
    return (this.redis.xreadgroup as (...args: unknown[]) => Promise<unknown>)('GROUP', group, consumer, 'COUNT', count, 'STREAMS', streams, streams.map(() => '>'));
  }
}
