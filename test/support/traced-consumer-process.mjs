// A consumer app in its own process with observability.tracing.enabled, for the two-process tracing test. Plain
// JavaScript on the built library (npm test builds it first), like consumer-process.mjs.
// env:
//   REDIS_URL, PREFIX   where to consume (group 'billing')
//   TRACING_SDK         'memory': register an OpenTelemetry SDK with an in-memory exporter (W3C trace context and
//                       baggage propagators, AsyncLocalStorage context); 'none': no SDK at all (the api's no-ops)
// Handlers: event 'orders.traced' ({ id, failUntil }: fails while the delivery count is below failUntil; does its own
// work in a span 'billing.work'), request 'orders.quote' ({ n } -> { total: 2n }), event 'orders.forward' ({ id }:
// emits { id: `fwd-${id}`, failUntil: 0 } to 'orders.traced' in ctx.transaction()).
// IPC to the parent: { listening } once listening; on { dump: true } -> { spans: [...] } (finished spans, as plain
// objects); on { replay: { id, fields } } -> { replayed: outcome } (server.replayEntry); on { emitSelf: n } -> emits
// n events with a client of this process and answers { selfHandled, traceparents } once they were handled.
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsServer } from '../../libs/redis-streams-enterprise/dist/index.js';

const env = process.env;
const exporter = new InMemorySpanExporter();
if (env.TRACING_SDK === 'memory') {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
}

/** Ids handled successfully, and the traceparent header each delivery carried (or null). */
const handled = [];
const traceparents = [];

class BillingController {
  async handle(data, ctx) {
    traceparents.push(ctx.getHeaders().traceparent ?? null);
    if (ctx.getDeliveryCount() < (data.failUntil ?? 0)) throw new Error(`failure of ${data.id}`);
    // The handler's own work: a span that must be a child of the transport's process span.
    await trace.getTracer('billing').startActiveSpan('billing.work', async (span) => {
      span.setAttribute('order.id', data.id);
      span.end();
    });
    handled.push(data.id);
  }

  quote(data) {
    return { total: data.n * 2 };
  }

  forward(data, ctx) {
    ctx.transaction().emit('orders.traced', { id: `fwd-${data.id}`, failUntil: 0 });
  }
}
Payload()(BillingController.prototype, 'handle', 0);
Ctx()(BillingController.prototype, 'handle', 1);
EventPattern('orders.traced')(BillingController.prototype, 'handle', Object.getOwnPropertyDescriptor(BillingController.prototype, 'handle'));
Payload()(BillingController.prototype, 'quote', 0);
MessagePattern('orders.quote')(BillingController.prototype, 'quote', Object.getOwnPropertyDescriptor(BillingController.prototype, 'quote'));
Payload()(BillingController.prototype, 'forward', 0);
Ctx()(BillingController.prototype, 'forward', 1);
EventPattern('orders.forward')(BillingController.prototype, 'forward', Object.getOwnPropertyDescriptor(BillingController.prototype, 'forward'));
Controller()(BillingController);

class AppModule {}
Module({ controllers: [BillingController] })(AppModule);

const config = {
  connection: { url: env.REDIS_URL },
  streams: { keyPrefix: env.PREFIX },
  consumer: { group: 'billing', blockMs: 200, claimIdleMs: 1_000, reclaimIntervalMs: 100 },
  retry: { attempts: 3, backoff: { type: 'fixed', delayMs: 50, maxDelayMs: 50, jitter: 0 } },
  observability: { tracing: { enabled: true } },
};
const server = new RedisStreamsServer(config);
const app = await NestFactory.createMicroservice(AppModule, { strategy: server, logger: false });
app.enableShutdownHooks([], { useProcessExit: true });
await app.listen();

/** Plain-object copy of a finished span (ReadableSpan), for IPC. */
function plain(span) {
  const { traceId, spanId } = span.spanContext();
  return {
    name: span.name,
    kind: span.kind,
    traceId,
    spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    attributes: span.attributes,
    events: span.events.map((e) => ({ name: e.name, attributes: e.attributes ?? {} })),
    links: span.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId, attributes: l.attributes ?? {} })),
    status: span.status,
  };
}

process.on('message', async (message) => {
  if (message.dump) process.send({ spans: exporter.getFinishedSpans().map(plain) });
  if (message.replay) process.send({ replayed: await server.replayEntry('orders.traced', message.replay) });
  if (message.emitSelf) {
    const client = new RedisStreamsClient(config);
    const ids = Array.from({ length: message.emitSelf }, (_, i) => `self-${i}`);
    for (const id of ids) await lastValueFrom(client.emit('orders.traced', { id, failUntil: 0 }));
    const quote = await lastValueFrom(client.send('orders.quote', { n: 21 }));
    while (!ids.every((id) => handled.includes(id))) await new Promise((resolve) => setTimeout(resolve, 20));
    await client.close();
    process.send({ selfHandled: ids.length, quote, traceparents, spans: exporter.getFinishedSpans().length });
  }
});
process.send({ listening: server.config.consumer.consumerName });
