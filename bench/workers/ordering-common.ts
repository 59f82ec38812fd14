/**
 * What the ordering benchmark (bench/ordering.ts) and its workers (ordered-*.ts) share: parameters, the keyed payload,
 * the raw baseline's partition function, the per-key order check and the consumer lifecycle. No Nest and no library
 * import here, so the raw workers load only ioredis.
 */
import { WindowProfiler } from '../cpu-profiler.js';
import {
  DeliveryCounter,
  GcMeter,
  MemorySampler,
  errorText,
  exitWithParent,
  nextParentMessage,
  parseParams,
  send,
  sleep,
  wallNow,
  type BenchPayload,
  type ConsumerParams,
  type ConsumerResult,
  type GcStats,
  type ProducerParams,
} from '../protocol.js';
// Types only: erased at run time, so the raw workers still load no library code.
import type { JsonSchema, RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';

/** Pattern of the ordering scenarios. */
export const ORDERED_PATTERN = 'bench.ordered';

export type OrderingStrategy = 'partition' | 'global';

/** The 1 KB payload plus its ordering key and its position within that key. */
export interface OrderedPayload extends BenchPayload {
  /** `k<index>`, index = keyIndexOf(seq). */
  readonly key: string;
  /** Position of the message within its key: 0, 1, 2, ... in send order. */
  readonly n: number;
}

/**
 * The ordering/partitioning section of the library configuration, the same for consumers, producer and orchestrator:
 * partition ordering = hash partitioning over `partitions` streams by the payload field `key` and per-key lanes;
 * global ordering = one partition, one active consumer, a sequence number stamped at publish.
 */
export function orderingConfig(params: { strategy: OrderingStrategy; partitions: number; maxConcurrency?: number }): RedisStreamsEnterpriseConfig {
  return params.strategy === 'global'
    ? { ordering: { enabled: true, strategy: 'global' } }
    : {
        partitioning: { enabled: true, strategy: 'hash', partitionCount: params.partitions, partitionKey: 'key' },
        ordering: { enabled: true, strategy: 'partition', partitionKey: 'key', ...(params.maxConcurrency ? { maxConcurrency: params.maxConcurrency } : {}) },
      };
}

/**
 * Which library features a library worker turns on: `ordering` = orderingConfig (the ordering scenarios); `none` = the
 * plain library (one stream, no partitioning, ordering, schema or exactly-once); `all` = orderingConfig plus
 * exactly-once processing, strict schema validation of ORDERED_PAYLOAD_SCHEMA and retries/dead letters with their
 * defaults (bench/all-features.ts). The producer then also emits each message with an idempotency key.
 * `partitioned` = hash partitioning by `key` without ordering (consumers share the partitions by leases, handlers of a
 * partition run side by side); `schema` = that plus strict schema validation (bench/per-partition.ts).
 */
export type FeatureSet = 'none' | 'partitioned' | 'schema' | 'ordering' | 'all';

/** The JSON Schema registered for ORDERED_PATTERN when all features are on (strict: emit and consume validate it). */
export const ORDERED_PAYLOAD_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    seq: { type: 'integer', minimum: 0 },
    sentAt: { type: 'number' },
    key: { type: 'string', pattern: '^k[0-9]+$' },
    n: { type: 'integer', minimum: 0 },
    pad: { type: 'string' },
  },
  required: ['seq', 'sentAt', 'key', 'n', 'pad'],
  additionalProperties: false,
};

/** The library configuration of a feature set (connection, prefix and consumer settings are added by the caller). */
export function featureConfig(params: { strategy: OrderingStrategy; partitions: number; maxConcurrency?: number; features?: FeatureSet }): RedisStreamsEnterpriseConfig {
  const features = params.features ?? 'ordering';
  if (features === 'none') return {};
  const partitioning = { partitioning: { enabled: true, strategy: 'hash', partitionCount: params.partitions, partitionKey: 'key' } } as const;
  if (features === 'partitioned') return partitioning;
  if (features === 'schema') return { ...partitioning, schema: { enabled: true, validationMode: 'strict' } };
  if (features === 'ordering') return orderingConfig(params);
  return {
    ...orderingConfig(params),
    exactlyOnce: { enabled: true },
    schema: { enabled: true, validationMode: 'strict' },
    // Defaults, named so the report shows what was on: 3 attempts with exponential backoff, then the dead-letter stream.
    retry: {},
    deadLetter: { enabled: true },
  };
}

