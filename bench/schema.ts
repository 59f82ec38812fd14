/**
 * Schema validation cost: the same producer -> consumer run three ways through the library, next to a raw ioredis loop.
 *
 *   raw              XADD with bounded sends in flight; one XREADGROUP COUNT 128 + multi-id XACK loop; JSON.parse
 *   library          RedisStreamsClient.emit -> RedisStreamsServer -> a Nest @StreamEvent handler, no schema
 *   schema strict    the same with schema.enabled, validationMode 'strict' and a registered DTO of 10 fields:
 *                    emit validates and stamps each payload, the consumer validates it against the stamped version
 *   + DTO instance   the same, and the handler asks for the DTO (`{ schema: { type } }`): each payload also becomes a
 *                    class instance (plainToInstance) after a validation that fills defaults in
 *
 * Producer and consumer share one process (like the replay measurement), so each figure includes both sides. Each run
 * first sends a warm-up batch (JIT, compiled validators, caches), then times `messages` from the first send to the
 * last handled message. Runs alternate in order; the table shows the median.
 * Settings (environment): BENCH_SCHEMA_MESSAGES (default 50000, 0 skips), BENCH_SCHEMA_RUNS (default 3).
 */
import { Controller, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Payload } from '@nestjs/microservices';
import { IsBoolean, IsEmail, IsIn, IsInt, IsISO8601, IsNumber, IsOptional, IsString, IsUUID, MaxLength, Min } from 'class-validator';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsServer, SchemaManager, StreamEvent, type RedisStreamsEnterpriseConfig } from 'nestjs-redis-streams-enterprise';
import { unlinkPrefix } from './report-utils.js';

const PATTERN = 'bench.order';
const BATCH = 128;
const IN_FLIGHT = 256;
const WARMUP = 2_000;

/** The benchmark's DTO: 10 fields, the usual validators. */
class OrderPlaced {
  @IsUUID() orderId!: string;
  @IsString() @MaxLength(64) customerId!: string;
  @IsEmail() email!: string;
  @IsString() @MaxLength(32) sku!: string;
  @IsInt() @Min(1) quantity!: number;
  @IsNumber() @Min(0) amount!: number;
  @IsIn(['EUR', 'USD', 'GBP']) currency!: string;
  @IsISO8601() placedAt!: string;
  @IsBoolean() express!: boolean;
  @IsOptional() @IsString() @MaxLength(200) note?: string;
}

function order(seq: number): Record<string, unknown> {
  return {
    orderId: randomUUID(),
    customerId: `customer-${seq % 1_000}`,
    email: `buyer${seq % 1_000}@example.com`,
    sku: `SKU-${seq % 97}`,
    quantity: 1 + (seq % 5),
    amount: 19.99 + (seq % 100),
    currency: 'EUR',
    placedAt: new Date(1_750_000_000_000 + seq).toISOString(),
    express: seq % 2 === 0,
    note: 'leave at the door',
  };
}

type Mode = 'raw' | 'library' | 'schema' | 'schema-dto';
const MODES: readonly Mode[] = ['raw', 'library', 'schema', 'schema-dto'];

let handled = 0;
let dtoInstances = 0;

@Controller()
class PlainOrdersController {
  @StreamEvent(PATTERN)
  placed(@Payload() data: { quantity: number }) {
    if (data.quantity > 0) handled++;
  }
}

@Controller()
class DtoOrdersController {
  @StreamEvent(PATTERN, { schema: { type: OrderPlaced } })
  placed(@Payload() data: OrderPlaced) {
    if (data instanceof OrderPlaced) dtoInstances++;
    if (data.quantity > 0) handled++;
  }
}

@Module({ controllers: [PlainOrdersController] })
class PlainBenchModule {}

@Module({ controllers: [DtoOrdersController] })
class DtoBenchModule {}

