import { join } from 'node:path';
/**
 * Ordering and partitioning throughput, each next to a raw ioredis baseline of the same run:
 *
 *   partition  8 partitions (BENCH_ORDERING_PARTITIONS), 2 consumer processes (BENCH_ORDERING_CONSUMERS).
 *              library: partitioning hash by the payload field `key`, ordering 'partition' per key
 *              (maxConcurrency 64); the consumers share the partitions through leases, and measuring starts once each
 *              holds its share. raw: the producer XADDs to stream FNV(key) % 8, each consumer process reads a static
 *              half of the streams with the raw loop of raw-consumer.ts.
 *   global     library: ordering 'global' (one partition, sequence number stamped by the publish script, strictly
 *              sequential), 1 consumer process, and again with a second, standby consumer (failover costs nothing
 *              while all is well). raw: one stream, one raw consumer process.
 *
 * Messages carry 1,000 keys in bursts of 4 consecutive messages per key (k0 k0 k0 k0 k1 ...), each with its position n
 * within its key; the producer sends in seq order with BENCH_PRODUCER_CONCURRENCY sends in flight, so several messages
 * of a key are in flight at once and a producer that stores them out of order is caught too. Every handler records per key the last n it saw: a message whose n is
 * not higher is an order violation (must be 0). Global also checks the total order (seq) and that the stamped
 * sequence numbers are contiguous. Lost and duplicated messages are found by OR-ing the consumers' bitmaps.
 * msg/s = messages / (last acknowledgement of the last consumer - first send).
 *
 * `npm run bench` runs it after the other scenarios; `node dist/bench/ordering.js` runs only this (own throw-away
 * redis-server, or BENCH_REDIS_URL). Settings: BENCH_ORDERING_* below and bench/README.md.
 */
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ConsumerOptions, PartitioningManager, SchemaManager } from 'nestjs-redis-streams-enterprise';
import { ThrowawayRedis } from '../apps/demo/src/redis-server.process.js';
import { GROUP, errorText, percentile, sleep, type ConsumerMode, type ProducerResult } from './protocol.js';
import { countKeys, envInt, fmt, median, table, unlinkPrefix } from './report-utils.js';
import { WorkerProcess, killAllWorkers } from './worker-process.js';
import {
  ORDERED_PATTERN,
  ORDERED_PAYLOAD_SCHEMA,
  featureConfig,
  keyIndexOf,
  rawPartitionOf,
  type FeatureSet,
  type OrderedConsumerParams,
  type OrderedConsumerResult,
  type OrderedLibraryCounters,
  type OrderedProducerParams,
  type OrderingStrategy,
} from './workers/ordering-common.js';

/** The settings of bench/run.ts this measurement shares (its SETTINGS object satisfies this). */
export interface OrderingBaseSettings {
  readonly batchSize: number;
  readonly concurrency: number;
  readonly producerConcurrency: number;
  readonly blockMs: number;
  readonly payloadBytes: number;
  readonly autoPipelining: boolean;
  readonly stallMs: number;
  readonly memorySampleMs: number;
}

export function orderingSettings() {
  return {
    /** Messages per partition-ordering run (0 skips it). */
    partitionMessages: envInt('BENCH_ORDERING_MESSAGES', 30_000, 0),
    /** Messages per global-ordering run (0 skips it). */
    globalMessages: envInt('BENCH_ORDERING_GLOBAL_MESSAGES', 15_000, 0),
    runs: envInt('BENCH_ORDERING_RUNS', 3, 1),
    keys: envInt('BENCH_ORDERING_KEYS', 1_000, 1),
    /** Consecutive messages per key (k0 k0 k0 k0 k1 ...): several messages of a key are in flight at once. */
    burst: envInt('BENCH_ORDERING_BURST', 4, 1),
    partitions: envInt('BENCH_ORDERING_PARTITIONS', 8, 1),
    consumers: envInt('BENCH_ORDERING_CONSUMERS', 2, 1),
    maxConcurrency: envInt('BENCH_ORDERING_MAX_CONCURRENCY', 64, 1),
    /** 1: also run global ordering with a second, standby consumer process. */
    globalStandby: envInt('BENCH_ORDERING_GLOBAL_STANDBY', 1, 0) === 1,
  };
}
export type OrderingSettings = ReturnType<typeof orderingSettings>;

