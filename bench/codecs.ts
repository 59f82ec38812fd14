/**
 * Cost of end-to-end encryption and compression (`npm run bench:codecs`): for JSON payloads of about 1 KB, 10 KB and
 * 1 MB, the same producer -> consumer run through the library with each payload codec, in one process:
 *
 *   none        plain JSON in `data` (the baseline of each size)
 *   aes256gcm   encryption.enabled (one key)
 *   gzip, lz4, snappy
 *               compression.codec with thresholdBytes 0 (every payload compressed)
 *   lz4+aes     compression then encryption
 *
 * Each run sends a warm-up batch, then times `messages` from the first emit to the last handled message (producer,
 * Redis and consumer in one process, so each figure includes both sides), then measures the bytes the stream takes
 * in Redis (MEMORY USAGE ... SAMPLES 0, divided by the entries; every run writes its own prefix) and the process's
 * CPU time per message (process.cpuUsage: producer and consumer work, not Redis's; steadier than msg/s on a shared
 * machine, as waiting for a busy CPU does not count). Rounds interleave
 * the variants (rotated order each round); the table shows the median msg/s, the spread (min-max) and each variant's
 * ratio to `none` of the same size in the same run.
 *
 * Payloads: an order document (customer, address, lines with SKU, name, quantity, price), lines added until the JSON
 * reaches the size; ids and numbers vary per line, names come from a small vocabulary, as in real JSON. How well it
 * compresses depends on the data: random bytes would not compress at all.
 *
 * Settings (environment): BENCH_CODECS_ROUNDS (3), BENCH_CODECS_SCALE (1: 3,000 / 1,000 / 30 messages of 1 KB /
 * 10 KB / 1 MB per run), BENCH_CODECS_VARIANTS (all, comma-separated), BENCH_REDIS_URL (default: a throw-away
 * redis-server on a free port).
 */
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Payload } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { randomBytes, randomUUID } from 'node:crypto';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsServer, StreamEvent, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import { ThrowawayRedis } from '../apps/demo/src/redis-server.process.js';
import { envInt, fmt, median, table, unlinkPrefix } from './report-utils.js';

const PATTERN = 'bench.codec';
const IN_FLIGHT = 64;
const KEY = randomBytes(32).toString('base64');

const VARIANTS = ['none', 'aes256gcm', 'gzip', 'lz4', 'snappy', 'lz4+aes'] as const;
type Variant = (typeof VARIANTS)[number];

interface PayloadSize {
  readonly name: string;
  readonly bytes: number;
  readonly messages: number;
  readonly warmup: number;
}

const SIZES: readonly PayloadSize[] = [
  { name: '1 KB', bytes: 1_024, messages: 3_000, warmup: 500 },
  { name: '10 KB', bytes: 10_240, messages: 1_000, warmup: 200 },
  { name: '1 MB', bytes: 1_000_000, messages: 30, warmup: 5 },
];

const WORDS = ['espresso', 'grinder', 'filter', 'kettle', 'mug', 'beans', 'scale', 'tamper', 'milk jug', 'descaler'];

/** An order document of about `bytes` of JSON. */
function documentOf(bytes: number, seq: number): Record<string, unknown> {
  const doc = {
    orderId: randomUUID(),
    customer: { id: `c-${seq % 977}`, email: `buyer${seq % 977}@example.com`, tier: seq % 3 === 0 ? 'gold' : 'standard' },
    address: { street: `${seq % 300} Harbour Road`, city: 'Rotterdam', postcode: `30${seq % 90}AB`, country: 'NL' },
    placedAt: new Date(1_750_000_000_000 + seq * 1_000).toISOString(),
    lines: [] as Record<string, unknown>[],
  };
  let size = JSON.stringify(doc).length;
  for (let i = 0; size < bytes; i++) {
    const line = { sku: `SKU-${(seq * 31 + i * 7) % 5_000}`, name: `${WORDS[i % WORDS.length]} ${WORDS[(i + seq) % WORDS.length]}`, qty: 1 + ((i + seq) % 9), price: Number((3.5 + ((i * 13 + seq) % 400) / 7).toFixed(2)) };
    doc.lines.push(line);
    size += JSON.stringify(line).length + 1;
  }
  return doc;
}

function configOf(variant: Variant, url: string, prefix: string): RedisStreamsEnterpriseConfig {
  const encryption = { enabled: true, keys: [{ id: 'bench', key: KEY }] };
  const codec = variant === 'lz4+aes' ? 'lz4' : variant === 'gzip' || variant === 'lz4' || variant === 'snappy' ? variant : 'none';
  return {
    connection: { url },
    streams: { keyPrefix: prefix, maxPayloadBytes: 4 * 1024 * 1024, claimCheckThresholdBytes: 0 },
    consumer: { group: 'bench', batchSize: 64, concurrency: IN_FLIGHT },
    compression: { codec, thresholdBytes: 0 },
    ...(variant === 'aes256gcm' || variant === 'lz4+aes' ? { encryption } : {}),
  };
}

let handled = 0;

@Controller()
class CodecBenchController {
  @StreamEvent(PATTERN)
  received(@Payload() data: { lines: unknown[] }) {
    if (data.lines.length > 0) handled++;
  }
}

@Module({ controllers: [CodecBenchController] })
class CodecBenchModule {}

async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`codec bench: timed out waiting for ${what}`);
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

