/**
 * `npm run bench`: nestjs-redis-streams-enterprise against a raw ioredis XADD / XREADGROUP / XACK loop, in one run.
 *
 * Scenarios (each for the raw loop and for the library, producer and consumer in separate processes):
 *   live     N messages emitted with a bounded number in flight while the consumer reads; messages/s from the
 *            producer's first send to the consumer's last acknowledged message.
 *   drain    N entries pre-filled, then the consumer starts; messages/s from start of reading to last ack.
 *            The consumer samples its own rss/heapUsed every 100 ms (peaks reported).
 *   latency  a fixed rate (1,000 msg/s) for a few seconds; p50/p99 of handler time minus send time.
 * Lost (sent, never received) and duplicated messages are counted everywhere.
 * Then replay, schema (schema.ts), ordering (ordering.ts), every feature at once (all-features.ts) and side by side
 * with Nest's Redis transport and @de-novo/nestjs-redis-streams (peers.ts).
 *
 * Settings (environment): see SETTINGS below and bench/README.md.
 */
import { Redis } from 'ioredis';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DRAIN_PATTERN,
  EVENT_PATTERN,
  GROUP,
  errorText,
  libraryFields,
  makePad,
  sleep,
  wallNow,
  type ConsumerMode,
  type ConsumerParams,
  type ConsumerResult,
  type GcStats,
  type MemoryPeaks,
  type ProducerParams,
  type ProducerResult,
  type ScenarioKind,
} from './protocol.js';
// One throw-away redis-server implementation for the demo and the benchmark.
import { ThrowawayRedis } from '../apps/demo/src/redis-server.process.js';
import { measureReplay, type ReplayFigures } from './replay.js';
import { runSchemaBench } from './schema.js';
import { runOrderingBench } from './ordering.js';
import { runAllFeaturesBench } from './all-features.js';
import { runPeersBench } from './peers.js';
import { runPerPartitionBench } from './per-partition.js';
import { printTargets, type DrainMemory } from './targets.js';
import { ConsumerOptions } from 'nestjs-redis-streams-enterprise';
import { WorkerProcess, killAllWorkers } from './worker-process.js';