const STARTUP_TIMEOUT_MS = 40_000;

export interface Variant {
  readonly id: string;
  readonly strategy: OrderingStrategy;
  readonly mode: ConsumerMode;
  readonly consumers: number;
  readonly partitions: number;
  readonly messages: number;
  /** Library features (ordering-common.ts featureConfig); default 'ordering'. 'none' reads one stream, unpartitioned. */
  readonly features?: FeatureSet;
  /** Producer rate in messages/s; default 0 = as fast as possible with producerConcurrency sends in flight. */
  readonly ratePerSecond?: number;
  /** Set: the consumers record emit -> handler latency, dropping their first `latencyWarmup` messages each. */
  readonly latencyWarmup?: number;
  /** Library consumers keep the library's default batchSize and concurrency (and maxConcurrency when `s` has 0). */
  readonly libraryDefaults?: boolean;
}

/** One run of one variant. */
export interface OrderingOutcome {
  readonly msgPerSec: number;
  readonly sent: number;
  readonly failedSends: number;
  readonly unique: number;
  readonly lost: number;
  /** Deliveries beyond the first, within and across consumer processes. */
  readonly duplicates: number;
  readonly outOfOrder: number;
  readonly keyGaps: number;
  readonly totalOrderViolations: number;
  readonly sequenceBreaks: number;
  readonly examples: readonly string[];
  readonly elapsedMs: number;
  readonly producerMsgPerSec: number;
  /** Messages each consumer process had to handle (its partitions' share). */
  readonly shares: readonly number[];
  /** Time from starting the consumers until each owned its share of the partitions (not measured in msg/s). */
  readonly settleMs: number;
  /** A consumer's partitions at the end differed from those at the start. */
  readonly ownershipChanged: boolean;
  readonly pendingAfter: number | null;
  readonly library?: OrderedLibraryCounters;
  /** Variants with latencyWarmup: emit -> handler latency over every consumer's samples. */
  readonly latencyMs?: { readonly p50: number; readonly p99: number; readonly max: number; readonly samples: number };
  /** Feature set 'all': evidence that the features were on, counted before clean-up (each should equal `sent`). */
  readonly featureChecks?: {
    /** `<stream>:pub:<key>` records of idempotent publishes. */
    readonly idempotentPublishes: number;
    /** `<stream>:done:<group>:<key>` exactly-once processing records. */
    readonly processingRecords: number;
    /** Payloads the consumers validated against the registered schema and found valid. */
    readonly schemaValidated: number;
  };
  readonly error?: string;
}

export function failedOutcome(error: unknown): OrderingOutcome {
  const nan = Number.NaN;
  return {
    msgPerSec: nan, sent: 0, failedSends: 0, unique: 0, lost: 0, duplicates: 0, outOfOrder: 0, keyGaps: 0, totalOrderViolations: 0,
    sequenceBreaks: 0, examples: [], elapsedMs: nan, producerMsgPerSec: nan, shares: [], settleMs: nan, ownershipChanged: false,
    pendingAfter: null, error: errorText(error),
  };
}

/** Registers ORDERED_PAYLOAD_SCHEMA as version 1.0.0 of ORDERED_PATTERN under `prefix` (feature set 'all'). */
export async function registerOrderedSchema(url: string, prefix: string): Promise<void> {
  const schemas = new SchemaManager({ connection: { url }, streams: { keyPrefix: prefix }, schema: { enabled: true } });
  try {
    await schemas.registerSchema(ORDERED_PATTERN, ORDERED_PAYLOAD_SCHEMA, '1.0.0');
  } finally {
    await schemas.close();
  }
}

