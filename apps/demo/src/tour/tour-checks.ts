import type { INestApplicationContext, INestMicroservice } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { PartitioningManager, RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import type { Row } from '../summary.js';

/** One of the tour's consumers: a Nest microservice whose strategy is the module's `RedisStreamsServer`. */
export interface TourConsumer {
  readonly name: string;
  readonly app: INestMicroservice;
  readonly server: RedisStreamsServer;
}

/** What every step gets: the running apps, a plain Redis connection to look at results, and the printer. */
export interface Tour {
  /** The tour's `streams.keyPrefix`. */
  readonly keyPrefix: string;
  /** URL of the tour's Redis (the mirror step reads it as another region's). */
  readonly redisUrl: string;
  /** A Nest application context with `RedisStreamsEnterpriseModule` (client and managers) and no handlers. */
  readonly producer: INestApplicationContext;
  readonly consumers: readonly TourConsumer[];
  /** For reading what handlers wrote (balances); the library is not used through it. */
  readonly redis: Redis;
  /** Prints one progress line. */
  readonly log: (message: string) => void;
}

/** Rows of the summary table and the failed checks of one step. */
export class StepReport {
  readonly rows: Row[] = [];
  readonly failures: string[] = [];

  constructor(private readonly label: string) {}

  /** Adds a row; `ok === false` also records `failure` (prefixed with the step's label). */
  row(metric: string, value: string, ok?: boolean, failure?: string): boolean | undefined {
    this.rows.push([`${this.label}: ${metric}`, value, ok]);
    if (ok === false) this.failures.push(`${this.label}: ${failure ?? metric}`);
    return ok;
  }

  /** A check without its own row. */
  check(ok: boolean, failure: string): boolean {
    if (!ok) this.failures.push(`${this.label}: ${failure}`);
    return ok;
  }
}

/** Polls `condition` every `pollMs` until it holds (true) or `timeoutMs` passed (false). */
export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, pollMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** True when no partition of the topic has entries the tour's group has not received or not acknowledged. */
export async function isDrained(partitioning: PartitioningManager, pattern: string): Promise<boolean> {
  const stats = await partitioning.getPartitionStats(pattern);
  // A partition nobody wrote to may have no stream yet: Redis then reports no lag at all.
  return stats.every((s) => s.pending === 0 && (s.lag === 0 || s.length === 0));
}

/** Entries stored in all partitions of a topic. */
export async function storedEntries(partitioning: PartitioningManager, pattern: string): Promise<number> {
  const stats = await partitioning.getPartitionStats(pattern);
  return stats.reduce((sum, s) => sum + s.length, 0);
}

/** Short consumer names for printing: the tour names them `tour-<n>-<run>`. */
export const shortName = (consumer: string | null) => consumer?.replace(/-[0-9a-f]{8}$/, '') ?? 'none';

export const errorText = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));
