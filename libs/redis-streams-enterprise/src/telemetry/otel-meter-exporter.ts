/**
 * OpenTelemetry metrics exporter, through the global MeterProvider of `@opentelemetry/api` (a no-op until the app
 * registers an SDK). Counters and gauges are observable instruments read at collection; histograms are recorded as
 * observations happen. Names are the Prometheus ones without `_total` (an OTel Prometheus exporter adds it back).
 */
import type { Attributes, Meter, ObservableResult } from '@opentelemetry/api';
import { BUCKETS_SECONDS, COUNTERS, HISTOGRAMS, type HistogramName } from '../observability/labelled-metrics.js';
import { GAUGES, type MetricSource } from '../observability/metric-source.js';
import { loadOptional } from '../runtime/optional-dependency.js';
import { COUNTER_METRICS, GAUGE_METRICS, HISTOGRAM_METRICS, collectCounter, collectGauges } from './metric-catalog.js';

export type OtelApi = typeof import('@opentelemetry/api');

/** The name of the library's meter and tracer. */
export const INSTRUMENTATION_NAME = 'nestjs-redis-streams-enterprise';

/**
 * The OpenTelemetry API package.
 * @throws OptionalDependencyMissingError when it is not installed.
 */
export function openTelemetryApi(feature: string): OtelApi {
  return loadOptional<OtelApi>('@opentelemetry/api', { feature, packages: ['@opentelemetry/api'] });
}

/** Registers `source`'s instruments with the global meter; returns what stops reporting them (on close). */
export function registerOpenTelemetryMetrics(api: OtelApi, prefix: string, source: MetricSource): () => void {
  const meter: Meter = api.metrics.getMeter(INSTRUMENTATION_NAME);
  const sources = new Set([source]);
  const counters = COUNTERS.map((counter) => {
    const instrument = meter.createObservableCounter(`${prefix}${COUNTER_METRICS[counter].base}`, { description: COUNTER_METRICS[counter].help });
    const callback = (result: ObservableResult<Attributes>) => {
      for (const v of collectCounter(sources, counter)) result.observe(v.value, v.labels);
    };
    instrument.addCallback(callback);
    return () => instrument.removeCallback(callback);
  });
  const gauges = meter.createObservableGauge(`${prefix}${GAUGES[0]}`, { description: GAUGE_METRICS[GAUGES[0]].help });
  const others = GAUGES.slice(1).map((gauge) => meter.createObservableGauge(`${prefix}${gauge}`, { description: GAUGE_METRICS[gauge].help }));
  const instruments = [gauges, ...others];
  const batch = async (result: { observe(instrument: unknown, value: number, attributes: Attributes): void }) => {
    const values = await collectGauges(sources);
    GAUGES.forEach((gauge, i) => {
      for (const v of values.get(gauge) ?? []) result.observe(instruments[i], v.value, v.labels);
    });
  };
  meter.addBatchObservableCallback(batch, instruments);
  const histograms = new Map(
    HISTOGRAMS.map((h: HistogramName) => [
      h,
      meter.createHistogram(`${prefix}${HISTOGRAM_METRICS[h].base}`, {
        description: HISTOGRAM_METRICS[h].help,
        unit: 's',
        advice: { explicitBucketBoundaries: [...BUCKETS_SECONDS] },
      }),
    ]),
  );
  source.metrics.onObservation((histogram, pattern, seconds) => histograms.get(histogram)?.record(seconds, { pattern, group: source.group }));
  return () => {
    for (const remove of counters) remove();
    meter.removeBatchObservableCallback(batch, instruments);
    source.metrics.onObservation(() => undefined);
  };
}
