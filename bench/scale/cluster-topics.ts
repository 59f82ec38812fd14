/**
 * Many topics on a Redis Cluster: one server registers N patterns (one stream + group each) on a local 3-master
 * cluster (the tests' harness, through cluster.ts), library defaults (sweepMs 1000 unless
 * SCALE_CLUSTER_SWEEP_MS is set). On a Cluster the server has one reading connection and one doorbell connection:
 * it reads in rounds of non-blocking XREADGROUPs (one per hash slot, pipelined per node) over the streams that may
 * have entries (rung on the doorbell by producers, had entries last round, new, or all of them once per sweep), and
 * waits on the doorbell when a round found nothing.
 *
 * For each N (SCALE_CLUSTER_TOPICS, default 100,1000,10000), on a fresh cluster:
 *   listen      time of listen() (XGROUP CREATE per stream); the sockets the server (counted after the idle window) and
 *               the producer (after the latency phase) hold on the masters
 *   memory      Redis used_memory per stream, summed over the masters (empty streams with their group)
 *   idle        nothing published for SCALE_IDLE_MS: commands/s and Redis CPU summed over the masters, this process's CPU
 *   latency     SCALE_CLUSTER_LATENCY_SAMPLES (default 200) messages, one at a time, each to a random topic and
 *               awaited by its handler before the next (random pause of up to SCALE_CLUSTER_LATENCY_GAP_MS between
 *               them, so samples fall at any point of the sweep cycle): emit -> handler p50/p99/max
 *   throughput  SCALE_CLUSTER_MESSAGES (default 20000) spread evenly over all topics, SCALE_CLUSTER_EMIT_WINDOW (default
 *               256) emits in flight: messages / (last handling - first emit); commands processed on the masters per
 *               message (producer, doorbell, reads, acks: everything) and doorbell rings (XADDs to it) per message
 */
import { createRequire } from 'node:module';
import { lastValueFrom } from 'rxjs';
import { RedisStreamsClient, RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { BenchCluster } from './cluster.js';
import { CpuWindow, envInt, fmt, lastWarning, percentile, rates, sleep, table, topCommands, type ScenarioReport } from './common.js';

const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

const SETTINGS = {
  masters: envInt('SCALE_CLUSTER_MASTERS', 3, 1),
  idleMs: envInt('SCALE_IDLE_MS', 5_000, 500),
  /** consumer.sweepMs; unset: the library's default. */
  sweepMs: process.env.SCALE_CLUSTER_SWEEP_MS ? envInt('SCALE_CLUSTER_SWEEP_MS', 1_000, 50) : undefined,
  latencySamples: envInt('SCALE_CLUSTER_LATENCY_SAMPLES', 200, 1),
  latencyGapMs: envInt('SCALE_CLUSTER_LATENCY_GAP_MS', 20, 0),
  messages: envInt('SCALE_CLUSTER_MESSAGES', 20_000, 1),
  emitWindow: envInt('SCALE_CLUSTER_EMIT_WINDOW', 256, 1),
  /** Give up waiting for one latency sample after this long. */
  deliveryTimeoutMs: envInt('SCALE_DELIVERY_TIMEOUT_MS', 15_000, 100),
  stepTimeoutMs: envInt('SCALE_STEP_TIMEOUT_MS', 120_000, 1_000),
};

const PREFIX = 'scale-cluster';
const GROUP = 'scale';
const pattern = (i: number) => `scale.topic.${i}`;
/** StreamKeys.doorbell() of PREFIX (libs/.../connection/stream-keys.ts): read only to count rings. */
const DOORBELL = `${PREFIX}:{#doorbell}`;

interface ClusterTopicsFigures {
  topics: number;
  masters: number;
  /** Distinct hash slots among the topics' streams: one XREADGROUP each per full sweep. */
  slots: number;
  listenMs?: number;
  serverConnections?: number;
  producerConnections?: number;
  bytesPerStream?: number;
  idleCommandsPerSecond?: number;
  idleRedisCpuPercent?: number;
  idleConsumerCpuPercent?: number;
  idleTopCommands?: string;
  latencySamples: number;
  latencyP50Ms?: number;
  latencyP99Ms?: number;
  latencyMaxMs?: number;
  messages: number;
  throughputPerSecond?: number;
  loadP50Ms?: number;
  loadP99Ms?: number;
  loadRedisCpuPercent?: number;
  loadProcessCpuPercent?: number;
  loadTopCommands?: string;
  commandsPerMessage?: number;
  ringsPerMessage?: number;
  lost?: number;
  duplicates?: number;
  failure?: string;
}

/** The handler's records: when each seq was first handled, how often. */
class Deliveries {
  readonly sentAt: Float64Array;
  readonly handledAt: Float64Array;
  readonly times: Uint16Array;
  handled = 0;
  private awaited?: { seq: number; resolve: () => void };

  constructor(size: number) {
    this.sentAt = new Float64Array(size);
    this.handledAt = new Float64Array(size);
    this.times = new Uint16Array(size);
  }

  record(seq: number): void {
    const at = performance.now();
    if (this.times[seq]++ === 0) {
      this.handledAt[seq] = at;
      this.handled++;
    }
    if (this.awaited?.seq === seq) this.awaited.resolve();
  }

  /** Resolves once `seq` was handled; rejects after `timeoutMs`. */
  waitFor(seq: number, timeoutMs: number): Promise<void> {
    if (this.times[seq] > 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.awaited = undefined;
        reject(new Error(`message ${seq} not handled within ${timeoutMs} ms`));
      }, timeoutMs);
      this.awaited = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          this.awaited = undefined;
          resolve();
        },
      };
    });
  }

  /** emit -> handler ms of seq in [from, to), ascending (handled ones only). */
  latencies(from: number, to: number): number[] {
    const out: number[] = [];
    for (let s = from; s < to; s++) if (this.times[s] > 0) out.push(this.handledAt[s] - this.sentAt[s]);
    return out.sort((a, b) => a - b);
  }
}