interface RunFigures {
  readonly msgPerSec: number;
  readonly bytesPerEntry: number;
  /** CPU time (user + system) of this process per message: producer and consumer side, not Redis. */
  readonly cpuMicrosPerMsg: number;
}

/** One timed run of one variant and size. */
async function run(url: string, admin: Redis, variant: Variant, size: PayloadSize): Promise<RunFigures> {
  const prefix = `bench-codec-${randomUUID().slice(0, 8)}`;
  const config = configOf(variant, url, prefix);
  const app = await NestFactory.createMicroservice(CodecBenchModule, { strategy: new RedisStreamsServer(config), logger: false });
  await app.listen();
  const client = new RedisStreamsClient(config);
  // Documents are built before the clock starts: the figure is the codec's cost, not JSON generation.
  const docs = Array.from({ length: Math.max(size.messages, size.warmup) }, (_, i) => documentOf(size.bytes, i));
  const emit = (seq: number) => lastValueFrom(client.emit(PATTERN, docs[seq % docs.length]));
  try {
    handled = 0;
    await sendAll(size.warmup, emit);
    await waitUntil(() => handled === size.warmup, 120_000, 'the warm-up');
    await admin.xtrim(`${prefix}:{${PATTERN}}`, 'MAXLEN', 0); // the stream then holds the timed entries only
    handled = 0;
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    await sendAll(size.messages, emit);
    await waitUntil(() => handled >= size.messages, 600_000, `${size.messages} handled messages`);
    const seconds = (performance.now() - started) / 1_000;
    const cpu = process.cpuUsage(cpuBefore);
    const stream = `${prefix}:{${PATTERN}}`;
    const bytes = Number(await admin.call('MEMORY', 'USAGE', stream, 'SAMPLES', '0'));
    const entries = await admin.xlen(stream);
    return { msgPerSec: size.messages / seconds, bytesPerEntry: bytes / entries, cpuMicrosPerMsg: (cpu.user + cpu.system) / size.messages };
  } finally {
    await client.close();
    await app.close();
    await unlinkPrefix(admin, prefix);
  }
}

function variantsFromEnv(): Variant[] {
  const raw = process.env.BENCH_CODECS_VARIANTS;
  if (!raw) return [...VARIANTS];
  const list = raw.split(',').map((v) => v.trim()) as Variant[];
  for (const v of list) if (!VARIANTS.includes(v)) throw new Error(`BENCH_CODECS_VARIANTS: unknown variant "${v}" (${VARIANTS.join(', ')})`);
  return list.includes('none') ? list : ['none', ...list];
}

async function main(): Promise<void> {
  const rounds = envInt('BENCH_CODECS_ROUNDS', 3, 1);
  const scale = envInt('BENCH_CODECS_SCALE', 1, 1);
  const variants = variantsFromEnv();
  const own = process.env.BENCH_REDIS_URL ? undefined : await ThrowawayRedis.start();
  const url = process.env.BENCH_REDIS_URL ?? (own as ThrowawayRedis).url;
  const admin = new Redis(url);
  const results = new Map<string, RunFigures[]>();
  try {
    for (const base of SIZES) {
      const size = { ...base, messages: base.messages * scale };
      for (let round = 0; round < rounds; round++) {
        const order = variants.map((_, i) => variants[(i + round) % variants.length]);
        for (const variant of order) {
          const figures = await run(url, admin, variant, size);
          const key = `${size.name}|${variant}`;
          results.set(key, [...(results.get(key) ?? []), figures]);
          console.log(
            `  ${size.name.padEnd(5)} ${variant.padEnd(9)} round ${round + 1}: ${fmt(figures.msgPerSec)} msg/s, ` +
              `${fmt(figures.bytesPerEntry)} B/entry, ${fmt(figures.cpuMicrosPerMsg)} us CPU/msg`,
          );
        }
      }
    }
  } finally {
    admin.disconnect();
    await own?.stop();
  }
  const rows: string[][] = [];
  for (const size of SIZES) {
    const baseline = results.get(`${size.name}|none`) ?? [];
    const baseRate = median(baseline.map((f) => f.msgPerSec));
    const baseBytes = median(baseline.map((f) => f.bytesPerEntry));
    const baseCpu = median(baseline.map((f) => f.cpuMicrosPerMsg));
    for (const variant of variants) {
      const figures = results.get(`${size.name}|${variant}`) ?? [];
      const rates = figures.map((f) => f.msgPerSec);
      const rate = median(rates);
      const bytes = median(figures.map((f) => f.bytesPerEntry));
      const cpu = median(figures.map((f) => f.cpuMicrosPerMsg));
      const spread = `${fmt(Math.min(...rates))}-${fmt(Math.max(...rates))}`;
      rows.push([size.name, variant, fmt(bytes), (bytes / baseBytes).toFixed(2), fmt(rate), spread, (rate / baseRate).toFixed(2), fmt(cpu), (cpu / baseCpu).toFixed(2)]);
    }
  }
  console.log('');
  console.log(`payload codecs: producer and consumer in one process, median of ${rounds} interleaved rounds; ratios to "none" of the same size`);
  console.log(table(['payload', 'codec', 'bytes/entry in Redis', 'ratio', 'msg/s', 'spread (min-max)', 'ratio', 'CPU us/msg', 'ratio'], rows, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
