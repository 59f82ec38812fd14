/**
 * prom-client exporter: one collector object per metric family, registered into the app's registry (or prom-client's
 * default `register`), so the app's existing `/metrics` endpoint shows them. The values are read at scrape time from
 * every registered source (servers and clients of the process), so recording a message costs no prom-client call.
 * The family objects carry their sources: a second server or client on the same registry joins the families that
 * are there already (nothing is kept in module state).
 */
import { BUCKETS_SECONDS, COUNTERS, HISTOGRAMS } from '../observability/labelled-metrics.js';
import { GAUGES, type GaugeName, type MetricSource } from '../observability/metric-source.js';
import type { PrometheusRegistryLike } from '../config/observability.options.js';
import { loadOptional } from '../runtime/optional-dependency.js';
import { COUNTER_METRICS, GAUGE_METRICS, HISTOGRAM_METRICS, collectCounter, collectGauges, collectHistogram } from './metric-catalog.js';

const SOURCES = Symbol('redis-streams.metric-sources');

interface PromValue {
  readonly metricName?: string;
  readonly labels: Record<string, string | number>;
  readonly value: number;
}

/** The shape prom-client's Registry reads from a registered metric (`get()`), as its own Counter/Gauge/Histogram do. */
interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator: 'sum' | 'max';
  readonly [SOURCES]: Set<MetricSource>;
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: PromValue[] }>;
  reset(): void;
}

/**
 * prom-client's default `register`.
 * @throws OptionalDependencyMissingError when prom-client is not installed.
 */
export function defaultPrometheusRegistry(): PrometheusRegistryLike {
  return loadOptional<{ register: PrometheusRegistryLike }>('prom-client', { feature: 'Prometheus metrics', packages: ['prom-client'] }).register;
}

/** Registers `source` with the families of `registry`; returns what removes it again (on close). */
export function registerPrometheus(target: PrometheusRegistryLike, prefix: string, source: MetricSource): () => void {
  const families: Family[] = [];
  for (const counter of COUNTERS) {
    const { base, help } = COUNTER_METRICS[counter];
    families.push(family(target, `${prefix}${base}_total`, help, 'counter', 'sum', (sources) => Promise.resolve(collectCounter(sources, counter))));
  }
  for (const histogram of HISTOGRAMS) {
    const { base, help } = HISTOGRAM_METRICS[histogram];
    const name = `${prefix}${base}`;
    families.push(family(target, name, help, 'histogram', 'sum', (sources) => Promise.resolve(histogramValues(name, sources, histogram))));
  }
  for (const gauge of GAUGES) {
    const aggregator = gauge === 'in_flight_messages' || gauge === 'partitions_owned' ? 'sum' : 'max';
    families.push(family(target, `${prefix}${gauge}`, GAUGE_METRICS[gauge].help, 'gauge', aggregator, (sources) => gaugeValues(sources, gauge)));
  }
  for (const f of families) f[SOURCES].add(source);
  return () => {
    for (const f of families) f[SOURCES].delete(source);
  };
}

function family(
  registry: PrometheusRegistryLike,
  name: string,
  help: string,
  type: Family['type'],
  aggregator: Family['aggregator'],
  values: (sources: Set<MetricSource>) => Promise<PromValue[]>,
): Family {
  const existing = registry.getSingleMetric(name) as Family | undefined;
  if (existing && existing[SOURCES] instanceof Set) return existing;
  const sources = new Set<MetricSource>();
  const created: Family = {
    name,
    help,
    type,
    aggregator,
    [SOURCES]: sources,
    get: async () => ({ name, help, type, aggregator, values: await values(sources) }),
    reset: () => undefined, // values belong to the sources; nothing to reset here
  };
  // Throws when another metric of this name is registered (two libraries choosing one name): a config error to see.
  registry.registerMetric(created);
  return created;
}

function histogramValues(name: string, sources: Set<MetricSource>, histogram: (typeof HISTOGRAMS)[number]): PromValue[] {
  const out: PromValue[] = [];
  for (const h of collectHistogram(sources, histogram)) {
    let cumulative = 0;
    for (let i = 0; i <= BUCKETS_SECONDS.length; i++) {
      cumulative += h.buckets[i];
      out.push({ metricName: `${name}_bucket`, labels: { ...h.labels, le: i < BUCKETS_SECONDS.length ? BUCKETS_SECONDS[i] : '+Inf' }, value: cumulative });
    }
    out.push({ metricName: `${name}_sum`, labels: h.labels, value: h.sum });
    out.push({ metricName: `${name}_count`, labels: h.labels, value: h.count });
  }
  return out;
}

async function gaugeValues(sources: Set<MetricSource>, gauge: GaugeName): Promise<PromValue[]> {
  return (await collectGauges(sources)).get(gauge) ?? [];
}
