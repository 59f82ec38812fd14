/**
 * The OpenTelemetry MessageTracer: PRODUCER spans on writes with the context injected into the message headers
 * through the registered propagator (W3C `traceparent`/`tracestate` and `baggage` with the usual SDK setup), and
 * CONSUMER spans around each processing, children of the extracted producer context (a replay links to it instead).
 * Attributes follow the OpenTelemetry messaging semantic conventions. `@opentelemetry/api` is an optional peer,
 * loaded on first use; without an SDK registered its tracer makes non-recording spans and nothing is exported.
 */
import type { Attributes, Context, Link, Span, Tracer, TracerProvider } from '@opentelemetry/api';
import type { TracingOptions } from '../config/observability.options.js';
import type { MessageTracer, ProcessInfo, ProcessSpan, PublishInfo, PublishSpan } from '../observability/telemetry.js';
import { errorText } from '../observability/log-format.js';
import { INSTRUMENTATION_NAME, openTelemetryApi, type OtelApi } from './otel-meter-exporter.js';

/** `messaging.system` of the spans (no registered value exists for Redis Streams). */
export const MESSAGING_SYSTEM = 'redis_streams';

/**
 * The key @opentelemetry/core's suppressTracing() sets (instrumentations such as instrumentation-ioredis check it).
 * createContextKey uses Symbol.for, so the api alone can build it without depending on core.
 */
const SUPPRESS_TRACING_KEY = 'OpenTelemetry SDK Context Key SUPPRESS_TRACING';

/** The envelope's limit of a header value (wire/envelope.ts): a bigger `baggage` is not propagated. */
const MAX_PROPAGATED_VALUE = 4_096;

export function createOtelTracer(options: TracingOptions): MessageTracer {
  return new OtelTracer(openTelemetryApi('OpenTelemetry tracing'), options.traceRedisCommands);
}

class OtelTracer implements MessageTracer {
  private readonly suppressKey: symbol;
  /** Marks a suppression made here, so that only ours is lifted again (never one the app or an instrumentation made). */
  private readonly ownSuppressionKey: symbol;

  constructor(
    private readonly api: OtelApi,
    private readonly traceRedisCommands: boolean,
  ) {
    this.suppressKey = api.createContextKey(SUPPRESS_TRACING_KEY);
    this.ownSuppressionKey = api.createContextKey('nestjs-redis-streams-enterprise suppressed its own commands');
  }

  /**
   * The SDK's tracer, or undefined while no SDK is registered: then nothing is traced at all (no context objects, no
   * headers, no spans), so enabling tracing in an app that does not trace costs next to nothing. Looked up per
   * message: the app may register its SDK after the module was created.
   */
  private tracer(): Tracer | undefined {
    const provider = this.api.trace.getTracerProvider() as TracerProvider & { getDelegateTracer?: (name: string) => Tracer | undefined };
    return typeof provider.getDelegateTracer === 'function' ? provider.getDelegateTracer(INSTRUMENTATION_NAME) : provider.getTracer(INSTRUMENTATION_NAME);
  }

  private quiet(ctx: Context): Context {
    return this.traceRedisCommands ? ctx : ctx.setValue(this.suppressKey, true).setValue(this.ownSuppressionKey, true);
  }

  /** `ctx` without the suppression made by quiet() (a handler, an emit of its transaction must be traced). */
  private lifted(ctx: Context): Context {
    return ctx.getValue(this.ownSuppressionKey) === true ? ctx.deleteValue(this.suppressKey).deleteValue(this.ownSuppressionKey) : ctx;
  }

