import { IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';

const SAFE_NAME = /^[A-Za-z0-9._:@-]{1,128}$/;
const SAFE_NAME_MESSAGE = 'must be 1-128 characters of A-Z a-z 0-9 . _ : @ -';

/** A consumer name unique to this process and instance: host, pid and a random part. */
export function defaultConsumerName(): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 60) || 'host';
  return `${host}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** How the server reads: consumer group, batch sizes, concurrency and timeouts. */
export class ConsumerOptions {
  /**
   * Consumer group of this service. Every group gets every message; consumers in one group share the work.
   * @default 'default'
   */
  @IsString()
  @Matches(SAFE_NAME, { message: SAFE_NAME_MESSAGE })
  group = 'default';

  /**
   * This consumer's name inside the group. Unique per running instance: a second live instance with the same name is
   * refused (see `nameLeaseMs`). A stable name (e.g. a StatefulSet pod's) lets a restarted instance take back the
   * entries its predecessor left pending as soon as it starts, instead of after `claimIdleMs`.
   * @default `${hostname}-${pid}-${random}`
   */
  @IsString()
  @Matches(SAFE_NAME, { message: SAFE_NAME_MESSAGE })
  consumerName = defaultConsumerName();

  /**
   * How long this server's consumer name stays reserved after it last renewed its lease (it renews every third of
   * this while it runs). At most one live instance uses a name in a group: a second one waits this long at `listen()`
   * for the name to become free, then fails with `ConsumerNameInUseError`. `close()` frees the name at once; after a
   * crash (SIGKILL, lost host) a restart under the same name (a StatefulSet pod) starts within this time. A running
   * server that finds its name taken by another instance (Redis unreachable for longer than this) stops reading.
   * @default 10000
   */
  @IsInt()
  @Min(1_000)
  @Max(600_000)
  nameLeaseMs = 10_000;

  /**
   * Where a newly created group starts: `'0'` (everything still in the stream) or `'$'` (only new entries).
   * `'0'` keeps messages emitted before the first consumer started.
   * @default '0'
   */
  @IsString()
  @Matches(/^(\$|0|\d+-\d+|\d+)$/, { message: "must be '0', '$' or a stream id" })
  groupStartId = '0';

  /**
   * Entries fetched per `XREADGROUP` (`COUNT`).
   * @default 64
   */
  @IsInt()
  @Min(1)
  @Max(10_000)
  batchSize = 64;

  /**
   * Longest time one `XREADGROUP` blocks waiting for entries.
   * @default 2000
   */
  @IsInt()
  @Min(1)
  @Max(60_000)
  blockMs = 2_000;

  /**
   * Reading with the doorbell (`streams.doorbell`: always on a Redis Cluster): every stream this server reads is read
   * at least this often even when no producer rang the doorbell for it. Bounds the delay of entries written by other
   * producers (a raw XADD); while idle it costs one read per interval (on a Cluster, one per hash slot).
   * @default 1000
   */
  @IsInt()
  @Min(50)
  @Max(60_000)
  sweepMs = 1_000;

  /**
   * Entries handled at once per server; reading pauses at this bound, so a slow handler cannot grow the heap.
   * @default 64
   */
  @IsInt()
  @Min(1)
  @Max(10_000)
  concurrency = 64;

  /**
   * An entry pending this long on any consumer is considered abandoned and is claimed by a live consumer.
   * Live consumers extend the claim of entries they are still handling, so this is not a handler time limit.
   * @default 30000
   */
  @IsInt()
  @Min(1_000)
  @Max(86_400_000)
  claimIdleMs = 30_000;

  /**
   * How often this server looks for abandoned entries and for retries that are due.
   * @default 1000
   */
  @IsInt()
  @Min(50)
  @Max(600_000)
  reclaimIntervalMs = 1_000;

  /**
   * A handler that has not settled after this long is failed with `HandlerTimeoutError` and retried.
   * `0` disables the limit.
   * @default 0
   */
  @IsInt()
  @Min(0)
  @Max(86_400_000)
  handlerTimeoutMs = 0;

  /**
   * On `close()`, how long to wait for in-flight handlers before closing anyway (unfinished entries stay pending
   * and are reclaimed by another consumer).
   * @default 10000
   */
  @IsInt()
  @Min(0)
  @Max(600_000)
  shutdownTimeoutMs = 10_000;

  /**
   * Consumers of the group idle this long and owning no pending entries are removed from the group (processes that
   * went away, e.g. pods with random names). `0` never removes any.
   * @default 3600000 (1 hour)
   */
  @IsInt()
  @Min(0)
  @Max(30 * 86_400_000)
  deadConsumerIdleMs = 3_600_000;

  /**
   * Optional explicit list of patterns to consume; by default every registered handler's pattern.
   * @default undefined
   */
  @IsOptional()
  @IsString({ each: true })
  patterns?: string[];
}