/** Runs one variant: consumers settle, the producer sends, every consumer finishes its share; then checks. */
export async function runVariant(url: string, admin: Redis, base: OrderingBaseSettings, s: OrderingSettings, v: Variant, label: string): Promise<OrderingOutcome> {
  const prefix = `bench:${randomBytes(3).toString('hex')}:${label}`;
  const keyConfig = { strategy: v.strategy, partitions: v.partitions, maxConcurrency: s.maxConcurrency, features: v.features };
  // The library names its partition streams itself; the raw baseline uses the same names for its streams.
  const manager =
    v.mode === 'library' && v.features !== 'none'
      ? new PartitioningManager({ connection: { url }, streams: { keyPrefix: prefix }, consumer: { group: GROUP }, ...featureConfig(keyConfig) })
      : undefined;
  const streams = Array.from({ length: v.partitions }, (_, n) =>
    manager
      ? manager.streamOf(ORDERED_PATTERN, n)
      : v.strategy === 'global' || v.partitions === 1
        ? `${prefix}:{${ORDERED_PATTERN}}`
        : `${prefix}:{${ORDERED_PATTERN}#${n}}`,
  );
  if (v.mode === 'library' && (v.features === 'all' || v.features === 'schema')) await registerOrderedSchema(url, prefix);
  const consumers: WorkerProcess[] = [];
  let producer: WorkerProcess | undefined;
  try {
    for (let i = 0; i < v.consumers; i++) {
      const params: OrderedConsumerParams = {
        mode: v.mode,
        scenario: v.latencyWarmup === undefined ? 'live' : 'latency',
        redisUrl: url,
        keyPrefix: prefix,
        stream: streams[0],
        pattern: ORDERED_PATTERN,
        expected: v.messages,
        batchSize: base.batchSize,
        concurrency: base.concurrency,
        blockMs: base.blockMs,
        autoPipelining: base.autoPipelining,
        latencyWarmup: v.latencyWarmup ?? 0,
        memorySampleMs: base.memorySampleMs,
        strategy: v.strategy,
        partitions: v.partitions,
        consumers: v.consumers,
        keys: s.keys,
        burst: s.burst,
        maxConcurrency: s.maxConcurrency,
        rawStreams: v.mode === 'raw' ? streams.filter((_, n) => n % v.consumers === i) : [],
        features: v.features,
        libraryDefaults: v.libraryDefaults,
        cpuProfilePath: process.env.BENCH_CPU_PROF ? join(process.env.BENCH_CPU_PROF, `${label.replace(/\W+/g, '-')}-consumer-${i + 1}-${Date.now()}.cpuprofile`) : undefined,
      };
      consumers.push(new WorkerProcess(`${label} consumer ${i + 1}`, v.mode === 'raw' ? 'ordered-raw-consumer' : 'ordered-consumer', params));
    }
    await Promise.all(consumers.map((c) => c.waitFor('initialized', STARTUP_TIMEOUT_MS)));
    const settleStarted = Date.now();
    for (const c of consumers) c.post({ type: 'start' });
    const owned = (await Promise.all(consumers.map((c) => c.waitFor('listening', STARTUP_TIMEOUT_MS)))).map((m) => m.streams ?? []);
    const settleMs = Date.now() - settleStarted;
    const all = owned.flat();
    if (new Set(all).size !== all.length || all.length !== streams.length || !streams.every((st) => all.includes(st))) {
      throw new Error(`partitions not divided among the consumers: ${JSON.stringify(owned)}`);
    }

    // Each consumer's share: the messages of the keys routed to its partitions (the library's own routing).
    const perKey = new Array<number>(s.keys).fill(0);
    for (let seq = 0; seq < v.messages; seq++) perKey[keyIndexOf(seq, s)]++;
    const perStream = new Map<string, number>(streams.map((st) => [st, 0]));
    for (let k = 0; k < s.keys; k++) {
      const key = `k${k}`;
      const stream = manager
        ? (await manager.route(ORDERED_PATTERN, { key })).stream
        : streams[v.strategy === 'global' ? 0 : rawPartitionOf(key, v.partitions)];
      perStream.set(stream, (perStream.get(stream) ?? 0) + perKey[k]);
    }
    const shares = owned.map((list) => list.reduce((n, st) => n + (perStream.get(st) ?? 0), 0));
    consumers.forEach((c, i) => c.post({ type: 'expect', count: shares[i] }));

    const producerParams: OrderedProducerParams = {
      mode: v.mode,
      redisUrl: url,
      keyPrefix: prefix,
      stream: streams[0],
      pattern: ORDERED_PATTERN,
      count: v.messages,
      concurrency: base.producerConcurrency,
      ratePerSecond: v.ratePerSecond ?? 0,
      payloadBytes: base.payloadBytes,
      autoPipelining: base.autoPipelining,
      strategy: v.strategy,
      partitions: v.partitions,
      keys: s.keys,
      burst: s.burst,
      rawStreams: streams,
      features: v.features,
      cpuProfilePath: process.env.BENCH_CPU_PROF ? join(process.env.BENCH_CPU_PROF, `${label.replace(/\W+/g, '-')}-producer-${Date.now()}.cpuprofile`) : undefined,
    };
    producer = new WorkerProcess(`${label} producer`, 'ordered-producer', producerParams);
    await producer.waitFor('initialized', STARTUP_TIMEOUT_MS);
    if (process.env.BENCH_COMMAND_STATS) await admin.config('RESETSTAT');
    producer.post({ type: 'start' });
    const { result: produced } = (await producer.waitFor('produced', 60_000 + v.messages * 2)) as { result: ProducerResult };
    await producer.finish(10_000);
    if (produced.failed > 0) throw new Error(`${produced.failed} of ${v.messages} sends failed, first: ${produced.firstError}`);

    // Wait until every consumer finished its share, or nothing moved for stallMs.
    const until = Date.now() + 30_000 + v.messages;
    for (const c of consumers) c.lastProgressAt = Date.now();
    while (Date.now() < until && !consumers.every((c) => c.has('complete'))) {
      if (Date.now() - Math.max(...consumers.map((c) => c.lastProgressAt)) > base.stallMs) break;
      await sleep(20);
    }
    if (process.env.BENCH_COMMAND_STATS) console.log(`  ${label} Redis commands per message: ${await commandsPerMessage(admin, v.messages)}`);
    const results: OrderedConsumerResult[] = [];
    for (const c of consumers) {
      c.post({ type: 'stop' });
      results.push((await c.waitFor('result', 30_000)).result as OrderedConsumerResult);
      await c.finish(10_000);
    }

    const seen = new Uint8Array(Math.max(1, v.messages));
    let unique = 0;
    let duplicates = 0;
    for (const r of results) {
      duplicates += r.duplicates;
      const bits = Buffer.from(r.seenBase64, 'base64');
      for (let i = 0; i < seen.length && i < bits.length; i++) {
        if (bits[i] === 0) continue;
        if (seen[i] === 1) duplicates++;
        else {
          seen[i] = 1;
          unique++;
        }
      }
    }
    // The last consumer to acknowledge its share ends the measurement (a consumer with no share completes at once).
    // A consumer that never completed reports NaN, which arrives as null (IPC is JSON).
    const finishedAt = results.map((r, i) => (shares[i] === 0 ? Number.NEGATIVE_INFINITY : typeof r.completeAt === 'number' ? r.completeAt : Number.NaN));
    const completeAt = finishedAt.some(Number.isNaN) ? Number.NaN : Math.max(...finishedAt);
    const elapsedMs = completeAt - produced.firstSendAt;
    const sum = (f: (r: OrderedConsumerResult) => number) => results.reduce((n, r) => n + f(r), 0);
    const libraryCounters = results.map((r) => r.library).filter((c): c is OrderedLibraryCounters => c !== undefined);
    const featureChecks =
      v.mode === 'library' && v.features === 'all'
        ? {
            idempotentPublishes: await countKeys(admin, `${prefix}:*:pub:*`),
            processingRecords: await countKeys(admin, `${prefix}:*:done:*`),
            schemaValidated: sum((r) => r.schemaValidated ?? 0),
          }
        : undefined;
    return {
      msgPerSec: produced.sent / (elapsedMs / 1_000),
      sent: produced.sent,
      failedSends: produced.failed,
      unique,
      lost: produced.sent - unique,
      duplicates,
      outOfOrder: sum((r) => r.outOfOrder),
      keyGaps: sum((r) => r.keyGaps),
      totalOrderViolations: sum((r) => r.totalOrderViolations),
      sequenceBreaks: sum((r) => r.sequenceBreaks),
      examples: results.flatMap((r) => r.examples).slice(0, 5),
      elapsedMs,
      producerMsgPerSec: produced.sent / ((produced.lastDoneAt - produced.firstSendAt) / 1_000),
      shares,
      settleMs,
      ownershipChanged: results.some((r) => r.ownedAtStart.join(',') !== r.ownedAtEnd.join(',')),
      pendingAfter: await pendingSum(admin, streams),
      library: libraryCounters.length
        ? (Object.fromEntries(
            (Object.keys(libraryCounters[0]) as (keyof OrderedLibraryCounters)[]).map((k) => [k, libraryCounters.reduce((n, c) => n + c[k], 0)]),
          ) as unknown as OrderedLibraryCounters)
        : undefined,
      latencyMs: v.latencyWarmup === undefined ? undefined : mergedLatency(results),
      featureChecks,
    };
  } finally {
    producer?.kill();
    for (const c of consumers) c.kill();
    await manager?.close();
    await unlinkPrefix(admin, prefix);
  }
}