/** Idempotency key of message `seq` (feature set `all`): unique per run, as an application's business key would be. */
export function idempotencyKeyOf(seq: number): string {
  return `m${seq}`;
}

/**
 * Which keys the messages carry: `keys` distinct keys, each in bursts of `burst` consecutive messages (k0 k0 k0 k0 k1 k1
 * ...). With bursts, several messages of one key are in flight at once (sends in flight > burst), so the order check
 * also sees a producer that stores concurrent sends of a key out of order, not only a consumer that reorders.
 */
export interface KeySpread {
  readonly keys: number;
  readonly burst: number;
}

export function keyIndexOf(seq: number, spread: KeySpread): number {
  return Math.floor(seq / spread.burst) % spread.keys;
}

/** Position of message `seq` within its key: 0, 1, 2, ... in send order. */
export function positionInKey(seq: number, spread: KeySpread): number {
  return Math.floor(seq / (spread.burst * spread.keys)) * spread.burst + (seq % spread.burst);
}

export function orderedPayload(seq: number, spread: KeySpread, pad: string): OrderedPayload {
  return { seq, sentAt: wallNow(), key: `k${keyIndexOf(seq, spread)}`, n: positionInKey(seq, spread), pad };
}

/**
 * Partition of a key in the raw baseline (FNV-1a, 32 bit, modulo the partition count): what a hand-written partitioned
 * producer would do. The library uses its own jump consistent hash; both spread 1,000 keys about evenly.
 */
export function rawPartitionOf(key: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}

export interface OrderedConsumerParams extends ConsumerParams, KeySpread {
  readonly strategy: OrderingStrategy;
  /** Partition streams of the topic (1 for global ordering). */
  readonly partitions: number;
  /** Consumer processes in the group; a library consumer waits until it owns its share of the partitions. */
  readonly consumers: number;
  /** Library ordering.maxConcurrency. */
  readonly maxConcurrency: number;
  /** Raw: the streams this consumer reads (a static assignment). Library: unused (leases decide). */
  readonly rawStreams: readonly string[];
  /** Library features; default 'ordering'. */
  readonly features?: FeatureSet;
  /** Library consumer: leave batchSize and concurrency at the library's defaults (batchSize/concurrency unused). */
  readonly libraryDefaults?: boolean;
}

export interface OrderedProducerParams extends ProducerParams, KeySpread {
  readonly strategy: OrderingStrategy;
  readonly partitions: number;
  /** Raw: every partition stream, indexed by rawPartitionOf. Library: unused (the client routes). */
  readonly rawStreams: readonly string[];
  /** Library features; default 'ordering'. */
  readonly features?: FeatureSet;
}

/** Library counters that must stay 0 in a run without faults. */
export interface OrderedLibraryCounters {
  readonly failed: number;
  readonly retried: number;
  readonly deadLettered: number;
  readonly reclaimed: number;
  readonly fencedCommits: number;
  readonly duplicatesSkipped: number;
  readonly lostToTrimming: number;
  readonly schemaInvalid: number;
}

