// A workload producer in its own process, on the built library. env: SOAK_NAME, SOAK_INC (incarnation),
// SOAK_PREFIX, SOAK_CONNECTION (JSON), SOAK_TOPOLOGY, SOAK_LEDGER_DIR, SOAK_SEED, SOAK_FEATURES (comma list),
// SOAK_RATE (messages per second per loop, scaled per topic), SOAK_POISON_RATE, SOAK_KEYS (keys of the keyed topic).
// Graceful stop: IPC 'stop' or SIGTERM: no new emit starts, the ones in flight settle, the clients close, exit 0.
import 'reflect-metadata';
import { lastValueFrom } from 'rxjs';
import { timeout } from 'rxjs/operators';
import { RedisStreamsClient } from 'nestjs-redis-streams-enterprise';
import { LedgerWriter } from './ledger.js';
import { Prng } from './prng.js';
import { configFor, TOPIC, type Feature, type SoakMessage } from './workload.js';

const env = process.env;
const name = env.SOAK_NAME as string;
const inc = Number(env.SOAK_INC ?? 0);
const prefix = env.SOAK_PREFIX as string;
const connection = JSON.parse(env.SOAK_CONNECTION as string);
const topology = env.SOAK_TOPOLOGY ?? 'single';
const features = new Set((env.SOAK_FEATURES ?? '').split(',') as Feature[]);
const rate = Number(env.SOAK_RATE ?? 20);
const poisonRate = Number(env.SOAK_POISON_RATE ?? 0.02);
const keys = Number(env.SOAK_KEYS ?? 6);
// Poison choices depend on the seed, the producer and its incarnation only: the same seed poisons the same ids.
const prng = new Prng(`${env.SOAK_SEED}:${name}:${inc}`);
const ledger = new LedgerWriter(env.SOAK_LEDGER_DIR as string, `producer-${name}.${inc}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let stopping = false;
const stopped = new Promise<void>((resolve) => {
  const stop = () => {
    stopping = true;
    resolve();
  };
  process.on('message', (m) => m === 'stop' && stop());
  process.once('SIGTERM', stop);
});

/** Errors after which the entry was certainly not stored (RedisUnavailableError says so); all others are indeterminate. */
const DEFINITE = new Set(['RedisUnavailableError', 'InvalidMessageError', 'PayloadTooLargeError', 'PartitionKeyMissingError', 'InvalidPatternError']);

async function emit(client: RedisStreamsClient, topic: string, message: SoakMessage): Promise<boolean> {
  ledger.write({ t: 'a', topic, id: message.id, key: message.key, seq: message.seq, poison: message.poison || message.invalid || undefined, invalid: message.invalid || undefined, ts: Date.now() });
  try {
    // A guard against an emit that never settles (a bug in itself: counted as indeterminate, reported by its error).
    const entry = await lastValueFrom(client.emit<string>(topic, message).pipe(timeout(30_000)));
    ledger.write({ t: 'ok', id: message.id, entry, ts: Date.now() });
    return true;
  } catch (error) {
    const err = error instanceof Error ? error.name : String(error);
    ledger.write({ t: 'f', id: message.id, err, definite: DEFINITE.has(err), ts: Date.now() });
    return false;
  }
}

const clients: RedisStreamsClient[] = [];
function client(kind: 'plain' | 'keyed' | 'global'): RedisStreamsClient {
  const c = new RedisStreamsClient(configFor(kind, prefix, connection, topology));
  clients.push(c);
  return c;
}

/** Plain events at `rate`/s, up to 32 in flight (not sequential: order is not promised on this topic). */
async function plainLoop(): Promise<void> {
  const c = client('plain');
  const inFlight = new Set<Promise<unknown>>();
  for (let seq = 0; !stopping; seq++) {
    const poison = features.has('poison') && prng.chance(poisonRate);
    const p = emit(c, TOPIC.plain, { id: `${name}.${inc}.pl.${seq}`, seq, poison }).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 32) await Promise.race(inFlight);
    await sleep(1000 / rate);
  }
  await Promise.all(inFlight);
}

/** One sequential emitter per key: the next emit of a key starts after the previous one settled (its order is defined). */
async function keyedLoop(c: RedisStreamsClient, key: string): Promise<void> {
  for (let seq = 0; !stopping; seq++) {
    const ok = await emit(c, TOPIC.keyed, { id: `${key}.${seq}`, key, seq });
    await sleep(ok ? (1000 * keys) / rate : 200);
  }
}

async function globalLoop(): Promise<void> {
  const c = client('global');
  for (let seq = 0; !stopping; seq++) {
    const ok = await emit(c, TOPIC.global, { id: `${name}.${inc}.gl.${seq}`, seq, key: `${name}.${inc}.g` });
    await sleep(ok ? 2000 / rate : 200);
  }
}

/**
 * Schema-checked events: valid ones through a validating client (stamped with the schema version), and at the poison
 * rate an invalid one through a client without validation, as a producer of another team might send it: the consumer
 * must dead-letter it (schema-invalid) and never call its handler.
 */
async function checkedLoop(): Promise<void> {
  const validating = client('plain');
  const base = configFor('plain', prefix, connection, topology);
  const unchecked = new RedisStreamsClient({ ...base, schema: { enabled: false } } as typeof base);
  clients.push(unchecked);
  for (let seq = 0; !stopping; seq++) {
    const invalid = prng.chance(poisonRate);
    const id = `${name}.${inc}.ck.${seq}`;
    const ok = invalid
      ? await emit(unchecked, TOPIC.checked, { id, seq, n: 'not a number', invalid })
      : await emit(validating, TOPIC.checked, { id, seq, n: seq });
    await sleep(ok ? 4000 / rate : 200);
  }
}

async function requestLoop(): Promise<void> {
  const c = client('plain');
  for (let seq = 0; !stopping; seq++) {
    const id = `${name}.${inc}.rq.${seq}`;
    ledger.write({ t: 'rq', id, ts: Date.now() });
    try {
      const reply = await lastValueFrom(c.send<{ id: string; doubled: number }>(TOPIC.rpc, { id, n: seq }).pipe(timeout(30_000)));
      ledger.write({ t: 'rp', id, ok: reply?.id === id && reply.doubled === seq * 2, ts: Date.now() });
    } catch (error) {
      ledger.write({ t: 'rf', id, err: error instanceof Error ? error.name : String(error), ts: Date.now() });
    }
    await sleep(4000 / rate);
  }
}

const loops: Promise<void>[] = [];
if (features.has('plain')) loops.push(plainLoop());
if (features.has('keyed')) {
  const c = client('keyed');
  for (let k = 0; k < keys; k++) loops.push(keyedLoop(c, `${name}.${inc}.k${k}`));
}
if (features.has('global')) loops.push(globalLoop());
if (features.has('requests')) loops.push(requestLoop());
if (features.has('schema')) loops.push(checkedLoop());
process.send?.({ listening: name });

const stats = setInterval(() => process.send?.({ stats: { heapUsed: process.memoryUsage().heapUsed } }), 1_000);
stats.unref();

await stopped;
const t = Date.now();
console.error(`${name}: stopping; waiting for ${loops.length} loops`);
await Promise.all(loops);
console.error(`${name}: loops done after ${Date.now() - t} ms; closing clients`);
// close() must resolve; one that does not (a library bug, see repro/client-close-after-reset.mjs) is recorded for the
// checker instead of hanging the stop, so the rest of the run still drains and gets checked.
await Promise.all(
  clients.map(async (c, i) => {
    const closed = await Promise.race([c.close().then(() => true), sleep(10_000).then(() => false)]);
    if (!closed) ledger.write({ t: 'ch', client: i, ts: Date.now() });
  }),
);
console.error(`${name}: clients closed (or given up on) after ${Date.now() - t} ms`);
ledger.close();
process.exit(0);