function envInt(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min} (got "${raw}")`);
  return value;
}

function envList<T extends string>(name: string, allowed: readonly T[]): T[] {
  const raw = process.env[name];
  if (!raw) return [...allowed];
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new Error(`${name}: unknown "${item}" (allowed: ${allowed.join(', ')})`);
  }
  return items as T[];
}

/** The library's own defaults: the bench measures what a user gets without tuning. */
const LIBRARY_DEFAULTS = new ConsumerOptions();

const SETTINGS = {
  /** Messages per live-throughput run. */
  liveMessages: envInt('BENCH_MESSAGES', 50_000),
  /** Entries pre-filled per drain run. */
  drainMessages: envInt('BENCH_DRAIN_MESSAGES', 100_000),
  /** Runs per throughput scenario (the table shows the median). */
  runs: envInt('BENCH_RUNS', 3),
  latencyRate: envInt('BENCH_LATENCY_RATE', 1_000),
  latencySeconds: envInt('BENCH_LATENCY_SECONDS', 10),
  /** Latency samples of the first messages (JIT warm-up) are dropped. */
  latencyWarmup: envInt('BENCH_LATENCY_WARMUP', 1_000, 0),
  /** XREADGROUP COUNT of both consumers (library: consumer.batchSize); default: the library's default. */
  batchSize: envInt('BENCH_BATCH_SIZE', LIBRARY_DEFAULTS.batchSize),
  /** Library consumer.concurrency (entries in handlers at once); default: the library's default. */
  concurrency: envInt('BENCH_CONCURRENCY', LIBRARY_DEFAULTS.concurrency),
  /** Sends in flight at once, raw XADD and library emit alike. */
  producerConcurrency: envInt('BENCH_PRODUCER_CONCURRENCY', 256),
  blockMs: envInt('BENCH_BLOCK_MS', 1_000),
  payloadBytes: envInt('BENCH_PAYLOAD_BYTES', 1_024),
  /** ioredis enableAutoPipelining on every connection of both raw and library workers. */
  autoPipelining: process.env.BENCH_AUTOPIPELINING === '1',
  memorySampleMs: envInt('BENCH_MEMORY_SAMPLE_MS', 100),
  /** A consumer that makes no progress for this long after the producer finished is given up on (lost messages). */
  stallMs: envInt('BENCH_STALL_MS', 5_000),
  /** The whole run is aborted after this. */
  maxSeconds: envInt('BENCH_MAX_SECONDS', 900),
  scenarios: envList<ScenarioKind>('BENCH_SCENARIOS', ['live', 'burst', 'drain', 'latency']),
  /** Messages for the replay measurement (0 skips it). */
  replayMessages: envInt('BENCH_REPLAY_MESSAGES', 100_000, 0),
  modes: envList<ConsumerMode>('BENCH_MODES', ['raw', 'library']),
  /** Directory for V8 CPU profiles of the workers' measured windows (node:inspector); unset = no profiling. */
  cpuProfileDir: process.env.BENCH_CPU_PROF || undefined,
  redisUrl: process.env.BENCH_REDIS_URL || undefined,
  resultsFile:
    process.env.BENCH_RESULTS_FILE || resolve(dirname(fileURLToPath(import.meta.url)), '../../bench/results/latest.json'),
};

const STARTUP_TIMEOUT_MS = 30_000;
const runId = randomBytes(3).toString('hex');

interface RunOutcome {
  readonly value: number;
  readonly sent: number;
  readonly unique: number;
  readonly received: number;
  readonly duplicates: number;
  readonly lost: number;
  readonly pendingAfter: number | null;
  readonly elapsedMs: number;
  readonly producerRate?: number;
  readonly latencyMs?: ConsumerResult['latencyMs'];
  readonly memory: MemoryPeaks;
  /** GC pauses in the consumer / producer process during the measured window. */
  readonly consumerGc?: GcStats;
  /** Consumer process CPU time per message handled, µs (steadier than msg/s on a shared machine). */
  readonly consumerCpuUs?: number;
  readonly producerGc?: GcStats;
  readonly error?: string;
}

type Outcomes = Record<ConsumerMode, RunOutcome[]>;

let admin: Redis;

function keyPrefix(scenario: ScenarioKind, mode: ConsumerMode, run: number): string {
  return `bench:${runId}:${scenario}:${mode}:${run}`;
}

/** The library's stream key of a pattern (connection/stream-keys.ts: `<prefix>:{<pattern>}` for readable patterns). */
function streamKey(prefix: string, pattern: string): string {
  return `${prefix}:{${pattern}}`;
}

/** Where a worker writes the CPU profile of its measured window, when BENCH_CPU_PROF names a directory. */
function profilePath(label: string): string | undefined {
  if (!SETTINGS.cpuProfileDir) return undefined;
  mkdirSync(SETTINGS.cpuProfileDir, { recursive: true });
  return resolve(SETTINGS.cpuProfileDir, `${label}.cpuprofile`);
}

async function pendingCount(stream: string): Promise<number | null> {
  try {
    const summary = (await admin.xpending(stream, GROUP)) as unknown[];
    return Number(summary[0] ?? 0);
  } catch {
    return null; // no stream or no group: nothing was ever read
  }
}

function consumerParams(mode: ConsumerMode, scenario: ScenarioKind, prefix: string, pattern: string, expected: number): ConsumerParams {
  return {
    mode,
    scenario,
    redisUrl: currentRedisUrl,
    keyPrefix: prefix,
    stream: streamKey(prefix, pattern),
    pattern,
    expected,
    batchSize: SETTINGS.batchSize,
    concurrency: SETTINGS.concurrency,
    blockMs: SETTINGS.blockMs,
    autoPipelining: SETTINGS.autoPipelining,
    latencyWarmup: SETTINGS.latencyWarmup,
    memorySampleMs: SETTINGS.memorySampleMs,
    cpuProfilePath: profilePath(`${scenario}-${mode}-${prefix.split(':').pop()}-consumer`),
  };
}

/** Starts a consumer worker and lets it begin reading; returns once it reads. */
async function startConsumer(params: ConsumerParams): Promise<WorkerProcess> {
  const consumer = new WorkerProcess(`${params.mode} consumer`, `${params.mode}-consumer`, params);
  await consumer.waitFor('initialized', STARTUP_TIMEOUT_MS);
  consumer.post({ type: 'start' });
  const listening = await consumer.waitFor('listening', STARTUP_TIMEOUT_MS);
  if (listening.streams && !(listening.streams.length === 1 && listening.streams[0] === params.stream)) {
    throw new Error(`library consumer reads ${JSON.stringify(listening.streams)}, the benchmark wrote ${params.stream}`);
  }
  return consumer;
}

/** Waits for 'complete'; gives up when the consumer stalls for stallMs or the deadline passes. */
async function waitForCompletion(consumer: WorkerProcess, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  consumer.lastProgressAt = Date.now();
  while (Date.now() < until && !consumer.has('complete')) {
    if (Date.now() - consumer.lastProgressAt > SETTINGS.stallMs) return;
    await sleep(20);
  }
}

async function stopConsumer(consumer: WorkerProcess): Promise<ConsumerResult> {
  consumer.post({ type: 'stop' });
  const { result } = await consumer.waitFor('result', 30_000);
  await consumer.finish(10_000);
  return result;
}

async function produce(params: ProducerParams, label: string, timeoutMs: number): Promise<{ result: ProducerResult; worker: WorkerProcess }> {
  const worker = new WorkerProcess(`${params.mode} producer`, `${params.mode}-producer`, { ...params, cpuProfilePath: profilePath(`${label}-producer`) });
  await worker.waitFor('initialized', STARTUP_TIMEOUT_MS);
  worker.post({ type: 'start' });
  const { result } = await worker.waitFor('produced', timeoutMs);
  await worker.finish(10_000);
  if (result.firstError) console.error(`  ${params.mode} producer: ${result.failed} sends failed, first: ${result.firstError}`);
  return { result, worker };
}

/** Live throughput and fixed-rate latency: consumer reading, producer sending. */
async function runLiveOrLatency(scenario: 'live' | 'burst' | 'latency', mode: ConsumerMode, run: number): Promise<RunOutcome> {
  const prefix = keyPrefix(scenario, mode, run);
  const paced = scenario === 'latency';
  const count = paced ? SETTINGS.latencyRate * SETTINGS.latencySeconds : SETTINGS.liveMessages;
  const cParams = consumerParams(mode, scenario, prefix, EVENT_PATTERN, count);
  const label = `${scenario}-${mode}-${run}`;
  const consumer = await startConsumer(cParams);
  try {
    const expectedSeconds = paced ? SETTINGS.latencySeconds : count / 2_000;
    const { result: produced } = await produce(
      {
        mode,
        redisUrl: currentRedisUrl,
        keyPrefix: prefix,
        stream: cParams.stream,
        pattern: EVENT_PATTERN,
        count,
        concurrency: scenario === 'burst' ? count : SETTINGS.producerConcurrency,
        ratePerSecond: paced ? SETTINGS.latencyRate : 0,
        payloadBytes: SETTINGS.payloadBytes,
        autoPipelining: SETTINGS.autoPipelining,
      },
      label,
      30_000 + expectedSeconds * 2_000,
    );
    consumer.post({ type: 'expect', count: produced.sent });
    await waitForCompletion(consumer, 30_000 + expectedSeconds * 1_000);
    const result = await stopConsumer(consumer);
    const elapsedMs = result.completeAt - produced.firstSendAt;
    return {
      value: paced ? Number.NaN : produced.sent / (elapsedMs / 1_000),
      sent: produced.sent,
      unique: result.unique,
      received: result.received,
      duplicates: result.duplicates,
      lost: produced.sent - result.unique,
      pendingAfter: await pendingCount(cParams.stream),
      elapsedMs,
      producerRate: produced.sent / ((produced.lastDoneAt - produced.firstSendAt) / 1_000),
      latencyMs: result.latencyMs,
      memory: result.memory,
      consumerGc: result.gc,
      consumerCpuUs: (result.cpuMs * 1_000) / produced.sent,
      producerGc: produced.gc,
    };
  } finally {
    consumer.kill();
    await admin.del(cParams.stream);
  }
}

/** Pipelined XADD of library-format entries (fields v, pattern, id, data). */
async function prefill(stream: string, count: number): Promise<number> {
  const started = wallNow();
  const pad = makePad(SETTINGS.payloadBytes);
  const chunk = 1_000;
  for (let from = 0; from < count; from += chunk) {
    const pipeline = admin.pipeline();
    for (let seq = from; seq < Math.min(count, from + chunk); seq++) {
      const json = JSON.stringify({ seq, sentAt: wallNow(), pad });
      pipeline.xadd(stream, '*', ...libraryFields(DRAIN_PATTERN, randomUUID(), json));
    }
    const replies = (await pipeline.exec()) ?? [];
    const failed = replies.find(([error]) => error);
    if (failed) throw new Error(`pre-fill XADD failed: ${errorText(failed[0])}`);
  }
  return wallNow() - started;
}

async function runDrain(mode: ConsumerMode, run: number): Promise<RunOutcome> {
  const prefix = keyPrefix('drain', mode, run);
  const count = SETTINGS.drainMessages;
  const cParams = consumerParams(mode, 'drain', prefix, DRAIN_PATTERN, count);
  await prefill(cParams.stream, count);
  const consumer = await startConsumer(cParams);
  try {
    await waitForCompletion(consumer, 30_000 + count / 5);
    const result = await stopConsumer(consumer);
    const elapsedMs = result.completeAt - result.startAt;
    return {
      value: count / (elapsedMs / 1_000),
      sent: count,
      unique: result.unique,
      received: result.received,
      duplicates: result.duplicates,
      lost: count - result.unique,
      pendingAfter: await pendingCount(cParams.stream),
      elapsedMs,
      memory: result.memory,
      consumerGc: result.gc,
      consumerCpuUs: (result.cpuMs * 1_000) / count,
    };
  } finally {
    consumer.kill();
    await admin.del(cParams.stream);
  }
}

function failedOutcome(error: unknown): RunOutcome {
  const nan = Number.NaN;
  const memory: MemoryPeaks = {
    baselineRssMb: nan, baselineHeapUsedMb: nan, peakRssMb: nan, peakHeapUsedMb: nan, finalRssMb: nan, finalHeapUsedMb: nan, samples: 0,
  };
  return { value: nan, sent: 0, unique: 0, received: 0, duplicates: 0, lost: 0, pendingAfter: null, elapsedMs: nan, memory, error: errorText(error) };
}

async function measure(scenario: ScenarioKind, runs: number): Promise<Outcomes> {
  const outcomes: Outcomes = { raw: [], library: [] };
  for (let run = 1; run <= runs; run++) {
    // Alternate the order so neither side always runs first (caches, JIT of Redis, background load).
    const order = run % 2 === 1 ? SETTINGS.modes : [...SETTINGS.modes].reverse();
    for (const mode of order) {
      let outcome: RunOutcome;
      try {
        outcome = scenario === 'drain' ? await runDrain(mode, run) : await runLiveOrLatency(scenario, mode, run);
      } catch (error) {
        outcome = failedOutcome(error);
        console.error(`  ${scenario} ${mode} run ${run} failed: ${outcome.error}`);
      }
      outcomes[mode].push(outcome);
      console.log(`  ${scenario.padEnd(7)} ${mode.padEnd(7)} run ${run}: ${describe(scenario, outcome)}`);
    }
  }
  return outcomes;
}

function describe(scenario: ScenarioKind, o: RunOutcome): string {
  if (o.error) return `FAILED (${o.error})`;
  const gc = (g: GcStats | undefined) => (g ? `${fmt(g.totalMs, 0)} ms/${g.majorCount} major` : 'n/a');
  const integrity =
    `lost ${o.lost}, duplicates ${o.duplicates}, pending after ${o.pendingAfter ?? '-'}; consumer CPU ${fmt(o.consumerCpuUs, 1)} µs/msg; GC consumer ${gc(o.consumerGc)}` +
    (o.producerGc ? `, producer ${gc(o.producerGc)}` : '');
  if (scenario === 'latency') {
    return `p50 ${fmt(o.latencyMs?.p50, 2)} ms, p99 ${fmt(o.latencyMs?.p99, 2)} ms, max ${fmt(o.latencyMs?.max, 1)} ms; ${integrity}`;
  }
  const extra = o.producerRate ? `, producer alone ${fmt(o.producerRate, 0)} msg/s` : '';
  return `${fmt(o.value, 0)} msg/s (${o.sent} in ${fmt(o.elapsedMs, 0)} ms${extra}); peak rss ${fmt(o.memory.peakRssMb, 0)} MB, heap ${fmt(o.memory.peakHeapUsedMb, 0)} MB; ${integrity}`;
}

function median(values: number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = Math.floor(finite.length / 2);
  return finite.length % 2 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
}

function fmt(value: number | undefined, digits: number): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(header: string[], rows: string[][], rightAlignFrom = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i >= rightAlignFrom ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

interface ScenarioFigure {
  name: string;
  unit: string;
  raw: number;
  library: number;
  ratio: number;
  /** What the ratio library/raw must satisfy, e.g. ">= 0.70"; absent for informational rows. */
  target?: string;
  pass?: boolean;
  higherIsBetter: boolean;
  runs: { raw: number[]; library: number[] };
}

function figure(
  name: string,
  unit: string,
  outcomes: Outcomes,
  pick: (o: RunOutcome) => number | undefined,
  target?: { op: '>=' | '<='; value: number },
  higherIsBetter = true,
): ScenarioFigure {
  const runs = { raw: outcomes.raw.map((o) => pick(o) ?? Number.NaN), library: outcomes.library.map((o) => pick(o) ?? Number.NaN) };
  const raw = median(runs.raw);
  const library = median(runs.library);
  const ratio = library / raw;
  const pass = target ? (target.op === '>=' ? ratio >= target.value : ratio <= target.value) : undefined;
  return {
    name,
    unit,
    raw,
    library,
    ratio,
    target: target ? `${target.op} ${target.value.toFixed(2)}` : undefined,
    pass: target && Number.isFinite(ratio) ? pass : target ? false : undefined,
    higherIsBetter,
    runs,
  };
}

function peakMemory(outcomes: RunOutcome[]): MemoryPeaks | undefined {
  const ok = outcomes.filter((o) => !o.error);
  if (ok.length === 0) return undefined;
  const max = (f: (m: MemoryPeaks) => number) => Math.max(...ok.map((o) => f(o.memory)));
  return {
    baselineRssMb: max((m) => m.baselineRssMb),
    baselineHeapUsedMb: max((m) => m.baselineHeapUsedMb),
    peakRssMb: max((m) => m.peakRssMb),
    peakHeapUsedMb: max((m) => m.peakHeapUsedMb),
    finalRssMb: max((m) => m.finalRssMb),
    finalHeapUsedMb: max((m) => m.finalHeapUsedMb),
    samples: ok.reduce((n, o) => n + o.memory.samples, 0),
  };
}

let currentRedisUrl = '';
let ownRedis: ThrowawayRedis | undefined;

function abort(reason: string, code: number): never {
  console.error(reason);
  killAllWorkers();
  // ThrowawayRedis kills its server on process exit.
  process.exit(code);
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const guard = setTimeout(() => abort(`bench: aborted after BENCH_MAX_SECONDS=${SETTINGS.maxSeconds}`, 1), SETTINGS.maxSeconds * 1_000);
  guard.unref();
  process.once('SIGINT', () => abort('bench: interrupted', 130));
  process.once('SIGTERM', () => abort('bench: terminated', 143));

  if (SETTINGS.redisUrl) {
    currentRedisUrl = SETTINGS.redisUrl;
  } else {
    ownRedis = await ThrowawayRedis.start();
    currentRedisUrl = ownRedis.url;
  }
  admin = new Redis(currentRedisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
  const info = await admin.info('server');
  const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  const cpu = cpus();
  const machine = {
    cores: cpu.length,
    cpuModel: cpu[0]?.model ?? 'unknown',
    totalMemoryMb: Math.round(totalmem() / 1024 / 1024),
    loadAverageAtStart: loadavg().map((l) => Number(l.toFixed(2))),
  };
  const live = SETTINGS.liveMessages;
  const drain = SETTINGS.drainMessages;
  console.log('nestjs-redis-streams-enterprise benchmark: library vs raw ioredis loop');
  console.log(
    `machine: ${machine.cores} cores (${machine.cpuModel}), load ${machine.loadAverageAtStart.join(' ')}; node ${process.version}; ` +
      `redis-server ${redisVersion} (${ownRedis ? 'throw-away instance, no persistence' : 'BENCH_REDIS_URL'} ${currentRedisUrl})`,
  );
  console.log(
    `settings: payload ${SETTINGS.payloadBytes} B JSON; batchSize ${SETTINGS.batchSize} (XREADGROUP COUNT, both); library consumer.concurrency ` +
      `${SETTINGS.concurrency}; producer sends in flight ${SETTINGS.producerConcurrency} (both); ioredis enableAutoPipelining ` +
      `${SETTINGS.autoPipelining ? 'ON for raw and library connections' : 'off'}; BLOCK ${SETTINGS.blockMs} ms; ${SETTINGS.runs} runs per ` +
      `throughput scenario (median shown)`,
  );
  console.log('');

  const results: Partial<Record<ScenarioKind, Outcomes>> = {};
  for (const scenario of SETTINGS.scenarios) {
    results[scenario] = await measure(scenario, scenario === 'latency' ? 1 : SETTINGS.runs);
  }

  const figures: ScenarioFigure[] = [];
  if (results.live) {
    figures.push(figure(`live throughput, emit -> handler -> ack (${live.toLocaleString('en-US')} msgs)`, 'msg/s', results.live, (o) => o.value, { op: '>=', value: 0.85 }));
    figures.push(figure('  producer alone during live run (info)', 'msg/s', results.live, (o) => o.producerRate));
  }
  if (results.burst) {
    figures.push(figure(`live, every emit fired at once, none awaited (${live.toLocaleString('en-US')} msgs)`, 'msg/s', results.burst, (o) => o.value, { op: '>=', value: 0.85 }));
    figures.push(figure('  producer alone during that run (info)', 'msg/s', results.burst, (o) => o.producerRate));
  }
  if (results.drain) {
    figures.push(figure(`drain throughput, pre-filled backlog (${drain.toLocaleString('en-US')} msgs)`, 'msg/s', results.drain, (o) => o.value, { op: '>=', value: 0.85 }));
    figures.push(figure('  consumer CPU per message while draining (info)', 'µs', results.drain, (o) => o.consumerCpuUs, undefined, false));
  }
  if (results.latency) {
    const rate = `@ ${SETTINGS.latencyRate.toLocaleString('en-US')} msg/s`;
    figures.push(figure(`latency p50 emit -> handler ${rate}`, 'ms', results.latency, (o) => o.latencyMs?.p50, undefined, false));
    figures.push(figure(`latency p99 emit -> handler ${rate}`, 'ms', results.latency, (o) => o.latencyMs?.p99, { op: '<=', value: 2 }, false));
  }

  console.log('');
  console.log(
    table(
      ['scenario', 'unit', 'raw', 'library', 'ratio', 'target', ''],
      figures.map((f) => {
        const digits = f.unit === 'ms' ? 2 : f.unit === 'µs' ? 1 : 0;
        const verdict = f.pass === undefined ? '' : f.pass ? 'ok' : 'MISSED';
        return [f.name, f.unit, fmt(f.raw, digits), fmt(f.library, digits), fmt(f.ratio, 2), f.target ?? '', verdict];
      }),
      2,
    ),
  );

  const integrityRows: string[][] = [];
  let lostTotal = 0;
  let failures = 0;
  for (const scenario of SETTINGS.scenarios) {
    for (const mode of SETTINGS.modes) {
      const list = results[scenario]?.[mode] ?? [];
      const sum = (f: (o: RunOutcome) => number) => list.reduce((n, o) => n + f(o), 0);
      const lost = sum((o) => o.lost);
      lostTotal += lost;
      failures += list.filter((o) => o.error).length;
      const pending = list.map((o) => o.pendingAfter).filter((p): p is number => p !== null);
      integrityRows.push([
        scenario,
        mode,
        String(list.length),
        fmt(sum((o) => o.sent), 0),
        fmt(sum((o) => o.unique), 0),
        String(lost),
        String(sum((o) => o.duplicates)),
        pending.length ? String(pending.reduce((a, b) => a + b, 0)) : '-',
        String(list.filter((o) => o.error).length),
      ]);
    }
  }
  console.log('');
  console.log(table(['integrity', 'mode', 'runs', 'sent', 'received once', 'lost', 'duplicated', 'pending after', 'failed runs'], integrityRows, 2));

  const memory: Record<string, unknown> = {};
  if (results.drain) {
    const raw = peakMemory(results.drain.raw);
    const library = peakMemory(results.drain.library);
    memory.drain = { messages: drain, sampleEveryMs: SETTINGS.memorySampleMs, raw, library };
    const row = (mode: string, m: MemoryPeaks | undefined) => [
      mode,
      fmt(m?.baselineRssMb, 1),
      fmt(m?.peakRssMb, 1),
      fmt(m?.baselineHeapUsedMb, 1),
      fmt(m?.peakHeapUsedMb, 1),
      fmt(m ? m.peakHeapUsedMb - m.baselineHeapUsedMb : undefined, 1),
    ];
    console.log('');
    console.log(`consumer process memory while draining ${drain.toLocaleString('en-US')} entries (worst of ${SETTINGS.runs} runs, sampled every ${SETTINGS.memorySampleMs} ms):`);
    console.log(table(['consumer', 'rss before MB', 'peak rss MB', 'heapUsed before MB', 'peak heapUsed MB', 'heap growth MB'], [row('raw', raw), row('library', library)], 1));
  }
  if (results.live) memory.live = { raw: peakMemory(results.live.raw), library: peakMemory(results.live.library) };

  let replay: ReplayFigures | undefined;
  if (SETTINGS.replayMessages > 0) {
    replay = await measureReplay(currentRedisUrl, SETTINGS.replayMessages, SETTINGS.payloadBytes);
    console.log('');
    console.log(`replay of ${replay.messages.toLocaleString('en-US')} stored messages (read, decoded, dispatched to a handler; in one process):`);
    console.log(
      table(
        ['scenario', 'unit', 'raw', 'library', 'ratio'],
        [
          ['replay throughput (raw: XRANGE + JSON.parse)', 'msg/s', Math.round(replay.rawMsgPerSec).toLocaleString('en-US'), Math.round(replay.libraryMsgPerSec).toLocaleString('en-US'), replay.ratio.toFixed(2)],
          ['library time per 1,000 messages (seed: < 100 ms)', 'ms', '', replay.libraryMsPer1000.toFixed(1), ''],
        ],
        1,
      ),
    );
  }
  const schema = await runSchemaBench(currentRedisUrl);
  const ordering = await runOrderingBench(currentRedisUrl, SETTINGS);
  const allFeatures = await runAllFeaturesBench(currentRedisUrl, SETTINGS);
  const perPartition = await runPerPartitionBench(currentRedisUrl, SETTINGS);
  const peers = await runPeersBench(currentRedisUrl, SETTINGS);
  const targets = printTargets({ scenarios: figures, drainMemory: memory.drain as DrainMemory | undefined, replay, ordering, allFeatures, perPartition, peers });

  const report = {
    date: new Date().toISOString(),
    node: process.version,
    redis: { version: redisVersion, url: ownRedis ? 'throw-away redis-server' : 'BENCH_REDIS_URL' },
    machine,
    settings: { ...SETTINGS, resultsFile: undefined, redisUrl: undefined },
    definitions: {
      live: 'messages sent / (last message handled and XACK answered - first send), producer and consumer in separate processes',
      drain: 'pre-filled entries / (last XACK answered - consumer starts reading)',
      latency: 'consumer handler time - producer send time (same machine clock), fixed-rate producer; warm-up messages dropped',
      ratio: 'library / raw',
      raw: 'ioredis XADD with the same fields; one connection XREADGROUP COUNT batchSize + one multi-id XACK per batch',
    },
    scenarios: figures.map(({ higherIsBetter: _h, ...f }) => f),
    replay,
    schema,
    ordering,
    allFeatures,
    perPartition,
    peers,
    targets,
    memory,
    integrity: Object.fromEntries(
      SETTINGS.scenarios.map((s) => [
        s,
        Object.fromEntries(SETTINGS.modes.map((m) => [m, (results[s]?.[m] ?? []).map(({ memory: _m, ...o }) => o)])),
      ]),
    ),
    durationSeconds: Math.round((Date.now() - startedAt) / 100) / 10,
  };
  mkdirSync(dirname(SETTINGS.resultsFile), { recursive: true });
  writeFileSync(SETTINGS.resultsFile, `${JSON.stringify(report, (_k, v: unknown) =>
    typeof v !== 'number' ? v : !Number.isFinite(v) ? null : Number.isInteger(v) ? v : Math.round(v * 1_000) / 1_000, 2)}\n`);

  await admin.quit();
  await ownRedis?.stop();
  console.log('');
  console.log(`wrote ${SETTINGS.resultsFile}; run took ${report.durationSeconds} s. Figures on a shared 2-core machine are noisy.`);
  if (peers && !peers.ok) process.exitCode = 1;
  if (lostTotal > 0 || failures > 0) {
    console.error(`bench: ${lostTotal} messages lost, ${failures} failed runs`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => abort(`bench failed: ${errorText(error)}`, 1));
