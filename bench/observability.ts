/**
 * Cost of tracing and metrics (`npm run bench:observability`): the same producer -> consumer run through the library
 * (small JSON events, producer and consumer in one process) with each observability setting, in one run:
 *
 *   off            observability not configured (the baseline)
 *   tracing-nosdk  observability.tracing.enabled, but no OpenTelemetry SDK registered (the api's no-ops): the cost of
 *                  having tracing switched on in a library whose app does not trace. Should be within noise of `off`.
 *   sdk-only       the tracing SDK below registered (its AsyncLocalStorage context in use, as in any traced app),
 *                  observability off: what the SDK alone costs the app, to tell it apart from the library's spans
 *   tracing        tracing with an SDK: BasicTracerProvider, BatchSpanProcessor into an exporter that drops the spans,
 *                  W3C trace context + baggage propagators, AsyncLocalStorage context manager
 *   prometheus     observability.metrics.prometheus into a Registry (scraped once per run, at the end)
 *   otel-metrics   observability.metrics.openTelemetry with an SDK MeterProvider (collected once per run, at the end)
 *   all            tracing (SDK) + prometheus + otel-metrics
 *
 * Each run sends a warm-up batch, then times BENCH_OBS_MESSAGES messages from the first emit to the last handled one,
 * and the CPU time (user + system) the process spent meanwhile. Rounds interleave the variants (rotated order each
 * round); the table shows the median msg/s and CPU µs per message, their spreads (min-max) and ratios to `off`. The
 * spread of `off` itself is the noise to compare the ratios with; on a shared machine the CPU figure is the steadier.
 *
 * Settings (environment): BENCH_OBS_ROUNDS (5), BENCH_OBS_MESSAGES (5000), BENCH_OBS_VARIANTS (all, comma-separated),
 * BENCH_REDIS_URL (default: a throw-away redis-server on a free port).
 */
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Payload } from '@nestjs/microservices';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, ExportResultCode, W3CBaggagePropagator, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsServer, StreamEvent, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import { ThrowawayRedis } from '../apps/demo/src/redis-server.process.js';
import { envInt, fmt, median, table, unlinkPrefix } from './report-utils.js';

const PATTERN = 'bench.observed';
const IN_FLIGHT = 64;
const WARMUP = 1_000;

const VARIANTS = ['off', 'tracing-nosdk', 'sdk-only', 'tracing', 'prometheus', 'otel-metrics', 'all'] as const;
type Variant = (typeof VARIANTS)[number];

/** Spans go nowhere: the figure is the cost of making and propagating them, not of a collector. */
class DroppingExporter implements SpanExporter {
  exported = 0;
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.exported += spans.length;
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
}

class OnDemandReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const usesTracingSdk = (v: Variant) => v === 'tracing' || v === 'all' || v === 'sdk-only';
const usesPrometheus = (v: Variant) => v === 'prometheus' || v === 'all';
const usesOtelMetrics = (v: Variant) => v === 'otel-metrics' || v === 'all';

function configOf(variant: Variant, url: string, prefix: string, registry: Registry): RedisStreamsEnterpriseConfig {
  const tracing = variant === 'tracing-nosdk' || variant === 'tracing' || variant === 'all';
  return {
    connection: { url },
    streams: { keyPrefix: prefix },
    consumer: { group: 'bench', batchSize: 64, concurrency: IN_FLIGHT },
    ...(variant === 'off' || variant === 'sdk-only'
      ? {}
      : {
          observability: {
            tracing: { enabled: tracing },
            metrics: { prometheus: usesPrometheus(variant), openTelemetry: usesOtelMetrics(variant), ...(usesPrometheus(variant) ? { registry } : {}) },
          },
        }),
  };
}

/** Registers (or removes) the global OpenTelemetry SDK parts the variant needs; returns what to finish the run with. */
function installSdk(variant: Variant): { finish: () => Promise<number> } {
  trace.disable();
  propagation.disable();
  context.disable();
  metrics.disable();
  const exporter = new DroppingExporter();
  let tracerProvider: BasicTracerProvider | undefined;
  let meterProvider: MeterProvider | undefined;
  let reader: OnDemandReader | undefined;
  if (usesTracingSdk(variant)) {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
    tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
    trace.setGlobalTracerProvider(tracerProvider);
    // AsyncLocalStorage installs its promise hooks on first use, which every traced app has made (an HTTP span, any
    // instrumentation): do it here too, so that sdk-only carries the SDK's whole cost and the difference to
    // `tracing` is the library's own.
    context.with(context.active().setValue(Symbol('bench'), true), () => undefined);
  }
  if (usesOtelMetrics(variant)) {
    reader = new OnDemandReader();
    meterProvider = new MeterProvider({ readers: [reader] });
    metrics.setGlobalMeterProvider(meterProvider);
  }
  return {
    finish: async () => {
      if (reader) await reader.collect();
      await tracerProvider?.forceFlush();
      await tracerProvider?.shutdown();
      await meterProvider?.shutdown();
      return exporter.exported;
    },
  };
}

let handled = 0;

@Controller()
class ObservedBenchController {
  @StreamEvent(PATTERN)
  received(@Payload() data: { n: number }) {
    if (data.n >= 0) handled++;
  }
}

