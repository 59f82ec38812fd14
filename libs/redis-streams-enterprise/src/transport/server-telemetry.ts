/**
 * Wires `observability` into a server: the tracer and the labelled metrics go onto the server's TransportMetrics
 * (which every step of the consume path holds already), and the exporters report while the server is connected:
 * started on the first Connected status, stopped on Closed. Kept out of the server so that it only creates this.
 */
import type { Observable, Subscription } from 'rxjs';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import type { StreamKeys } from '../connection/stream-keys.js';
import type { TransportMetrics } from '../observability/metrics.js';
import { RedisStreamsStatus } from '../redis-streams.constants.js';
import { createTelemetry } from '../telemetry/telemetry.js';
import { ServerGauges, type GaugeInputs } from './server-gauges.js';

/**
 * @returns nothing to keep: the status subscription lives until the server is closed.
 * @throws OptionalDependencyMissingError when tracing is on and `@opentelemetry/api` is not installed.
 */
export function attachServerTelemetry(
  config: ResolvedRedisStreamsConfig,
  keys: StreamKeys,
  metrics: TransportMetrics,
  status: Observable<string>,
  inputs: GaugeInputs,
): void {
  // Partition streams report under their topic's pattern; the lookup runs once per stream (LabelledMetrics caches it).
  const patternOf = (stream: string) => inputs.streams().find((s) => s.stream === stream)?.pattern ?? stream;
  const telemetry = createTelemetry(config, patternOf);
  metrics.tracer = telemetry.tracer;
  metrics.labelled = telemetry.metrics;
  if (!telemetry.metrics) return;
  const gauges = new ServerGauges(config, keys, inputs);
  let subscription: Subscription | undefined;
  subscription = status.subscribe((state) => {
    if (state === RedisStreamsStatus.Connected) telemetry.start(config.consumer.group, () => gauges.gauges());
    if (state === RedisStreamsStatus.Closed) {
      telemetry.stop();
      subscription?.unsubscribe();
    }
  });
}
