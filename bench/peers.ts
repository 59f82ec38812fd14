/**
 * Side by side (`npm run bench`, or alone: `npm run bench:peers`): the raw ioredis loop, this library, and what a
 * user would pick instead, installed from npm: Nest's built-in Redis transport (pub/sub, nothing stored: the cost
 * of durability) and @de-novo/nestjs-redis-streams (on its own Nest version, bench/peers/de-novo, installed by
 * `npm run bench:peers:install`; its rows are skipped when that folder is not installed).
 *
 * Every implementation runs as a producer process and a consumer process of the same harness
 * (workers/producer-harness, workers/consumer-harness): the same 1 KB JSON payload with a sequence number and a send
 * time, the same sends in flight, the same loss / duplicate bitmap and latency clock. Rounds interleave the
 * implementations in a rotated order; ratios to raw are taken per round, the table shows their median and spread.
 */
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ThrowawayRedis } from '../apps/demo/src/redis-server.process.js';
import type { OrderingBaseSettings } from './ordering.js';
import { EVENT_PATTERN, GROUP, errorText, sleep, type ConsumerResult, type ProducerResult } from './protocol.js';
import { envInt, fmt } from './report-utils.js';
import { PEER_MODES, peersReport, printPeersTable, type PeerMode, type PeerRun, type PeerScenario, type PeersFigures } from './peers-report.js';
import { WorkerProcess, killAllWorkers } from './worker-process.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DE_NOVO_DIR = resolve(REPO, 'bench/peers/de-novo');
const STARTUP_TIMEOUT_MS = 30_000;

export interface PeersSettings {
  readonly rounds: number;
  readonly messages: number;
  readonly rates: number[];
  readonly latencySeconds: number;
  readonly latencyWarmup: number;
  readonly modes: PeerMode[];
}

export function peersSettings(): PeersSettings {
  const rates = (process.env.BENCH_PEERS_RATES || '1000,5000').split(',').map((r) => Number(r.trim()));
  if (rates.some((r) => !Number.isInteger(r) || r < 1)) throw new Error(`BENCH_PEERS_RATES: integers >= 1, comma-separated`);
  const modes = (process.env.BENCH_PEERS_MODES || PEER_MODES.join(',')).split(',').map((m) => m.trim()) as PeerMode[];
  for (const mode of modes) if (!PEER_MODES.includes(mode)) throw new Error(`BENCH_PEERS_MODES: unknown "${mode}" (${PEER_MODES.join(', ')})`);
  return {
    rounds: envInt('BENCH_PEERS_ROUNDS', 3, 0),
    messages: envInt('BENCH_PEERS_MESSAGES', 20_000, 1),
    rates,
    latencySeconds: envInt('BENCH_PEERS_LATENCY_SECONDS', 5, 1),
    latencyWarmup: envInt('BENCH_LATENCY_WARMUP', 1_000, 0),
    modes,
  };
}

