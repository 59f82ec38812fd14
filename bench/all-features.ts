/**
 * The seed's "With All Features" figures, every feature on at once, next to the raw ioredis loop (and the plain library
 * for the latencies) of the same run:
 *
 *   all features  8 partitions (BENCH_ORDERING_PARTITIONS) hash-partitioned by the payload field `key`; ordering
 *                 'partition' per `key` (maxConcurrency BENCH_ORDERING_MAX_CONCURRENCY); exactlyOnce.enabled and an
 *                 idempotency key per message (idempotent publish + processing records committed with the XACK);
 *                 schema.enabled, validationMode 'strict', with a JSON Schema of the payload registered (emit and consume
 *                 validate); retry and deadLetter with their defaults. 2 consumer processes (BENCH_ORDERING_CONSUMERS)
 *                 sharing the partitions through leases, as in bench/ordering.ts, whose runVariant and workers this reuses.
 *   plain library no feature: one stream, 1 consumer process (latencies only).
 *   raw           XADD to stream FNV(key) % 8, each consumer process reads a static half with the raw loop.
 *
 * Measured:
 *   throughput       messages with 1,000 keys in bursts of 4, sent as fast as possible (BENCH_PRODUCER_CONCURRENCY in
 *                    flight); msg/s from the first send to the last consumer's last acknowledgement, and per partition.
 *                    Lost, duplicated and out-of-key-order messages are counted (0 expected).
 *   publish latency  `await lastValueFrom(client.emit(...))`, one at a time, in this process with no consumer running;
 *                    raw XADD, plain library and all features take turns message by message.
 *   consume latency  a fixed rate (BENCH_ALL_FEATURES_RATE, 500 msg/s); handler time minus the payload's send time.
 *
 * `npm run bench` runs it last; `node dist/bench/all-features.js` runs only this. Settings: BENCH_ALL_FEATURES_* below.
 */
import { Redis } from 'ioredis';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsRecord } from 'nestjs-redis-streams-enterprise';
import { describe, failedOutcome, orderingSettings, registerOrderedSchema, runStandalone, runVariant, totalsOf, type OrderingBaseSettings, type OrderingOutcome, type Variant } from './ordering.js';
import { libraryFields, makePad, percentile } from './protocol.js';
import { envInt, fmt, median, table, unlinkPrefix } from './report-utils.js';
import { ORDERED_PATTERN, featureConfig, idempotencyKeyOf, orderedPayload, rawPartitionOf } from './workers/ordering-common.js';

function allFeaturesSettings() {
  return {
    /** Messages per throughput run (0 skips the whole measurement). */
    messages: envInt('BENCH_ALL_FEATURES_MESSAGES', 10_000, 0),
    runs: envInt('BENCH_ALL_FEATURES_RUNS', 2, 1),
    /** Timed publishes per mode (raw, plain, all), after `publishWarmup` untimed rounds. */
    publishMessages: envInt('BENCH_ALL_FEATURES_PUBLISH', 2_000, 1),
    publishWarmup: envInt('BENCH_ALL_FEATURES_PUBLISH_WARMUP', 300, 0),
    /** Consume latency: producer rate (msg/s), duration, and the first seconds dropped (JIT warm-up). */
    rate: envInt('BENCH_ALL_FEATURES_RATE', 500, 1),
    latencySeconds: envInt('BENCH_ALL_FEATURES_LATENCY_SECONDS', 5, 1),
    latencyWarmupSeconds: envInt('BENCH_ALL_FEATURES_LATENCY_WARMUP_SECONDS', 1, 0),
  };
}

/** The seed: "With All Features: 1,000+ messages/second per partition"; publish < 1 ms / < 5 ms; consume < 10 ms / < 50 ms. */
const SEED = {
  perPartitionAtLeast: 1_000,
  publishMs: { baseline: 1, allFeatures: 5 },
  consumeMs: { baseline: 10, allFeatures: 50 },
} as const;

type LatencyMode = 'raw' | 'plain' | 'all';
const LATENCY_MODES: readonly LatencyMode[] = ['raw', 'plain', 'all'];

interface Percentiles {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly samples: number;
}

