import { execFile } from 'node:child_process';
import { Redis, Cluster } from 'ioredis';
import { RedisProcess } from '../support/redis-process.mjs';
import { RedisCluster, keySlot } from '../support/redis-cluster.mjs';
import { TcpProxy, type ProxyMode } from '../support/tcp-proxy.js';
import type { SoakConnection } from './workload.js';

export type TopologyName = 'single' | 'replicated' | 'cluster';

/** Redis-side faults a topology offers (the nemesis draws from these). */
export type RedisFault = 'redis-kill' | 'failover' | 'switchover' | 'cluster-kill-primary' | 'cluster-migrate-slot';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function cli(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 5_000 }, (_e, stdout) => resolve(stdout ?? ''));
  });
}

/**
 * The Redis the soak runs against, started by the harness, with AOF on every node (`appendfsync always`, see README:
 * a process kill cannot tell it from everysec, but it is the setting under which "resolved emit = durable" holds even
 * for a host crash, and at the soak's few hundred writes per second its cost does not matter).
 *
 * - single: one redis-server; clients reach it through a fault-injecting TCP proxy.
 * - replicated: a primary and a replica, clients through the proxy, which is retargeted on promotion (a virtual IP);
 *   emits wait for one replica (connection.waitReplicas: 1), so a promotion may not lose a resolved emit.
 * - cluster: 3 masters with a replica each; clients connect to the nodes directly (redirections name real ports, so
 *   there is no proxy); faults are primary kills (replica promotion) and slot migrations.
 */
export class SoakTopology {
  proxy?: TcpProxy;
  private nodes: RedisProcess[] = [];
  private primary = 0;
  cluster?: RedisCluster;
  /** Serialises Redis-side faults: two at once (a failover during a restart) would test the harness, not the library. */
  private lock: Promise<unknown> = Promise.resolve();

  private constructor(readonly name: TopologyName) {}

  static async start(name: TopologyName): Promise<SoakTopology> {
    const t = new SoakTopology(name);
    if (name === 'cluster') {
      t.cluster = await RedisCluster.start({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1_000, appendonly: true });
      return t;
    }
    const primary = await RedisProcess.start({ appendonly: true });
    t.nodes.push(primary);
    if (name === 'replicated') {
      t.nodes.push(await RedisProcess.start({ appendonly: true, args: ['--replicaof', '127.0.0.1', String(primary.port)] }));
      await t.waitInSync();
    }
    t.proxy = await TcpProxy.start('127.0.0.1', primary.port);
    return t;
  }

  /** What the workload processes connect to. */
  get clientConnection(): SoakConnection {
    if (this.cluster) return { cluster: { nodes: this.cluster.nodes } };
    return { url: (this.proxy as TcpProxy).url };
  }

  /** A connection that bypasses the proxy (the checker, after healing). */
  directRedis(): Redis | Cluster {
    if (this.cluster) return new Cluster(this.cluster.nodes, { redisOptions: { maxRetriesPerRequest: 3 } });
    return new Redis(this.nodes[this.primary].port, '127.0.0.1', { maxRetriesPerRequest: 3 });
  }

  /** Masters to SCAN (the checker scans every one). */
  async scanNodes(): Promise<Redis[]> {
    if (!this.cluster) return [new Redis(this.nodes[this.primary].port, '127.0.0.1')];
    const masters = (await this.cluster.topology()).filter((n) => n.role === 'master' && !n.failed && n.slots.length > 0);
    return masters.map((m) => new Redis(m.port, m.host));
  }

  get redisFaults(): RedisFault[] {
    if (this.name === 'single') return ['redis-kill'];
    if (this.name === 'replicated') return ['failover', 'switchover', 'redis-kill'];
    return ['cluster-kill-primary', 'cluster-migrate-slot'];
  }

  setProxy(mode: ProxyMode | 'halfopen'): void {
    if (!this.proxy) return;
    if (mode === 'halfopen') this.proxy.halfOpen();
    else this.proxy.setMode(mode);
  }