  startPublish(info: PublishInfo): PublishSpan | undefined {
    const { api } = this;
    const tracer = this.tracer();
    if (!tracer) return undefined;
    // An emit of a handler's transaction is made while the transport's commands are kept quiet: lift that here.
    const parent = this.lifted(api.context.active());
    const attributes: Attributes = {
      'messaging.system': MESSAGING_SYSTEM,
      'messaging.operation.type': 'send',
      'messaging.operation.name': info.operation,
      'messaging.redis_streams.pattern': info.pattern,
    };
    if (info.stream !== undefined) attributes['messaging.destination.name'] = info.stream;
    if (info.messageId !== undefined) attributes['messaging.message.id'] = info.messageId;
    const span = tracer.startSpan(`${info.operation} ${info.pattern}`, { kind: api.SpanKind.PRODUCER, attributes }, parent);
    const ctx = api.trace.setSpan(parent, span);
    let ended = false;
    return {
      inject: (headers) => {
        const carrier: Record<string, string> = {};
        api.propagation.inject(ctx, carrier);
        for (const [name, value] of Object.entries(carrier)) if (value.length <= MAX_PROPAGATED_VALUE) headers[name] = value;
      },
      runWrite: (stream, fn) => {
        span.setAttribute('messaging.destination.name', stream);
        return api.context.with(this.quiet(ctx), fn);
      },
      end: ({ entryId, stream, error }) => {
        if (ended) return;
        ended = true;
        if (stream !== undefined) span.setAttribute('messaging.destination.name', stream);
        if (entryId !== undefined) span.setAttribute('messaging.redis_streams.entry_id', entryId);
        if (error !== undefined) this.markFailed(span, error);
        span.end();
      },
    };
  }

  startProcess(info: ProcessInfo, headers: Readonly<Record<string, string>>): ProcessSpan | undefined {
    const { api } = this;
    const tracer = this.tracer();
    if (!tracer) return undefined;
    const extracted = api.propagation.extract(api.ROOT_CONTEXT, headers);
    const remote = api.trace.getSpanContext(extracted);
    // A replay or a redrive is not caused by the original publish: it starts a trace of its own linked to the original.
    const copied = info.isReplay === true || info.copiedBy !== undefined;
    const parent = copied ? api.ROOT_CONTEXT : extracted;
    const reason = info.copiedBy === 'redrive' ? 'redriven-from' : 'replayed-from';
    const links: Link[] = copied && remote && api.isSpanContextValid(remote) ? [{ context: remote, attributes: { 'messaging.redis_streams.link': reason } }] : [];
    const attributes: Attributes = {
      'messaging.system': MESSAGING_SYSTEM,
      'messaging.operation.type': 'process',
      'messaging.operation.name': info.isReplay ? 'replay' : 'process',
      'messaging.destination.name': info.stream,
      'messaging.consumer.group.name': info.group,
      'messaging.client.id': info.consumer,
      'messaging.message.id': info.messageId,
      'messaging.redis_streams.pattern': info.pattern,
      'messaging.redis_streams.entry_id': info.entryId,
      'messaging.redis_streams.delivery_count': info.deliveryCount,
    };
    if (info.partition !== undefined) attributes['messaging.destination.partition.id'] = String(info.partition);
    if (info.isRequest) attributes['messaging.redis_streams.request'] = true;
    if (info.copiedBy !== undefined) attributes['messaging.redis_streams.copied_by'] = info.copiedBy;
    const span = tracer.startSpan(`process ${info.pattern}`, { kind: api.SpanKind.CONSUMER, attributes, links }, parent);
    const active = api.trace.setSpan(parent, span);
    const settling = this.quiet(active);
    return {
      run: (fn) => api.context.with(settling, fn),
      end: () => span.end(),
    };
  }

  event(name: string, attributes?: Readonly<Record<string, string | number | boolean>>): void {
    this.api.trace.getActiveSpan()?.addEvent(name, attributes);
  }

  fail(error: unknown): void {
    const span = this.api.trace.getActiveSpan();
    if (span) this.markFailed(span, error);
  }

  suppressed<T>(fn: () => T): T {
    if (this.traceRedisCommands) return fn();
    return this.api.context.with(this.quiet(this.api.context.active()), fn);
  }

  unsuppressed<T>(fn: () => T): T {
    if (this.traceRedisCommands || !this.tracer()) return fn();
    return this.api.context.with(this.lifted(this.api.context.active()), fn);
  }

  private markFailed(span: Span, error: unknown): void {
    span.recordException(error instanceof Error ? error : errorText(error));
    span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: errorText(error).slice(0, 500) });
  }
}