function version(dir: string, pkg: string): string | undefined {
  const file = resolve(dir, 'node_modules', pkg, 'package.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version : undefined;
}

/** Versions of what runs; `de-novo` is absent when bench/peers/de-novo is not installed. */
export function peerVersions(): Record<string, string | undefined> {
  return {
    library: (JSON.parse(readFileSync(resolve(REPO, 'libs/redis-streams-enterprise/package.json'), 'utf8')) as { version: string }).version,
    'nest-redis': version(REPO, '@nestjs/microservices'),
    'nest (root)': version(REPO, '@nestjs/core'),
    'de-novo': version(DE_NOVO_DIR, '@de-novo/nestjs-redis-streams'),
    'nest (de-novo folder)': version(DE_NOVO_DIR, '@nestjs/core'),
  };
}

/** Worker script of a mode; de-novo runs bench/peers/de-novo/*.mjs through workers/peer-module. */
function worker(mode: PeerMode, role: 'consumer' | 'producer'): { script: string; extra: object } {
  if (mode !== 'de-novo') return { script: `${mode}-${role}`, extra: {} };
  return { script: 'peer-module', extra: { peerScript: resolve(DE_NOVO_DIR, `${role}.mjs`) } };
}

/** Stream or channel names of one run: raw and library use the library's key, the peers use the pattern itself. */
function names(mode: PeerMode, prefix: string): { pattern: string; stream: string } {
  if (mode === 'raw' || mode === 'library') return { pattern: EVENT_PATTERN, stream: `${prefix}:{${EVENT_PATTERN}}` };
  return { pattern: `${prefix}:${EVENT_PATTERN}`, stream: `${prefix}:${EVENT_PATTERN}` };
}

async function runOne(url: string, admin: Redis, base: OrderingBaseSettings, s: PeersSettings, mode: PeerMode, scenario: PeerScenario, prefix: string): Promise<PeerRun> {
  const count = scenario.kind === 'latency' ? scenario.rate * s.latencySeconds : s.messages;
  const expectedSeconds = scenario.kind === 'latency' ? s.latencySeconds : count / 1_000;
  const { pattern, stream } = names(mode, prefix);
  const common = { mode, redisUrl: url, keyPrefix: prefix, stream, pattern, autoPipelining: base.autoPipelining };
  const c = worker(mode, 'consumer');
  const consumer = new WorkerProcess(`${mode} consumer`, c.script, {
    ...common,
    ...c.extra,
    scenario: scenario.kind === 'backlog' ? 'drain' : scenario.kind,
    expected: count,
    batchSize: base.batchSize,
    concurrency: base.concurrency,
    blockMs: base.blockMs,
    latencyWarmup: s.latencyWarmup,
    memorySampleMs: base.memorySampleMs,
  });
  const listen = async () => {
    consumer.post({ type: 'start' });
    await consumer.waitFor('listening', STARTUP_TIMEOUT_MS);
  };
  try {
    await consumer.waitFor('initialized', STARTUP_TIMEOUT_MS);
    // backlog: the consumer group exists (a consumer ran before) but no consumer reads while the producer sends.
    // (The raw worker creates its group when it starts, before 'initialized'.)
    if (scenario.kind === 'backlog' && mode !== 'nest-redis') {
      await admin.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM').catch((error: Error) => {
        if (!error.message.startsWith('BUSYGROUP')) throw error;
      });
    }
    if (scenario.kind !== 'backlog') await listen();
    const p = worker(mode, 'producer');
    const producer = new WorkerProcess(`${mode} producer`, p.script, {
      ...common,
      ...p.extra,
      count,
      concurrency: base.producerConcurrency,
      ratePerSecond: scenario.rate,
      payloadBytes: base.payloadBytes,
    });
    await producer.waitFor('initialized', STARTUP_TIMEOUT_MS);
    producer.post({ type: 'start' });
    const produced: ProducerResult = (await producer.waitFor('produced', 30_000 + expectedSeconds * 2_000)).result;
    await producer.finish(10_000);
    if (scenario.kind === 'backlog') await listen();
    consumer.post({ type: 'expect', count: produced.sent });
    // Until every message was handled (and acknowledged), or no progress for stallMs (pub/sub may lose some).
    const until = Date.now() + 30_000 + expectedSeconds * 1_000;
    consumer.lastProgressAt = Date.now();
    while (Date.now() < until && !consumer.has('complete') && Date.now() - consumer.lastProgressAt <= base.stallMs) await sleep(20);
    consumer.post({ type: 'stop' });
    const result: ConsumerResult = (await consumer.waitFor('result', 30_000)).result;
    await consumer.finish(10_000);
    // live: from the first send; backlog: from the moment the consumer starts reading; to the last acknowledgement.
    const from = scenario.kind === 'backlog' ? result.startAt : produced.firstSendAt;
    const complete = Number.isFinite(result.completeAt) && scenario.kind !== 'latency';
    return {
      sent: produced.sent,
      failedSends: produced.failed,
      firstSendError: produced.firstError,
      unique: result.unique,
      duplicates: result.duplicates,
      lost: produced.sent - result.unique,
      throughput: complete ? produced.sent / ((result.completeAt - from) / 1_000) : Number.NaN,
      p50: result.latencyMs?.p50 ?? Number.NaN,
      p99: result.latencyMs?.p99 ?? Number.NaN,
      peakRssMb: result.memory.peakRssMb,
    };
  } finally {
    consumer.kill();
    if (mode !== 'nest-redis') await admin.del(stream).catch(() => undefined);
  }
}

function describe(scenario: PeerScenario, o: PeerRun): string {
  if (o.error) return `FAILED (${o.error})`;
  const head = scenario.kind !== 'latency' ? `${fmt(o.throughput)} msg/s` : `p50 ${o.p50.toFixed(2)} ms, p99 ${o.p99.toFixed(2)} ms`;
  const failed = o.failedSends ? `, ${o.failedSends} sends failed (${o.firstSendError})` : '';
  return `${head}; sent ${o.sent}, lost ${o.lost}, duplicates ${o.duplicates}${failed}; consumer peak rss ${o.peakRssMb.toFixed(0)} MB`;
}

