// Plain JavaScript, like redis-process.mjs. Types: redis-cluster.d.mts.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertRedisServerInstalled, freePort } from './redis-process.mjs';

/** Redis Cluster hash slot of a key: the function ioredis routes with (a dependency of ioredis; CommonJS, no types). */
export const keySlot = createRequire(import.meta.url)('cluster-key-slot');

function redisCliSync(port, ...args) {
  return spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8' }).stdout ?? '';
}

/**
 * Asynchronous redis-cli, for everything that runs while Nest apps share the test's process: a synchronous child
 * process would freeze their event loop (and the failover timings measured around it) for its whole run.
 * Resolves with stdout; a node that is down answers '' (redis-cli prints its error on stderr).
 */
function redisCli(port, ...args) {
  return new Promise((resolve) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 5_000 }, (_error, stdout) =>
      resolve(stdout ?? ''),
    );
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** True for a CLUSTER NODES reply (every line starts with a 40-hex node id and has an address), not an error. */
function isClusterNodes(text) {
  const lines = text.split('\n').map((line) => line.trim()).filter(Boolean);
  return lines.length > 0 && lines.every((line) => /^[0-9a-f]{40} \S*:\d+@\d+\S* \S+ \S+ \d+ \d+ \d+ \S+/.test(line));
}

/**
 * One line of CLUSTER NODES: `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`.
 * Slots in migration (`[1234->-id]`) are left out: only stable ownership matters here.
 */
function parseClusterNodes(text) {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [id, address, flagText, master, , , epoch, link, ...slotTokens] = line.split(' ');
      const [host, rest] = address.split(/:(?=\d)/);
      const port = Number(rest.split('@')[0]);
      const flags = flagText.split(',');
      const slots = slotTokens
        .filter((token) => !token.startsWith('['))
        .map((token) => {
          const [from, to] = token.split('-').map(Number);
          return [from, to ?? from];
        });
      return {
        id,
        host,
        port,
        flags,
        role: flags.includes('master') ? 'master' : 'replica',
        masterId: master === '-' ? null : master,
        configEpoch: Number(epoch),
        failed: flags.includes('fail') || flags.includes('fail?'),
        connected: link === 'connected',
        myself: flags.includes('myself'),
        slots,
      };
    });
}

/** CLUSTER NODES of one node, parsed; null while it answers something else (LOADING after a restart, no answer). */
async function nodesSeenBy(port) {
  const text = await redisCli(port, 'CLUSTER', 'NODES');
  return isClusterNodes(text) ? parseClusterNodes(text) : null;
}

function ownsSlot(node, slot) {
  return node.slots.some(([from, to]) => slot >= from && slot <= to);
}

/**
 * A throw-away Redis Cluster on free loopback ports, each node in its own temp directory: `masters` masters (3 by
 * default) and `replicasPerMaster` replicas of each (0 by default). `stop()` kills every node and removes its data.
 *
 * Failover helpers for tests: `masterOf(key)` → `kill(node)` (SIGKILL) → `waitForFailover(node)` (a replica was
 * promoted and every live node agrees) → `restart(node)` + `waitForReplicas()` (the old master came back as a
 * replica of the new one). With `nodeTimeoutMs: 1000` a promotion takes about 2 to 3 s on a loopback interface.
 */
export class RedisCluster {
  /** Port → child process, for the nodes this cluster started (a restart replaces the entry). */
  #children = new Map();
  /** Port → data directory. */
  #dirs = new Map();
  #args = [];
  /** Port → what the node was (id, role, slots) when it was killed; waitForFailover compares against it. */
  #killed = new Map();
  #masters = 3;
  #replicasPerMaster = 0;

  constructor() {
    this.nodes = [];
  }

