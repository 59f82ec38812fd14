import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { isTracingSuppressed, W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsServer, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { waitFor } from '../support/wait-for.js';

/** What instrumentation-ioredis would check before making a span of a command: is tracing suppressed here? */
@Injectable()
class Observed {
  readonly handler: { suppressed: boolean; spanName?: string }[] = [];
  readonly commands: { name: string; suppressed: boolean }[] = [];
}

@Controller()
class AuditController {
  constructor(@Inject(Observed) private readonly observed: Observed) {}

  @StreamEvent('audit.suppressed')
  handle(@Payload() _data: { n: number }) {
    const span = trace.getActiveSpan() as unknown as { name?: string } | undefined;
    this.observed.handler.push({ suppressed: isTracingSuppressed(context.active()), spanName: span?.name });
  }
}

/** Records, for every command the server's connections send, whether tracing was suppressed when it was sent. */
function watchCommands(server: RedisStreamsServer, observed: Observed): void {
  for (const connection of server.unwrap<[Redis, Redis]>()) {
    const send = connection.sendCommand.bind(connection);
    connection.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
      observed.commands.push({ name: command.name, suppressed: isTracingSuppressed(context.active()) });
      return (send as (...args: unknown[]) => unknown)(command, ...rest);
    }) as Redis['sendCommand'];
  }
}

describe('tracing keeps the transport\'s own Redis commands out of instrumentation-ioredis, but not the handler\'s (real Redis)', () => {
  const prefix = uniquePrefix('tracing-quiet');
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())] });
  const apps: INestMicroservice[] = [];
  let redis: RawRedis;

  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    redis = rawRedis();
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  const run = async (group: string, traceRedisCommands: boolean) => {
    const config = testConfig(prefix, { consumer: { group }, observability: { tracing: { enabled: true, traceRedisCommands } } });
    const { app, server } = await startConsumer(config, [AuditController], [Observed]);
    apps.push(app);
    const observed = app.get(Observed);
    watchCommands(server, observed);
    await lastValueFrom(app.get(RedisStreamsClient).emit('audit.suppressed', { n: 1 }));
    // Each test's app is a group of its own: it may also get the messages the earlier tests sent.
    await waitFor(() => observed.handler.length >= 1 && observed.commands.some((c) => c.name === 'xack'), { message: 'handled and acknowledged' });
    return observed;
  };

  it('suppresses tracing for reads and acks, and runs the handler inside the process span with tracing on', async () => {
    const observed = await run('quiet', false);
    expect(observed.handler).toContainEqual({ suppressed: false, spanName: 'process audit.suppressed' });
    expect(observed.handler.every((h) => !h.suppressed)).toBe(true);
    const reads = observed.commands.filter((c) => c.name === 'xreadgroup');
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.every((c) => c.suppressed)).toBe(true);
    expect(observed.commands.find((c) => c.name === 'xack')?.suppressed).toBe(true);
  });

  it("runs Nest 12's processing hooks inside the process span (a start hook sees it as the active span)", async () => {
    const config = testConfig(prefix, { consumer: { group: 'hooks' }, observability: { tracing: { enabled: true } } });
    const { app, server } = await startConsumer(config, [AuditController], [Observed]);
    apps.push(app);
    const setHook = (server as unknown as { setOnProcessingStartHook?: (hook: (t: unknown, c: unknown, done: () => Promise<unknown>) => unknown) => void }).setOnProcessingStartHook;
    // Nest 11 (the .ci/nest11.sh job) runs no processing hooks: it may have the setter, not the runner.
    if (typeof setHook !== 'function' || typeof (server as unknown as { runWithProcessingHooks?: unknown }).runWithProcessingHooks !== 'function') return;
    const seenByHook: (string | undefined)[] = [];
    setHook.call(server, (_transport, _ctx, done) => {
      seenByHook.push((trace.getActiveSpan() as unknown as { name?: string } | undefined)?.name);
      return done();
    });
    await lastValueFrom(app.get(RedisStreamsClient).emit('audit.suppressed', { n: 2 }));
    await waitFor(() => seenByHook.length >= 1, { message: 'handled' });
    expect(new Set(seenByHook)).toEqual(new Set(['process audit.suppressed']));
  });

  it('leaves them traced with tracing.traceRedisCommands', async () => {
    const observed = await run('loud', true);
    expect(observed.handler.every((h) => !h.suppressed && h.spanName === 'process audit.suppressed')).toBe(true);
    expect(observed.commands.find((c) => c.name === 'xack')?.suppressed).toBe(false);
  });
});
