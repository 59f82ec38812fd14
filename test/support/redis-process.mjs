// Plain JavaScript so that jest's globalSetup (loaded without the TypeScript transform) can use it too.
// Types: redis-process.d.mts.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A free TCP port on the loopback interface, as the OS hands it out. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const INSTALL_HINT =
  'redis-server was not found on PATH. Install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), ' +
  'or start one with `docker compose up -d redis` and run the tests with REDIS_URL=redis://127.0.0.1:6379/0.';

export function assertRedisServerInstalled() {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) throw new Error(INSTALL_HINT);
}

function redisCli(port, ...args) {
  return spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout ?? '';
}

/**
 * A throw-away redis-server owned by whoever started it: its own free port and data directory, and a run id
 * checked after start (another process could have taken the port in between).
 */
export class RedisProcess {
  #child;
  #extraArgs;

  constructor(port, extraArgs) {
    this.port = port;
    this.#extraArgs = extraArgs;
    this.dir = mkdtempSync(join(tmpdir(), 'rse-redis-'));
    this.runId = '';
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(options = {}) {
    assertRedisServerInstalled();
    const args = [
      // AOF with fsync on every write: a test that restarts Redis must find everything Redis acknowledged.
      ...(options.appendonly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
      ...(options.args ?? []),
    ];
    const redis = new RedisProcess(options.port ?? (await freePort()), args);
    await redis.#spawnServer();
    return redis;
  }

  get pid() {
    return this.#child?.pid;
  }

  async #spawnServer() {
    const logfile = join(this.dir, 'redis.log');
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--dir', this.dir, '--logfile', logfile, ...this.#extraArgs],
      { stdio: 'ignore' },
    );
    this.#child = child;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`redis-server exited at start (port ${this.port}); see ${logfile}`);
      const info = redisCli(this.port, 'INFO', 'server');
      const runId = /run_id:(\w+)/.exec(info)?.[1];
      if (runId && /process_id:(\d+)/.exec(info)?.[1] === String(child.pid) && !/loading:1/.test(redisCli(this.port, 'INFO', 'persistence'))) {
        this.runId = runId;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    child.kill('SIGKILL');
    throw new Error(`redis-server did not become ready on port ${this.port}; see ${logfile}`);
  }

  /** SIGKILL: no shutdown, no final save. */
  async kill() {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** Starts again on the same port with the same data directory. */
  async restart() {
    await this.kill();
    await this.#spawnServer();
  }

  /** Stops the server and removes its data. */
  async stop() {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