/** p50/p99/max over the latency samples of every consumer process (percentiles cannot be merged from summaries). */
function mergedLatency(results: readonly OrderedConsumerResult[]): OrderingOutcome['latencyMs'] {
  const parts = results.map((r) => {
    const bytes = Buffer.from(r.latencySamplesBase64 ?? '', 'base64');
    return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / Float64Array.BYTES_PER_ELEMENT);
  });
  const all = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  all.sort();
  return { p50: percentile(all, 0.5), p99: percentile(all, 0.99), max: all.length ? all[all.length - 1] : Number.NaN, samples: all.length };
}

async function pendingSum(admin: Redis, streams: readonly string[]): Promise<number | null> {
  let total = 0;
  for (const stream of streams) {
    try {
      const summary = (await admin.xpending(stream, GROUP)) as unknown[];
      total += Number(summary[0] ?? 0);
    } catch {
      return null; // no stream or no group: nothing was read from it
    }
  }
  return total;
}

export function describe(o: OrderingOutcome): string {
  if (o.error) return `FAILED (${o.error})`;
  const lib = o.library ? Object.entries(o.library).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`) : [];
  return (
    `${fmt(o.msgPerSec)} msg/s (${o.sent} in ${fmt(o.elapsedMs)} ms, producer alone ${fmt(o.producerMsgPerSec)} msg/s); ` +
    `order violations ${o.outOfOrder + o.totalOrderViolations + o.sequenceBreaks}, lost ${o.lost}, duplicates ${o.duplicates}, ` +
    `pending after ${o.pendingAfter ?? '-'}; shares ${o.shares.join('/')}, settled in ${o.settleMs} ms` +
    (o.keyGaps > 0 ? `; key gaps ${o.keyGaps}` : '') +
    (o.latencyMs ? `; latency p50 ${fmt(o.latencyMs.p50, 2)} ms, p99 ${fmt(o.latencyMs.p99, 2)} ms, max ${fmt(o.latencyMs.max, 1)} ms (${o.latencyMs.samples} samples)` : '') +
    (o.featureChecks
      ? `; idempotent publishes ${o.featureChecks.idempotentPublishes}, processing records ${o.featureChecks.processingRecords}, ` +
        `schema-validated ${o.featureChecks.schemaValidated}`
      : '') +
    (o.ownershipChanged ? '; PARTITIONS MOVED during the run' : '') +
    (lib.length ? `; library ${lib.join(', ')}` : '') +
    (o.examples.length ? `; e.g. ${o.examples.join('; ')}` : '')
  );
}

/** Sums over the runs of one variant, for an integrity table. */
export function totalsOf(list: readonly OrderingOutcome[]) {
  const sum = (f: (o: OrderingOutcome) => number) => list.reduce((n, o) => n + f(o), 0);
  const pending = list.map((o) => o.pendingAfter).filter((p): p is number => p !== null);
  return {
    sent: sum((o) => o.sent),
    unique: sum((o) => o.unique),
    lost: sum((o) => o.lost),
    duplicates: sum((o) => o.duplicates),
    outOfOrder: sum((o) => o.outOfOrder),
    totalOrderAndSequence: sum((o) => o.totalOrderViolations + o.sequenceBreaks),
    /** Entries left pending after the runs, '-' when no stream or group was there to ask. */
    pending: pending.length ? String(pending.reduce((a, b) => a + b, 0)) : '-',
    ownershipChanged: list.filter((o) => o.ownershipChanged).length,
    failures: list.filter((o) => o.error).length,
  };
}

/** One row of the summary: a library variant next to the raw baseline of the same strategy and runs. */
export interface OrderingFigure {
  readonly name: string;
  readonly raw: number;
  readonly library: number;
  /** library / raw (medians). */
  readonly ratio: number;
  /** library msg/s per partition (partition ordering), for the seed's per-partition wording. */
  readonly libraryPerPartition: number;
  /** The library producer's own rate in the same runs (first send to last stored message), median. */
  readonly libraryProducer: number;
  /** Seed: 10,000+ msg/s baseline, 5,000+ with ordering. */
  readonly seed: { readonly rawAtLeast: number; readonly libraryAtLeast: number; readonly rawPass: boolean; readonly libraryPass: boolean };
  readonly runs: { readonly raw: number[]; readonly library: number[] };
}

export interface OrderingFigures {
  readonly messages: { readonly partition: number; readonly global: number };
  readonly keys: number;
  readonly burst: number;
  readonly partitions: number;
  readonly consumers: number;
  readonly maxConcurrency: number;
  readonly runs: number;
  readonly scenarios: readonly OrderingFigure[];
  /** Every run of every variant (raw and library). */
  readonly outcomes: Record<string, OrderingOutcome[]>;
  /** True when no run failed, lost a message or broke the order. */
  readonly ok: boolean;
}

const SEED_RAW = 10_000;
const SEED_LIBRARY = 5_000;

/**
 * Runs the ordering measurement against the Redis at `url`, prints its tables and returns the figures; undefined when
 * both BENCH_ORDERING_MESSAGES and BENCH_ORDERING_GLOBAL_MESSAGES are 0. Sets process.exitCode = 1 when a run failed,
 * lost a message or broke the order.
 */
export async function runOrderingBench(url: string, base: OrderingBaseSettings): Promise<OrderingFigures | undefined> {
  const s = orderingSettings();
  if (s.partitionMessages === 0 && s.globalMessages === 0) return undefined;
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
  const groups: Variant[][] = [];
  if (s.partitionMessages > 0) {
    const p = { strategy: 'partition' as const, consumers: s.consumers, partitions: s.partitions, messages: s.partitionMessages };
    groups.push([{ id: 'partition-raw', mode: 'raw', ...p }, { id: 'partition-library', mode: 'library', ...p }]);
  }
  if (s.globalMessages > 0) {
    const g = { strategy: 'global' as const, partitions: 1, messages: s.globalMessages };
    groups.push([
      { id: 'global-raw', mode: 'raw', consumers: 1, ...g },
      { id: 'global-library', mode: 'library', consumers: 1, ...g },
      ...(s.globalStandby ? [{ id: 'global-library-standby', mode: 'library' as const, consumers: 2, ...g }] : []),
    ]);
  }
  const outcomes: Record<string, OrderingOutcome[]> = {};
  console.log('');
  console.log(
    `ordering: ${s.keys.toLocaleString('en-US')} keys in bursts of ${s.burst}, ${base.payloadBytes} B JSON, ${base.producerConcurrency} sends in flight, ` +
      `batchSize ${base.batchSize}, library ordering.maxConcurrency ${s.maxConcurrency}; ${s.runs} runs, order of raw and library alternates`,
  );
  try {
    for (let run = 1; run <= s.runs; run++) {
      for (const group of groups) {
        for (const v of run % 2 === 1 ? group : [...group].reverse()) {
          let outcome: OrderingOutcome;
          try {
            outcome = await runVariant(url, admin, base, s, v, `ord-${v.id}-${run}`);
          } catch (error) {
            outcome = failedOutcome(error);
          }
          (outcomes[v.id] ??= []).push(outcome);
          console.log(`  ordering ${v.id.padEnd(22)} run ${run}: ${describe(outcome)}`);
        }
      }
    }
  } finally {
    await admin.quit();
  }

  const rates = (id: string) => (outcomes[id] ?? []).map((o) => o.msgPerSec);
  const figure = (name: string, rawId: string, libraryId: string, partitions: number): OrderingFigure => {
    const raw = median(rates(rawId));
    const library = median(rates(libraryId));
    return {
      name,
      raw,
      library,
      ratio: library / raw,
      libraryPerPartition: library / partitions,
      libraryProducer: median((outcomes[libraryId] ?? []).map((o) => o.producerMsgPerSec)),
      seed: { rawAtLeast: SEED_RAW, libraryAtLeast: SEED_LIBRARY, rawPass: raw >= SEED_RAW, libraryPass: library >= SEED_LIBRARY },
      runs: { raw: rates(rawId), library: rates(libraryId) },
    };
  };
  const scenarios: OrderingFigure[] = [];
  if (outcomes['partition-library']) {
    scenarios.push(
      figure(
        `partition ordering (${s.partitionMessages.toLocaleString('en-US')} msgs, ${s.partitions} partitions, ${s.consumers} consumer processes)`,
        'partition-raw',
        'partition-library',
        s.partitions,
      ),
    );
  }
  if (outcomes['global-library']) {
    scenarios.push(figure(`global ordering (${s.globalMessages.toLocaleString('en-US')} msgs, 1 consumer process)`, 'global-raw', 'global-library', 1));
  }
  if (outcomes['global-library-standby']) {
    scenarios.push(figure('global ordering, + 1 standby consumer process', 'global-raw', 'global-library-standby', 1));
  }

  console.log('');
  console.log(`ordering throughput (median of ${s.runs} runs; ratio = library / raw ioredis of the same runs; seed: baseline 10,000+ msg/s, with ordering 5,000+):`);
  console.log(
    table(
      ['scenario', 'raw msg/s', 'library msg/s', 'ratio', 'library per partition', 'library producer alone', 'seed raw', 'seed library'],
      scenarios.map((f) => [
        f.name,
        fmt(f.raw),
        fmt(f.library),
        fmt(f.ratio, 2),
        fmt(f.libraryPerPartition),
        fmt(f.libraryProducer),
        Number.isFinite(f.raw) ? (f.seed.rawPass ? 'ok' : 'MISSED') : 'n/a',
        Number.isFinite(f.library) ? (f.seed.libraryPass ? 'ok' : 'MISSED') : 'n/a',
      ]),
      1,
    ),
  );

  let ok = true;
  const rows = Object.entries(outcomes).map(([id, list]) => {
    const t = totalsOf(list);
    if (t.failures > 0 || t.outOfOrder + t.totalOrderAndSequence > 0 || t.lost > 0) ok = false;
    return [
      id,
      String(list.length),
      fmt(t.sent),
      fmt(t.unique),
      String(t.lost),
      String(t.duplicates),
      String(t.outOfOrder),
      String(t.totalOrderAndSequence),
      t.pending,
      String(t.ownershipChanged),
      String(t.failures),
    ];
  });
  console.log('');
  console.log(
    table(
      ['ordering integrity', 'runs', 'sent', 'received once', 'lost', 'duplicated', 'key order violations', 'total order/sequence violations', 'pending after', 'partitions moved', 'failed runs'],
      rows,
      1,
    ),
  );
  if (!ok) {
    console.error('bench: ordering runs failed, lost messages or broke the order (see above)');
    process.exitCode = 1;
  }
  return {
    messages: { partition: s.partitionMessages, global: s.globalMessages },
    keys: s.keys,
    burst: s.burst,
    partitions: s.partitions,
    consumers: s.consumers,
    maxConcurrency: s.maxConcurrency,
    runs: s.runs,
    scenarios,
    outcomes,
    ok,
  };
}

/**
 * Runs one measurement alone (`node dist/bench/<name>.js`) against its own throw-away redis-server (or BENCH_REDIS_URL),
 * with run.ts's defaults for the shared settings; exits 1 when it throws.
 */
export function runStandalone(name: string, bench: (url: string, base: OrderingBaseSettings) => Promise<unknown>): void {
  const main = async () => {
    const given = process.env.BENCH_REDIS_URL;
    const own = given ? undefined : await ThrowawayRedis.start();
    const stop = (code: number) => {
      killAllWorkers();
      process.exit(code);
    };
    process.once('SIGINT', () => stop(130));
    process.once('SIGTERM', () => stop(143));
    try {
      await bench(given ?? own!.url, {
        // The library's defaults unless set, as in bench/run.ts.
        batchSize: envInt('BENCH_BATCH_SIZE', new ConsumerOptions().batchSize, 1),
        concurrency: envInt('BENCH_CONCURRENCY', new ConsumerOptions().concurrency, 1),
        producerConcurrency: envInt('BENCH_PRODUCER_CONCURRENCY', 256, 1),
        blockMs: envInt('BENCH_BLOCK_MS', 1_000, 1),
        payloadBytes: envInt('BENCH_PAYLOAD_BYTES', 1_024, 1),
        autoPipelining: process.env.BENCH_AUTOPIPELINING === '1',
        stallMs: envInt('BENCH_STALL_MS', 5_000, 1),
        memorySampleMs: envInt('BENCH_MEMORY_SAMPLE_MS', 100, 1),
      });
    } finally {
      await own?.stop();
    }
  };
  main().catch((error: unknown) => {
    console.error(`${name} bench failed: ${errorText(error)}`);
    killAllWorkers();
    process.exit(1);
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) runStandalone('ordering', runOrderingBench);

/** BENCH_COMMAND_STATS: Redis's own count (INFO commandstats) of each command per message sent, and its CPU µs per message. */
async function commandsPerMessage(admin: Redis, messages: number): Promise<string> {
  const stats = await admin.info('commandstats');
  const rows = [...stats.matchAll(/cmdstat_([\w|]+):calls=(\d+),usec=(\d+)/g)].map(([, name, calls, usec]) => ({ name, calls: Number(calls), usec: Number(usec) }));
  rows.sort((a, b) => b.usec - a.usec);
  const total = rows.reduce((sum, r) => sum + r.usec, 0);
  return `${(total / messages).toFixed(1)} µs of Redis CPU; ` + rows.slice(0, 8).map((r) => `${r.name} ${(r.calls / messages).toFixed(3)} (${(r.usec / messages).toFixed(1)} µs)`).join(', ');
}
