/**
 * Many partitions: one partitioned topic of P partitions (hash by `key`, per-key ordering) consumed by C consumer
 * processes of one group (default 3), on one Redis server (scenario `partitions`, SCALE_PARTITIONS) or on a fresh
 * local Redis Cluster of SCALE_CLUSTER_MASTERS masters (default 3) per P (scenario `cluster-partitions`,
 * SCALE_CLUSTER_PARTITIONS), where every Redis figure is the sum over the masters. The consumers are forked child
 * processes (this same file, started with SCALE_PARTITIONS_ROLE=consumer), because one of them is SIGKILLed and each
 * one's CPU is measured on its own; the producer is a RedisStreamsClient in this process.
 *
 * For each P (SCALE_PARTITIONS, default 1000):
 *   assign     the C consumers start at once; time until every partition has exactly one owner (the consumers'
 *              views are disjoint and cover all P), balanced within 1, and stays so; checked against the leases in
 *              Redis. Redis commands of that phase.
 *   memory     Redis used_memory per partition once assigned (stream + group + lease + fencing counter; no entries).
 *   idle       nothing published for max(SCALE_IDLE_MS, sessionTimeoutMs) (so 3 heartbeats per consumer): Redis
 *              commands/s, Redis CPU, the consumers' CPU (sum of the processes, % of one core).
 *   one by one SCALE_PARTITIONS_SINGLE_SAMPLES messages (default 200), one at a time while otherwise idle, each awaited
 *              by its handler before the next (random pause of up to 20 ms between them): emit -> handler p50/p99.
 *   latency    SCALE_PARTITIONS_LATENCY_RATE msg/s (default 1000) for 5 s: emit -> handler p50/p99.
 *   throughput SCALE_PARTITIONS_MESSAGES (default 50000) over SCALE_PARTITIONS_KEYS keys (default 10000), 256 emits in
 *              flight: msg/s from the first emit to the last handling, emit -> handler p50/p99 under that load,
 *              commands per message (and, on a Cluster, doorbell rings per message).
 *   close      one consumer close()s: time until the others own every partition, balanced, disjoint.
 *   join       a new consumer starts: time until the C consumers are balanced again.
 *   kill       one consumer is SIGKILLed: time until the others own every partition (needs sessionTimeoutMs).
 *   While close, join and kill happen, SCALE_PARTITIONS_REBALANCE_RATE msg/s (default 200) keep being published.
 * Finally every emitted message must have been handled (nothing lost), and per key the handled n never goes down
 * (order; a message handled again after a SIGKILL, not acknowledged before, is counted as a duplicate).
 *
 * Each handling is reported to this process over IPC before the handler returns (so before its acknowledgement):
 * a SIGKILLed consumer cannot take an acknowledged message's record with it.
 */
