import { PerformanceObserver, constants } from 'node:perf_hooks';

/**
 * What the orchestrator (run.ts) and its worker processes (workers/*.ts) share: parameters, IPC messages,
 * the payload, clocks, counters and statistics. No Nest, no library import here, so the raw workers load only
 * ioredis.
 */

/** Pattern of the live and latency scenarios. */
export const EVENT_PATTERN = 'bench.event';
/** Pattern of the pre-filled drain stream. */
export const DRAIN_PATTERN = 'bench.drain';
/** Consumer group used by raw and library consumers alike. */
export const GROUP = 'bench';

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes of one machine. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The 1 KB JSON body every scenario sends. */
export interface BenchPayload {
  readonly seq: number;
  readonly sentAt: number;
  readonly pad: string;
}

const PAD_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A pad string that makes `JSON.stringify(payload)` about `bytes` long (seq and sentAt take ~50 bytes). */
export function makePad(bytes: number): string {
  const length = Math.max(0, bytes - 52);
  let pad = '';
  for (let i = 0; i < length; i++) pad += PAD_ALPHABET[(i * 7 + 3) % PAD_ALPHABET.length];
  return pad;
}

export function makePayload(seq: number, pad: string): BenchPayload {
  return { seq, sentAt: wallNow(), pad };
}

/** Field/value list of a library wire-format entry (see libs/.../transport/envelope.ts, version 1). */
export function libraryFields(pattern: string, messageId: string, json: string): string[] {
  return ['v', '1', 'pattern', pattern, 'id', messageId, 'data', json];
}

export type ConsumerMode = 'raw' | 'library';
/** `burst`: live, with every send fired at once (none awaited before the next), as a fire-and-forget producer would. */
export type ScenarioKind = 'live' | 'burst' | 'drain' | 'latency';

export interface ConsumerParams {
  readonly mode: ConsumerMode;
  readonly scenario: ScenarioKind;
  readonly redisUrl: string;
  /** Library: streams.keyPrefix. Raw: unused. */
  readonly keyPrefix: string;
  /** The stream key to read (raw) / expected stream key (library, checked after listen). */
  readonly stream: string;
  readonly pattern: string;
  readonly expected: number;
  readonly batchSize: number;
  readonly concurrency: number;
  readonly blockMs: number;
  readonly autoPipelining: boolean;
  /** Latency samples of the first `warmup` messages are dropped. */
  readonly latencyWarmup: number;
  readonly memorySampleMs: number;
  /** Write a CPU profile of the measured window here (BENCH_CPU_PROF). */
  readonly cpuProfilePath?: string;
}

export interface ProducerParams {
  readonly mode: ConsumerMode;
  readonly redisUrl: string;
  readonly keyPrefix: string;
  readonly stream: string;
  readonly pattern: string;
  readonly count: number;
  /** Sends in flight at once. */
  readonly concurrency: number;
  /** Messages per second; 0 = as fast as possible. */
  readonly ratePerSecond: number;
  readonly payloadBytes: number;
  readonly autoPipelining: boolean;
  /** Write a CPU profile of the sending window here (BENCH_CPU_PROF). */
  readonly cpuProfilePath?: string;
}

export interface MemoryPeaks {
  readonly baselineRssMb: number;
  readonly baselineHeapUsedMb: number;
  readonly peakRssMb: number;
  readonly peakHeapUsedMb: number;
  readonly finalRssMb: number;
  readonly finalHeapUsedMb: number;
  readonly samples: number;
}

export interface ConsumerResult {
  readonly received: number;
  readonly unique: number;
  readonly duplicates: number;
  /** When the consumer started reading (just before listen() / the first XREADGROUP). */
  readonly startAt: number;
  readonly firstHandledAt: number;
  /** When every expected message had been handled and its XACK answered; NaN if never. */
  readonly completeAt: number;
  readonly latencyMs?: { readonly p50: number; readonly p99: number; readonly max: number; readonly samples: number };
  readonly memory: MemoryPeaks;
  readonly gc: GcStats;
  /** CPU time of the consumer process (user + system) from the end of its start-up to completeAt, ms; NaN if never. */
  readonly cpuMs: number;
}

export interface ProducerResult {
  readonly sent: number;
  readonly failed: number;
  readonly firstSendAt: number;
  readonly lastDoneAt: number;
  readonly firstError?: string;
  readonly gc: GcStats;
}

/** Messages from workers to the orchestrator. */
export type WorkerMessage =
  | { type: 'initialized' }
  | { type: 'listening'; streams?: string[] }
  | { type: 'progress'; unique: number }
  | { type: 'complete'; completeAt: number }
  | { type: 'result'; result: ConsumerResult }
  | { type: 'produced'; result: ProducerResult }
  | { type: 'error'; message: string };

/** Messages from the orchestrator to workers. */
export type ParentMessage = { type: 'start' } | { type: 'expect'; count: number } | { type: 'stop' };

