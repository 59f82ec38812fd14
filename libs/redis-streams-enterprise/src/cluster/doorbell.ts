import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { isCluster } from '../connection/redis-connection.factory.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import { errorText, logIds } from '../observability/log-format.js';
import { withReadWatchdog } from '../connection/blocking-read.js';
import { BackgroundLoop } from '../runtime/background-loop.js';
import { Sleeper } from '../runtime/sleeper.js';

/**
 * The doorbell (on a Redis Cluster, and on a single server with `streams.doorbell: 'always'`): one small stream per key prefix (`StreamKeys.doorbell()`) on which producers
 * name the streams they just wrote to.
 *
 * Why: a blocking XREADGROUP may only name keys of one hash slot, and the streams of many topics or partitions are
 * spread over many slots. Blocking on each slot in turn makes an idle consumer of N slots take N block times to
 * notice an entry; polling all of them costs N commands per poll. Instead a consumer reads with non-blocking reads
 * the streams that may have entries (those the doorbell named, those that had entries on the last read) and, when
 * idle, waits on the doorbell — one blocking read of one key. A full sweep of every stream every
 * `consumer.sweepMs` catches entries nobody rang for (other producers, a ring lost with its connection).
 */

/** Most stream names per ring entry (a burst over thousands of partitions becomes several entries). */
const NAMES_PER_RING = 256;
/** Approximate length the doorbell stream is trimmed to; a listener more than this behind does a full sweep. */
const DOORBELL_MAX_LEN = 4_096;
const READ_COUNT = 512;
/** Pause after a failed doorbell read before the next (streams are swept meanwhile). */
const READ_RETRY_MS = 500;

/**
 * Producer side. Rings after the write it announces was acknowledged (the doorbell is usually on another node, so
 * a ring sent alongside could arrive first and the consumer would find nothing). Rings are coalesced: one XADD in
 * flight at a time, naming every stream written since the previous one, so a busy producer adds at most one
 * command per round trip, not one per message. A failed ring is only logged: the sweep still finds the entry.
 */
export class DoorbellRinger {
  private readonly logger = new Logger('RedisStreamsDoorbell');
  private readonly pending = new Set<string>();
  private flushing?: Promise<void>;
  private failing = false;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
  ) {}

  ring(stream: string): void {
    this.pending.add(stream);
    this.flushing ??= this.flush();
  }

  /** Rings for the streams and resolves once sent (or failed): for writers that are not on a hot path. */
  async ringAndDrain(...streams: string[]): Promise<void> {
    for (const stream of streams) this.ring(stream);
    await this.drain();
  }

  /** Resolves once every ring asked for so far was sent (or failed). */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.size > 0) {
        const names = [...this.pending].slice(0, NAMES_PER_RING);
        for (const name of names) this.pending.delete(name);
        try {
          await this.redis.xadd(this.key, 'MAXLEN', '~', DOORBELL_MAX_LEN, '*', 's', names.join('\n'));
          this.failing = false;
        } catch (error) {
          if (!this.failing) this.logger.warn(`Could not ring the doorbell (consumers find the entries by their sweep): ${errorText(error)}`);
          this.failing = true;
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }
}

/** Whether the doorbell is used (`streams.doorbell`): always on a Cluster, on a single server when asked for. */
export function usesDoorbell(redis: Redis, mode: 'cluster' | 'always'): boolean {
  return mode === 'always' || isCluster(redis);
}

/** A ringer for the streams `redis` writes to, when the doorbell is used; undefined otherwise. */
export function doorbellFor(redis: Redis, keys: StreamKeys, mode: 'cluster' | 'always'): DoorbellRinger | undefined {
  return usesDoorbell(redis, mode) ? new DoorbellRinger(redis, keys.doorbell()) : undefined;
}

/**
 * Consumer side: a blocking XREAD on the doorbell, on its own connection, collecting the names rung since the
 * last `take()`. `wait()` ends at a ring, at `wake()` or after its time, without disturbing the pending read.
 */
export class DoorbellListener {
  private readonly logger = new Logger('RedisStreamsDoorbell');
  private rung = new Set<string>();
  /** Set when rings may have been missed (start, connection lost, fell behind the trimming): sweep everything. */
  private missed = true;
  private lastId = '0-0';
  private running = false;
  /** One blocking XREAD of the doorbell per iteration; a failed one is logged once and retried after READ_RETRY_MS. */
  private readonly loop: BackgroundLoop;
  private readonly waiter = new Sleeper();

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly settings: { readonly blockMs: number; readonly watchdogMs: number },
  ) {
    this.loop = new BackgroundLoop(() => this.readOnce(), {
      intervalMs: 0,
      retryMs: READ_RETRY_MS,
      onError: () => {
        // Every failed read: rings may be lost, so readers sweep everything, starting now.
        this.missed = true;
        this.waiter.wake();
        return 'failure';
      },
      onFailing: (error) => this.logger.warn(`Reading the doorbell failed, retrying (streams are swept meanwhile): ${errorText(error)}`),
      onRecovered: () => this.logger.log(`Doorbell reading resumed ${logIds({ stream: this.key })}`),
    });
  }

  /** Starts listening from the doorbell's newest entry; a full sweep must follow (take() says so). */
  async start(): Promise<void> {
    if (this.running) return;
    // Bounded like a read: this connection does not re-send a command caught by a reset, and ioredis never settles it.
    const newest = (await withReadWatchdog(this.redis, this.redis.xrevrange(this.key, '+', '-', 'COUNT', 1), this.settings.watchdogMs)) as [string, string[]][];
    this.lastId = newest[0]?.[0] ?? '0-0';
    this.missed = true;
    this.running = true;
    this.loop.start();
  }

  /** Stops listening; the owner disconnects the connection to end the pending BLOCK. */
  async stop(): Promise<void> {
    this.running = false;
    const stopped = this.loop.stop();
    this.waiter.wake();
    await stopped;
  }

  /** The streams rung since the previous call, and whether rings may have been missed (then sweep everything). */
  take(): { streams: ReadonlySet<string>; missed: boolean } {
    const taken = { streams: this.rung, missed: this.missed };
    this.rung = new Set();
    this.missed = false;
    return taken;
  }

  /** Waits for a ring (returns at once when one arrived since the last take), for wake(), or for `ms`. */
  async wait(ms: number): Promise<void> {
    if (this.rung.size > 0 || this.missed || !this.running || ms <= 0) return;
    await this.waiter.sleep(ms);
  }

  wake(): void {
    this.waiter.wake();
  }

  private async readOnce(): Promise<void> {
    const { blockMs, watchdogMs } = this.settings;
    const reply = (await withReadWatchdog(
      this.redis,
      this.redis.xread('COUNT', READ_COUNT, 'BLOCK', blockMs, 'STREAMS', this.key, this.lastId),
      blockMs + watchdogMs,
    )) as [string, [string, string[]][]][] | null;
    if (this.loop.isFailing) this.missed = true; // rings sent while the connection was down may have been trimmed away
    const entries = reply?.[0]?.[1] ?? [];
    for (const [id, fields] of entries) {
      this.lastId = id;
      const names = fields[fields.indexOf('s') + 1];
      if (names) for (const name of names.split('\n')) this.rung.add(name);
    }
    if (entries.length > 0) this.waiter.wake();
  }
}