import 'reflect-metadata';
import { Logger, type LoggerService } from '@nestjs/common';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { lastValueFrom } from 'rxjs';
import {
  RedisStreamsClient,
  RedisStreamsServer,
  type RedisStreamsContext,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { BenchCluster } from './cluster.js';
import {
  BenchRedis,
  envInt,
  fmt,
  percentile,
  rates,
  runPrefix,
  sleep,
  table,
  topCommands,
  type LibraryConnection,
  type MeasuredRedis,
  type RedisCounters,
  type ScenarioReport,
} from './common.js';

const SETTINGS = {
  consumers: envInt('SCALE_PARTITIONS_CONSUMERS', 3, 2),
  messages: envInt('SCALE_PARTITIONS_MESSAGES', 50_000, 1),
  keys: envInt('SCALE_PARTITIONS_KEYS', 10_000, 1),
  /** partitioning.sessionTimeoutMs (library default 10000): heartbeat every third of it; a SIGKILLed consumer's partitions move after it. */
  sessionTimeoutMs: envInt('SCALE_PARTITIONS_SESSION_MS', 10_000, 300),
  maxConcurrency: envInt('SCALE_PARTITIONS_MAX_CONCURRENCY', 64, 1),
  /** streams.doorbell of producer and consumers (SCALE_DOORBELL=always: the doorbell on a single server too). */
  doorbell: (process.env.SCALE_DOORBELL === 'always' ? 'always' : 'cluster') as 'always' | 'cluster',
  latencyRate: envInt('SCALE_PARTITIONS_LATENCY_RATE', 1_000, 1),
  latencySeconds: envInt('SCALE_PARTITIONS_LATENCY_SECONDS', 5, 1),
  singleSamples: envInt('SCALE_PARTITIONS_SINGLE_SAMPLES', 200, 0),
  singleGapMs: 20,
  /** cluster-partitions: masters of the local cluster. */
  clusterMasters: envInt('SCALE_CLUSTER_MASTERS', 3, 1),
  rebalanceRate: envInt('SCALE_PARTITIONS_REBALANCE_RATE', 200, 0),
  emitWindow: envInt('SCALE_PARTITIONS_EMIT_WINDOW', 256, 1),
  idleMs: envInt('SCALE_IDLE_MS', 5_000, 500),
  stepTimeoutMs: envInt('SCALE_STEP_TIMEOUT_MS', 120_000, 1_000),
  /** A directory: every consumer process writes a V8 CPU profile there when it exits normally (not the SIGKILLed one). */
  cpuProfileDir: process.env.SCALE_PARTITIONS_CPU_PROF || undefined,
  /** 1: print the consumers' shares to stderr whenever they change while waiting for an assignment. */
  trace: process.env.SCALE_PARTITIONS_TRACE === '1',
};

const PATTERN = 'scale.partitioned';
const GROUP = 'scale';
const PAD = 'x'.repeat(64);
/** How often the consumers' views are polled while waiting for an assignment. */
const POLL_MS = 100;
/** An assignment counts once it held for this long (a plan may be undone by the next heartbeat of another member). */
const STABLE_MS = 500;

/** Wall-clock ms with sub-ms resolution, comparable across the processes of this machine. */
const wallNow = () => performance.timeOrigin + performance.now();

function partitionedConfig(connection: LibraryConnection, prefix: string, partitions: number, consumerName?: string): RedisStreamsEnterpriseConfig {
  return {
    connection,
    streams: { keyPrefix: prefix, doorbell: SETTINGS.doorbell },
    consumer: { group: GROUP, ...(consumerName ? { consumerName } : {}) },
    partitioning: {
      enabled: true,
      strategy: 'hash',
      partitionCount: partitions,
      maxPartitions: partitions,
      partitionKey: 'key',
      sessionTimeoutMs: SETTINGS.sessionTimeoutMs,
    },
    ordering: { enabled: true, strategy: 'partition', partitionKey: 'key', maxConcurrency: SETTINGS.maxConcurrency },
  };
}

interface Payload {
  readonly key: string;
  readonly n: number;
  readonly seq: number;
  readonly pad: string;
}

interface ChildParams {
  readonly connection: LibraryConnection;
  readonly prefix: string;
  readonly name: string;
  readonly partitions: number;
}

type ToChild = { type: 'start' } | { type: 'status'; id: number } | { type: 'close' };

interface ChildStatus {
  readonly type: 'status';
  readonly id: number;
  readonly owned: number[];
  /** process.cpuUsage() user + system, µs. */
  readonly cpuMicros: number;
  readonly rssMb: number;
  readonly handled: number;
  readonly acked: number;
}

type FromChild =
  | { type: 'ready' }
  | { type: 'listening'; ms: number }
  /** Flat triples: seq, partition, handled at (wall ms). */
  | { type: 'records'; records: number[] }
  | ChildStatus
  | { type: 'closed'; ms: number }
  | { type: 'error'; message: string };

// ---------------------------------------------------------------------------------------------------------------
// Consumer process
// ---------------------------------------------------------------------------------------------------------------

/** Warnings and errors of the library, each text once, prefixed with the consumer's name. */
class ChildLogger implements LoggerService {
  private readonly seen = new Set<string>();
  constructor(private readonly name: string) {}
  log(): void {}
  debug(): void {}
  verbose(): void {}
  warn(message: unknown): void {
    this.keep('WARN', message);
  }
  error(message: unknown): void {
    this.keep('ERROR', message);
  }
  private keep(level: string, message: unknown): void {
    const text = String(message);
    if (this.seen.has(text)) return;
    this.seen.add(text);
    process.stderr.write(`  [${this.name} ${level}] ${text.slice(0, 300)}\n`);
  }
}

async function consumerProcess(): Promise<void> {
  process.on('disconnect', () => process.exit(2)); // never outlive the run
  const params = JSON.parse(process.argv[2] ?? '{}') as ChildParams;
  Logger.overrideLogger(new ChildLogger(params.name));
  const send = (message: FromChild, done?: () => void) => {
    if (process.connected) process.send?.(message, undefined, undefined, done);
    else done?.();
  };

  // Handlings are sent in batches, and a handler returns only once its record is written to the IPC pipe.
  let batch: number[] = [];
  let flushing: Promise<void> | undefined;
  const record = (seq: number, partition: number, at: number): Promise<void> => {
    batch.push(seq, partition, at);
    flushing ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        const records = batch;
        batch = [];
        flushing = undefined;
        send({ type: 'records', records }, resolve);
      }),
    );
    return flushing;
  };

  const server = new RedisStreamsServer(partitionedConfig(params.connection, params.prefix, params.partitions, params.name));
  let handled = 0;
  server.addHandler(
    PATTERN,
    async (data: Payload, ctx: RedisStreamsContext) => {
      handled++;
      await record(data.seq, ctx.getPartition() ?? -1, wallNow());
    },
    true,
  );

  process.on('message', (message: ToChild) => {
    void (async () => {
      if (message.type === 'start') {
        const started = performance.now();
        await new Promise<void>((resolve, reject) => server.listen((error?: unknown) => (error ? reject(error) : resolve())));
        send({ type: 'listening', ms: performance.now() - started });
      } else if (message.type === 'status') {
        const cpu = process.cpuUsage();
        send({
          type: 'status',
          id: message.id,
          owned: server.ownedPartitions().map((p) => p.partition),
          cpuMicros: cpu.user + cpu.system,
          rssMb: process.memoryUsage.rss() / 1024 / 1024,
          handled,
          acked: server.getMetrics().acked,
        });
      } else if (message.type === 'close') {
        const started = performance.now();
        await server.close();
        send({ type: 'closed', ms: performance.now() - started }, () => process.exit(0));
      }
    })().catch((error: unknown) => send({ type: 'error', message: error instanceof Error ? error.stack ?? error.message : String(error) }));
  });
  send({ type: 'ready' });
}