async function waitUntil(predicate: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what()}`);
    await sleep(5);
  }
}

async function measureSize(topics: number): Promise<ClusterTopicsFigures> {
  const f: ClusterTopicsFigures = {
    topics,
    masters: SETTINGS.masters,
    slots: new Set(Array.from({ length: topics }, (_, i) => keySlot(`${PREFIX}:{${pattern(i)}}`))).size,
    latencySamples: SETTINGS.latencySamples,
    messages: SETTINGS.messages,
  };
  const cluster = await BenchCluster.start(SETTINGS.masters);
  const config = {
    connection: cluster.connection,
    streams: { keyPrefix: PREFIX },
    consumer: { group: GROUP, consumerName: 'scale-cluster-topics', ...(SETTINGS.sweepMs ? { sweepMs: SETTINGS.sweepMs } : {}) },
  };
  const server = new RedisStreamsServer(config);
  const client = new RedisStreamsClient(config);
  const deliveries = new Deliveries(SETTINGS.latencySamples + SETTINGS.messages);
  let nextSeq = 0;
  let phase = 'listen';
  try {
    for (let i = 0; i < topics; i++) server.addHandler(pattern(i), async (data: { seq: number }) => deliveries.record(data.seq), true);

    const clientsBefore = await cluster.connectedClients();
    const memoryBefore = await cluster.usedMemory();
    const listenStarted = performance.now();
    await new Promise<void>((resolve, reject) => server.listen((error?: unknown) => (error ? reject(error) : resolve())));
    f.listenMs = performance.now() - listenStarted;
    f.bytesPerStream = ((await cluster.usedMemory()) - memoryBefore) / topics;

    // Idle: the sweeps (one XREADGROUP per slot per sweepMs), the doorbell's blocking XREAD, the reclaimer.
    phase = 'idle';
    await sleep(1_000); // past start-up work (the first reclaim pass, the first full sweep)
    const idleFrom = await cluster.counters();
    const idleCalls = await cluster.commandCalls();
    const idleCpu = new CpuWindow();
    await sleep(SETTINGS.idleMs);
    const idleTo = await cluster.counters();
    f.idleConsumerCpuPercent = idleCpu.percent();
    const idle = rates(idleFrom, idleTo);
    f.idleCommandsPerSecond = idle.commandsPerSecond;
    f.idleRedisCpuPercent = idle.redisCpuPercent;
    f.idleTopCommands = topCommands(idleCalls, await cluster.commandCalls(), (idleTo.at - idleFrom.at) / 1_000, 4);
    // Counted once idle, after a full sweep: the reading connection has reached every master by then.
    f.serverConnections = (await cluster.connectedClients()) - clientsBefore;

    // Latency: one message at a time to a random topic, otherwise idle.
    phase = 'latency';
    const clientsBeforeProducer = await cluster.connectedClients();
    await client.connect();
    const latencyFrom = nextSeq;
    for (let k = 0; k < SETTINGS.latencySamples; k++) {
      const seq = nextSeq++;
      deliveries.sentAt[seq] = performance.now();
      await lastValueFrom(client.emit(pattern(Math.floor(Math.random() * topics)), { seq }));
      await deliveries.waitFor(seq, SETTINGS.deliveryTimeoutMs);
      if (SETTINGS.latencyGapMs > 0) await sleep(Math.random() * SETTINGS.latencyGapMs);
    }
    const latencies = deliveries.latencies(latencyFrom, nextSeq);
    f.latencyP50Ms = percentile(latencies, 0.5);
    f.latencyP99Ms = percentile(latencies, 0.99);
    f.latencyMaxMs = latencies[latencies.length - 1];
    // The producer has written to every master by now (its Cluster connection opens a node's connection on first use).
    f.producerConnections = (await cluster.connectedClients()) - clientsBeforeProducer;

    // Throughput: messages spread evenly over all topics, a window of emits in flight.
    phase = 'throughput';
    await sleep(1_000);
    const loadFrom = await cluster.counters();
    const loadCalls = await cluster.commandCalls();
    const ringsFrom = await cluster.entriesAdded(DOORBELL);
    const loadCpu = new CpuWindow();
    const burstFrom = nextSeq;
    const firstEmit = performance.now();
    const inFlight = new Set<Promise<unknown>>();
    let failedEmits = 0;
    for (let i = 0; i < SETTINGS.messages; i++) {
      const seq = nextSeq++;
      deliveries.sentAt[seq] = performance.now();
      const p: Promise<unknown> = lastValueFrom(client.emit(pattern(i % topics), { seq }))
        .catch(() => failedEmits++)
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= SETTINGS.emitWindow) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const target = SETTINGS.latencySamples + SETTINGS.messages - failedEmits;
    await waitUntil(() => deliveries.handled >= target, SETTINGS.stepTimeoutMs, () => `${fmt(deliveries.handled - burstFrom)} of ${fmt(SETTINGS.messages)} messages handled`);
    let lastHandled = firstEmit;
    for (let s = burstFrom; s < nextSeq; s++) lastHandled = Math.max(lastHandled, deliveries.handledAt[s]);
    f.throughputPerSecond = SETTINGS.messages / ((lastHandled - firstEmit) / 1_000);
    const loadTo = await cluster.counters();
    f.loadProcessCpuPercent = loadCpu.percent();
    f.loadRedisCpuPercent = rates(loadFrom, loadTo).redisCpuPercent;
    f.loadTopCommands = topCommands(loadCalls, await cluster.commandCalls(), 1, 5).replace(/\/s/g, '');
    f.commandsPerMessage = (loadTo.commands - loadFrom.commands) / SETTINGS.messages;
    f.ringsPerMessage = ((await cluster.entriesAdded(DOORBELL)) - ringsFrom) / SETTINGS.messages;
    const underLoad = deliveries.latencies(burstFrom, nextSeq);
    f.loadP50Ms = percentile(underLoad, 0.5);
    f.loadP99Ms = percentile(underLoad, 0.99);
    if (failedEmits > 0) f.failure = `${failedEmits} emits failed`;
    await sleep(500); // a late duplicate would arrive within this
  } catch (error) {
    f.failure = `${phase}: ${error instanceof Error ? error.message : String(error)}; library said: ${lastWarning() ?? 'nothing'}`;
  } finally {
    let lost = 0;
    let duplicates = 0;
    for (let s = 0; s < nextSeq; s++) {
      if (deliveries.times[s] === 0) lost++;
      else duplicates += deliveries.times[s] - 1;
    }
    f.lost = lost;
    f.duplicates = duplicates;
    await client.close();
    await server.close();
    await cluster.stop();
  }
  return f;
}

export async function measureClusterTopics(sizes: number[]): Promise<ScenarioReport> {
  const figures: ClusterTopicsFigures[] = [];
  for (const topics of sizes) {
    process.stdout.write(`  cluster topics: ${topics.toLocaleString('en-US')} ...`);
    const started = Date.now();
    figures.push(await measureSize(topics));
    process.stdout.write(` ${((Date.now() - started) / 1_000).toFixed(1)} s\n`);
  }
  const sweep = SETTINGS.sweepMs ? `sweepMs ${fmt(SETTINGS.sweepMs)}` : 'default sweepMs';
  return {
    name: `many topics on a local ${SETTINGS.masters}-master Redis Cluster (one server, library defaults, ${sweep})`,
    table: table(
      [
        'topics',
        'listen ms',
        'connections server/producer',
        'Redis B/stream (incl. connection buffers)',
        'idle cmd/s (all masters)',
        'idle Redis CPU % (sum)',
        'idle consumer CPU %',
        'emit->handler p50/p99 ms (one at a time)',
        'msg/s',
        'p50/p99 ms loaded',
        'cmd/msg loaded',
        'doorbell rings/msg',
        'lost/dup',
      ],
      figures.map((f) => [
        fmt(f.topics),
        fmt(f.listenMs),
        `${fmt(f.serverConnections)}/${fmt(f.producerConnections)}`,
        fmt(f.bytesPerStream),
        fmt(f.idleCommandsPerSecond),
        fmt(f.idleRedisCpuPercent),
        fmt(f.idleConsumerCpuPercent),
        `${fmt(f.latencyP50Ms, 1)}/${fmt(f.latencyP99Ms, 1)}`,
        fmt(f.throughputPerSecond),
        `${fmt(f.loadP50Ms)}/${fmt(f.loadP99Ms)}`,
        fmt(f.commandsPerMessage, 2),
        fmt(f.ringsPerMessage, 3),
        `${fmt(f.lost)}/${fmt(f.duplicates)}`,
      ]),
    ),
    notes: [
      ...figures.flatMap((f) => [
        `${fmt(f.topics)} topics: ${fmt(f.slots)} distinct slots (one XREADGROUP each per full sweep); idle: ${f.idleTopCommands ?? '-'}; ` +
          `one at a time: max ${fmt(f.latencyMaxMs, 1)} ms`,
        `${fmt(f.topics)} topics loaded: Redis CPU ${fmt(f.loadRedisCpuPercent)} % (sum), bench process CPU ${fmt(f.loadProcessCpuPercent)} % ` +
          `(producer + consumer); commands: ${f.loadTopCommands ?? '-'}`,
        ...(f.failure ? [`${fmt(f.topics)} topics: FAILED in ${f.failure}`] : []),
      ]),
      'one fresh cluster per size. connections: sockets on the masters, the server\'s counted after the idle window, the producer\'s after the one-at-a-time phase; ' +
        'the server has three ioredis Cluster connections (command, reading, doorbell), each with a socket to every master it sent to (the doorbell: one), whatever the topic count.',
      `idle = nothing published for SCALE_IDLE_MS (${fmt(SETTINGS.idleMs)} ms): full sweeps, the doorbell's blocking XREAD and the reclaimer.`,
      `one at a time: ${fmt(SETTINGS.latencySamples)} messages to random topics, each awaited before the next, random pause of up to ${fmt(SETTINGS.latencyGapMs)} ms between them.`,
      `loaded: ${fmt(SETTINGS.messages)} messages spread evenly over the topics, ${fmt(SETTINGS.emitWindow)} emits in flight, producer and consumer in this process; ` +
        'msg/s = messages / (last handling - first emit); cmd/msg = every command the masters processed in that window (XADD, doorbell, reads, acks, sweeps) / messages; ' +
        'rings/msg = XADDs to the doorbell stream / messages (rings are coalesced while one is in flight).',
    ],
    figures,
  };
}
