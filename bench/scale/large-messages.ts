/**
 * Large messages through the library as it is: one JSON payload per stream entry (`data` field), refused above
 * `streams.maxPayloadBytes` (default 1 MiB; raised here to the largest size measured).
 *
 * For each size: emit time (until XADD answered), emit -> handler time, the peak RSS of this process above its
 * baseline (producer and consumer live in this one process, so both sides' copies count), and Redis memory per
 * stored message. One message at a time, so the figures are per message, not a batch.
 */
import { lastValueFrom } from 'rxjs';
import { PayloadTooLargeError, RedisStreamsClient, RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { BenchRedis, MB, RssPeak, envInt, fmt, median, runPrefix, sleep, table, type ScenarioReport } from './common.js';

const SETTINGS = {
  runs: envInt('SCALE_LARGE_RUNS', 3, 1),
  stepTimeoutMs: envInt('SCALE_STEP_TIMEOUT_MS', 120_000, 1_000),
};

const PATTERN = 'scale.large';
/** The largest maxPayloadBytes the options accept (Redis' own proto-max-bulk-len default is 512 MB too). */
const MAX_PAYLOAD_OPTION = 512 * MB;

interface LargeFigures {
  sizeMb: number;
  emitMs: number;
  emitToHandlerMs: number;
  throughputMBps: number;
  rssPeakAboveBaselineMb: number;
  /** MEMORY USAGE of the stream holding the one message. */
  storedMb: number;
  /** used_memory after the message was handled minus before it was sent: the entry plus client buffers kept. */
  redisUsedMemoryMb: number;
}

const gc = (globalThis as { gc?: () => void }).gc;

async function settleHeap(): Promise<void> {
  gc?.();
  await sleep(50);
  gc?.();
}

export async function measureLargeMessages(redis: BenchRedis, sizesMb: number[]): Promise<ScenarioReport> {
  const prefix = runPrefix('large');
  const maxPayloadBytes = Math.min(MAX_PAYLOAD_OPTION, Math.max(...sizesMb) * MB + 1_024);
  const config = {
    connection: { url: redis.url },
    streams: { keyPrefix: prefix, maxPayloadBytes },
    // One entry at a time: a read of COUNT n large entries holds n of them in memory at once.
    consumer: { group: 'scale', consumerName: 'scale-large', batchSize: 1, concurrency: 1 },
  };
  const server = new RedisStreamsServer(config);
  const client = new RedisStreamsClient(config);
  const stream = `${prefix}:{${PATTERN}}`;
  let lastHandled: { k: number; at: number; length: number } | undefined;
  server.addHandler(
    PATTERN,
    async (data: { k: number; blob: string }) => {
      lastHandled = { k: data.k, at: performance.now(), length: data.blob.length };
    },
    true,
  );
  const figures: LargeFigures[] = [];
  let refusal = '';
  try {
    await new Promise<void>((resolve, reject) => server.listen((error?: unknown) => (error ? reject(error) : resolve())));
    await client.connect();
    let k = 0;
    for (const sizeMb of sizesMb) {
      process.stdout.write(`  large messages: ${sizeMb} MB ...`);
      const blob = 'x'.repeat(sizeMb * MB - 20); // {"k":n,"blob":"..."} is then about sizeMb MB of JSON
      const samples: { emitMs: number; totalMs: number; rss: number; stored: number; redisBytes: number }[] = [];
      for (let run = 0; run < SETTINGS.runs; run++) {
        await redis.admin.xtrim(stream, 'MAXLEN', 0);
        await settleHeap();
        const redisBefore = await redis.usedMemory();
        const baseline = process.memoryUsage.rss();
        const peak = new RssPeak(5);
        const id = k++;
        const started = performance.now();
        await lastValueFrom(client.emit(PATTERN, { k: id, blob }));
        const emitMs = performance.now() - started;
        const deadline = Date.now() + SETTINGS.stepTimeoutMs;
        while (lastHandled?.k !== id) {
          if (Date.now() > deadline) throw new Error(`${sizeMb} MB message not handled within ${SETTINGS.stepTimeoutMs} ms`);
          await sleep(1);
        }
        const totalMs = lastHandled.at - started;
        if (lastHandled.length !== blob.length) throw new Error(`${sizeMb} MB message arrived with ${lastHandled.length} characters`);
        const rss = peak.stop() - baseline;
        const stored = Number(await redis.admin.call('MEMORY', 'USAGE', stream, 'SAMPLES', '0'));
        samples.push({ emitMs, totalMs, rss, stored, redisBytes: (await redis.usedMemory()) - redisBefore });
      }
      const totalMs = median(samples.map((s) => s.totalMs));
      figures.push({
        sizeMb,
        emitMs: median(samples.map((s) => s.emitMs)),
        emitToHandlerMs: totalMs,
        throughputMBps: sizeMb / (totalMs / 1_000),
        rssPeakAboveBaselineMb: Math.max(...samples.map((s) => s.rss)) / MB,
        storedMb: median(samples.map((s) => s.stored)) / MB,
        redisUsedMemoryMb: median(samples.map((s) => s.redisBytes)) / MB,
      });
      process.stdout.write(` ${fmt(totalMs)} ms\n`);
    }
    // Above the limit: refused before anything is sent.
    try {
      await lastValueFrom(client.emit(PATTERN, { k: -1, blob: 'x'.repeat(maxPayloadBytes) }));
      refusal = 'NOT refused';
    } catch (error) {
      refusal = error instanceof PayloadTooLargeError ? `refused with PayloadTooLargeError (${error.message.slice(0, 80)}...)` : String(error);
    }
  } finally {
    await client.close();
    await server.close();
    await redis.deletePrefix(prefix);
  }
  return {
    name: `large messages (one at a time; streams.maxPayloadBytes = ${fmt(maxPayloadBytes / MB)} MB; batchSize 1)`,
    table: table(
      ['payload MB', 'emit (XADD) ms', 'emit->handler ms', 'MB/s', 'RSS peak +MB (producer+consumer)', 'stored MB', 'Redis used_memory +MB'],
      figures.map((f) => [
        fmt(f.sizeMb),
        fmt(f.emitMs),
        fmt(f.emitToHandlerMs),
        fmt(f.throughputMBps),
        fmt(f.rssPeakAboveBaselineMb),
        fmt(f.storedMb, 1),
        fmt(f.redisUsedMemoryMb, 1),
      ]),
    ),
    notes: [`a payload of maxPayloadBytes + 1 byte: ${refusal}`, `medians of ${SETTINGS.runs} runs; RSS is the max of the runs${gc ? '' : ' (run with --expose-gc for a stable baseline)'}`],
    figures,
  };
}