  /** Runs one Redis-side fault to its end (restart included); returns what happened, for the log. */
  runRedisFault(fault: RedisFault, downMs: number, pick: number): Promise<string> {
    const run = this.lock.then(() => this.redisFault(fault, downMs, pick));
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async redisFault(fault: RedisFault, downMs: number, pick: number): Promise<string> {
    if (fault === 'redis-kill') {
      // replicated: the replica (a primary kill is a failover); single: the only node.
      const index = this.name === 'replicated' ? 1 - this.primary : 0;
      const node = this.nodes[index];
      await node.kill();
      await sleep(downMs);
      await node.restart();
      if (this.name === 'replicated') {
        await cli(node.port, 'REPLICAOF', '127.0.0.1', String(this.nodes[this.primary].port));
        await this.waitInSync();
      }
      return `redis :${node.port} kill -9, restarted with its AOF after ${downMs} ms`;
    }
    if (fault === 'failover' || fault === 'switchover') {
      const old = this.nodes[this.primary];
      const next = this.nodes[1 - this.primary];
      if (fault === 'failover') await old.kill();
      else {
        // Graceful: hold client traffic, let the replica catch up, then promote it.
        this.proxy?.setMode('stall');
        try {
          await this.waitInSync(true);
        } catch (error) {
          this.proxy?.setMode('pass'); // no switchover: never leave the link black-holed
          throw error;
        }
      }
      await cli(next.port, 'REPLICAOF', 'NO', 'ONE');
      this.primary = 1 - this.primary;
      this.proxy?.retarget('127.0.0.1', next.port);
      if (fault === 'switchover') this.proxy?.setMode('pass');
      else await sleep(downMs);
      if (fault === 'failover') await old.restart();
      await cli(old.port, 'REPLICAOF', '127.0.0.1', String(next.port));
      await this.waitInSync();
      return `${fault}: :${next.port} promoted, :${old.port} ${fault === 'failover' ? 'killed, restarted and ' : ''}now its replica`;
    }
    const cluster = this.cluster as RedisCluster;
    if (fault === 'cluster-kill-primary') {
      const masters = (await cluster.topology()).filter((n) => n.role === 'master' && !n.failed && n.slots.length > 0);
      const victim = masters[pick % masters.length];
      await cluster.kill(victim);
      let failover: { master: { port: number }; tookMs: number };
      try {
        failover = await cluster.waitForFailover(victim, { timeoutMs: 30_000 });
        await sleep(downMs);
      } finally {
        // Also when the failover could not be observed: a node left dead would fail every later heal.
        if (!cluster.isAlive(victim)) await cluster.restart(victim);
      }
      await cluster.waitForReplicas({ timeoutMs: 30_000 });
      return `cluster primary :${victim.port} kill -9; :${failover.master.port} promoted in ${failover.tookMs} ms; old one back as replica`;
    }
    // Slot migration: the slot of one of the workload's partition streams, moved to another master.
    const topics = ['soak.plain', 'soak.checked', 'soak.keyed#0', 'soak.keyed#1', 'soak.keyed#2', 'soak.global#0'];
    const slot = keySlot(`{${topics[pick % topics.length]}}`);
    const masters = (await cluster.topology()).filter((n) => n.role === 'master' && !n.failed && n.slots.length > 0);
    const source = masters.find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b));
    const target = masters.find((m) => m !== source);
    if (!source || !target) return `slot ${slot}: no source/target (skipped)`;
    const moved = await migrateSlot(slot, source, target, masters);
    return `slot ${slot} ({${topics[pick % topics.length]}}) migrated :${source.port} -> :${target.port}, ${moved} keys`;
  }

  /** Every fault undone: proxy passes, every node runs, the replica is in sync. */
  async heal(): Promise<void> {
    await this.lock;
    this.proxy?.setMode('pass');
    if (this.cluster) {
      for (const node of this.cluster.nodes) if (!this.cluster.isAlive(node)) await this.cluster.restart(node);
      await this.cluster.waitForReplicas({ timeoutMs: 30_000 });
    }
    if (this.name === 'replicated') await this.waitInSync();
  }

  /**
   * Waits until the replica is online and linked; `exact` (a switchover, writes held) also until it has every byte
   * the primary has. Under live writes the offsets rarely match at one instant, so otherwise a link that is up is enough.
   */
  private async waitInSync(exact = false, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const primary = this.nodes[this.primary];
      const replica = this.nodes[1 - this.primary];
      const info = await cli(primary.port, 'INFO', 'replication');
      const offset = /master_repl_offset:(\d+)/.exec(info)?.[1];
      const rinfo = await cli(replica.port, 'INFO', 'replication');
      const online = new RegExp(`slave0:.*port=${replica.port},state=online,offset=(\\d+)`).exec(info);
      if (/master_link_status:up/.test(rinfo) && online && (!exact || online[1] === offset)) return;
      await sleep(100);
    }
    throw new Error('replica did not get in sync within 30 s');
  }

  async stop(): Promise<void> {
    await this.proxy?.close();
    for (const node of this.nodes) await node.stop();
    await this.cluster?.stop();
  }
}

/** Moves one slot from `source` to `target` the way `redis-cli --cluster reshard` does (as cluster-resharding.e2e-spec). */
async function migrateSlot(
  slot: number,
  source: { id: string; host: string; port: number },
  target: { id: string; host: string; port: number },
  masters: { id: string; host: string; port: number }[],
): Promise<number> {
  const connect = (n: { host: string; port: number }) => new Redis({ host: n.host, port: n.port, maxRetriesPerRequest: 1 });
  const src = connect(source);
  const dst = connect(target);
  let moved = 0;
  try {
    await dst.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', source.id);
    await src.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', target.id);
    for (;;) {
      const keys = (await src.call('CLUSTER', 'GETKEYSINSLOT', String(slot), '10')) as string[];
      if (keys.length === 0) break;
      await src.call('MIGRATE', target.host, String(target.port), '', '0', '10000', 'KEYS', ...keys);
      moved += keys.length;
    }
    await dst.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id);
    await src.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id);
    for (const m of masters) {
      if (m.id === source.id || m.id === target.id) continue;
      const other = connect(m);
      try {
        await other.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id);
      } finally {
        other.disconnect();
      }
    }
  } finally {
    src.disconnect();
    dst.disconnect();
  }
  return moved;
}
