import { IsBoolean, IsInt, IsOptional, Matches, Max, Min, ValidateNested } from 'class-validator';
import { Type } from 'class-transformer';

/**
 * OpenTelemetry tracing (needs the optional peer `@opentelemetry/api`; spans are recorded only when the app registers
 * an SDK, e.g. `@opentelemetry/sdk-node`). See docs/features/observability.md.
 */
export class TracingOptions {
  /**
   * Inject W3C trace context (`traceparent`, `tracestate`, `baggage`) into the headers of every message written, and
   * run each handler inside a CONSUMER span whose parent is the producer's span (messaging semantic conventions).
   * @default false
   */
  @IsBoolean()
  enabled = false;

  /**
   * Let `@opentelemetry/instrumentation-ioredis` record spans for the transport's own Redis commands (reads, acks,
   * settlement scripts, publishes). Off: those run with tracing suppressed, so only the messaging spans and the
   * handler's own commands show up.
   * @default false
   */
  @IsBoolean()
  traceRedisCommands = false;
}

/**
 * Counters, histograms and scrape-time gauges (docs/features/observability.md lists them). Two ways out, both optional
 * peers: prom-client (registered into `registry`, so an existing `/metrics` endpoint shows them) and the OpenTelemetry
 * metrics API (the global MeterProvider).
 */
export class MetricsOptions {
  /**
   * Register the metrics with prom-client (optional peer `prom-client`), into `registry` or prom-client's default
   * `register`.
   * @default false
   */
  @IsBoolean()
  prometheus = false;

  /**
   * The prom-client `Registry` to register into (e.g. the one `@willsoto/nestjs-prometheus` or your `/metrics`
   * controller serves). Not validated beyond being an object; the default is prom-client's global `register`.
   * @default undefined
   */
  @IsOptional()
  registry?: PrometheusRegistryLike;

  /**
   * Report the same metrics through the OpenTelemetry metrics API (optional peer `@opentelemetry/api`): counters and
   * gauges as observable instruments read at collection, histograms recorded as they happen.
   * @default false
   */
  @IsBoolean()
  openTelemetry = false;

  /** Prefix of every metric name (Prometheus: `[a-zA-Z_:][a-zA-Z0-9_:]*`). @default 'redis_streams_' */
  @Matches(/^[a-zA-Z_:][a-zA-Z0-9_:]{0,63}$/)
  prefix = 'redis_streams_';

  /**
   * Bound of the `pattern` label: distinct patterns beyond this many are counted under `pattern="_other"`, so a
   * producer that makes up pattern names cannot grow the series count without limit.
   * @default 100
   */
  @IsInt()
  @Min(1)
  @Max(10_000)
  maxPatternLabels = 100;

  /**
   * Scrape-time gauges (lag, pending, oldest pending age, dead-letter length) cost one Redis round trip per scrape;
   * scrapes closer together than this reuse the last answer.
   * @default 1000
   */
  @IsInt()
  @Min(0)
  @Max(600_000)
  gaugeCacheMs = 1_000;
}

/** The part of a prom-client `Registry` the library uses. */
export interface PrometheusRegistryLike {
  registerMetric(metric: unknown): void;
  getSingleMetric(name: string): unknown;
}

/** Tracing and metrics; everything is off by default and costs a null check per message then. */
export class ObservabilityOptions {
  @ValidateNested() @Type(() => TracingOptions) tracing: TracingOptions = new TracingOptions();
  @ValidateNested() @Type(() => MetricsOptions) metrics: MetricsOptions = new MetricsOptions();
}
