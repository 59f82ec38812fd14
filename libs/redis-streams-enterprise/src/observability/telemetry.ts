/**
 * The hooks the engine and the transport call to trace messages. The OpenTelemetry implementation lives in
 * telemetry/otel-tracer.ts and is loaded only when `observability.tracing.enabled`; every call site holds an
 * optional `MessageTracer`, so with tracing off the cost per message is a null check.
 */

/** What a PRODUCER span describes (OTel messaging semantic conventions). */
export interface PublishInfo {
  /** `publish` for emit and transactional emits, `send` for a request, `redrive`/`replay` for an operator's copy. */
  readonly operation: 'publish' | 'send' | 'redrive' | 'replay';
  readonly pattern: string;
  /** The stream written to (undefined until routed, e.g. for a partitioned topic). */
  readonly stream?: string;
  readonly messageId?: string;
}

/** A PRODUCER span; `end` may be called once. */
export interface PublishSpan {
  /**
   * Writes the span's context into `headers` (W3C `traceparent`, `tracestate`, `baggage`) through the propagator;
   * values the envelope would refuse (over its header value limit) are left out rather than failing the write.
   */
  inject(headers: Record<string, string>): void;
  /**
   * Runs `fn` (the Redis write to `stream`, named by the span) with the transport's own commands kept out of tracing
   * (unless asked for).
   */
  runWrite<T>(stream: string, fn: () => Promise<T>): Promise<T>;
  end(outcome: { entryId?: string; stream?: string; error?: unknown }): void;
}

/** What a CONSUMER/process span describes. */
export interface ProcessInfo {
  readonly stream: string;
  readonly pattern: string;
  readonly group: string;
  readonly consumer: string;
  readonly entryId: string;
  readonly messageId: string;
  readonly deliveryCount: number;
  readonly partition?: number;
  /** A request (`@MessagePattern`) rather than an event. */
  readonly isRequest?: boolean;
  /** A replay to handlers: links to the original trace instead of continuing it. */
  readonly isReplay?: boolean;
  /** A copy made by a replay to a stream or by a dead-letter redrive: links to the original trace too. */
  readonly copiedBy?: 'replay' | 'redrive';
}

/** A CONSUMER span around a handler run and the settlement of its entry. */
export interface ProcessSpan {
  /**
   * Runs the processing of the entry (handler and settlement) with this span active: settlement events (retry,
   * dead letter) land on it, and the transport's own Redis commands stay out of tracing.
   */
  run<T>(fn: () => Promise<T>): Promise<T>;
  end(): void;
}

export interface MessageTracer {
  /** A PRODUCER span; undefined while no SDK is registered (then nothing is injected and the write runs as without). */
  startPublish(info: PublishInfo): PublishSpan | undefined;
  /**
   * A CONSUMER span; undefined while no SDK is registered. `headers` come from the message: the propagator parses them
   * (bounded by the envelope's header limits).
   */
  startProcess(info: ProcessInfo, headers: Readonly<Record<string, string>>): ProcessSpan | undefined;
  /** Adds an event to the span active now (a retry, a dead letter, a fenced commit), if any. */
  event(name: string, attributes?: Readonly<Record<string, string | number | boolean>>): void;
  /** Marks the span active now as failed with `error`. */
  fail(error: unknown): void;
  /** Runs `fn` (a reading loop, a background task) with tracing suppressed, unless Redis commands are to be traced. */
  suppressed<T>(fn: () => T): T;
  /**
   * Runs `fn` (a handler, with Nest's processing hooks) in the active context with tracing no longer suppressed, so
   * the handler's own spans (its Redis commands, HTTP calls) are recorded as children of the process span.
   */
  unsuppressed<T>(fn: () => T): T;
}