export interface OrderedConsumerResult extends ConsumerResult {
  /** Messages whose n was not higher than the last n handled for its key in this process (out of order or repeated). */
  readonly outOfOrder: number;
  /** Messages whose n skipped one or more n's of its key in this process (0 while every key stays with one owner). */
  readonly keyGaps: number;
  /** Global: messages whose seq was not higher than the previous message's seq in this process (total order). */
  readonly totalOrderViolations: number;
  /** Global (library): messages whose publish sequence number was not the previous one + 1 in this process. */
  readonly sequenceBreaks: number;
  /** First few violations, as `k12: n 5 after 7` (for the report). */
  readonly examples: readonly string[];
  /** Partition streams owned when measuring started and when it ended. */
  readonly ownedAtStart: readonly string[];
  readonly ownedAtEnd: readonly string[];
  /** Bitmap of handled seq numbers (base64), so the orchestrator finds messages handled by two processes. */
  readonly seenBase64: string;
  readonly library?: OrderedLibraryCounters;
  /** Scenario 'latency': every handled message's handler time minus send time, after the warm-up (Float64Array, base64). */
  readonly latencySamplesBase64?: string;
  /** Feature set 'all': payloads the consumer validated against their registered schema and found valid. */
  readonly schemaValidated?: number;
}

/** What a handler reports per message. */
export type RecordDelivery = (payload: OrderedPayload, sequence?: number) => void;

/**
 * Per-key order as the handlers see it: per key the last n handled; a message whose n is not higher is a violation.
 * Also the total order (seq) and the publish sequence under global ordering, and a bitmap of handled messages.
 */
export class OrderCheck {
  outOfOrder = 0;
  keyGaps = 0;
  totalOrderViolations = 0;
  sequenceBreaks = 0;
  readonly examples: string[] = [];
  private readonly lastN: Int32Array;
  private lastSeq = -1;
  private lastSeqSequence: number | undefined;
  private lastSequence = -1;
  readonly seen: Uint8Array;

  constructor(
    private readonly spread: KeySpread,
    expected: number,
    private readonly checkTotalOrder: boolean,
  ) {
    this.lastN = new Int32Array(spread.keys).fill(-1);
    this.seen = new Uint8Array(Math.max(1, expected));
  }

  record(payload: OrderedPayload, sequence: number | undefined): void {
    const k = keyIndexOf(payload.seq, this.spread);
    const last = this.lastN[k];
    if (payload.n <= last) {
      this.outOfOrder++;
      this.example(`${payload.key}: n ${payload.n} after ${last}`);
    } else {
      if (payload.n > last + 1) this.keyGaps++;
      this.lastN[k] = payload.n;
    }
    if (this.checkTotalOrder) {
      // With the publish sequence numbers in the example, a violation shows where it arose: contiguous sequence numbers
      // mean the stream itself holds the messages out of send order (producer side), a break means the consumer reordered.
      if (payload.seq <= this.lastSeq) {
        this.totalOrderViolations++;
        this.example(`seq ${payload.seq} (sequence ${sequence ?? '-'}) after seq ${this.lastSeq} (sequence ${this.lastSeqSequence ?? '-'})`);
      } else {
        this.lastSeq = payload.seq;
        this.lastSeqSequence = sequence;
      }
      if (sequence !== undefined) {
        if (this.lastSequence >= 0 && sequence !== this.lastSequence + 1) {
          this.sequenceBreaks++;
          this.example(`sequence ${sequence} after ${this.lastSequence}`);
        }
        this.lastSequence = sequence;
      }
    }
    if (payload.seq >= 0 && payload.seq < this.seen.length) this.seen[payload.seq] = 1;
  }

  private example(text: string): void {
    if (this.examples.length < 5) this.examples.push(text);
  }
}

/** What a consumer implementation (raw loop or library) provides to the ordered consumer lifecycle. */
export interface OrderedConsumerDriver {
  /** Starts reading. */
  start(): Promise<void>;
  /** Resolves with the partition streams this consumer owns once its share is settled (raw: its static streams). */
  settle(): Promise<string[]>;
  /** Partition streams owned now. */
  owned(): string[];
  /** Entries whose XACK (or commit) Redis has answered so far. */
  ackedCount(): number;
  counters?(): OrderedLibraryCounters;
  /** Payloads validated against their schema on consume (feature set 'all'). */
  schemaValidated?(): number;
  stop(): Promise<void>;
}

const PROGRESS_EVERY_MS = 250;
const WORKER_MAX_MS = 10 * 60_000;