  static async start(options = {}) {
    assertRedisServerInstalled();
    const cluster = new RedisCluster();
    try {
      await cluster.#start(options);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  async #start({ masters = 3, replicasPerMaster = 0, nodeTimeoutMs = 2_000, appendonly = false, args = [] }) {
    this.#masters = masters;
    this.#replicasPerMaster = replicasPerMaster;
    this.#args = [
      '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeoutMs),
      // A replica always stands for election, however long it lost its master (the default refuses after
      // node-timeout x 10, which a slow, shared test machine can reach).
      '--cluster-replica-validity-factor', '0',
      // Replicas sync at once instead of waiting 5 s for more replicas to share a diskless transfer.
      '--repl-diskless-sync-delay', '0',
      ...(appendonly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
      '--save', '',
      ...args,
    ];
    const total = masters * (1 + replicasPerMaster);
    for (let i = 0; i < total; i++) {
      const port = await freePort();
      this.#dirs.set(port, mkdtempSync(join(tmpdir(), 'rse-cluster-')));
      this.nodes.push({ host: '127.0.0.1', port });
      this.#spawn(port);
    }
    await this.#waitFor('nodes to start', () => this.nodes.every((n) => this.#isServing(n.port)));
    // redis-cli takes the first `masters` addresses as masters (all on one host, it keeps the given order) and makes
    // the others their replicas.
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...this.nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'],
      { encoding: 'utf8' },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    await this.#waitFor('cluster_state:ok on every node', () =>
      this.nodes.every((n) => {
        const info = redisCliSync(n.port, 'CLUSTER', 'INFO');
        return /cluster_state:ok/.test(info) && /cluster_known_nodes:(\d+)/.exec(info)?.[1] === String(this.nodes.length);
      }),
    );
    if (replicasPerMaster > 0) await this.waitForReplicas();
  }

