/**
 * Large messages, both ways the library stores them: inline (the JSON in the entry's `data` field;
 * `streams.claimCheckThresholdBytes: 0`) and claim-checked (above the threshold, default 1 MiB, the JSON is SET once
 * in `<stream>:blob:<id>` and the entry only refers to it). Payloads above `streams.maxPayloadBytes` (default 1 MiB;
 * raised here to the largest size measured) are refused.
 *
 * For each mode and size: emit time (until Redis answered), emit -> handler time, the peak RSS of this process above
 * its baseline (producer and consumer live in this one process, so both sides' copies count), Redis memory per
 * stored message (stream + blob) and Redis' used_memory peak while the message travelled (sampled every 5 ms: query
 * buffers and copies made while writing). One message at a time, so the figures are per message, not a batch.
 * Between runs the stream is trimmed and the blob sweep (`server.sweepBlobsNow()`) removes the trimmed blob.
 */
import { lastValueFrom } from 'rxjs';
import { PayloadTooLargeError, RedisStreamsClient, RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { BenchRedis, MB, RssPeak, envInt, fmt, median, runPrefix, sleep, table, type ScenarioReport } from './common.js';

const MODES = { inline: 0, 'claim-check': 1_048_576 } as const;
type Mode = keyof typeof MODES;

const SETTINGS = {
  runs: envInt('SCALE_LARGE_RUNS', 3, 1),
  stepTimeoutMs: envInt('SCALE_STEP_TIMEOUT_MS', 120_000, 1_000),
  /** SCALE_LARGE_MODES=claim-check measures one mode only. */
  modes: (process.env.SCALE_LARGE_MODES || 'inline,claim-check').split(',').map((m) => {
    const mode = m.trim() as Mode;
    if (!(mode in MODES)) throw new Error(`SCALE_LARGE_MODES: unknown "${m}" (allowed: ${Object.keys(MODES).join(', ')})`);
    return mode;
  }),
};

const PATTERN = 'scale.large';
/** The largest maxPayloadBytes the options accept (Redis' own proto-max-bulk-len default is 512 MB too). */
const MAX_PAYLOAD_OPTION = 512 * MB;

interface LargeFigures {
  mode: Mode;
  sizeMb: number;
  emitMs: number;
  emitToHandlerMs: number;
  throughputMBps: number;
  rssPeakAboveBaselineMb: number;
  /** MEMORY USAGE of the stream holding the one message. */
  storedMb: number;
  /** used_memory after the message was handled minus before it was sent: the entry plus client buffers kept. */
  redisUsedMemoryMb: number;
  /** Highest used_memory sampled while the message travelled, minus before it was sent. */
  redisPeakMb: number;
  /** Time of the sweep pass that removed the trimmed message's blob (claim-check only). */
  sweepMs: number | null;
}

/** Samples Redis' used_memory every `everyMs` on the admin connection and keeps the highest value. */
class RedisMemoryPeak {
  peak = 0;
  private running = true;
  private readonly done: Promise<void>;

  constructor(redis: BenchRedis, everyMs = 5) {
    this.done = (async () => {
      while (this.running) {
        this.peak = Math.max(this.peak, await redis.usedMemory());
        await sleep(everyMs);
      }
    })();
  }

  async stop(): Promise<number> {
    this.running = false;
    await this.done;
    return this.peak;
  }
}

const gc = (globalThis as { gc?: () => void }).gc;

async function settleHeap(): Promise<void> {
  gc?.();
  await sleep(50);
  gc?.();
}

export async function measureLargeMessages(redis: BenchRedis, sizesMb: number[]): Promise<ScenarioReport> {
  const maxPayloadBytes = Math.min(MAX_PAYLOAD_OPTION, Math.max(...sizesMb) * MB + 1_024);
  const figures: LargeFigures[] = [];
  let refusal = '';
  for (const mode of SETTINGS.modes) {
    refusal = await measureMode(redis, sizesMb, mode, maxPayloadBytes, figures);
  }
  return {
    name: `large messages (one at a time; streams.maxPayloadBytes = ${fmt(maxPayloadBytes / MB)} MB; batchSize 1; claim-check above ${fmt(MODES['claim-check'] / MB)} MiB)`,
    table: table(
      ['mode', 'payload MB', 'emit ms', 'emit->handler ms', 'MB/s', 'RSS peak +MB (producer+consumer)', 'stored MB', 'Redis used_memory +MB', 'Redis peak +MB', 'sweep ms'],
      figures.map((f) => [
        f.mode,
        fmt(f.sizeMb),
        fmt(f.emitMs),
        fmt(f.emitToHandlerMs),
        fmt(f.throughputMBps),
        fmt(f.rssPeakAboveBaselineMb),
        fmt(f.storedMb, 1),
        fmt(f.redisUsedMemoryMb, 1),
        fmt(f.redisPeakMb, 1),
        f.sweepMs === null ? '-' : fmt(f.sweepMs, 1),
      ]),
    ),
    notes: [
      `a payload of maxPayloadBytes + 1 byte: ${refusal}`,
      `medians of ${SETTINGS.runs} runs; RSS and Redis peak are the max of the runs${gc ? '' : ' (run with --expose-gc for a stable baseline)'}`,
      'payloads at or below the threshold stay inline in claim-check mode too (1 MB here is just below 1 MiB of JSON)',
    ],
    figures,
  };
}

async function measureMode(redis: BenchRedis, sizesMb: number[], mode: Mode, maxPayloadBytes: number, figures: LargeFigures[]): Promise<string> {
  const prefix = runPrefix('large');
  const config = {
    connection: { url: redis.url },
    streams: { keyPrefix: prefix, maxPayloadBytes, claimCheckThresholdBytes: MODES[mode] },
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
  let refusal = '';
  try {
    await new Promise<void>((resolve, reject) => server.listen((error?: unknown) => (error ? reject(error) : resolve())));
    await client.connect();
    let k = 0;
    for (const sizeMb of sizesMb) {
      process.stdout.write(`  large messages (${mode}): ${sizeMb} MB ...`);
      const blob = 'x'.repeat(sizeMb * MB - 20); // {"k":n,"blob":"..."} is then about sizeMb MB of JSON
      const samples: { emitMs: number; totalMs: number; rss: number; stored: number; redisBytes: number; redisPeak: number; sweepMs: number | null }[] = [];
      for (let run = 0; run < SETTINGS.runs; run++) {
        await redis.admin.xtrim(stream, 'MAXLEN', 0);
        const sweepStarted = performance.now();
        const swept = await server.sweepBlobsNow();
        const sweepMs = swept > 0 ? performance.now() - sweepStarted : null;
        if (sweepMs !== null && samples.length > 0) samples[samples.length - 1].sweepMs = sweepMs;
        await settleHeap();
        const redisBefore = await redis.usedMemory();
        const redisPeak = new RedisMemoryPeak(redis);
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
        const redisPeakBytes = (await redisPeak.stop()) - redisBefore;
        const [entry] = await redis.admin.xrange(stream, '-', '+', 'COUNT', 1);
        const blobId = entry?.[1][entry[1].indexOf('blob') + 1];
        const blobKey = entry && entry[1].includes('blob') && blobId ? `${stream}:blob:${blobId}` : undefined;
        const usage = async (key: string) => Number((await redis.admin.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
        const stored = (await usage(stream)) + (blobKey ? await usage(blobKey) : 0);
        samples.push({ emitMs, totalMs, rss, stored, redisBytes: (await redis.usedMemory()) - redisBefore, redisPeak: redisPeakBytes, sweepMs: null });
      }
      // The last run's blob: trimmed and swept like the others.
      await redis.admin.xtrim(stream, 'MAXLEN', 0);
      const sweepStarted = performance.now();
      if ((await server.sweepBlobsNow()) > 0) samples[samples.length - 1].sweepMs = performance.now() - sweepStarted;
      const totalMs = median(samples.map((s) => s.totalMs));
      const sweeps = samples.map((s) => s.sweepMs).filter((ms): ms is number => ms !== null);
      figures.push({
        mode,
        sizeMb,
        emitMs: median(samples.map((s) => s.emitMs)),
        emitToHandlerMs: totalMs,
        throughputMBps: sizeMb / (totalMs / 1_000),
        rssPeakAboveBaselineMb: Math.max(...samples.map((s) => s.rss)) / MB,
        storedMb: median(samples.map((s) => s.stored)) / MB,
        redisUsedMemoryMb: median(samples.map((s) => s.redisBytes)) / MB,
        redisPeakMb: Math.max(...samples.map((s) => s.redisPeak)) / MB,
        sweepMs: sweeps.length > 0 ? median(sweeps) : null,
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
  return refusal;
}