@Module({ controllers: [ObservedBenchController] })
class ObservedBenchModule {}

async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`observability bench: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

async function sendAll(count: number, send: (seq: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await send(next++);
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, worker));
}

/** One timed run of one variant: msg/s, and whether the scrape showed the metrics (a check that they were on). */
async function run(url: string, admin: Redis, variant: Variant, messages: number): Promise<{ msgPerSec: number; cpuUsPerMsg: number; scraped: boolean }> {
  const prefix = `bench-obs-${randomUUID().slice(0, 8)}`;
  const registry = new Registry();
  const sdk = installSdk(variant);
  const config = configOf(variant, url, prefix, registry);
  const app = await NestFactory.createMicroservice(ObservedBenchModule, { strategy: new RedisStreamsServer(config), logger: false });
  await app.listen();
  const client = new RedisStreamsClient(config);
  const payload = (n: number) => ({ n, orderId: `o-${n}`, customer: 'c-42', total: 19.99, currency: 'EUR' });
  const emit = (seq: number) => lastValueFrom(client.emit(PATTERN, payload(seq)));
  try {
    handled = 0;
    await sendAll(WARMUP, emit);
    await waitUntil(() => handled === WARMUP, 120_000, 'the warm-up');
    handled = 0;
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    await sendAll(messages, emit);
    await waitUntil(() => handled >= messages, 600_000, `${messages} handled messages`);
    const seconds = (performance.now() - started) / 1_000;
    const cpu = process.cpuUsage(cpuBefore);
    const scrape = usesPrometheus(variant) ? await registry.metrics() : '';
    return { msgPerSec: messages / seconds, cpuUsPerMsg: (cpu.user + cpu.system) / messages, scraped: scrape.includes('redis_streams_messages_acked_total') };
  } finally {
    await client.close();
    await app.close();
    await unlinkPrefix(admin, prefix);
    const spans = await sdk.finish();
    if ((variant === 'tracing' || variant === 'all') && spans === 0) throw new Error('tracing variant exported no spans');
  }
}

function variantsFromEnv(): Variant[] {
  const raw = process.env.BENCH_OBS_VARIANTS;
  if (!raw) return [...VARIANTS];
  const list = raw.split(',').map((v) => v.trim()) as Variant[];
  for (const v of list) if (!VARIANTS.includes(v)) throw new Error(`BENCH_OBS_VARIANTS: unknown variant "${v}" (${VARIANTS.join(', ')})`);
  return list.includes('off') ? list : ['off', ...list];
}

async function main(): Promise<void> {
  const rounds = envInt('BENCH_OBS_ROUNDS', 5, 1);
  const messages = envInt('BENCH_OBS_MESSAGES', 5_000, 100);
  const variants = variantsFromEnv();
  const own = process.env.BENCH_REDIS_URL ? undefined : await ThrowawayRedis.start();
  const url = process.env.BENCH_REDIS_URL ?? (own as ThrowawayRedis).url;
  const admin = new Redis(url);
  const results = new Map<Variant, number[]>();
  const cpuResults = new Map<Variant, number[]>();
  try {
    for (let round = 0; round < rounds; round++) {
      const order = variants.map((_, i) => variants[(i + round) % variants.length]);
      for (const variant of order) {
        const figures = await run(url, admin, variant, messages);
        if (usesPrometheus(variant) && !figures.scraped) throw new Error('prometheus variant: the scrape lacks the transport metrics');
        results.set(variant, [...(results.get(variant) ?? []), figures.msgPerSec]);
        cpuResults.set(variant, [...(cpuResults.get(variant) ?? []), figures.cpuUsPerMsg]);
        console.log(`  ${variant.padEnd(13)} round ${round + 1}: ${fmt(figures.msgPerSec)} msg/s, ${fmt(figures.cpuUsPerMsg, 1)} µs CPU/msg`);
      }
    }
  } finally {
    admin.disconnect();
    await own?.stop();
  }
  const baseline = median(results.get('off') ?? []);
  const cpuBaseline = median(cpuResults.get('off') ?? []);
  const rows = variants.map((variant) => {
    const rates = results.get(variant) ?? [];
    const rate = median(rates);
    const cpus = cpuResults.get(variant) ?? [];
    const cpu = median(cpus);
    return [
      variant,
      fmt(rate),
      `${fmt(Math.min(...rates))}-${fmt(Math.max(...rates))}`,
      (rate / baseline).toFixed(2),
      fmt(cpu, 1),
      `${fmt(Math.min(...cpus), 1)}-${fmt(Math.max(...cpus), 1)}`,
      (cpu / cpuBaseline).toFixed(2),
    ];
  });
  console.log('');
  console.log(`observability: ${messages} events per run, producer and consumer in one process, median of ${rounds} interleaved rounds; ratio to "off"`);
  console.log('(CPU: user + system time of this process, producer and consumer, per message; less disturbed by other load than msg/s)');
  console.log(table(['variant', 'msg/s', 'spread (min-max)', 'ratio', 'µs CPU/msg', 'spread (min-max)', 'cost ratio'], rows, 1));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