  #spawn(port) {
    const dir = this.#dirs.get(port);
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--logfile', join(dir, 'redis.log'), ...this.#args],
      { stdio: 'ignore' },
    );
    this.#children.set(port, child);
    return child;
  }

  /** True once the redis-server this cluster spawned on `port` answers (checked by pid: the port could be taken). */
  #isServing(port) {
    const child = this.#children.get(port);
    if (child.exitCode !== null) throw new Error(`redis-server exited at start; see ${join(this.#dirs.get(port), 'redis.log')}`);
    return /process_id:(\d+)/.exec(redisCliSync(port, 'INFO', 'server'))?.[1] === String(child.pid);
  }

  async #waitFor(what, ready, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const value = await ready();
      if (value) return value;
      await sleep(50);
    }
    throw new Error(`Redis Cluster: timed out after ${timeoutMs} ms waiting for ${what}`);
  }

  /** Nodes whose process is running (not killed). */
  get liveNodes() {
    return this.nodes.filter((n) => this.isAlive(n));
  }

  /** True while the node's redis-server process runs. */
  isAlive(node) {
    const child = this.#children.get(node.port);
    return Boolean(child) && child.exitCode === null && child.signalCode === null;
  }

  /** The data directory of a node (its redis.log is there). */
  dirOf(node) {
    return this.#dirs.get(node.port);
  }

  /**
   * CLUSTER NODES as one live node sees it (`from`, or the first live node): every node with id, host, port, role,
   * masterId, slots ([from, to] ranges), and whether it is flagged failed.
   */
  async topology(from) {
    const viewers = from ? [from] : this.liveNodes;
    if (viewers.length === 0) throw new Error('Redis Cluster: no live node to ask');
    // A node that was just restarted answers LOADING while it reads its AOF (the soak's primary kills failed on
    // parsing that as CLUSTER NODES): ask the next live node, or the same one again a little later.
    let last = '';
    for (let attempt = 0; attempt < 50; attempt++) {
      for (const viewer of viewers) {
        const text = await redisCli(viewer.port, 'CLUSTER', 'NODES');
        if (isClusterNodes(text)) return parseClusterNodes(text);
        last = `node ${viewer.port}: ${text.trim().slice(0, 200) || 'no answer'}`;
      }
      await sleep(100);
    }
    throw new Error(`Redis Cluster: no answer to CLUSTER NODES (${last})`);
  }

  /** The master serving a key (or a slot number), as the first live node sees it. */
  async masterOf(keyOrSlot) {
    const slot = typeof keyOrSlot === 'number' ? keyOrSlot : keySlot(keyOrSlot);
    const master = (await this.topology()).find((n) => n.role === 'master' && !n.failed && ownsSlot(n, slot));
    if (!master) throw new Error(`Redis Cluster: no live master serves slot ${slot}`);
    return master;
  }

  /** The replicas of a master (by the master's node info or id), as the first live node sees it. */
  async replicasOf(master) {
    const id = typeof master === 'string' ? master : master.id;
    return (await this.topology()).filter((n) => n.masterId === id);
  }

  /**
   * SIGKILL: no shutdown, no final save, connections reset. Remembers what the node was (id, role, slots), so that
   * `waitForFailover(node)` knows which slots must move.
   */
  async kill(node) {
    const child = this.#children.get(node.port);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const before = (await this.topology(node)).find((n) => n.myself);
    if (before) this.#killed.set(node.port, before);
    await new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /**
   * Waits until a replica of the killed master `node` was promoted: every live node reports cluster_state:ok, flags
   * the dead node as failed, and names one and the same live master for every slot the dead one served. Resolves
   * with that master and the time the promotion took since `kill()` returned.
   */
  async waitForFailover(node, { timeoutMs = 20_000 } = {}) {
    const dead = this.#killed.get(node.port);
    if (!dead) throw new Error(`Redis Cluster: node ${node.port} was not killed with kill()`);
    if (dead.role !== 'master' || dead.slots.length === 0) throw new Error(`Redis Cluster: node ${node.port} served no slots when killed`);
    const started = Date.now();
    const promoted = await this.#waitFor(
      `a replica of ${node.port} to take over its slots`,
      async () => {
        const live = this.liveNodes;
        const views = await Promise.all(live.map(async (n) => ({ info: await redisCli(n.port, 'CLUSTER', 'INFO'), nodes: await nodesSeenBy(n.port) })));
        // A node still loading its AOF has no view yet: ask again (the soak's primary kills failed on parsing it).
        if (views.some((view) => view.nodes === null)) return undefined;
        const owners = new Set();
        for (const view of views) {
          if (!/cluster_state:ok/.test(view.info)) return undefined;
          if (!view.nodes.find((n) => n.id === dead.id)?.failed) return undefined;
          for (const [from, to] of dead.slots) {
            for (const slot of [from, to]) {
              const owner = view.nodes.find((n) => n.role === 'master' && !n.failed && ownsSlot(n, slot));
              if (!owner || owner.id === dead.id) return undefined;
              owners.add(owner.id);
            }
          }
        }
        if (owners.size !== 1) return undefined;
        const [id] = owners;
        const promotedNode = views[0].nodes.find((n) => n.id === id);
        // The new master must itself know it is one (its own view has `myself,master`).
        const self = views[live.findIndex((n) => n.port === promotedNode.port)]?.nodes.find((n) => n.myself);
        return self?.role === 'master' ? promotedNode : undefined;
      },
      timeoutMs,
    );
    return { master: promoted, tookMs: Date.now() - started };
  }

  /**
   * Starts a killed node again on its port with its data directory (nodes.conf keeps its identity). A master that was
   * failed over comes back as a replica of the master that replaced it and resyncs from it (its own data, without
   * persistence, is gone; that is safe only because the failover happened first). Wait with `waitForReplicas()`.
   */
  async restart(node) {
    if (this.isAlive(node)) throw new Error(`Redis Cluster: node ${node.port} is running`);
    this.#spawn(node.port);
    await this.#waitFor(`node ${node.port} to restart`, () => this.#isServing(node.port));
    this.#killed.delete(node.port);
  }

  /**
   * Waits until every master has `replicasPerMaster` replicas that are connected and in sync (each replica's
   * `master_link_status:up`), every live node reports cluster_state:ok, and all live nodes agree on the roles.
   */
  async waitForReplicas({ timeoutMs = 20_000 } = {}) {
    const expected = this.#replicasPerMaster;
    await this.#waitFor(
      `${expected} synced replica(s) per master`,
      async () => {
        const live = this.liveNodes;
        const views = await Promise.all(
          live.map(async (n) => ({
            info: await redisCli(n.port, 'CLUSTER', 'INFO'),
            replication: await redisCli(n.port, 'INFO', 'replication'),
            nodes: await nodesSeenBy(n.port),
          })),
        );
        if (views.some((view) => view.nodes === null)) return false; // a node still loading its AOF: ask again
        const signature = (view) =>
          view.nodes
            .filter((n) => !n.failed)
            .map((n) => `${n.port}:${n.role}:${n.masterId ?? ''}`)
            .sort()
            .join(' ');
        const first = signature(views[0]);
        for (const view of views) {
          if (!/cluster_state:ok/.test(view.info) || signature(view) !== first) return false;
          const self = view.nodes.find((n) => n.myself);
          if (self?.role === 'replica' && !/master_link_status:up/.test(view.replication)) return false;
          if (self?.role === 'master' && self.slots.length > 0 && view.nodes.filter((n) => n.masterId === self.id && !n.failed).length < expected) return false;
        }
        return views[0].nodes.filter((n) => n.role === 'master' && !n.failed && n.slots.length > 0).length === this.#masters;
      },
      timeoutMs,
    );
  }

  /** Kills every node (SIGKILL) and removes their data. Idempotent. */
  async stop() {
    await Promise.all(
      [...this.#children.values()].map(
        (child) =>
          new Promise((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    for (const dir of this.#dirs.values()) rmSync(dir, { recursive: true, force: true });
  }
}
