/**
 * `observability` on the producer side: a PRODUCER span per write (its context injected into the message headers by
 * the client's encode), the published counter and the publish duration histogram per pattern. A request's span stays
 * open until its final reply (or failure) reaches the caller, so the consumer's span of the request and the reply
 * both sit inside it. With nothing configured, `observing` is false and the client skips all of this.
 */
import type { WritePacket } from '@nestjs/microservices';
import type { ResolvedRedisStreamsConfig } from '../config/redis-streams.options.js';
import type { MessageTracer, PublishSpan } from '../observability/telemetry.js';
import { createTelemetry, type Telemetry } from '../telemetry/telemetry.js';

export class ClientTelemetry {
  readonly tracer?: MessageTracer;
  /** Whether tracing or metrics are on. */
  readonly observing: boolean;
  private readonly telemetry: Telemetry;

  /** @throws OptionalDependencyMissingError when an enabled exporter's package is not installed. */
  constructor(config: ResolvedRedisStreamsConfig) {
    this.telemetry = createTelemetry(config);
    this.tracer = this.telemetry.tracer;
    this.observing = this.tracer !== undefined || this.telemetry.metrics !== undefined;
  }

  /** Starts reporting the client's metrics (series without a group). Idempotent. */
  start(): void {
    this.telemetry.start('');
  }

  stop(): void {
    this.telemetry.stop();
  }

  /** A request's span, and the reply callback that ends it with the final reply (or the error). */
  requestSpan(pattern: string, requestId: string, callback: (packet: WritePacket) => void): { span?: PublishSpan; callback: (packet: WritePacket) => void } {
    const span = this.tracer?.startPublish({ operation: 'send', pattern, messageId: requestId });
    if (!span) return { callback };
    return {
      span,
      callback: (packet) => {
        if (packet.isDisposed) span.end({ error: packet.err ?? undefined });
        callback(packet);
      },
    };
  }

  /**
   * Runs one write with its metrics and span. `span` is the request's (ended by its reply) or undefined for an emit,
   * whose span is made here and ended with the write.
   */
  observed(pattern: string, messageId: string, requestSpan: PublishSpan | undefined, write: (span?: PublishSpan) => Promise<string>): Promise<string> {
    const span = requestSpan ?? this.tracer?.startPublish({ operation: 'publish', pattern, messageId });
    // Tracing on without an SDK (no span) and no metrics: nothing to record.
    if (!span && !this.telemetry.metrics) return write(undefined);
    return this.recorded(pattern, span, requestSpan === undefined, write);
  }

  private async recorded(pattern: string, span: PublishSpan | undefined, endsHere: boolean, write: (span?: PublishSpan) => Promise<string>): Promise<string> {
    const started = performance.now();
    try {
      const entryId = await write(span);
      this.telemetry.metrics?.countPattern('published', pattern);
      this.telemetry.metrics?.observePattern('publish_duration', pattern, (performance.now() - started) / 1_000);
      if (endsHere) span?.end({ entryId });
      return entryId;
    } catch (error) {
      span?.end({ error });
      throw error;
    }
  }
}
