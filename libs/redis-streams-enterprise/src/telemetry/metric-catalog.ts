/**
 * The metrics the library reports, with their names (Prometheus conventions: base units in names, `_total` on
 * counters), help texts and labels, and how the values of several sources (servers and clients in one process) are
 * summed into one family. Both exporters (Prometheus, OpenTelemetry) read from here.
 */
import { BUCKETS_SECONDS, COUNTERS, HISTOGRAMS, type CounterName, type HistogramName } from '../observability/labelled-metrics.js';
import type { GaugeName, MetricSource } from '../observability/metric-source.js';

export const COUNTER_METRICS: Readonly<Record<CounterName, { readonly base: string; readonly help: string }>> = {
  published: { base: 'messages_published', help: 'Messages a client wrote to a stream (emit, send).' },
  received: { base: 'messages_received', help: 'Deliveries handed to the processing pipeline (first deliveries, retries, reclaims).' },
  acked: { base: 'messages_acked', help: 'Entries acknowledged after their handler succeeded (or committed).' },
  failed: { base: 'messages_failed', help: 'Failed handler attempts.' },
  retried: { base: 'messages_retried', help: 'Failed attempts scheduled for another attempt.' },
  dead_lettered: { base: 'messages_dead_lettered', help: 'Entries moved to a dead-letter stream.' },
  reclaimed: { base: 'messages_reclaimed', help: 'Entries taken over from consumers that stopped (XAUTOCLAIM).' },
  fenced_commits: { base: 'commits_fenced', help: 'Commits refused because the entry or its partition passed to another consumer.' },
  duplicates_skipped: { base: 'messages_duplicates_skipped', help: 'Messages acknowledged without running the handler: processed already (exactly-once).' },
  schema_invalid: { base: 'messages_schema_invalid', help: 'Messages that did not match their schema version.' },
  lost_to_trimming: { base: 'messages_lost_to_trimming', help: 'Pending entries deleted by trimming before they were processed.' },
  decode_failures: { base: 'messages_decode_failed', help: 'Entries that could not be decoded (dead-lettered as decode-failed).' },
};

export const HISTOGRAM_METRICS: Readonly<Record<HistogramName, { readonly base: string; readonly help: string }>> = {
  handler_duration: { base: 'handler_duration_seconds', help: 'Time a handler run took.' },
  end_to_end_latency: { base: 'end_to_end_latency_seconds', help: 'From the entry id time (when Redis stored it) to the end of its handler.' },
  publish_duration: { base: 'publish_duration_seconds', help: 'Time a write to Redis took (emit, send), until Redis stored it.' },
};

export const GAUGE_METRICS: Readonly<Record<GaugeName, { readonly help: string }>> = {
  consumer_lag_messages: { help: 'Entries of the stream not yet delivered to the group (XINFO GROUPS lag).' },
  pending_messages: { help: 'Entries delivered to the group and not yet acknowledged.' },
  oldest_pending_age_seconds: { help: 'Age (from its id time) of the oldest entry pending in the group; 0 when none is.' },
  dead_letter_messages: { help: 'Length of the dead-letter stream beside the stream.' },
  partitions_owned: { help: 'Partitions of partitioned topics this consumer owns.' },
  in_flight_messages: { help: 'Entries in handlers now.' },
  mirror_lag_messages: { help: 'StreamMirror: entries added to a source stream after the checkpoint of its copy in this region.' },
  mirror_copied_messages: { help: 'StreamMirror: entries copied into a stream of this region from a source region, in total (kept in the checkpoint).' },
  mirror_missed_messages: { help: 'StreamMirror: source entries deleted (trimmed) before they were copied, at least; lost for this region.' },
};

export interface LabelledValue {
  readonly labels: Record<string, string>;
  value: number;
}

export interface HistogramValue {
  readonly labels: Record<string, string>;
  /** Counts per bucket of BUCKETS_SECONDS plus +Inf (not cumulative). */
  readonly buckets: number[];
  sum: number;
  count: number;
}

const PER_CONSUMER = new Set<GaugeName>(['in_flight_messages', 'partitions_owned']);

const labelKey = (labels: Record<string, string>) => JSON.stringify(labels);

/** Each counter's values summed over the sources, per (pattern, group). */
export function collectCounter(sources: Iterable<MetricSource>, counter: CounterName): LabelledValue[] {
  const index = COUNTERS.indexOf(counter);
  const out = new Map<string, LabelledValue>();
  for (const source of sources) {
    // Clients (no group) only publish; servers count everything else: no always-zero series of the other kind.
    if ((counter === 'published') !== (source.group === '')) continue;
    for (const series of source.metrics.series()) {
      const value = series.counters[index];
      const labels = { pattern: series.pattern, group: source.group };
      const key = labelKey(labels);
      const found = out.get(key);
      if (found) found.value += value;
      else out.set(key, { labels, value });
    }
  }
  return [...out.values()];
}

export function collectHistogram(sources: Iterable<MetricSource>, histogram: HistogramName): HistogramValue[] {
  const index = HISTOGRAMS.indexOf(histogram);
  const out = new Map<string, HistogramValue>();
  for (const source of sources) {
    for (const series of source.metrics.series()) {
      const data = series.histograms[index];
      if (data.count === 0) continue;
      const labels = { pattern: series.pattern, group: source.group };
      const key = labelKey(labels);
      let value = out.get(key);
      if (!value) out.set(key, (value = { labels, buckets: new Array<number>(BUCKETS_SECONDS.length + 1).fill(0), sum: 0, count: 0 }));
      for (let i = 0; i < data.buckets.length; i++) value.buckets[i] += data.buckets[i];
      value.sum += data.sum;
      value.count += data.count;
    }
  }
  return [...out.values()];
}

/** Every source's gauges, grouped by name (same labels summed: two servers of one group in one process). */
export async function collectGauges(sources: Iterable<MetricSource>): Promise<Map<GaugeName, LabelledValue[]>> {
  const all = await Promise.all([...sources].map((source) => source.gauges?.() ?? Promise.resolve([])));
  const byName = new Map<GaugeName, Map<string, LabelledValue>>();
  for (const samples of all) {
    for (const sample of samples) {
      let values = byName.get(sample.name);
      if (!values) byName.set(sample.name, (values = new Map()));
      const key = labelKey(sample.labels);
      const found = values.get(key);
      // Per-consumer values add up; what Redis reports for the group is the same for each of its consumers.
      if (found) found.value = PER_CONSUMER.has(sample.name) ? found.value + sample.value : Math.max(found.value, sample.value);
      else values.set(key, { labels: { ...sample.labels }, value: sample.value });
    }
  }
  return new Map([...byName].map(([name, values]) => [name, [...values.values()]]));
}
