import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export const REDIS_INSTALL_HINT = [
  'redis-server was not found on PATH. The demo starts a throw-away Redis when REDIS_URL is not set. Either install it:',
  '  Debian/Ubuntu: sudo apt-get install redis-server',
  '  macOS:         brew install redis',
  'or use a Redis you already run (no data is flushed; the demo only writes and then deletes keys under demo:*):',
  '  docker compose up -d redis && REDIS_URL=redis://127.0.0.1:6379 npm run demo',
].join('\n');

/** The redis-server version, or null when the binary is missing. */
export function redisServerVersion(): string | null {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return null;
  return /v=(\S+)/.exec(probe.stdout)?.[1] ?? 'unknown';
}

/** A TCP port that was free on 127.0.0.1 a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
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

/** One-shot connection that never retries: a probe should fail, not wait. */
function probeConnection(url: string): Redis {
  return new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 1_000 });
}

/** PING with a fresh connection; returns `INFO server` on success. */
export async function pingRedis(url: string): Promise<string> {
  const redis = probeConnection(url);
  redis.on('error', () => undefined); // the failure is reported by connect()/ping() below
  try {
    await redis.connect();
    await redis.ping();
    return await redis.info('server');
  } finally {
    redis.disconnect();
  }
}

const START_ATTEMPTS = 3;
const READY_TIMEOUT_MS = 10_000;

/**
 * A redis-server owned by the demo: its own free loopback port, an empty temporary directory, no persistence.
 * It never uses 6379 and never talks to a Redis it did not start (the PING answer must come from its own pid).
 */
export class ThrowawayRedis {
  private exited = false;
  private readonly killOnExit = () => this.child.kill('SIGKILL');

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly dir: string,
  ) {
    child.once('exit', () => (this.exited = true));
    // If the demo dies without running stop(), the server must not outlive it.
    process.once('exit', this.killOnExit);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** @throws Error when redis-server cannot be started (port taken three times, bad binary, ...). */
  static async start(): Promise<ThrowawayRedis> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'rse-demo-redis-'));
      const child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', join(dir, 'redis.log')],
        { stdio: 'ignore' },
      );
      const redis = new ThrowawayRedis(child, port, dir);
      try {
        await redis.waitUntilReady();
        return redis;
      } catch (error) {
        lastError = error;
        await redis.stop(); // another process may have taken the port between freePort() and spawn: try a new one
      }
    }
    throw lastError;
  }

  private async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    const spawnError = new Promise<never>((_, reject) => this.child.once('error', reject));
    spawnError.catch(() => undefined); // observed through the race below
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`redis-server exited at start on port ${this.port}: ${this.logTail()}`);
      try {
        const info = await Promise.race([pingRedis(this.url), spawnError]);
        if (/process_id:(\d+)/.exec(info)?.[1] === String(this.child.pid)) return;
        throw new Error(`port ${this.port} is answered by another Redis process`);
      } catch (error) {
        if (error instanceof Error && /another Redis process|ENOENT/.test(error.message)) throw error;
        // not listening yet: poll again
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`redis-server did not answer PING on port ${this.port} within ${READY_TIMEOUT_MS} ms: ${this.logTail()}`);
  }

  private logTail(): string {
    try {
      return readFileSync(join(this.dir, 'redis.log'), 'utf8').trim().split('\n').slice(-3).join(' | ');
    } catch {
      return '(no log)'; // the log does not exist when the binary failed before opening it
    }
  }

  /** SIGTERM (SIGKILL after 3 s), then removes the temporary directory. Idempotent. */
  async stop(): Promise<void> {
    process.removeListener('exit', this.killOnExit);
    if (!this.exited && this.child.exitCode === null && this.child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => this.child.kill('SIGKILL'), 3_000);
        this.child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        this.child.kill('SIGTERM');
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
