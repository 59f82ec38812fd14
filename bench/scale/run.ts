/**
 * `npm run bench:scale`: bounded measurements of the seed's scale claims (not tests; each prints a table).
 *
 *   topics   many patterns, one stream + group each, on one server          SCALE_TOPICS (default 1000,10000)
 *   groups   many consumer groups on one stream (fan-out)                     SCALE_GROUPS (default 1000)
 *   large    large payloads emit -> handler                                    SCALE_PAYLOAD_MB (default 1,8,64)
 *   cluster  many topics on a local 3-master Redis Cluster (listen, connections, idle cost, latency one at a time,
 *            throughput, commands and doorbell rings per message)             SCALE_CLUSTER_TOPICS (default 100,1000,10000)
 *   partitions  one topic of P partitions, 3 consumer processes (assignment, idle, latency, rebalancing)
 *               (SCALE_DOORBELL=always: producer and consumers use the doorbell on the single server too)
 *                                                                             SCALE_PARTITIONS (default 1000; 10000 too)
 *   cluster-partitions  the same on a local 3-master Redis Cluster             SCALE_CLUSTER_PARTITIONS (default 1000; 10000 too)
 *
 * The Cluster scenarios start a fresh throw-away cluster per size (test/support/redis-cluster.mjs); SCALE_CLUSTER_MASTERS
 * sets its masters (default 3). Each scenario file lists its other variables in its header.
 *
 * Scale up with the variables above (for example SCALE_TOPICS=100000), pick scenarios with SCALE_SCENARIOS
 * (comma-separated), measure another Redis with SCALE_REDIS_URL (keys under scale:<run>:* only, deleted after).
 * The whole run is aborted after SCALE_MAX_SECONDS (default 600).
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchRedis, QuietLogger, envInt, envIntList, type ScenarioReport } from './common.js';
import { stopOpenClusters } from './cluster.js';
import { measureClusterTopics } from './cluster-topics.js';
import { measureFanout } from './groups.js';
import { measureLargeMessages } from './large-messages.js';
import { measureClusterPartitions, measurePartitions } from './partitions.js';
import { measureTopics } from './topics.js';

const SCENARIOS = ['topics', 'groups', 'large', 'cluster', 'partitions', 'cluster-partitions'] as const;
type Scenario = (typeof SCENARIOS)[number];

function scenarios(): Scenario[] {
  const raw = process.env.SCALE_SCENARIOS;
  if (!raw) return [...SCENARIOS];
  return raw.split(',').map((s) => {
    const name = s.trim() as Scenario;
    if (!SCENARIOS.includes(name)) throw new Error(`SCALE_SCENARIOS: unknown "${s}" (allowed: ${SCENARIOS.join(', ')})`);
    return name;
  });
}

const SETTINGS = {
  scenarios: scenarios(),
  topics: envIntList('SCALE_TOPICS', [1_000, 10_000]),
  groups: envIntList('SCALE_GROUPS', [1_000]),
  payloadMb: envIntList('SCALE_PAYLOAD_MB', [1, 8, 64]),
  clusterTopics: envIntList('SCALE_CLUSTER_TOPICS', [100, 1_000, 10_000]),
  partitions: envIntList('SCALE_PARTITIONS', [1_000]),
  clusterPartitions: envIntList('SCALE_CLUSTER_PARTITIONS', [1_000]),
  maxSeconds: envInt('SCALE_MAX_SECONDS', 600, 10),
  resultsFile:
    process.env.SCALE_RESULTS_FILE || resolve(dirname(fileURLToPath(import.meta.url)), '../../../bench/results/scale-latest.json'),
};

async function main(): Promise<void> {
  Logger.overrideLogger(new QuietLogger());
  let redis: BenchRedis | undefined;
  const abort = (reason: string, code: number) => {
    process.stderr.write(`bench:scale ${reason}\n`);
    // The throw-away redis-server and cluster nodes must not outlive the run.
    void Promise.allSettled([redis?.stop(), stopOpenClusters()]).finally(() => process.exit(code));
  };
  const guard = setTimeout(() => abort(`aborted after SCALE_MAX_SECONDS=${SETTINGS.maxSeconds}`, 1), SETTINGS.maxSeconds * 1_000);
  guard.unref();
  process.once('SIGINT', () => abort('interrupted', 130));
  process.once('SIGTERM', () => abort('terminated', 143));

  redis = await BenchRedis.start();
  const cpu = cpus();
  const header =
    `machine: ${cpu.length} cores (${cpu[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 1024 ** 3)} GB, load ` +
    `${loadavg().map((l) => l.toFixed(2)).join(' ')}; node ${process.version}; redis-server ${await redis.version()} ` +
    `(${redis.isOwn ? 'throw-away instance, no persistence' : 'SCALE_REDIS_URL'})`;
  console.log('nestjs-redis-streams-enterprise scale measurements');
  console.log(header);
  const started = Date.now();
  const reports: ScenarioReport[] = [];
  try {
    for (const scenario of SETTINGS.scenarios) {
      console.log(`\n${scenario}:`);
      if (scenario === 'topics') reports.push(await measureTopics(redis, SETTINGS.topics));
      if (scenario === 'groups') reports.push(await measureFanout(redis, SETTINGS.groups));
      if (scenario === 'large') reports.push(await measureLargeMessages(redis, SETTINGS.payloadMb));
      if (scenario === 'cluster') reports.push(await measureClusterTopics(SETTINGS.clusterTopics));
      if (scenario === 'partitions') reports.push(await measurePartitions(redis, SETTINGS.partitions));
      if (scenario === 'cluster-partitions') reports.push(await measureClusterPartitions(SETTINGS.clusterPartitions));
    }
  } finally {
    await redis.stop();
  }
  for (const report of reports) {
    console.log(`\n${report.name}\n`);
    console.log(report.table);
    for (const note of report.notes) console.log(`  - ${note}`);
  }
  console.log(`\ntotal ${((Date.now() - started) / 1_000).toFixed(0)} s`);
  mkdirSync(dirname(SETTINGS.resultsFile), { recursive: true });
  writeFileSync(SETTINGS.resultsFile, JSON.stringify({ at: new Date().toISOString(), header, reports }, null, 2));
  console.log(`results: ${SETTINGS.resultsFile}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