export function send(message: WorkerMessage): void {
  process.send?.(message);
}

/** Resolves with the next parent message of the given type. */
export function nextParentMessage<T extends ParentMessage['type']>(type: T): Promise<Extract<ParentMessage, { type: T }>> {
  return new Promise((resolve) => {
    const onMessage = (message: ParentMessage) => {
      if (message?.type !== type) return;
      process.off('message', onMessage);
      resolve(message as Extract<ParentMessage, { type: T }>);
    };
    process.on('message', onMessage);
  });
}

export function parseParams<T>(): T {
  const raw = process.argv[2];
  if (!raw) throw new Error('worker started without its JSON parameters (argv[2])');
  return JSON.parse(raw) as T;
}

/** Exits the worker if the parent goes away, so no worker outlives an aborted run. */
export function exitWithParent(): void {
  process.on('disconnect', () => process.exit(2));
}

/**
 * Counts deliveries by sequence number: a bitmap finds duplicates, the arrival latency of each message is kept in a
 * preallocated array (no growth while measuring).
 */
export class DeliveryCounter {
  received = 0;
  unique = 0;
  duplicates = 0;
  firstHandledAt = Number.NaN;
  private readonly seen: Uint8Array;
  private readonly latencies: Float64Array;
  private latencyCount = 0;
  private arrivals = 0;

  constructor(
    private expected: number,
    private readonly recordLatency: boolean,
    private readonly warmup: number,
  ) {
    this.seen = new Uint8Array(Math.max(1, expected));
    this.latencies = new Float64Array(recordLatency ? Math.max(1, expected) : 1);
  }

  /** Lowers the expectation when the producer could not send everything. */
  expect(count: number): void {
    this.expected = Math.min(this.expected, count);
  }

  get isComplete(): boolean {
    return this.unique >= this.expected;
  }

  record(seq: number, sentAt: number): void {
    const now = wallNow();
    if (this.received === 0) this.firstHandledAt = now;
    this.received++;
    if (seq >= 0 && seq < this.seen.length && this.seen[seq] === 0) {
      this.seen[seq] = 1;
      this.unique++;
    } else {
      this.duplicates++;
    }
    if (this.recordLatency && this.arrivals++ >= this.warmup && this.latencyCount < this.latencies.length) {
      this.latencies[this.latencyCount++] = now - sentAt;
    }
  }

  /** The recorded latencies (ms, arrival order), a copy. */
  latencySamples(): Float64Array {
    return this.latencies.slice(0, this.latencyCount);
  }

  latency(): ConsumerResult['latencyMs'] {
    if (!this.recordLatency) return undefined;
    const sorted = this.latencySamples().sort();
    return {
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      max: sorted.length ? sorted[sorted.length - 1] : Number.NaN,
      samples: sorted.length,
    };
  }
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

/** Garbage-collection pauses of this process while measuring (perf_hooks 'gc' entries). */
export interface GcStats {
  readonly count: number;
  readonly totalMs: number;
  readonly majorCount: number;
  readonly majorMs: number;
}

export class GcMeter {
  private count = 0;
  private totalMs = 0;
  private majorCount = 0;
  private majorMs = 0;
  private readonly observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      this.count++;
      this.totalMs += entry.duration;
      const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        this.majorCount++;
        this.majorMs += entry.duration;
      }
    }
  });

  start(): void {
    this.observer.observe({ entryTypes: ['gc'] });
  }

  stop(): GcStats {
    this.observer.disconnect();
    return { count: this.count, totalMs: this.totalMs, majorCount: this.majorCount, majorMs: this.majorMs };
  }
}

const MB = 1024 * 1024;

/** Samples rss and heapUsed of this process on a timer and keeps the peaks. */
export class MemorySampler {
  private readonly baseline = process.memoryUsage();
  private peakRss = this.baseline.rss;
  private peakHeap = this.baseline.heapUsed;
  private samples = 0;
  private timer?: NodeJS.Timeout;

  start(everyMs: number): void {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  stop(): MemoryPeaks {
    clearInterval(this.timer);
    const final = this.sample();
    return {
      baselineRssMb: this.baseline.rss / MB,
      baselineHeapUsedMb: this.baseline.heapUsed / MB,
      peakRssMb: this.peakRss / MB,
      peakHeapUsedMb: this.peakHeap / MB,
      finalRssMb: final.rss / MB,
      finalHeapUsedMb: final.heapUsed / MB,
      samples: this.samples,
    };
  }

  private sample(): NodeJS.MemoryUsage {
    const usage = process.memoryUsage();
    this.samples++;
    if (usage.rss > this.peakRss) this.peakRss = usage.rss;
    if (usage.heapUsed > this.peakHeap) this.peakHeap = usage.heapUsed;
    return usage;
  }
}

export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