async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`schema bench: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Sends `count` messages with at most IN_FLIGHT outstanding. */
async function sendAll(count: number, from: number, send: (seq: number) => Promise<unknown>): Promise<void> {
  let next = from;
  const end = from + count;
  const worker = async () => {
    while (next < end) await send(next++);
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, worker));
}

/** Messages per second of one library run. */
async function libraryRun(url: string, mode: Exclude<Mode, 'raw'>, messages: number): Promise<number> {
  const prefix = `bench-schema-${randomUUID().slice(0, 8)}`;
  const config: RedisStreamsEnterpriseConfig = {
    connection: { url },
    streams: { keyPrefix: prefix },
    consumer: { group: 'bench', batchSize: BATCH, concurrency: IN_FLIGHT },
    schema: mode === 'library' ? {} : { enabled: true, validationMode: 'strict' },
  };
  if (mode !== 'library') {
    const schemas = new SchemaManager(config);
    await schemas.registerSchema(PATTERN, OrderPlaced, '1.0.0');
    await schemas.close();
  }
  const server = new RedisStreamsServer(config);
  const module: Type = mode === 'schema-dto' ? DtoBenchModule : PlainBenchModule;
  const app = await NestFactory.createMicroservice(module, { strategy: server, logger: false });
  await app.listen();
  const client = new RedisStreamsClient(config);
  const emit = (seq: number) => lastValueFrom(client.emit(PATTERN, order(seq)));
  try {
    if (mode !== 'library') {
      // Proves validation is on: an invalid payload must be refused at emit.
      const refused = await lastValueFrom(client.emit(PATTERN, { ...order(0), quantity: 0 })).then(() => false, () => true);
      if (!refused) throw new Error('schema bench: an invalid payload was not refused; schema validation is not on');
    }
    handled = 0;
    await sendAll(WARMUP, 0, emit);
    await waitUntil(() => handled === WARMUP, 60_000, 'the warm-up');
    handled = 0;
    dtoInstances = 0;
    const started = performance.now();
    await sendAll(messages, WARMUP, emit);
    await waitUntil(() => handled >= messages, 300_000, `${messages} handled messages`);
    const seconds = (performance.now() - started) / 1_000;
    if (handled !== messages) throw new Error(`schema bench (${mode}): ${handled} handled, expected ${messages}`);
    if (mode === 'schema-dto' && dtoInstances !== messages) throw new Error(`schema bench: ${dtoInstances} DTO instances, expected ${messages}`);
    if (mode !== 'library' && server.getMetrics().schemaInvalid !== 0) throw new Error('schema bench: valid payloads were reported invalid');
    return messages / seconds;
  } finally {
    await client.close();
    await app.close();
    await cleanup(url, prefix);
  }
}

/** Messages per second of the raw ioredis loop: the same payloads, fields and batch size. */
async function rawRun(url: string, messages: number): Promise<number> {
  const prefix = `bench-schema-raw-${randomUUID().slice(0, 8)}`;
  const stream = `${prefix}:{${PATTERN}}`;
  const producer = new Redis(url);
  const consumer = new Redis(url);
  await consumer.xgroup('CREATE', stream, 'bench', '$', 'MKSTREAM');
  let received = 0;
  let reading = true;
  const loop = (async () => {
    while (reading) {
      const reply = (await consumer.xreadgroup('GROUP', 'bench', 'c1', 'COUNT', BATCH, 'BLOCK', 100, 'STREAMS', stream, '>')) as
        | [string, [string, string[]][]][]
        | null;
      const entries = reply?.[0]?.[1] ?? [];
      if (entries.length === 0) continue;
      for (const [, fields] of entries) {
        const data = JSON.parse(fields[fields.indexOf('data') + 1]) as { quantity: number };
        if (data.quantity > 0) received++;
      }
      void consumer.xack(stream, 'bench', ...entries.map(([id]) => id));
    }
  })();
  const send = (seq: number) => producer.xadd(stream, '*', 'v', '1', 'pattern', PATTERN, 'id', randomUUID(), 'data', JSON.stringify(order(seq)));
  try {
    await sendAll(WARMUP, 0, send);
    await waitUntil(() => received === WARMUP, 60_000, 'the raw warm-up');
    received = 0;
    const started = performance.now();
    await sendAll(messages, WARMUP, send);
    await waitUntil(() => received >= messages, 300_000, `${messages} raw messages`);
    return messages / ((performance.now() - started) / 1_000);
  } finally {
    reading = false;
    await loop;
    await producer.del(stream);
    producer.disconnect();
    consumer.disconnect();
  }
}

async function cleanup(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url);
  await unlinkPrefix(redis, prefix);
  redis.disconnect();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Median messages/s per mode and the ratios, as printed and stored in the bench report. */
export interface SchemaBenchFigures {
  readonly messages: number;
  readonly runs: number;
  readonly msgPerSec: Readonly<Record<Mode, number>>;
  /** schema strict / library without schema. */
  readonly schemaToBaseline: number;
  /** schema strict with DTO instances / library without schema. */
  readonly schemaDtoToBaseline: number;
  /** library without schema / raw ioredis. */
  readonly baselineToRaw: number;
}

function envInt(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min} (got "${raw}")`);
  return value;
}

