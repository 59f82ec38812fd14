/**
 * The gauges a server reports at scrape time: per consumed stream its group's lag and pending count and the age of
 * the oldest pending entry, the dead-letter stream's length; per pattern the partitions owned; the entries in
 * handlers. Bounded cost: at most MAX_GAUGE_STREAMS streams, three commands each, and one answer reused by the scrapes
 * of observability.metrics.gaugeCacheMs (and by the families of one scrape, which ask at once).
 */
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { parseGroupsInfo, parsePendingSummary } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import type { ConsumedStream } from '../consumer/consumed-streams.js';
import type { GaugeSample } from '../observability/metric-source.js';
import { idTimeMs } from '../retention/retention-policy.js';

/** Streams asked about per scrape (the rest are left out of the gauges; the counters still cover them). */
export const MAX_GAUGE_STREAMS = 256;

export interface GaugeInputs {
  readonly command: () => ScriptedRedis | undefined;
  readonly streams: () => readonly ConsumedStream[];
  readonly inFlight: () => number;
  readonly ownedPartitions: () => readonly { pattern: string }[];
}

export class ServerGauges {
  private cached?: { at: number; samples: Promise<readonly GaugeSample[]> };

  constructor(
    private readonly config: ResolvedRedisStreamsConfig,
    private readonly keys: StreamKeys,
    private readonly inputs: GaugeInputs,
  ) {}

  gauges(): Promise<readonly GaugeSample[]> {
    const now = Date.now();
    const cached = this.cached;
    if (cached && now - cached.at <= this.config.observability.metrics.gaugeCacheMs) return cached.samples;
    const samples = this.read(now);
    this.cached = { at: now, samples };
    return samples;
  }

  private async read(now: number): Promise<readonly GaugeSample[]> {
    const group = this.config.consumer.group;
    const samples: GaugeSample[] = [{ name: 'in_flight_messages', labels: { group }, value: this.inputs.inFlight() }];
    const owned = new Map<string, number>();
    for (const p of this.inputs.ownedPartitions()) owned.set(p.pattern, (owned.get(p.pattern) ?? 0) + 1);
    for (const [pattern, count] of owned) samples.push({ name: 'partitions_owned', labels: { group, pattern }, value: count });
    const command = this.inputs.command();
    if (!command || command.status !== 'ready') return samples;
    const streams = this.inputs.streams().slice(0, MAX_GAUGE_STREAMS);
    const perStream = await Promise.all(streams.map((s) => this.readStream(command, s, group, now)));
    for (const list of perStream) samples.push(...list);
    return samples;
  }

  /** A stream Redis could not answer for (deleted, a failover) is left out of this scrape rather than failing it. */
  private async readStream(command: ScriptedRedis, consumed: ConsumedStream, group: string, now: number): Promise<GaugeSample[]> {
    const { stream, pattern } = consumed;
    const labels = { group, pattern, stream };
    const [groups, pending, deadLetters] = await Promise.all([
      command.xinfo('GROUPS', stream).then(parseGroupsInfo, () => undefined),
      command.xpending(stream, group).then(parsePendingSummary, () => undefined),
      command.xlen(this.keys.deadLetterOf(stream)).catch(() => undefined),
    ]);
    const out: GaugeSample[] = [];
    const info = groups?.find((g) => g.name === group);
    if (info?.lag !== null && info?.lag !== undefined) out.push({ name: 'consumer_lag_messages', labels, value: info.lag });
    if (pending) {
      out.push({ name: 'pending_messages', labels, value: pending.count });
      const age = pending.minId === null ? 0 : Math.max(0, (now - idTimeMs(pending.minId)) / 1_000);
      out.push({ name: 'oldest_pending_age_seconds', labels, value: age });
    }
    if (deadLetters !== undefined) out.push({ name: 'dead_letter_messages', labels: { pattern, stream }, value: Number(deadLetters) });
    return out;
  }
}
