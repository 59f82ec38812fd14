/**
 * What a server or client gets from `observability`: a tracer when tracing is on, labelled metrics when a metrics
 * exporter is on, each undefined otherwise (the call sites test for undefined: nothing else runs per message). The
 * optional packages are loaded here, when the server or client is created, so a missing one fails at start.
 */
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import { LabelledMetrics } from '../observability/labelled-metrics.js';
import type { GaugeSample, MetricSource } from '../observability/metric-source.js';
import type { MessageTracer } from '../observability/telemetry.js';
import { openTelemetryApi, registerOpenTelemetryMetrics } from './otel-meter-exporter.js';
import { createOtelTracer } from './otel-tracer.js';
import { defaultPrometheusRegistry, registerPrometheus } from './prometheus-exporter.js';

export interface Telemetry {
  readonly tracer?: MessageTracer;
  readonly metrics?: LabelledMetrics;
  /** Starts reporting (on listen/connect): the group label and the scrape-time gauges of a server. */
  start(group: string, gauges?: () => Promise<readonly GaugeSample[]>): void;
  /** Stops reporting (on close). Idempotent. */
  stop(): void;
}

/**
 * @param patternOf the pattern of a consumed stream (servers; clients count by pattern directly).
 * @throws OptionalDependencyMissingError when an enabled exporter's package is not installed.
 */
export function createTelemetry(config: ResolvedRedisStreamsConfig, patternOf: (stream: string) => string = (s) => s): Telemetry {
  const { tracing, metrics } = config.observability;
  const tracer = tracing.enabled ? createOtelTracer(tracing) : undefined;
  const exporting = metrics.prometheus || metrics.openTelemetry;
  const labelled = exporting ? new LabelledMetrics(patternOf, metrics.maxPatternLabels) : undefined;
  const registry = metrics.prometheus ? (metrics.registry ?? defaultPrometheusRegistry()) : undefined;
  const otel = metrics.openTelemetry ? openTelemetryApi('OpenTelemetry metrics') : undefined;
  let stops: (() => void)[] = [];
  return {
    tracer,
    metrics: labelled,
    start(group, gauges) {
      if (!labelled || stops.length > 0) return;
      const source: MetricSource = { group, metrics: labelled, gauges };
      if (registry) stops.push(registerPrometheus(registry, metrics.prefix, source));
      if (otel) stops.push(registerOpenTelemetryMetrics(otel, metrics.prefix, source));
    },
    stop() {
      for (const stop of stops) stop();
      stops = [];
    },
  };
}