/** The measurement; undefined when BENCH_PEERS_ROUNDS=0. */
export async function runPeersBench(url: string, base: OrderingBaseSettings): Promise<PeersFigures | undefined> {
  const s = peersSettings();
  if (s.rounds === 0) return undefined;
  const versions = peerVersions();
  let modes = s.modes;
  console.log('');
  const missing = modes.includes('de-novo') && !versions['de-novo'];
  if (missing) modes = modes.filter((m) => m !== 'de-novo');
  console.log(`side by side: ${modes.join(', ')} (${s.rounds} interleaved rounds; ratios to raw per round)`);
  if (missing) console.log('  @de-novo/nestjs-redis-streams is not installed: run `npm run bench:peers:install` (needs the npm registry) to add its rows');
  console.log(
    `  versions: library ${versions.library}; Nest Redis transport @nestjs/microservices ${versions['nest-redis']} (Nest ${versions['nest (root)']})` +
      (versions['de-novo'] ? `; @de-novo/nestjs-redis-streams ${versions['de-novo']} (Nest ${versions['nest (de-novo folder)']})` : ''),
  );
  const scenarios: PeerScenario[] = [
    { name: 'live', kind: 'live', rate: 0 },
    ...s.rates.map((rate) => ({ name: `latency@${rate}`, kind: 'latency' as const, rate })),
    { name: 'backlog', kind: 'backlog', rate: 0 },
  ];
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
  const runId = randomBytes(3).toString('hex');
  const runs: Record<string, Partial<Record<PeerMode, PeerRun[]>>> = {};
  try {
    for (let round = 1; round <= s.rounds; round++) {
      const shift = (round - 1) % modes.length;
      const order = [...modes.slice(shift), ...modes.slice(0, shift)];
      for (const [index, scenario] of scenarios.entries()) {
        for (const mode of order) {
          let outcome: PeerRun;
          try {
            outcome = await runOne(url, admin, base, s, mode, scenario, `bench:${runId}:peers:${mode}:${index}:${round}`);
          } catch (error) {
            const nan = Number.NaN;
            outcome = { sent: 0, failedSends: 0, unique: 0, duplicates: 0, lost: 0, throughput: nan, p50: nan, p99: nan, peakRssMb: nan, error: errorText(error) };
          }
          ((runs[scenario.name] ??= {})[mode] ??= []).push(outcome);
          console.log(`  round ${round} ${scenario.name.padEnd(13)} ${mode.padEnd(10)} ${describe(scenario, outcome)}`);
        }
      }
    }
  } finally {
    await admin.quit();
  }
  const { batchSize, concurrency, producerConcurrency, blockMs, payloadBytes, autoPipelining, stallMs, memorySampleMs } = base;
  const settings = { batchSize, concurrency, producerConcurrency, blockMs, payloadBytes, autoPipelining, stallMs, memorySampleMs };
  const figures = peersReport({ settings: { ...s, modes }, base: settings, versions, scenarios, runs });
  printPeersTable(figures);
  return figures;
}

/** `npm run bench:peers`: against its own throw-away redis-server (or BENCH_REDIS_URL); writes bench/results/peers.json. */
async function standalone(): Promise<void> {
  const given = process.env.BENCH_REDIS_URL;
  const own = given ? undefined : await ThrowawayRedis.start();
  const stop = (code: number) => {
    killAllWorkers();
    process.exit(code);
  };
  process.once('SIGINT', () => stop(130));
  process.once('SIGTERM', () => stop(143));
  try {
    const figures = await runPeersBench(given ?? own!.url, {
      batchSize: envInt('BENCH_BATCH_SIZE', 128, 1),
      concurrency: envInt('BENCH_CONCURRENCY', 256, 1),
      producerConcurrency: envInt('BENCH_PRODUCER_CONCURRENCY', 256, 1),
      blockMs: envInt('BENCH_BLOCK_MS', 1_000, 1),
      payloadBytes: envInt('BENCH_PAYLOAD_BYTES', 1_024, 1),
      autoPipelining: process.env.BENCH_AUTOPIPELINING === '1',
      stallMs: envInt('BENCH_STALL_MS', 5_000, 1),
      memorySampleMs: envInt('BENCH_MEMORY_SAMPLE_MS', 100, 1),
    });
    const file = process.env.BENCH_RESULTS_FILE || resolve(REPO, 'bench/results/peers.json');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, peers: figures }, roundNumbers, 2)}\n`);
    console.log(`wrote ${file}`);
    if (figures && !figures.ok) process.exitCode = 1;
  } finally {
    await own?.stop();
  }
}

/** JSON replacer: NaN/Infinity as null, fractions to 3 digits (as run.ts writes latest.json). */
export function roundNumbers(_key: string, v: unknown): unknown {
  return typeof v !== 'number' ? v : !Number.isFinite(v) ? null : Number.isInteger(v) ? v : Math.round(v * 1_000) / 1_000;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  standalone().catch((error: unknown) => {
    console.error(`peers bench failed: ${errorText(error)}`);
    killAllWorkers();
    process.exit(1);
  });
}
