import { fileURLToPath } from 'node:url';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { lastValueFrom } from 'rxjs';
import { DeadLetterManager, RedisStreamsClient } from 'nestjs-redis-streams-enterprise';
import { ConsumerProcess } from '../support/process-consumers.js';
import { cleanupPrefix, rawRedis, redisUrl, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { waitFor } from '../support/wait-for.js';

const tracedConsumer = fileURLToPath(new URL('../support/traced-consumer-process.mjs', import.meta.url));

/** A finished span of the consumer process (traced-consumer-process.mjs sends them as plain objects). */
interface RemoteSpan {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
  links: { traceId: string; spanId: string; attributes: Record<string, unknown> }[];
  status: { code: SpanStatusCode; message?: string };
}

/** Sends `message` to the consumer process and resolves with the value of `key` in its answer (or all of it). */
function ask<T>(consumer: ConsumerProcess, message: object, key: string, whole = false): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (answer: Record<string, unknown>) => {
      if (!(key in answer)) return;
      consumer.child.off('message', onMessage);
      resolve((whole ? answer : answer[key]) as T);
    };
    consumer.child.on('message', onMessage);
    consumer.child.send(message);
  });
}

describe('tracing across a producer and a consumer process (OpenTelemetry in-memory exporters, real Redis)', () => {
  const prefix = uniquePrefix('tracing');
  const keys = testKeys(prefix);
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();
  let redis: RawRedis;
  let client: RedisStreamsClient;
  let consumer: ConsumerProcess;

  const remoteSpans = async (predicate: (spans: RemoteSpan[]) => boolean): Promise<RemoteSpan[]> => {
    let spans: RemoteSpan[] = [];
    await waitFor(async () => predicate((spans = await ask<RemoteSpan[]>(consumer, { dump: true }, 'spans'))), { message: 'consumer spans' });
    return spans;
  };
  const producerSpan = (name: string, messageId: string): ReadableSpan | undefined =>
    exporter.getFinishedSpans().find((s) => s.name === name && s.attributes['messaging.message.id'] === messageId);

  beforeAll(async () => {
    context.setGlobalContextManager(contextManager.enable());
    propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
    trace.setGlobalTracerProvider(provider);
    redis = rawRedis();
    client = new RedisStreamsClient({
      connection: { url: redisUrl() },
      streams: { keyPrefix: prefix },
      client: { requestTimeoutMs: 10_000 },
      observability: { tracing: { enabled: true } },
    });
    consumer = await ConsumerProcess.start({ PREFIX: prefix, TRACING_SDK: 'memory' }, 20_000, tracedConsumer);
  });

  afterAll(async () => {
    await consumer?.kill();
    await client?.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it('makes one trace of the publish and its processing: checkout -> publish (PRODUCER) -> process (CONSUMER) -> handler work', async () => {
    const checkout = trace.getTracer('shop').startSpan('checkout');
    const entryId = await context.with(trace.setSpan(context.active(), checkout), () =>
      lastValueFrom(client.emit<string>('orders.traced', { id: 'o-1', failUntil: 0 })),
    );
    checkout.end();
    const publish = exporter.getFinishedSpans().find((s) => s.name === 'publish orders.traced' && s.attributes['messaging.redis_streams.entry_id'] === entryId);
    expect(publish).toBeDefined();
    expect(publish?.kind).toBe(SpanKind.PRODUCER);
    expect(publish?.spanContext().traceId).toBe(checkout.spanContext().traceId);
    expect(publish?.parentSpanContext?.spanId).toBe(checkout.spanContext().spanId);
    expect(publish?.attributes).toMatchObject({
      'messaging.system': 'redis_streams',
      'messaging.operation.type': 'send',
      'messaging.destination.name': keys.stream('orders.traced'),
    });

    const spans = await remoteSpans((all) => all.some((s) => s.attributes['messaging.redis_streams.entry_id'] === entryId) && all.some((s) => s.name === 'billing.work'));
    const processSpan = spans.find((s) => s.name === 'process orders.traced' && s.attributes['messaging.redis_streams.entry_id'] === entryId);
    expect(processSpan).toBeDefined();
    expect(processSpan?.kind).toBe(SpanKind.CONSUMER);
    expect(processSpan?.traceId).toBe(checkout.spanContext().traceId);
    expect(processSpan?.parentSpanId).toBe(publish?.spanContext().spanId);
    expect(processSpan?.attributes).toMatchObject({
      'messaging.system': 'redis_streams',
      'messaging.operation.type': 'process',
      'messaging.destination.name': keys.stream('orders.traced'),
      'messaging.consumer.group.name': 'billing',
      'messaging.client.id': consumer.name,
      'messaging.message.id': publish?.attributes['messaging.message.id'],
      'messaging.redis_streams.delivery_count': 1,
    });
    expect(processSpan?.status.code).not.toBe(SpanStatusCode.ERROR);
    // The handler runs inside the process span: its own spans are children of it.
    const work = spans.find((s) => s.name === 'billing.work' && s.parentSpanId === processSpan?.spanId);
    expect(work?.traceId).toBe(checkout.spanContext().traceId);
  });

  it('records a failed attempt as an error with a retry event, and the retry as a second process span of the same publish', async () => {
    const entryId = await lastValueFrom(client.emit<string>('orders.traced', { id: 'o-2', failUntil: 2 }));
    const spans = await remoteSpans((all) => all.filter((s) => s.attributes['messaging.redis_streams.entry_id'] === entryId).length === 2);
    const [first, second] = spans
      .filter((s) => s.attributes['messaging.redis_streams.entry_id'] === entryId)
      .sort((a, b) => Number(a.attributes['messaging.redis_streams.delivery_count']) - Number(b.attributes['messaging.redis_streams.delivery_count']));
    const publish = exporter.getFinishedSpans().find((s) => s.attributes['messaging.redis_streams.entry_id'] === entryId);
    expect(first.parentSpanId).toBe(publish?.spanContext().spanId);
    expect(second.parentSpanId).toBe(publish?.spanContext().spanId);
    expect(first.status.code).toBe(SpanStatusCode.ERROR);
    expect(first.events.map((e) => e.name)).toEqual(expect.arrayContaining(['exception', 'retry scheduled']));
    expect(second.attributes['messaging.redis_streams.delivery_count']).toBe(2);
    expect(second.status.code).not.toBe(SpanStatusCode.ERROR);
  });

  it('records the dead letter as an event of the last attempt', async () => {
    const entryId = await lastValueFrom(client.emit<string>('orders.traced', { id: 'o-poison', failUntil: 99 }));
    const spans = await remoteSpans((all) => all.filter((s) => s.attributes['messaging.redis_streams.entry_id'] === entryId).length === 3);
    const last = spans.find((s) => s.attributes['messaging.redis_streams.entry_id'] === entryId && s.attributes['messaging.redis_streams.delivery_count'] === 3);
    const deadLettered = last?.events.find((e) => e.name === 'dead-lettered');
    expect(deadLettered?.attributes['messaging.redis_streams.dead_letter.reason']).toBe('max-deliveries');
    expect(last?.status.code).toBe(SpanStatusCode.ERROR);

    // Redriven, the message is processed in a trace of its own that links to the original publish.
    const publish = exporter.getFinishedSpans().find((s) => s.attributes['messaging.redis_streams.entry_id'] === entryId);
    const deadLetters = new DeadLetterManager({ connection: { url: redisUrl() }, streams: { keyPrefix: prefix } });
    try {
      const { redriven } = await deadLetters.redrive('orders.traced');
      expect(redriven).toHaveLength(1);
      const newId = redriven[0].newId;
      const after = await remoteSpans((all) => all.some((s) => s.attributes['messaging.redis_streams.entry_id'] === newId));
      const redrivenSpan = after.find((s) => s.attributes['messaging.redis_streams.entry_id'] === newId);
      expect(redrivenSpan?.parentSpanId).toBeUndefined();
      expect(redrivenSpan?.attributes['messaging.redis_streams.copied_by']).toBe('redrive');
      expect(redrivenSpan?.links).toEqual([expect.objectContaining({ traceId: publish?.spanContext().traceId, spanId: publish?.spanContext().spanId })]);
    } finally {
      await deadLetters.close();
    }
  });

  it('carries the trace through a transactional emit: process -> publish (in the consumer) -> process of the emitted message', async () => {
    const entryId = await lastValueFrom(client.emit<string>('orders.forward', { id: 'f-1' }));
    const spans = await remoteSpans((all) => all.some((s) => s.name === 'process orders.traced' && all.some((p) => p.name === 'publish orders.traced' && p.spanId === s.parentSpanId)));
    const forward = spans.find((s) => s.name === 'process orders.forward' && s.attributes['messaging.redis_streams.entry_id'] === entryId);
    const emitted = spans.find((s) => s.name === 'publish orders.traced' && s.parentSpanId === forward?.spanId);
    expect(emitted?.kind).toBe(SpanKind.PRODUCER);
    const processed = spans.find((s) => s.name === 'process orders.traced' && s.parentSpanId === emitted?.spanId);
    expect(processed?.traceId).toBe(forward?.traceId);
    const publish = exporter.getFinishedSpans().find((s) => s.attributes['messaging.redis_streams.entry_id'] === entryId);
    expect(forward?.traceId).toBe(publish?.spanContext().traceId);
  });

  it('keeps a request span open until its reply, with the consumer span of the request inside it', async () => {
    const reply = await lastValueFrom(client.send<{ total: number }>('orders.quote', { n: 21 }));
    expect(reply).toEqual({ total: 42 });
    const send = exporter.getFinishedSpans().find((s) => s.name === 'send orders.quote');
    expect(send?.kind).toBe(SpanKind.PRODUCER);
    const spans = await remoteSpans((all) => all.some((s) => s.name === 'process orders.quote'));
    const answered = spans.find((s) => s.name === 'process orders.quote' && s.parentSpanId === send?.spanContext().spanId);
    expect(answered?.traceId).toBe(send?.spanContext().traceId);
    expect(answered?.attributes['messaging.redis_streams.request']).toBe(true);
  });

  it('links a replayed message to its original trace instead of joining it', async () => {
    const entryId = await lastValueFrom(client.emit<string>('orders.traced', { id: 'o-3', failUntil: 0 }));
    const publish = exporter.getFinishedSpans().find((s) => s.attributes['messaging.redis_streams.entry_id'] === entryId);
    await remoteSpans((all) => all.some((s) => s.attributes['messaging.redis_streams.entry_id'] === entryId));
    const [[id, flat]] = (await redis.xrange(keys.stream('orders.traced'), entryId, entryId)) as [string, string[]][];
    const fields: Record<string, string> = {};
    for (let i = 0; i < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
    expect(await ask(consumer, { replay: { id, fields } }, 'replayed')).toBe('handled');
    const spans = await remoteSpans((all) => all.some((s) => s.attributes['messaging.operation.name'] === 'replay'));
    const replayed = spans.find((s) => s.attributes['messaging.operation.name'] === 'replay');
    expect(replayed?.parentSpanId).toBeUndefined();
    expect(replayed?.traceId).not.toBe(publish?.spanContext().traceId);
    expect(replayed?.links).toEqual([expect.objectContaining({ traceId: publish?.spanContext().traceId, spanId: publish?.spanContext().spanId })]);
  });
});

describe('tracing enabled without an OpenTelemetry SDK (real Redis)', () => {
  const prefix = uniquePrefix('tracing-nosdk');
  let redis: RawRedis;
  let consumer: ConsumerProcess;

  beforeAll(async () => {
    redis = rawRedis();
    consumer = await ConsumerProcess.start({ PREFIX: prefix, TRACING_SDK: 'none' }, 20_000, tracedConsumer);
  });

  afterAll(async () => {
    await consumer?.kill();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('publishes, handles and answers requests with no spans, no trace headers and no error', async () => {
    const answer = await ask<{ selfHandled: number; quote: unknown; traceparents: (string | null)[]; spans: number }>(consumer, { emitSelf: 3 }, 'selfHandled', true);
    expect(answer.selfHandled).toBe(3);
    expect(answer.quote).toEqual({ total: 42 });
    // No propagator registered: nothing is injected; no tracer provider: nothing is recorded.
    expect(answer.traceparents).toEqual([null, null, null]);
    expect(answer.spans).toBe(0);
    expect(consumer.isRunning).toBe(true);
  });
});
