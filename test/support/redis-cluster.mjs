// Plain JavaScript, like redis-process.mjs. Types: redis-cluster.d.mts.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertRedisServerInstalled, freePort } from './redis-process.mjs';

function redisCli(port, ...args) {
  return spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8' }).stdout ?? '';
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A throw-away Redis Cluster of three masters (no replicas) on free ports, each in its own temp directory.
 * `stop()` kills every node and removes its data.
 */
export class RedisCluster {
  #children = [];
  #dirs = [];

  constructor() {
    this.nodes = [];
  }

  static async start(options = {}) {
    assertRedisServerInstalled();
    const cluster = new RedisCluster();
    try {
      await cluster.#start(options.masters ?? 3);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  async #start(masters) {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'rse-cluster-'));
      this.#dirs.push(dir);
      const child = spawn(
        'redis-server',
        [
          '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--logfile', join(dir, 'redis.log'),
          '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000',
          '--appendonly', 'no', '--save', '',
        ],
        { stdio: 'ignore' },
      );
      this.#children.push(child);
      this.nodes.push({ host: '127.0.0.1', port });
    }
    await this.#waitFor('nodes to start', () =>
      this.#children.every((child, i) => {
        if (child.exitCode !== null) throw new Error(`redis-server exited at start; see ${join(this.#dirs[i], 'redis.log')}`);
        return /process_id:(\d+)/.exec(redisCli(this.nodes[i].port, 'INFO', 'server'))?.[1] === String(child.pid);
      }),
    );
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...this.nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8' },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    await this.#waitFor('cluster_state:ok on every node', () =>
      this.nodes.every((n) => {
        const info = redisCli(n.port, 'CLUSTER', 'INFO');
        return /cluster_state:ok/.test(info) && /cluster_known_nodes:(\d+)/.exec(info)?.[1] === String(this.nodes.length);
      }),
    );
  }

  async #waitFor(what, ready) {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (ready()) return;
      await sleep(50);
    }
    throw new Error(`Redis Cluster: timed out waiting for ${what}`);
  }

  /** Kills every node (SIGKILL) and removes their data. Idempotent. */
  async stop() {
    await Promise.all(
      this.#children.map(
        (child) =>
          new Promise((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    for (const dir of this.#dirs) rmSync(dir, { recursive: true, force: true });
  }
}
