/**
 * Many topics: one server registers N patterns (one stream + consumer group each), with the library's defaults
 * (blockMs 2000, reclaimIntervalMs 1000, batchSize 64, concurrency 64).
 *
 * For each N: time to register the handlers and to listen (XGROUP CREATE MKSTREAM per stream), Redis memory per
 * stream (empty, then with one ~100-byte entry each), the cost of idle streams (commands/s, Redis and consumer CPU,
 * bytes/s sent to Redis while nothing is published), emit -> handler latency on one topic among N, and how fast
 * one entry on each of the N streams is drained.
 */
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { BenchRedis, CpuWindow, envInt, lastWarning, fmt, median, rates, runPrefix, sleep, table, topCommands, type ScenarioReport } from './common.js';

const SETTINGS = {
  /** Idle window per size. */
  idleMs: envInt('SCALE_IDLE_MS', 5_000, 500),
  /** Latency samples per size (one topic among N). */
  latencySamples: envInt('SCALE_LATENCY_SAMPLES', 5, 1),
  /** Give up waiting for a drain after this long. */
  stepTimeoutMs: envInt('SCALE_STEP_TIMEOUT_MS', 120_000, 1_000),
  /** Give up waiting for one latency sample after this long (the server may not read at all). */
  deliveryTimeoutMs: envInt('SCALE_DELIVERY_TIMEOUT_MS', 15_000, 100),
};

const pattern = (i: number) => `scale.topic.${i}`;

interface TopicsFigures {
  topics: number;
  registerMs: number;
  listenMs: number;
  bytesPerEmptyStream: number;
  bytesPerStreamWithOneEntry: number;
  idleCommandsPerSecond: number;
  idleInputKBps: number;
  idleRedisCpuPercent: number;
  idleConsumerCpuPercent: number;
  idleTopCommands: string;
  latencyP50Ms: number;
  drainOnePerStreamMs: number;
  drainRatePerSecond: number;
  /** Set when the server delivered nothing at this size. */
  failure?: string;
}

async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}

async function measureSize(redis: BenchRedis, topics: number): Promise<TopicsFigures> {
  const prefix = runPrefix(`topics${topics}`);
  const config = {
    connection: { url: redis.url },
    streams: { keyPrefix: prefix },
    consumer: { group: 'scale', consumerName: 'scale-topics' },
  };
  const memoryBefore = await redis.usedMemory();
  const server = new RedisStreamsServer(config);
  const client = new RedisStreamsClient(config);
  let handled = 0;
  const handledAt = new Map<number, number>();
  try {
    const registerStarted = performance.now();
    for (let i = 0; i < topics; i++) {
      server.addHandler(
        pattern(i),
        async (data: { i: number; k?: number }) => {
          handled++;
          if (data.k !== undefined) handledAt.set(data.k, performance.now());
        },
        true,
      );
    }
    const registerMs = performance.now() - registerStarted;
    const listenStarted = performance.now();
    await new Promise<void>((resolve, reject) => server.listen((error?: unknown) => (error ? reject(error) : resolve())));
    const listenMs = performance.now() - listenStarted;
    const bytesPerEmptyStream = ((await redis.usedMemory()) - memoryBefore) / topics;

    // Idle: nothing is published. Whatever Redis and this process do now is the cost of N idle streams.
    await sleep(1_000); // past start-up work (the first reclaim pass)
    const from = await redis.counters();
    const callsFrom = await redis.commandCalls();
    const cpu = new CpuWindow();
    await sleep(SETTINGS.idleMs);
    const to = await redis.counters();
    const idle = rates(from, to);
    const idleConsumerCpuPercent = cpu.percent();
    const idleTopCommands = topCommands(callsFrom, await redis.commandCalls(), (to.at - from.at) / 1_000);

    // Latency of one topic among N: emit, wait for the handler.
    await client.connect();
    const latencies: number[] = [];
    let failure: string | undefined;
    try {
      for (let k = 0; k < SETTINGS.latencySamples; k++) {
        const sent = performance.now();
        await lastValueFrom(client.emit(pattern(topics - 1 - k), { i: topics - 1 - k, k }));
        await waitUntil(() => handledAt.has(k), SETTINGS.deliveryTimeoutMs, `latency sample ${k}`);
        latencies.push(handledAt.get(k)! - sent);
      }
    } catch (error) {
      failure = `no delivery: ${error instanceof Error ? error.message : String(error)}; consumer said: ${lastWarning() ?? 'nothing'}`;
    }

    // One ~100-byte entry on every stream (pipelined XADD in the library's wire format), then drained by the server.
    const before = handled;
    const drainStarted = performance.now();
    const body = JSON.stringify({ i: 0, pad: 'x'.repeat(80) });
    for (let i = 0; i < topics; i += 1_000) {
      const pipeline = redis.admin.pipeline();
      for (let j = i; j < Math.min(topics, i + 1_000); j++) {
        pipeline.xadd(`${prefix}:{${pattern(j)}}`, '*', 'v', '1', 'pattern', pattern(j), 'id', `m${j}`, 'data', body);
      }
      await pipeline.exec();
    }
    let drainOnePerStreamMs = NaN;
    if (!failure) {
      await waitUntil(() => handled - before >= topics, SETTINGS.stepTimeoutMs, `one entry on each of ${topics} streams`);
      drainOnePerStreamMs = performance.now() - drainStarted;
    }
    const bytesPerStreamWithOneEntry = ((await redis.usedMemory()) - memoryBefore) / topics;

    return {
      topics,
      registerMs,
      listenMs,
      bytesPerEmptyStream,
      bytesPerStreamWithOneEntry,
      idleCommandsPerSecond: idle.commandsPerSecond,
      idleInputKBps: idle.inputKBps,
      idleRedisCpuPercent: idle.redisCpuPercent,
      idleConsumerCpuPercent,
      idleTopCommands,
      latencyP50Ms: latencies.length ? median(latencies) : NaN,
      drainOnePerStreamMs,
      drainRatePerSecond: topics / (drainOnePerStreamMs / 1_000),
      failure,
    };
  } finally {
    await client.close();
    await server.close();
    await redis.deletePrefix(prefix);
  }
}