// ---------------------------------------------------------------------------------------------------------------
// Orchestrator side
// ---------------------------------------------------------------------------------------------------------------

/** Every consumer process alive, so an aborted run kills them (each by its own pid). */
const aliveChildren = new Set<ConsumerChild>();
process.once('exit', () => {
  for (const child of aliveChildren) child.kill();
});

class ConsumerChild {
  private readonly child: ChildProcess;
  private readonly waiters: { type: FromChild['type']; id?: number; resolve: (m: FromChild) => void; reject: (e: Error) => void }[] = [];
  private readonly inbox: FromChild[] = [];
  private nextId = 0;
  private failure?: Error;
  readonly exited: Promise<void>;
  alive = true;

  constructor(
    readonly name: string,
    params: ChildParams,
    onRecords: (child: ConsumerChild, records: number[]) => void,
  ) {
    const execArgv = SETTINGS.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${SETTINGS.cpuProfileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
    this.child = fork(fileURLToPath(import.meta.url), [JSON.stringify(params)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, SCALE_PARTITIONS_ROLE: 'consumer' },
      execArgv,
    });
    aliveChildren.add(this);
    this.child.on('message', (message: FromChild) => {
      if (message.type === 'records') return onRecords(this, message.records);
      if (message.type === 'error') {
        this.failure = new Error(`${name}: ${message.message}`);
        for (const w of this.waiters.splice(0)) w.reject(this.failure);
        return;
      }
      const i = this.waiters.findIndex((w) => w.type === message.type && (w.id === undefined || w.id === (message as ChildStatus).id));
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(message);
      else if (message.type !== 'status') this.inbox.push(message);
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.alive = false;
        aliveChildren.delete(this);
        const error = new Error(`${name} exited (code ${code}, signal ${signal})`);
        for (const w of this.waiters.splice(0)) w.reject(error);
        resolve();
      }),
    );
  }

  post(message: ToChild): void {
    if (this.child.connected) this.child.send(message);
  }

  waitFor<T extends FromChild['type']>(type: T, timeoutMs: number, id?: number): Promise<Extract<FromChild, { type: T }>> {
    const queued = this.inbox.findIndex((m) => m.type === type);
    if (queued >= 0) return Promise.resolve(this.inbox.splice(queued, 1)[0] as Extract<FromChild, { type: T }>);
    if (this.failure) return Promise.reject(this.failure);
    if (!this.alive) return Promise.reject(new Error(`${this.name} is not running`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`${this.name}: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        type,
        id,
        resolve: (m: FromChild) => {
          clearTimeout(timer);
          resolve(m as Extract<FromChild, { type: T }>);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  status(timeoutMs = 10_000): Promise<ChildStatus> {
    const id = ++this.nextId;
    const reply = this.waitFor('status', timeoutMs, id);
    this.post({ type: 'status', id });
    return reply;
  }

  /** Closes the consumer (server.close()) and resolves with how long close() took; the process exits after. */
  async close(timeoutMs: number): Promise<number> {
    const reply = this.waitFor('closed', timeoutMs);
    this.post({ type: 'close' });
    const { ms } = await reply;
    await Promise.race([this.exited, sleep(5_000)]);
    this.kill();
    return ms;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** What the consumers handled, as reported over IPC. */
class Handlings {
  /** Per seq: the wall time its emit was called (NaN: not emitted). */
  readonly sentAt: number[] = [];
  readonly failedSends = new Set<number>();
  readonly seq: number[] = [];
  readonly partition: number[] = [];
  readonly at: number[] = [];
  readonly consumer: string[] = [];
  private readonly seen = new Set<number>();
  lastAt = 0;

  add(child: ConsumerChild, records: number[]): void {
    for (let i = 0; i + 2 < records.length; i += 3) {
      this.seq.push(records[i]);
      this.partition.push(records[i + 1]);
      this.at.push(records[i + 2]);
      this.consumer.push(child.name);
      this.seen.add(records[i]);
      if (records[i + 2] > this.lastAt) this.lastAt = records[i + 2];
    }
  }

  get unique(): number {
    return this.seen.size;
  }

  /** emit -> handler latencies (first handling) of seq in [from, to). */
  latencies(from: number, to: number): number[] {
    const first = new Map<number, number>();
    for (let i = 0; i < this.seq.length; i++) {
      const s = this.seq[i];
      if (s >= from && s < to && !first.has(s)) first.set(s, this.at[i]);
    }
    return [...first].map(([s, at]) => at - this.sentAt[s]).sort((a, b) => a - b);
  }

  /** Lost (emitted, never handled), duplicates (handled more than once) and per-key order violations. */
  check(keys: number): { emitted: number; lost: number; duplicates: number; outOfOrder: number; examples: string[] } {
    const emitted = this.sentAt.length;
    let lost = 0;
    for (let s = 0; s < emitted; s++) if (!this.seen.has(s) && !this.failedSends.has(s)) lost++;
    const examples: string[] = [];
    const order = [...this.seq.keys()].sort((a, b) => this.at[a] - this.at[b]);
    const highest = new Map<number, number>();
    let outOfOrder = 0;
    for (const i of order) {
      const s = this.seq[i];
      const key = s % keys;
      const n = Math.floor(s / keys);
      const before = highest.get(key) ?? -1;
      if (n < before) {
        outOfOrder++;
        if (examples.length < 5) examples.push(`k${key}: n ${n} handled by ${this.consumer[i]} (partition ${this.partition[i]}) after n ${before}`);
      } else highest.set(key, n);
    }
    return { emitted, lost, duplicates: this.seq.length - this.seen.size, outOfOrder, examples };
  }
}

/** Sends messages: key k<seq % keys>, n = floor(seq / keys), so each key's n grows with seq. */
class Producer {
  private nextSeq = 0;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly client: RedisStreamsClient,
    private readonly handlings: Handlings,
  ) {}

  get emitted(): number {
    return this.nextSeq;
  }

  private async emitOne(): Promise<void> {
    const seq = this.nextSeq++;
    const payload: Payload = { key: `k${seq % SETTINGS.keys}`, n: Math.floor(seq / SETTINGS.keys), seq, pad: PAD };
    this.handlings.sentAt[seq] = wallNow();
    const p: Promise<unknown> = lastValueFrom(this.client.emit(PATTERN, payload))
      .catch(() => this.handlings.failedSends.add(seq))
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    if (this.inFlight.size >= SETTINGS.emitWindow) await Promise.race(this.inFlight);
  }

  /** One message, once its emit completed; the caller waits for its handling. */
  async one(): Promise<void> {
    await this.emitOne();
    await Promise.all(this.inFlight);
  }

  /** `count` messages as fast as the window allows. */
  async burst(count: number): Promise<void> {
    for (let i = 0; i < count; i++) await this.emitOne();
    await Promise.all(this.inFlight);
  }

  /** `ratePerSecond` until `stop()` returns true (or `count` messages). */
  async paced(ratePerSecond: number, stop: () => boolean, count = Infinity): Promise<void> {
    if (ratePerSecond <= 0) {
      while (!stop()) await sleep(20);
      return;
    }
    const started = performance.now();
    for (let i = 0; i < count && !stop(); i++) {
      const due = started + (i * 1_000) / ratePerSecond;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      await this.emitOne();
    }
    await Promise.all(this.inFlight);
  }
}

interface AssignmentState {
  readonly covered: number;
  readonly overlapping: number;
  readonly counts: number[];
  readonly balanced: boolean;
}

function assignmentOf(views: ChildStatus[], partitions: number): AssignmentState {
  const owners = new Uint8Array(partitions);
  let overlapping = 0;
  for (const v of views) {
    for (const p of v.owned) {
      if (owners[p] === 1) overlapping++;
      owners[p] = 1;
    }
  }
  const covered = owners.reduce((n, o) => n + o, 0);
  const counts = views.map((v) => v.owned.length);
  return {
    covered,
    overlapping,
    counts,
    balanced: covered === partitions && overlapping === 0 && Math.max(...counts) - Math.min(...counts) <= 1,
  };
}

function describe(state: AssignmentState | undefined, partitions: number): string {
  if (!state) return 'no view';
  return `${fmt(state.covered)}/${fmt(partitions)} covered, ${state.overlapping} owned twice, shares ${state.counts.map((c) => fmt(c)).join('/')}`;
}

/**
 * Polls the consumers until their views are disjoint, cover every partition and are balanced within 1, and stay so
 * for STABLE_MS. Resolves with the ms from `since` to the first poll of that stable run.
 */
async function waitBalanced(children: ConsumerChild[], partitions: number, since: number, timeoutMs: number): Promise<{ ms: number; views: ChildStatus[] }> {
  const deadline = since + timeoutMs;
  let okSince: number | undefined;
  let last: AssignmentState | undefined;
  for (;;) {
    const polledAt = performance.now();
    const views = await Promise.all(children.map((c) => c.status()));
    const previous = last;
    last = assignmentOf(views, partitions);
    if (SETTINGS.trace && describe(last, partitions) !== describe(previous, partitions)) {
      process.stderr.write(`  [trace +${fmt((polledAt - since) / 1_000, 1)} s] ${describe(last, partitions)}\n`);
    }
    if (last.balanced) {
      okSince ??= polledAt;
      if (performance.now() - okSince >= STABLE_MS) return { ms: okSince - since, views };
    } else okSince = undefined;
    if (performance.now() > deadline) throw new Error(`not balanced within ${timeoutMs} ms: ${describe(last, partitions)}`);
    await sleep(POLL_MS);
  }
}

/** Compares the consumers' views with the lease keys in Redis; returns the number of partitions where they differ. */
async function leaseMismatches(redis: MeasuredRedis, prefix: string, partitions: number, views: ChildStatus[], names: string[]): Promise<number> {
  const viewOwner = new Map<number, string>();
  views.forEach((v, i) => v.owned.forEach((p) => viewOwner.set(p, names[i])));
  let mismatches = 0;
  for (let from = 0; from < partitions; from += 1_000) {
    const ps = Array.from({ length: Math.min(1_000, partitions - from) }, (_, i) => from + i);
    const leases = await redis.getMany(ps.map((p) => `${prefix}:{${PATTERN}#${p}}:lease:${GROUP}`));
    leases.forEach((lease, i) => {
      const owner = lease ? lease.slice(0, lease.lastIndexOf('|')) : undefined;
      if (owner !== viewOwner.get(ps[i])) mismatches++;
    });
  }
  return mismatches;
}

interface Window {
  readonly from: RedisCounters;
  readonly calls: Map<string, number>;
  readonly cpuMicros: Map<string, number>;
}

async function openWindow(redis: MeasuredRedis, children: ConsumerChild[]): Promise<Window> {
  const views = await Promise.all(children.map((c) => c.status()));
  return {
    from: await redis.counters(),
    calls: await redis.commandCalls(),
    cpuMicros: new Map(children.map((c, i) => [c.name, views[i].cpuMicros])),
  };
}

async function closeWindow(redis: MeasuredRedis, children: ConsumerChild[], window: Window) {
  const views = await Promise.all(children.map((c) => c.status()));
  const to = await redis.counters();
  const seconds = (to.at - window.from.at) / 1_000;
  const consumerCpu = views.map((v, i) => ((v.cpuMicros - (window.cpuMicros.get(children[i].name) ?? v.cpuMicros)) / 1e6 / seconds) * 100);
  return {
    ...rates(window.from, to),
    seconds,
    top: topCommands(window.calls, await redis.commandCalls(), seconds, 4),
    consumersCpuPercent: consumerCpu.reduce((a, b) => a + b, 0),
    rssMb: views.map((v) => v.rssMb),
  };
}

interface PartitionsFigures {
  partitions: number;
  consumers: number;
  sessionTimeoutMs: number;
  /** 'start' sent to every consumer -> each listen() returned (slowest). */
  listenMs?: number;
  assignMs?: number;
  assignTopCommands?: string;
  assignCommands?: number;
  leaseMismatches?: number;
  bytesPerPartition?: number;
  idleCommandsPerSecond?: number;
  idleRedisCpuPercent?: number;
  idleConsumersCpuPercent?: number;
  idleTopCommands?: string;
  consumerRssMb?: number[];
  singleP50Ms?: number;
  singleP99Ms?: number;
  singleMaxMs?: number;
  latencyRate: number;
  latencyP50Ms?: number;
  latencyP99Ms?: number;
  messages: number;
  keys: number;
  throughputPerSecond?: number;
  loadP50Ms?: number;
  loadP99Ms?: number;
  loadRedisCpuPercent?: number;
  loadConsumersCpuPercent?: number;
  loadTopCommands?: string;
  loadCommandsPerMessage?: number;
  /** Redis Cluster: XADDs to the doorbell stream per message (rings are coalesced). */
  loadRingsPerMessage?: number;
  closeMs?: number;
  closeRebalanceMs?: number;
  joinRebalanceMs?: number;
  killRebalanceMs?: number;
  emitted?: number;
  lost?: number;
  duplicates?: number;
  outOfOrder?: number;
  orderExamples?: string[];
  failedSends?: number;
  /** The phase that did not complete, and why. */
  failure?: string;
}

async function measureSize(redis: MeasuredRedis, partitions: number): Promise<PartitionsFigures> {
  const prefix = runPrefix(`partitions${partitions}`);
  const f: PartitionsFigures = {
    partitions,
    consumers: SETTINGS.consumers,
    sessionTimeoutMs: SETTINGS.sessionTimeoutMs,
    latencyRate: SETTINGS.latencyRate,
    messages: SETTINGS.messages,
    keys: SETTINGS.keys,
  };
  const handlings = new Handlings();
  const onRecords = (child: ConsumerChild, records: number[]) => handlings.add(child, records);
  let named = 0;
  const spawn = async () => {
    const name = `c${++named}`;
    const child = new ConsumerChild(name, { connection: redis.connection, prefix, name, partitions }, onRecords);
    await child.waitFor('ready', 30_000);
    return child;
  };
  const all: ConsumerChild[] = [];
  const client = new RedisStreamsClient(partitionedConfig(redis.connection, prefix, partitions));
  const producer = new Producer(client, handlings);
  const step = (name: string) => process.stdout.write(` ${name}`);
  let phase = 'start';
  try {
    const memoryBefore = await redis.usedMemory();
    for (let i = 0; i < SETTINGS.consumers; i++) all.push(await spawn());
    let live = [...all];

    // Assignment: every consumer starts at once.
    phase = 'assign';
    step('assign');
    const assignCalls = await redis.commandCalls();
    const assignFrom = await redis.counters();
    const startedAt = performance.now();
    const listening = Promise.all(live.map((c) => c.waitFor('listening', SETTINGS.stepTimeoutMs)));
    for (const c of live) c.post({ type: 'start' });
    const listened = await listening;
    f.listenMs = Math.max(...listened.map((l) => l.ms));
    const assigned = await waitBalanced(live, partitions, startedAt, SETTINGS.stepTimeoutMs);
    f.assignMs = assigned.ms;
    const assignTo = await redis.counters();
    f.assignCommands = assignTo.commands - assignFrom.commands;
    f.assignTopCommands = topCommands(assignCalls, await redis.commandCalls(), 1, 4).replace(/\/s/g, '');
    f.leaseMismatches = await leaseMismatches(redis, prefix, partitions, assigned.views, live.map((c) => c.name));
    f.bytesPerPartition = ((await redis.usedMemory()) - memoryBefore) / partitions;

    // Idle: nothing published; heartbeats (lease renewals, lease reads) and the blocking reads.
    phase = 'idle';
    step('idle');
    await sleep(1_000);
    const idleWindow = await openWindow(redis, live);
    await sleep(Math.max(SETTINGS.idleMs, SETTINGS.sessionTimeoutMs));
    const idle = await closeWindow(redis, live, idleWindow);
    f.idleCommandsPerSecond = idle.commandsPerSecond;
    f.idleRedisCpuPercent = idle.redisCpuPercent;
    f.idleConsumersCpuPercent = idle.consumersCpuPercent;
    f.idleTopCommands = idle.top;
    f.consumerRssMb = idle.rssMb;

    await client.connect();

    // Latency of messages one at a time, otherwise idle (what a quiet topic's message waits).
    phase = 'one by one';
    step('one-by-one');
    const singleFrom = producer.emitted;
    for (let i = 0; i < SETTINGS.singleSamples; i++) {
      await producer.one();
      await waitHandled(handlings, producer.emitted, SETTINGS.stepTimeoutMs, true);
      await sleep(Math.random() * SETTINGS.singleGapMs);
    }
    const single = handlings.latencies(singleFrom, producer.emitted);
    f.singleP50Ms = percentile(single, 0.5);
    f.singleP99Ms = percentile(single, 0.99);
    f.singleMaxMs = single[single.length - 1];

    // Latency at a moderate rate.
    phase = 'latency';
    step('latency');
    const latencyFrom = producer.emitted;
    await producer.paced(SETTINGS.latencyRate, () => false, SETTINGS.latencyRate * SETTINGS.latencySeconds);
    await waitHandled(handlings, producer.emitted, SETTINGS.stepTimeoutMs);
    const paced = handlings.latencies(latencyFrom, producer.emitted);
    f.latencyP50Ms = percentile(paced, 0.5);
    f.latencyP99Ms = percentile(paced, 0.99);

    // Throughput: a burst of messages over many keys.
    phase = 'throughput';
    step('throughput');
    // StreamKeys.doorbell() of this prefix (Cluster only): read to count the producer's rings.
    const doorbell = `${prefix}:{#doorbell}`;
    const ringsFrom = redis instanceof BenchCluster ? await redis.entriesAdded(doorbell) : undefined;
    const loadWindow = await openWindow(redis, live);
    const burstFrom = producer.emitted;
    const firstSend = wallNow();
    await producer.burst(SETTINGS.messages);
    await waitHandled(handlings, producer.emitted, SETTINGS.stepTimeoutMs);
    f.throughputPerSecond = SETTINGS.messages / ((handlings.lastAt - firstSend) / 1_000);
    const load = await closeWindow(redis, live, loadWindow);
    f.loadRedisCpuPercent = load.redisCpuPercent;
    f.loadConsumersCpuPercent = load.consumersCpuPercent;
    f.loadTopCommands = load.top;
    f.loadCommandsPerMessage = (load.commandsPerSecond * load.seconds) / SETTINGS.messages;
    if (redis instanceof BenchCluster && ringsFrom !== undefined) f.loadRingsPerMessage = ((await redis.entriesAdded(doorbell)) - ringsFrom) / SETTINGS.messages;
    const underLoad = handlings.latencies(burstFrom, producer.emitted);
    f.loadP50Ms = percentile(underLoad, 0.5);
    f.loadP99Ms = percentile(underLoad, 0.99);

    // Rebalancing, with messages flowing.
    let stopBackground = false;
    const background = producer.paced(SETTINGS.rebalanceRate, () => stopBackground);
    try {
      phase = 'close';
      step('close');
      const leaving = live[live.length - 1];
      live = live.slice(0, -1);
      const closeStarted = performance.now();
      const closing = leaving.close(SETTINGS.stepTimeoutMs);
      f.closeRebalanceMs = (await waitBalanced(live, partitions, closeStarted, SETTINGS.stepTimeoutMs)).ms;
      f.closeMs = await closing;

      phase = 'join';
      step('join');
      const joining = await spawn();
      all.push(joining);
      live.push(joining);
      const joinStarted = performance.now();
      const joined = joining.waitFor('listening', SETTINGS.stepTimeoutMs);
      joining.post({ type: 'start' });
      await joined;
      f.joinRebalanceMs = (await waitBalanced(live, partitions, joinStarted, SETTINGS.stepTimeoutMs)).ms;

      phase = 'kill';
      step('kill');
      const victim = live[0];
      live = live.slice(1);
      const killStarted = performance.now();
      victim.kill();
      f.killRebalanceMs = (await waitBalanced(live, partitions, killStarted, SETTINGS.stepTimeoutMs + SETTINGS.sessionTimeoutMs)).ms;
    } finally {
      stopBackground = true;
      await background;
    }

    phase = 'drain';
    step('drain');
    await waitHandled(handlings, producer.emitted, SETTINGS.stepTimeoutMs, true);
    await sleep(500); // a late duplicate would arrive within this
  } catch (error) {
    f.failure = `${phase}: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    const check = handlings.check(SETTINGS.keys);
    f.emitted = check.emitted;
    f.lost = check.lost;
    f.duplicates = check.duplicates;
    f.outOfOrder = check.outOfOrder;
    f.orderExamples = check.examples;
    f.failedSends = handlings.failedSends.size;
    await client.close();
    await Promise.all(all.filter((c) => c.alive).map((c) => c.close(SETTINGS.stepTimeoutMs).catch(() => c.kill())));
    await redis.deletePrefix(prefix);
  }
  return f;
}

async function waitHandled(handlings: Handlings, emitted: number, timeoutMs: number, tolerateFailedSends = false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const target = () => emitted - (tolerateFailedSends ? handlings.failedSends.size : 0);
  while (handlings.unique < target()) {
    if (Date.now() > deadline) throw new Error(`${fmt(handlings.unique)} of ${fmt(emitted)} messages handled after ${timeoutMs} ms`);
    await sleep(5);
  }
}

/** Where the partitions are measured: the run's Redis server, or a fresh local Cluster per size. */
interface PartitionsTarget {
  /** Progress line label. */
  readonly label: string;
  /** Start of the table title. */
  readonly title: string;
  /** Suffix of the Redis columns' headers (on a Cluster they are sums over the masters). */
  readonly redisColumns: string;
  open(): Promise<{ redis: MeasuredRedis; release(): Promise<void> }>;
}

/** `partitions`: on the run's Redis server (SCALE_REDIS_URL or a throw-away one). */
export function measurePartitions(redis: BenchRedis, sizes: number[]): Promise<ScenarioReport> {
  return measure(sizes, {
    label: 'partitions',
    title: 'many partitions',
    redisColumns: '',
    open: async () => ({ redis, release: async () => undefined }),
  });
}

/** `cluster-partitions`: on a fresh local Redis Cluster of SCALE_CLUSTER_MASTERS masters (default 3) per size. */
export function measureClusterPartitions(sizes: number[]): Promise<ScenarioReport> {
  return measure(sizes, {
    label: 'cluster partitions',
    title: `many partitions on a local ${SETTINGS.clusterMasters}-master Redis Cluster`,
    redisColumns: ' (all masters)',
    open: async () => {
      const cluster = await BenchCluster.start(SETTINGS.clusterMasters);
      return { redis: cluster, release: () => cluster.stop() };
    },
  });
}

async function measure(sizes: number[], target: PartitionsTarget): Promise<ScenarioReport> {
  const figures: PartitionsFigures[] = [];
  for (const partitions of sizes) {
    process.stdout.write(`  ${target.label}: ${partitions.toLocaleString('en-US')} ...`);
    const started = Date.now();
    const { redis, release } = await target.open();
    try {
      figures.push(await measureSize(redis, partitions));
    } finally {
      await release();
    }
    process.stdout.write(` ${((Date.now() - started) / 1_000).toFixed(1)} s\n`);
  }
  const s = (ms: number | undefined) => (ms === undefined ? '-' : fmt(ms / 1_000, 1));
  return {
    name: `${target.title} (one topic, ${SETTINGS.consumers} consumer processes, hash by key, per-key order, sessionTimeoutMs ${fmt(SETTINGS.sessionTimeoutMs)}, streams.doorbell ${SETTINGS.doorbell})`,
    table: table(
      [
        'partitions',
        'assign s',
        `Redis B/partition${target.redisColumns}`,
        `idle cmd/s${target.redisColumns}`,
        `idle Redis CPU %${target.redisColumns}`,
        'idle consumers CPU %',
        'p50/p99 ms one by one',
        `p50/p99 ms at ${fmt(SETTINGS.latencyRate)}/s`,
        'msg/s',
        'p50/p99 ms loaded',
        'close/join/kill rebalance s',
        'lost/dup/order',
      ],
      figures.map((f) => [
        fmt(f.partitions),
        s(f.assignMs),
        fmt(f.bytesPerPartition),
        fmt(f.idleCommandsPerSecond),
        fmt(f.idleRedisCpuPercent),
        fmt(f.idleConsumersCpuPercent),
        `${fmt(f.singleP50Ms, 1)}/${fmt(f.singleP99Ms, 1)}`,
        `${fmt(f.latencyP50Ms, 1)}/${fmt(f.latencyP99Ms, 1)}`,
        fmt(f.throughputPerSecond),
        `${fmt(f.loadP50Ms)}/${fmt(f.loadP99Ms)}`,
        `${s(f.closeRebalanceMs)}/${s(f.joinRebalanceMs)}/${s(f.killRebalanceMs)}`,
        `${fmt(f.lost)}/${fmt(f.duplicates)}/${fmt(f.outOfOrder)}`,
      ]),
    ),
    notes: [
      ...figures.flatMap((f) => [
        `${fmt(f.partitions)} partitions: listen ${s(f.listenMs)} s; assignment took ${fmt(f.assignCommands)} commands (${f.assignTopCommands}); ` +
          `leases differing from the consumers' views: ${fmt(f.leaseMismatches)}; consumer RSS ${f.consumerRssMb?.map((m) => fmt(m)).join('/') ?? '-'} MB`,
        `${fmt(f.partitions)} partitions: idle ${f.idleTopCommands ?? '-'}; one by one: max ${fmt(f.singleMaxMs, 1)} ms`,
        `${fmt(f.partitions)} partitions loaded: Redis CPU ${fmt(f.loadRedisCpuPercent)} %, consumers ${fmt(f.loadConsumersCpuPercent)} %, ` +
          `${fmt(f.loadCommandsPerMessage, 1)} commands/message${f.loadRingsPerMessage === undefined ? '' : `, ${fmt(f.loadRingsPerMessage, 3)} doorbell rings/message`} (${f.loadTopCommands ?? '-'})`,
        `${fmt(f.partitions)} partitions: close() took ${s(f.closeMs)} s; ${fmt(f.emitted)} messages emitted (${fmt(f.failedSends)} emits failed), ` +
          `${fmt(f.lost)} lost, ${fmt(f.duplicates)} handled twice, ${fmt(f.outOfOrder)} out of key order${f.orderExamples?.length ? ` (${f.orderExamples.join('; ')})` : ''}`,
        ...(f.failure ? [`${fmt(f.partitions)} partitions: FAILED in ${f.failure}`] : []),
      ]),
      `one by one: ${fmt(SETTINGS.singleSamples)} messages, each awaited by its handler before the next, random pause of up to ${SETTINGS.singleGapMs} ms between them.`,
      'assign: from start() of all consumers at once until their owned partitions are disjoint, cover all, are balanced within 1 and stay so 0.5 s.',
      `idle window: max(SCALE_IDLE_MS, sessionTimeoutMs), i.e. 3 heartbeats per consumer; consumers CPU = sum of the ${SETTINGS.consumers} processes, % of one core.`,
      'cmd/s and the command names count what Redis ran, including the commands run inside scripts (a lease renewal is evalsha + get + pexpire).',
      `loaded: ${fmt(SETTINGS.messages)} messages over ${fmt(SETTINGS.keys)} keys, ${SETTINGS.emitWindow} emits in flight, producer in the orchestrator; msg/s = messages / (last handling - first emit).`,
      `rebalance: one consumer close()s; then a new one joins; then one is SIGKILLed (its partitions move once its leases expire: sessionTimeoutMs). ${SETTINGS.rebalanceRate} msg/s published meanwhile.`,
    ],
    figures,
  };
}

if (process.env.SCALE_PARTITIONS_ROLE === 'consumer') {
  consumerProcess().catch((error: unknown) => {
    process.stderr.write(`consumer failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
