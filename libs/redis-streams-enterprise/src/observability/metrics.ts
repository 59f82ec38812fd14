import type { LabelledMetrics } from './labelled-metrics.js';
import type { MessageTracer } from './telemetry.js';

/** Snapshot returned by `RedisStreamsServer.getMetrics()`. */
export interface RedisStreamsMetricsSnapshot {
  /** Entries handed to handlers (first deliveries, retries and reclaims). */
  readonly received: number;
  /** Entries acknowledged after success. */
  readonly acked: number;
  /** Handler failures (each failed attempt counts once). */
  readonly failed: number;
  /** Failures scheduled for another attempt. */
  readonly retried: number;
  /** Entries moved to a dead-letter stream (failed, undecodable or without handler). */
  readonly deadLettered: number;
  /** Entries taken over from consumers that stopped. */
  readonly reclaimed: number;
  /** Pending entries found deleted by trimming before anyone processed them (data loss, see the docs: Guarantees › retention). */
  readonly lostToTrimming: number;
  /**
   * Entries of this server's group that trimming deleted before the group read them (`streams.trimming: 'hard'`; in
   * 'safe' mode only trimming by someone else can do that). Counted from Redis' own counters (XINFO `entries-added`,
   * `entries-read`, Redis 7.0+), summed over the consumed streams, by the retention pass every few seconds: every
   * consumer of the group reports the same number, including losses from before it started. The pending entries
   * lost are in `lostToTrimming`.
   */
  readonly lostUnreadToTrimming: number;
  /** Messages that did not match their schema version (dead-lettered in strict mode, handled in warn mode). */
  readonly schemaInvalid: number;
  /** Messages acknowledged without calling the handler: processed already (exactly-once). */
  readonly duplicatesSkipped: number;
  /** Commits refused because the entry or its partition had passed to another consumer (effects discarded). */
  readonly fencedCommits: number;
  /** Entries currently in handlers. */
  readonly inFlight: number;
  /** Acknowledged entries per second over the last 10 seconds. */
  readonly throughput: number;
  /** failed / received since start (0 when nothing was received). */
  readonly errorRate: number;
  /** Handler latency in milliseconds over the last 2048 handled entries. */
  readonly handlerLatencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number; readonly samples: number };
}

const RESERVOIR_SIZE = 2_048;
const THROUGHPUT_WINDOW_S = 10;

/** In-process counters of one server. Fixed memory: a latency ring buffer and ten one-second buckets. */
export class TransportMetrics {
  received = 0;
  acked = 0;
  failed = 0;
  retried = 0;
  deadLettered = 0;
  reclaimed = 0;
  lostToTrimming = 0;
  lostUnreadToTrimming = 0;
  schemaInvalid = 0;
  duplicatesSkipped = 0;
  fencedCommits = 0;
  /**
   * Exported metrics per pattern (observability.metrics), and the tracer (observability.tracing): set by the server
   * when configured, undefined otherwise, so the places that count test one field and do nothing more when off.
   */
  labelled?: LabelledMetrics;
  tracer?: MessageTracer;

  private readonly latencies = new Float64Array(RESERVOIR_SIZE);
  private latencyCount = 0;
  private readonly ackBuckets = new Float64Array(THROUGHPUT_WINDOW_S);
  private readonly bucketSecond = new Float64Array(THROUGHPUT_WINDOW_S);

  constructor(private readonly now: () => number = Date.now) {}

  /** A handler run took `ms`; with `stream`, also into the exported handler duration histogram (when exported). */
  recordLatency(ms: number, stream?: string): void {
    this.latencies[this.latencyCount % RESERVOIR_SIZE] = ms;
    this.latencyCount++;
    if (stream !== undefined) this.labelled?.observe('handler_duration', stream, ms / 1_000);
  }

  countReclaimed(count: number, stream: string): void {
    this.reclaimed += count;
    this.labelled?.count('reclaimed', stream, count);
  }

  countLostToTrimming(count: number, stream: string): void {
    this.lostToTrimming += count;
    this.labelled?.count('lost_to_trimming', stream, count);
  }

  recordAcks(count: number): void {
    this.acked += count;
    const second = Math.floor(this.now() / 1_000);
    const slot = second % THROUGHPUT_WINDOW_S;
    if (this.bucketSecond[slot] !== second) {
      this.bucketSecond[slot] = second;
      this.ackBuckets[slot] = 0;
    }
    this.ackBuckets[slot] += count;
  }

  snapshot(inFlight: number): RedisStreamsMetricsSnapshot {
    const second = Math.floor(this.now() / 1_000);
    let recent = 0;
    for (let i = 0; i < THROUGHPUT_WINDOW_S; i++) {
      if (second - this.bucketSecond[i] < THROUGHPUT_WINDOW_S) recent += this.ackBuckets[i];
    }
    const samples = Math.min(this.latencyCount, RESERVOIR_SIZE);
    const sorted = Array.from(this.latencies.subarray(0, samples)).sort((a, b) => a - b);
    const pick = (q: number) => (samples === 0 ? 0 : sorted[Math.min(samples - 1, Math.floor(q * samples))]);
    return {
      received: this.received,
      acked: this.acked,
      failed: this.failed,
      retried: this.retried,
      deadLettered: this.deadLettered,
      reclaimed: this.reclaimed,
      lostToTrimming: this.lostToTrimming,
      lostUnreadToTrimming: this.lostUnreadToTrimming,
      schemaInvalid: this.schemaInvalid,
      duplicatesSkipped: this.duplicatesSkipped,
      fencedCommits: this.fencedCommits,
      inFlight,
      throughput: recent / THROUGHPUT_WINDOW_S,
      errorRate: this.received === 0 ? 0 : this.failed / this.received,
      handlerLatencyMs: { p50: pick(0.5), p90: pick(0.9), p99: pick(0.99), max: samples ? sorted[samples - 1] : 0, samples },
    };
  }
}