export async function measureTopics(redis: BenchRedis, sizes: number[]): Promise<ScenarioReport> {
  const figures: TopicsFigures[] = [];
  for (const topics of sizes) {
    process.stdout.write(`  topics: ${topics.toLocaleString('en-US')} ...`);
    const started = Date.now();
    figures.push(await measureSize(redis, topics));
    process.stdout.write(` ${((Date.now() - started) / 1_000).toFixed(1)} s\n`);
  }
  const rows = figures.map((f) => [
    fmt(f.topics),
    fmt(f.registerMs),
    fmt(f.listenMs),
    fmt(f.bytesPerEmptyStream),
    fmt(f.bytesPerStreamWithOneEntry),
    fmt(f.idleCommandsPerSecond),
    fmt(f.idleInputKBps),
    fmt(f.idleRedisCpuPercent),
    fmt(f.idleConsumerCpuPercent),
    fmt(f.latencyP50Ms, 1),
    fmt(f.drainRatePerSecond),
  ]);
  return {
    name: 'many topics (one server, one stream + group per pattern, library defaults)',
    table: table(
      [
        'topics',
        'register ms',
        'listen ms',
        'Redis B/stream (empty)',
        'B/stream (1 entry)',
        'idle cmd/s',
        'idle KB/s in',
        'idle Redis CPU %',
        'idle consumer CPU %',
        'emit->handler p50 ms',
        'drain 1/stream msg/s',
      ],
      rows,
    ),
    notes: [
      ...figures.map((f) => `idle commands at ${fmt(f.topics)} topics: ${f.idleTopCommands}`),
      ...figures.filter((f) => f.failure).map((f) => `at ${fmt(f.topics)} topics: ${f.failure}`),
      'listen = XGROUP CREATE MKSTREAM per stream, one round trip each.',
      'idle = nothing published for SCALE_IDLE_MS; cmd/s and CPU come from the reclaimer (two scripts per stream per pass) and from the one blocking XREADGROUP that names every stream (re-sent every blockMs).',
    ],
    figures,
  };
}