export interface AllFeaturesFigures {
  readonly features: string;
  readonly partitions: number;
  readonly consumers: number;
  readonly throughput: {
    readonly messages: number;
    readonly runs: number;
    readonly rawMsgPerSec: number;
    readonly libraryMsgPerSec: number;
    /** library / raw (medians). */
    readonly ratio: number;
    readonly rawPerPartition: number;
    readonly libraryPerPartition: number;
    readonly seed: { readonly libraryPerPartitionAtLeast: number; readonly pass: boolean };
    readonly perRun: { readonly raw: number[]; readonly library: number[] };
  };
  readonly publishLatencyMs: Record<LatencyMode, Percentiles> & {
    readonly warmup: number;
    /** An invalid payload was refused at emit (schema strict is on). */
    readonly invalidPayloadRefused: boolean;
    /** Emitting an idempotency key again returned the first entry id (idempotent publish is on). */
    readonly repeatReturnedFirstId: boolean;
  };
  readonly consumeLatencyMs: Record<LatencyMode, Percentiles | undefined> & { readonly ratePerSecond: number; readonly seconds: number; readonly warmupSeconds: number };
  /** Every run of every variant. */
  readonly outcomes: Record<string, OrderingOutcome[]>;
  /** No run failed, lost, duplicated or reordered a message, and every feature check matched. */
  readonly ok: boolean;
}

const sortedPercentiles = (samples: Float64Array): Percentiles => {
  const sorted = samples.slice().sort();
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.length ? sorted[sorted.length - 1] : Number.NaN, samples: sorted.length };
};

/**
 * Publish latency in this process, no consumer running: raw XADD (to the raw baseline's partition stream), the plain
 * library and the library with all features take turns message by message (the first of a round rotates), each send
 * awaited before the next.
 */
async function measurePublish(url: string, admin: Redis, spread: ReturnType<typeof orderingSettings>, payloadBytes: number, count: number, warmup: number) {
  const prefix = `bench:${randomBytes(3).toString('hex')}:allf-publish`;
  const config = { strategy: 'partition' as const, partitions: spread.partitions, maxConcurrency: spread.maxConcurrency };
  await registerOrderedSchema(url, `${prefix}:all`);
  const all = new RedisStreamsClient({ connection: { url }, streams: { keyPrefix: `${prefix}:all` }, ...featureConfig({ ...config, features: 'all' }) });
  const plain = new RedisStreamsClient({ connection: { url }, streams: { keyPrefix: `${prefix}:plain` } });
  const raw = new Redis(url, { lazyConnect: true });
  const rawStreams = Array.from({ length: spread.partitions }, (_, n) => `${prefix}:raw:{${ORDERED_PATTERN}#${n}}`);
  const pad = makePad(payloadBytes);
  const keyed = (seq: number) => new RedisStreamsRecord(orderedPayload(seq, spread, pad), { idempotencyKey: idempotencyKeyOf(seq) });
  const send: Record<LatencyMode, (seq: number) => Promise<unknown>> = {
    raw: (seq) => {
      const payload = orderedPayload(seq, spread, pad);
      return raw.xadd(rawStreams[rawPartitionOf(payload.key, spread.partitions)], '*', ...libraryFields(ORDERED_PATTERN, randomUUID(), JSON.stringify(payload)), 'key', payload.key);
    },
    plain: (seq) => lastValueFrom(plain.emit(ORDERED_PATTERN, orderedPayload(seq, spread, pad))),
    all: (seq) => lastValueFrom(all.emit(ORDERED_PATTERN, keyed(seq))),
  };
  try {
    await Promise.all([raw.connect(), plain.connect(), all.connect()]);
    const invalid = new RedisStreamsRecord({ ...orderedPayload(0, spread, pad), n: -1 }, { idempotencyKey: 'invalid' });
    const invalidPayloadRefused = await lastValueFrom(all.emit(ORDERED_PATTERN, invalid)).then(() => false, () => true);
    const samples = Object.fromEntries(LATENCY_MODES.map((m) => [m, new Float64Array(count)])) as Record<LatencyMode, Float64Array>;
    let firstAllId: unknown;
    for (let round = 0; round < warmup + count; round++) {
      for (let turn = 0; turn < LATENCY_MODES.length; turn++) {
        const mode = LATENCY_MODES[(round + turn) % LATENCY_MODES.length];
        const started = performance.now();
        const id = await send[mode](round);
        const elapsed = performance.now() - started;
        if (round >= warmup) samples[mode][round - warmup] = elapsed;
        if (mode === 'all' && round === 0) firstAllId = id;
      }
    }
    const repeatReturnedFirstId = (await send.all(0)) === firstAllId;
    return {
      raw: sortedPercentiles(samples.raw),
      plain: sortedPercentiles(samples.plain),
      all: sortedPercentiles(samples.all),
      warmup,
      invalidPayloadRefused,
      repeatReturnedFirstId,
    };
  } finally {
    await all.close();
    await plain.close();
    raw.disconnect();
    await unlinkPrefix(admin, prefix);
  }
}

