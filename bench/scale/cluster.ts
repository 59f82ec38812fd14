/**
 * A throw-away local Redis Cluster for the scale scripts (the tests' harness, test/support/redis-cluster.mjs), with
 * what the scripts sample on it: INFO counters, commandstats, memory and connected clients summed over the masters,
 * GETs routed by slot, and the doorbell's ring count. No library import here.
 */
import { Cluster, Redis } from 'ioredis';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { LibraryConnection, MeasuredRedis, RedisCounters } from './common.js';

interface ClusterHarness {
  readonly nodes: { host: string; port: number }[];
  stop(): Promise<void>;
}

/** Clusters started and not stopped yet, so an aborted run can stop them (their redis-servers are not our children's children). */
const openClusters = new Set<ClusterHarness>();

/** Stops every cluster still running (run.ts calls it when the run is aborted). */
export async function stopOpenClusters(): Promise<void> {
  await Promise.all([...openClusters].map((c) => c.stop()));
  openClusters.clear();
}

process.once('exit', () => {
  // Last resort: stop() sends its SIGKILLs synchronously, only the removal of the data directories is lost.
  for (const cluster of openClusters) void cluster.stop();
});

/** The tests' cluster harness, plain JavaScript outside the compiled tree: loaded from the repository at run time. */
async function startHarness(masters: number): Promise<ClusterHarness> {
  const here = dirname(fileURLToPath(import.meta.url)); // dist/bench/scale
  const harness = resolve(here, '../../../test/support/redis-cluster.mjs');
  const { RedisCluster } = (await import(pathToFileURL(harness).href)) as {
    RedisCluster: { start(options: { masters: number }): Promise<ClusterHarness> };
  };
  return RedisCluster.start({ masters });
}

function infoFields(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const at = line.indexOf(':');
    if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1);
  }
  return fields;
}

/** A local cluster of `masters` masters (no replicas) and admin connections to each of them. */
export class BenchCluster implements MeasuredRedis {
  private constructor(
    private readonly harness: ClusterHarness,
    /** One plain connection per master, for INFO. */
    private readonly masters: Redis[],
    /** Routed by slot, for reading keys. */
    private readonly router: Cluster,
  ) {}

  static async start(masters: number): Promise<BenchCluster> {
    const harness = await startHarness(masters);
    openClusters.add(harness);
    const admins = harness.nodes.map((n) => new Redis(n.port, n.host, { maxRetriesPerRequest: 1 }));
    const router = new Cluster(harness.nodes, { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 1 } });
    const cluster = new BenchCluster(harness, admins, router);
    try {
      // Every admin connection open before anything is measured: connection counts then show only the library's.
      await router.connect();
      await Promise.all([...admins, ...router.nodes('master')].map((node) => node.ping()));
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  get nodes(): { host: string; port: number }[] {
    return this.harness.nodes;
  }

  get connection(): LibraryConnection {
    return { cluster: { nodes: this.harness.nodes.map((n) => ({ host: n.host, port: n.port })) } };
  }

  private async infoOfEach(section: string): Promise<Record<string, string>[]> {
    return Promise.all(this.masters.map(async (m) => infoFields(await m.info(section))));
  }

  async counters(): Promise<RedisCounters> {
    const [stats, cpu] = await Promise.all([this.infoOfEach('stats'), this.infoOfEach('cpu')]);
    const sum = (rows: Record<string, string>[], ...names: string[]) =>
      rows.reduce((total, row) => total + names.reduce((s, n) => s + Number(row[n] ?? 0), 0), 0);
    return {
      at: Date.now(),
      commands: sum(stats, 'total_commands_processed'),
      netInputBytes: sum(stats, 'total_net_input_bytes'),
      netOutputBytes: sum(stats, 'total_net_output_bytes'),
      cpuSeconds: sum(cpu, 'used_cpu_user', 'used_cpu_sys'),
    };
  }

  async commandCalls(): Promise<Map<string, number>> {
    const calls = new Map<string, number>();
    for (const fields of await this.infoOfEach('commandstats')) {
      for (const [key, value] of Object.entries(fields)) {
        const n = /calls=(\d+)/.exec(value)?.[1];
        if (key.startsWith('cmdstat_') && n) calls.set(key.slice('cmdstat_'.length), (calls.get(key.slice('cmdstat_'.length)) ?? 0) + Number(n));
      }
    }
    return calls;
  }

  async usedMemory(): Promise<number> {
    return (await this.infoOfEach('memory')).reduce((sum, f) => sum + Number(f.used_memory ?? 0), 0);
  }

  /** Client connections on all masters (this object's own included). */
  async connectedClients(): Promise<number> {
    return (await this.infoOfEach('clients')).reduce((sum, f) => sum + Number(f.connected_clients ?? 0), 0);
  }

  async getMany(keys: string[]): Promise<(string | null)[]> {
    // Keys of many slots: one GET each (ioredis writes them without waiting for replies, so this is one round trip per node).
    return Promise.all(keys.map((key) => this.router.get(key)));
  }

  /** How many entries were ever added to a stream (XINFO STREAM entries-added, Redis 7+), or its length before 7.0. */
  async entriesAdded(stream: string): Promise<number> {
    const raw: unknown = await this.router.call('XINFO', 'STREAM', stream).catch(() => undefined); // no stream yet: nothing added
    const fields: Record<string, unknown> = {};
    if (Array.isArray(raw)) for (let i = 0; i + 1 < raw.length; i += 2) fields[String(raw[i])] = raw[i + 1];
    else if (raw instanceof Map) for (const [k, v] of raw) fields[String(k)] = v;
    else if (raw && typeof raw === 'object') Object.assign(fields, raw);
    return Number(fields['entries-added'] ?? fields.length ?? 0);
  }

  /** SCAN + UNLINK on each master (one key per UNLINK: the keys of one node span many slots). */
  async deletePrefix(prefix: string): Promise<number> {
    let deleted = 0;
    for (const master of this.masters) {
      let cursor = '0';
      do {
        const [next, keys] = await master.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5_000);
        cursor = next;
        const replies = await Promise.all(keys.map((key) => master.unlink(key)));
        deleted += replies.reduce((a, b) => a + b, 0);
      } while (cursor !== '0');
    }
    return deleted;
  }

  async stop(): Promise<void> {
    this.router.disconnect();
    for (const master of this.masters) master.disconnect();
    await this.harness.stop(); // throw-away nodes: their data goes with them
    openClusters.delete(this.harness);
  }
}