/**
 * The consumer lifecycle of the ordering scenarios (like consumer-harness.ts, plus ownership and the order check):
 *   init -> 'initialized' -> wait 'start' -> start reading, settle ownership -> 'listening' (owned streams)
 *   -> 'expect' (this consumer's share, from the orchestrator) -> share handled and acknowledged -> 'complete'
 *   -> wait 'stop' -> stop -> 'result' -> exit.
 */
export async function runOrderedConsumer(
  init: (params: OrderedConsumerParams, record: RecordDelivery) => Promise<OrderedConsumerDriver>,
): Promise<void> {
  exitWithParent();
  setTimeout(() => process.exit(3), WORKER_MAX_MS).unref();
  const params = parseParams<OrderedConsumerParams>();
  const counter = new DeliveryCounter(params.expected, params.scenario === 'latency', params.latencyWarmup);
  const check = new OrderCheck(params, params.expected, params.strategy === 'global');
  const record: RecordDelivery = (payload, sequence) => {
    counter.record(payload.seq, payload.sentAt);
    check.record(payload, sequence);
  };
  try {
    const driver = await init(params, record);
    const stopRequested = nextParentMessage('stop');
    process.on('message', (message: { type?: string; count?: number }) => {
      if (message?.type === 'expect' && typeof message.count === 'number') counter.expect(message.count);
    });
    const memory = new MemorySampler();
    send({ type: 'initialized' });
    await nextParentMessage('start');

    const profiler = params.cpuProfilePath ? new WindowProfiler() : undefined;
    await profiler?.start();
    const gc = new GcMeter();
    gc.start();
    memory.start(params.memorySampleMs);
    const startAt = wallNow();
    await driver.start();
    const ownedAtStart = await driver.settle();
    const cpuAtStart = process.cpuUsage(); // what this process spends from here to completeAt (cpuMs)
    send({ type: 'listening', streams: ownedAtStart });
    const progress = setInterval(() => send({ type: 'progress', unique: counter.unique }), PROGRESS_EVERY_MS);

    let stopping = false;
    let completeAt = Number.NaN;
    let gcStats: GcStats | undefined;
    let cpuMs = Number.NaN;
    const watch = (async () => {
      // Coarse polling until this consumer's share is handled, then 1 ms polling for the acks (end of the measurement).
      while (!stopping && !counter.isComplete) await sleep(5);
      while (!stopping && driver.ackedCount() < counter.unique) await sleep(1);
      if (stopping) return;
      completeAt = wallNow();
      const cpu = process.cpuUsage(cpuAtStart);
      cpuMs = (cpu.user + cpu.system) / 1_000;
      gcStats = gc.stop();
      send({ type: 'complete', completeAt });
    })().finally(() => (params.cpuProfilePath ? profiler?.stop(params.cpuProfilePath) : undefined));

    await stopRequested;
    stopping = true;
    clearInterval(progress);
    await watch;
    const ownedAtEnd = driver.owned();
    const library = driver.counters?.();
    await driver.stop();
    const result: OrderedConsumerResult = {
      received: counter.received,
      unique: counter.unique,
      duplicates: counter.duplicates,
      startAt,
      firstHandledAt: counter.firstHandledAt,
      completeAt,
      cpuMs,
      memory: memory.stop(),
      gc: gcStats ?? gc.stop(),
      outOfOrder: check.outOfOrder,
      keyGaps: check.keyGaps,
      totalOrderViolations: check.totalOrderViolations,
      sequenceBreaks: check.sequenceBreaks,
      examples: check.examples,
      ownedAtStart,
      ownedAtEnd,
      seenBase64: Buffer.from(check.seen).toString('base64'),
      library,
      latencySamplesBase64: params.scenario === 'latency' ? Buffer.from(counter.latencySamples().buffer).toString('base64') : undefined,
      schemaValidated: driver.schemaValidated?.(),
    };
    process.send?.({ type: 'result', result }, () => process.exit(0));
  } catch (error) {
    process.send?.({ type: 'error', message: errorText(error) }, () => process.exit(1));
  }
}