/**
 * Runs the schema validation measurement against the Redis at `url` and prints its table; undefined when
 * BENCH_SCHEMA_MESSAGES is 0.
 */
export async function runSchemaBench(url: string): Promise<SchemaBenchFigures | undefined> {
  const messages = envInt('BENCH_SCHEMA_MESSAGES', 50_000, 0);
  const runs = envInt('BENCH_SCHEMA_RUNS', 3, 1);
  if (messages === 0) return undefined;
  const results: Record<Mode, number[]> = { raw: [], library: [], schema: [], 'schema-dto': [] };
  for (let run = 1; run <= runs; run++) {
    const sequence = run % 2 === 1 ? MODES : [...MODES].reverse();
    for (const mode of sequence) {
      const rate = mode === 'raw' ? await rawRun(url, messages) : await libraryRun(url, mode, messages);
      results[mode].push(rate);
      console.log(`  schema  ${mode.padEnd(10)} run ${run}: ${Math.round(rate).toLocaleString('en-US')} msg/s`);
    }
  }
  const msgPerSec = Object.fromEntries(MODES.map((m) => [m, median(results[m])])) as Record<Mode, number>;
  const figures: SchemaBenchFigures = {
    messages,
    runs,
    msgPerSec,
    schemaToBaseline: msgPerSec.schema / msgPerSec.library,
    schemaDtoToBaseline: msgPerSec['schema-dto'] / msgPerSec.library,
    baselineToRaw: msgPerSec.library / msgPerSec.raw,
  };
  const rows = [
    ['raw ioredis (XADD / XREADGROUP / XACK, JSON.parse)', msgPerSec.raw, ''],
    ['library, no schema (baseline)', msgPerSec.library, `${figures.baselineToRaw.toFixed(2)} of raw`],
    ['library, schema strict (validate on emit and consume)', msgPerSec.schema, `${figures.schemaToBaseline.toFixed(2)} of baseline`],
    ['library, schema strict + DTO instance for the handler', msgPerSec['schema-dto'], `${figures.schemaDtoToBaseline.toFixed(2)} of baseline`],
  ] as const;
  console.log('');
  console.log(`schema validation (${messages.toLocaleString('en-US')} messages of a 10-field DTO, producer and consumer in one process, median of ${runs} runs; seed: 3,000+ msg/s):`);
  const width = Math.max(...rows.map(([name]) => name.length));
  console.log(`  ${'scenario'.padEnd(width)}  ${'msg/s'.padStart(9)}  ratio`);
  for (const [name, rate, ratio] of rows) console.log(`  ${name.padEnd(width)}  ${Math.round(rate).toLocaleString('en-US').padStart(9)}  ${ratio}`);
  return figures;
}
