import type { LabelledMetrics } from './labelled-metrics.js';

/** Gauges read at collection time (a scrape), from Redis and from the server's state. */
export const GAUGES = [
  'consumer_lag_messages',
  'pending_messages',
  'oldest_pending_age_seconds',
  'dead_letter_messages',
  'partitions_owned',
  'in_flight_messages',
  'mirror_lag_messages',
  'mirror_copied_messages',
  'mirror_missed_messages',
] as const;
export type GaugeName = (typeof GAUGES)[number];

export interface GaugeSample {
  readonly name: GaugeName;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/**
 * One server or client whose metrics an exporter reports: its counters and histograms per pattern, and (servers) its
 * gauges. Added when it starts, removed when it closes, so several servers and clients can share one registry.
 */
export interface MetricSource {
  /** The consumer group (servers); the `group` label of the series. Empty for a client. */
  readonly group: string;
  readonly metrics: LabelledMetrics;
  /** Scrape-time gauges; bounded cost (cached for observability.metrics.gaugeCacheMs). */
  gauges?(): Promise<readonly GaugeSample[]>;
}
