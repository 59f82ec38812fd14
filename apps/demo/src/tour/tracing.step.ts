import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient } from 'nestjs-redis-streams-enterprise';
import { ACCOUNTS_MOVED, AccountMoves, type Move } from './ordering.step.js';
import { shortName, StepReport, waitUntil, type Tour } from './tour-checks.js';

const HANDLED_TIMEOUT_MS = 10_000;

/**
 * Step 6: tracing. The tour's configuration has `observability.tracing.enabled`; tracing records nothing until an
 * OpenTelemetry SDK is registered, so this step registers a tiny one in this process (in-memory exporter, W3C trace
 * context propagator, AsyncLocalStorage context), publishes one move inside a "checkout" span and prints the trace id
 * that links the producer's PRODUCER span to the consumer's CONSUMER span (its parent, read from the message
 * headers). The SDK is removed again at the end.
 */
export async function runTracingStep(tour: Tour): Promise<StepReport> {
  const report = new StepReport('tour 6 tracing');
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  trace.setGlobalTracerProvider(provider);
  try {
    tour.log('Tour 6: tracing (an OpenTelemetry SDK with an in-memory exporter, registered in this process for this step)');
    const moves = tour.consumers[0].app.get(AccountMoves);
    const before = moves.live.length;
    const checkout = trace.getTracer('demo').startSpan('checkout');
    const move: Move = { accountId: 'acct-traced', seq: 0, cents: 4_200 };
    const entryId = await context.with(trace.setSpan(context.active(), checkout), () =>
      lastValueFrom(tour.producer.get(RedisStreamsClient).emit<string>(ACCOUNTS_MOVED, move)),
    );
    checkout.end();
    const spans = () => exporter.getFinishedSpans();
    const publish = spans().find((s) => s.name === `publish ${ACCOUNTS_MOVED}` && s.attributes['messaging.redis_streams.entry_id'] === entryId);
    const processed = (): ReadableSpan | undefined => spans().find((s) => s.name === `process ${ACCOUNTS_MOVED}` && s.parentSpanContext?.spanId === publish?.spanContext().spanId);
    const handled = await waitUntil(() => moves.live.length > before && processed() !== undefined, HANDLED_TIMEOUT_MS);
    const consumerSpan = processed();
    const traceId = checkout.spanContext().traceId;
    if (publish && consumerSpan) {
      tour.log(`  trace id ${traceId}:`);
      tour.log(`    checkout ${checkout.spanContext().spanId} (this process)`);
      tour.log(`    └ publish ${ACCOUNTS_MOVED} ${publish.spanContext().spanId} (PRODUCER, entry ${entryId}; traceparent in the message headers)`);
      tour.log(
        `      └ process ${ACCOUNTS_MOVED} ${consumerSpan.spanContext().spanId} (CONSUMER, ${shortName(String(consumerSpan.attributes['messaging.client.id']))}, ` +
          `partition ${String(consumerSpan.attributes['messaging.destination.partition.id'])})`,
      );
    }
    const linked = handled && publish !== undefined && consumerSpan?.spanContext().traceId === traceId && publish.spanContext().traceId === traceId;
    report.row('trace id', linked ? `${traceId}: checkout -> publish (producer) -> process (consumer)` : 'not linked', linked, 'the consumer span was not in the producer span\'s trace');
    return report;
  } finally {
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  }
}
