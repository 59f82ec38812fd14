import { appendFileSync } from 'node:fs';
import type { RawRedis } from './redis.js';
import { lastValueFrom } from 'rxjs';
import type { RedisStreamsClient } from 'nestjs-redis-streams-enterprise';
import { testKeys } from './keys.js';
import { range, reckon } from './ledger.js';

/** One handling recorded by consumer-process.mjs: `${n}:${deliveryCount}:${consumerName}`. */
export interface Handling {
  readonly n: number;
  readonly deliveryCount: number;
  readonly consumer: string;
}

export function parseHandling(record: string): Handling {
  const [n, deliveryCount, ...consumer] = record.split(':');
  return { n: Number(n), deliveryCount: Number(deliveryCount), consumer: consumer.join(':') };
}

/** The side-effect list of a test prefix (consumer-process.mjs appends one element per successful handling). */
export const processedKey = (prefix: string) => testKeys(prefix).testOwned('processed');

export async function readHandlings(redis: RawRedis, prefix: string): Promise<Handling[]> {
  return (await redis.lrange(processedKey(prefix), 0, -1)).map(parseHandling);
}

/**
 * The ledger of one run of consumer processes (counted by ./ledger.ts): messages 0..sent-1 were emitted (each with a distinct entry id); `handlings` were recorded.
 * lost = emitted and never handled; duplicates = handlings beyond the first of a message; unknown = handlings of
 * messages never emitted (must be none).
 */
export interface Tally {
  readonly sent: number;
  readonly handlings: number;
  readonly distinct: number;
  readonly lost: number[];
  readonly duplicates: number;
  /** Message -> its handlings, for every message handled more than once. */
  readonly duplicated: Map<number, Handling[]>;
  readonly unknown: Handling[];
  /** Consumer name -> handlings it recorded. */
  readonly byConsumer: Map<string, number>;
}

export function tally(handlings: readonly Handling[], sent: number): Tally {
  const byConsumer = new Map<string, number>();
  for (const h of handlings) byConsumer.set(h.consumer, (byConsumer.get(h.consumer) ?? 0) + 1);
  const expected = new Set(range(0, sent));
  const count = reckon(
    handlings.filter((h) => expected.has(h.n)).map((h) => h.n),
    expected,
  );
  const duplicatedSet = new Set(count.duplicated);
  const duplicated = new Map<number, Handling[]>();
  for (const h of handlings) if (duplicatedSet.has(h.n)) duplicated.set(h.n, [...(duplicated.get(h.n) ?? []), h]);
  return {
    sent,
    handlings: handlings.length,
    distinct: count.distinct,
    lost: count.lost,
    duplicates: count.duplicates,
    duplicated,
    unknown: handlings.filter((h) => !expected.has(h.n)),
    byConsumer,
  };
}

/** A one-line summary for logs and failure messages. */
export function describeTally(t: Tally): string {
  const dup = [...t.duplicated].slice(0, 20).map(([n, hs]) => `${n}[${hs.map((h) => `${h.deliveryCount}@${h.consumer}`).join(',')}]`);
  return (
    `sent=${t.sent} handlings=${t.handlings} distinct=${t.distinct} lost=${t.lost.length}` +
    (t.lost.length ? ` (first: ${t.lost.slice(0, 10).join(',')})` : '') +
    ` duplicates=${t.duplicates}${dup.length ? ` (${dup.join(' ')})` : ''} unknown=${t.unknown.length}` +
    ` byConsumer={${[...t.byConsumer].map(([c, k]) => `${c}: ${k}`).join(', ')}}`
  );
}

/**
 * Emits messages { n, ...extra } for n in [from, to) as fast as the connection takes them: `window` emits in flight
 * at once (ioredis pipelines them). Returns the entry ids in n order; every emit must have been stored.
 */
export async function emitRange(
  client: RedisStreamsClient,
  pattern: string,
  from: number,
  to: number,
  { window = 500, extra = {} }: { window?: number; extra?: Record<string, unknown> } = {},
): Promise<string[]> {
  const ids: string[] = [];
  for (let start = from; start < to; start += window) {
    const end = Math.min(to, start + window);
    const batch: Promise<string>[] = [];
    for (let n = start; n < end; n++) batch.push(lastValueFrom(client.emit<string>(pattern, { n, ...extra })));
    ids.push(...(await Promise.all(batch)));
  }
  return ids;
}

/** XPENDING summary count of a group, and per consumer. */
export async function pendingOf(redis: RawRedis, stream: string, group: string): Promise<{ total: number; byConsumer: Map<string, number> }> {
  const [total, , , consumers] = (await redis.xpending(stream, group)) as [number, string | null, string | null, [string, string][] | null];
  return { total: Number(total), byConsumer: new Map((consumers ?? []).map(([name, count]) => [name, Number(count)])) };
}

/**
 * Measured figures of a test (duplicates, exit times, heap): appended as one JSON line to the file named by
 * PROCESS_FAULTS_REPORT when it is set, so a run can be summarised without printing from tests.
 */
export function recordFigures(test: string, figures: Record<string, unknown>): void {
  const file = process.env.PROCESS_FAULTS_REPORT;
  if (!file) return;
  appendFileSync(file, `${JSON.stringify({ test, ...figures })}\n`);
}