const verdict = (value: number, op: '<' | '>=', bound: number): string =>
  !Number.isFinite(value) ? 'n/a' : `${op} ${fmt(bound)}: ${(op === '<' ? value < bound : value >= bound) ? 'ok' : 'MISSED'}`;

/**
 * Runs the all-features measurement against the Redis at `url`, prints its tables and returns the figures; undefined
 * when BENCH_ALL_FEATURES_MESSAGES is 0. Sets process.exitCode = 1 when a run failed, lost, duplicated or reordered a
 * message, or a feature turned out not to be on.
 */
export async function runAllFeaturesBench(url: string, base: OrderingBaseSettings): Promise<AllFeaturesFigures | undefined> {
  const a = allFeaturesSettings();
  if (a.messages === 0) return undefined;
  const s = orderingSettings();
  const features =
    `${s.partitions} partitions (hash by key), ordering 'partition' by key (maxConcurrency ${s.maxConcurrency}), exactlyOnce + an idempotency ` +
    `key per message, schema strict (JSON Schema of the payload), retry/deadLetter defaults; ${s.consumers} consumer processes`;
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
  const outcomes: Record<string, OrderingOutcome[]> = {};
  const run = async (v: Variant, label: string) => {
    let outcome: OrderingOutcome;
    try {
      outcome = await runVariant(url, admin, base, s, v, label);
    } catch (error) {
      outcome = failedOutcome(error);
    }
    (outcomes[v.id] ??= []).push(outcome);
    console.log(`  all-features ${v.id.padEnd(16)}: ${describe(outcome)}`);
  };
  console.log('');
  console.log(`all features at once: ${features}`);
  let publish: AllFeaturesFigures['publishLatencyMs'];
  try {
    publish = await measurePublish(url, admin, s, base.payloadBytes, a.publishMessages, a.publishWarmup);
    console.log(
      `  all-features publish latency (${a.publishMessages} per mode, one at a time): ` +
        LATENCY_MODES.map((m) => `${m} p50 ${fmt(publish[m].p50, 3)} / p99 ${fmt(publish[m].p99, 3)} ms`).join(', ') +
        `; invalid payload refused ${publish.invalidPayloadRefused}, repeated idempotency key stored once ${publish.repeatReturnedFirstId}`,
    );

    const partitioned = { strategy: 'partition' as const, consumers: s.consumers, partitions: s.partitions };
    const throughput: Variant[] = [
      { id: 'throughput-raw', mode: 'raw', messages: a.messages, ...partitioned },
      { id: 'throughput-all', mode: 'library', features: 'all', messages: a.messages, ...partitioned },
    ];
    for (let r = 1; r <= a.runs; r++) {
      for (const v of r % 2 === 1 ? throughput : [...throughput].reverse()) await run(v, `allf-${v.id}-${r}`);
    }

    const paced = { ratePerSecond: a.rate, messages: a.rate * a.latencySeconds };
    const warmupMessages = a.rate * a.latencyWarmupSeconds;
    for (const v of [
      { id: 'consume-raw', mode: 'raw', ...partitioned, ...paced, latencyWarmup: Math.ceil(warmupMessages / s.consumers) },
      { id: 'consume-plain', mode: 'library', features: 'none', strategy: 'partition', consumers: 1, partitions: 1, ...paced, latencyWarmup: warmupMessages },
      { id: 'consume-all', mode: 'library', features: 'all', ...partitioned, ...paced, latencyWarmup: Math.ceil(warmupMessages / s.consumers) },
    ] satisfies Variant[]) {
      await run(v, `allf-${v.id}`);
    }
  } finally {
    await admin.quit();
  }

  const rates = (id: string) => (outcomes[id] ?? []).map((o) => o.msgPerSec);
  const rawMsgPerSec = median(rates('throughput-raw'));
  const libraryMsgPerSec = median(rates('throughput-all'));
  const libraryPerPartition = libraryMsgPerSec / s.partitions;
  const consumeOf = (id: string) => outcomes[id]?.[0]?.latencyMs;
  const consume = { raw: consumeOf('consume-raw'), plain: consumeOf('consume-plain'), all: consumeOf('consume-all') };

  console.log('');
  console.log(
    `all features at once vs raw ioredis and the plain library (same run; throughput median of ${a.runs} runs of ` +
      `${a.messages.toLocaleString('en-US')} msgs; consume latency at ${a.rate} msg/s for ${a.latencySeconds} s, first ${a.latencyWarmupSeconds} s dropped):`,
  );
  const ms = (p: Percentiles | undefined, key: 'p50' | 'p99') => fmt(p?.[key], 2);
  const latencyRows = (name: string, l: Record<LatencyMode, Percentiles | undefined>, seed: { baseline: number; allFeatures: number }) =>
    (['p50', 'p99'] as const).map((key) => [
      `${name} ${key}`,
      'ms',
      ms(l.raw, key),
      ms(l.plain, key),
      ms(l.all, key),
      fmt((l.all?.[key] ?? Number.NaN) / (l.raw?.[key] ?? Number.NaN), 2),
      verdict(l.plain?.[key] ?? Number.NaN, '<', seed.baseline),
      verdict(l.all?.[key] ?? Number.NaN, '<', seed.allFeatures),
    ]);
  console.log(
    table(
      ['measure', 'unit', 'raw', 'library plain', 'library all features', 'all / raw', 'seed baseline', 'seed all features'],
      [
        ['throughput emit -> handler -> ack', 'msg/s', fmt(rawMsgPerSec), '', fmt(libraryMsgPerSec), fmt(libraryMsgPerSec / rawMsgPerSec, 2), '', ''],
        // A share of one machine's total, not the seed's per-partition measure (one partition, one consumer process:
        // bench/per-partition.ts), so no verdict here.
        [`  share per partition (/ ${s.partitions}; the seed's measure: per partition)`, 'msg/s', fmt(rawMsgPerSec / s.partitions), '', fmt(libraryPerPartition), '', '', ''],
        ...latencyRows('publish, await emit one at a time,', publish, SEED.publishMs),
        ...latencyRows(`consume, emit -> handler @ ${a.rate} msg/s,`, consume, SEED.consumeMs),
      ],
      2,
    ),
  );

  let ok = publish.invalidPayloadRefused && publish.repeatReturnedFirstId;
  const rows = Object.entries(outcomes).map(([id, list]) => {
    const t = totalsOf(list);
    const checks = list.map((o) => o.featureChecks).filter((c) => c !== undefined);
    const checksMatch = list.every((o) => !o.featureChecks || Object.values(o.featureChecks).every((n) => n === o.sent));
    const counters = new Map<string, number>();
    for (const o of list) for (const [k, n] of Object.entries(o.library ?? {})) if (n > 0) counters.set(k, (counters.get(k) ?? 0) + n);
    if (t.failures > 0 || t.outOfOrder > 0 || t.lost > 0 || t.duplicates > 0 || !checksMatch) ok = false;
    return [
      id,
      String(list.length),
      fmt(t.sent),
      fmt(t.unique),
      String(t.lost),
      String(t.duplicates),
      String(t.outOfOrder),
      t.pending,
      counters.size ? [...counters].map(([k, n]) => `${k} ${n}`).join(', ') : '-',
      checks.length
        ? (['idempotentPublishes', 'processingRecords', 'schemaValidated'] as const).map((k) => fmt(checks.reduce((n, c) => n + c[k], 0))).join(' / ')
        : '-',
      String(t.failures),
    ];
  });
  console.log('');
  console.log(
    table(
      ['all-features integrity', 'runs', 'sent', 'received once', 'lost', 'duplicated', 'key order violations', 'pending after', 'library counters > 0', 'idempotent publishes / processing records / schema-validated', 'failed runs'],
      rows,
      1,
    ),
  );
  if (!ok) {
    console.error('bench: all-features runs failed, lost, duplicated or reordered messages, or a feature was not on (see above)');
    process.exitCode = 1;
  }
  return {
    features,
    partitions: s.partitions,
    consumers: s.consumers,
    throughput: {
      messages: a.messages,
      runs: a.runs,
      rawMsgPerSec,
      libraryMsgPerSec,
      ratio: libraryMsgPerSec / rawMsgPerSec,
      rawPerPartition: rawMsgPerSec / s.partitions,
      libraryPerPartition,
      seed: { libraryPerPartitionAtLeast: SEED.perPartitionAtLeast, pass: libraryPerPartition >= SEED.perPartitionAtLeast },
      perRun: { raw: rates('throughput-raw'), library: rates('throughput-all') },
    },
    publishLatencyMs: publish,
    consumeLatencyMs: { ...consume, ratePerSecond: a.rate, seconds: a.latencySeconds, warmupSeconds: a.latencyWarmupSeconds },
    outcomes,
    ok,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) runStandalone('all-features', runAllFeaturesBench);
