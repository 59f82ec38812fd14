/**
 * Many topics on a Redis Cluster: one server registers N patterns on a local 3-master cluster (the tests' harness,
 * test/support/redis-cluster.mjs). One XREADGROUP cannot span hash slots, so the server runs one reading loop per
 * distinct slot among its streams, each on its own blocking ioredis `Cluster` connection.
 *
 * Measures: distinct slots (= reading loops), listen time, client connections opened on the masters, the idle cost
 * summed over the masters (commands/s, Redis CPU) and in this process, and Redis memory per stream per master.
 */
import { Redis } from 'ioredis';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { RedisStreamsServer } from 'nestjs-redis-streams-enterprise';
import { CpuWindow, envInt, fmt, rates, sleep, table, type RedisCounters, type ScenarioReport } from './common.js';

const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

const SETTINGS = {
  masters: envInt('SCALE_CLUSTER_MASTERS', 3, 1),
  idleMs: envInt('SCALE_IDLE_MS', 5_000, 500),
};

interface ClusterHarness {
  readonly nodes: { host: string; port: number }[];
  stop(): Promise<void>;
}

/** The tests' cluster harness, plain JavaScript outside the compiled tree: loaded from the repository at run time. */
async function startCluster(masters: number): Promise<ClusterHarness> {
  const here = dirname(fileURLToPath(import.meta.url)); // dist/bench/scale
  const harness = resolve(here, '../../../test/support/redis-cluster.mjs');
  const { RedisCluster } = (await import(pathToFileURL(harness).href)) as {
    RedisCluster: { start(options: { masters: number }): Promise<ClusterHarness> };
  };
  return RedisCluster.start({ masters });
}

interface NodeSample {
  counters: RedisCounters;
  clients: number;
  usedMemory: number;
}

async function sample(node: Redis): Promise<NodeSample> {
  const text = await node.info();
  const field = (name: string) => Number(new RegExp(`^${name}:(\\S+)`, 'm').exec(text)?.[1] ?? 0);
  return {
    counters: {
      at: Date.now(),
      commands: field('total_commands_processed'),
      netInputBytes: field('total_net_input_bytes'),
      netOutputBytes: field('total_net_output_bytes'),
      cpuSeconds: field('used_cpu_user') + field('used_cpu_sys'),
    },
    clients: field('connected_clients'),
    usedMemory: field('used_memory'),
  };
}

interface ClusterTopicsFigures {
  topics: number;
  masters: number;
  readingLoops: number;
  listenMs: number;
  connectionsOpened: number;
  bytesPerStream: number;
  idleCommandsPerSecond: number;
  idleRedisCpuPercent: number;
  idleConsumerCpuPercent: number;
}

async function measureSize(topics: number): Promise<ClusterTopicsFigures> {
  const cluster = await startCluster(SETTINGS.masters);
  const admins = cluster.nodes.map((n) => new Redis(n.port, n.host, { maxRetriesPerRequest: 1 }));
  const prefix = 'scale-cluster';
  const server = new RedisStreamsServer({
    connection: { cluster: { nodes: cluster.nodes } },
    streams: { keyPrefix: prefix },
    consumer: { group: 'scale', consumerName: 'scale-cluster-topics' },
  });
  try {
    const patterns = Array.from({ length: topics }, (_, i) => `scale.topic.${i}`);
    const readingLoops = new Set(patterns.map((p) => keySlot(`${prefix}:{${p}}`))).size;
    for (const p of patterns) server.addHandler(p, async () => undefined, true);
    const before = await Promise.all(admins.map(sample));
    const started = performance.now();
    await new Promise<void>((resolve, reject) => server.listen((error?: unknown) => (error ? reject(error) : resolve())));
    const listenMs = performance.now() - started;
    await sleep(1_000);
    const from = await Promise.all(admins.map(sample));
    const cpu = new CpuWindow();
    await sleep(SETTINGS.idleMs);
    const to = await Promise.all(admins.map(sample));
    const idleConsumerCpuPercent = cpu.percent();
    const perNode = from.map((f, i) => rates(f.counters, to[i].counters));
    return {
      topics,
      masters: SETTINGS.masters,
      readingLoops,
      listenMs,
      connectionsOpened: to.reduce((sum, s, i) => sum + s.clients - before[i].clients, 0),
      bytesPerStream: to.reduce((sum, s, i) => sum + s.usedMemory - before[i].usedMemory, 0) / topics,
      idleCommandsPerSecond: perNode.reduce((sum, r) => sum + r.commandsPerSecond, 0),
      idleRedisCpuPercent: perNode.reduce((sum, r) => sum + r.redisCpuPercent, 0),
      idleConsumerCpuPercent,
    };
  } finally {
    await server.close();
    for (const admin of admins) admin.disconnect();
    await cluster.stop(); // throw-away nodes: their data goes with them
  }
}

export async function measureClusterTopics(sizes: number[]): Promise<ScenarioReport> {
  const figures: ClusterTopicsFigures[] = [];
  for (const topics of sizes) {
    process.stdout.write(`  cluster topics: ${topics.toLocaleString('en-US')} ...`);
    const started = Date.now();
    figures.push(await measureSize(topics));
    process.stdout.write(` ${((Date.now() - started) / 1_000).toFixed(1)} s\n`);
  }
  return {
    name: `many topics on a local ${SETTINGS.masters}-master Redis Cluster (one server, library defaults)`,
    table: table(
      ['topics', 'slots = reading loops', 'listen ms', 'connections opened', 'Redis B/stream (incl. connection buffers)', 'idle cmd/s (all masters)', 'idle Redis CPU % (sum)', 'idle consumer CPU %'],
      figures.map((f) => [
        fmt(f.topics),
        fmt(f.readingLoops),
        fmt(f.listenMs),
        fmt(f.connectionsOpened),
        fmt(f.bytesPerStream),
        fmt(f.idleCommandsPerSecond),
        fmt(f.idleRedisCpuPercent),
        fmt(f.idleConsumerCpuPercent),
      ]),
    ),
    notes: [
      'each reading loop owns one blocking ioredis Cluster connection; a Redis Cluster has 16,384 slots, so N patterns need up to min(N, 16,384) loops.',
    ],
    figures,
  };
}
