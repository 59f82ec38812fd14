import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { sleep } from './protocol.js';

/** A free loopback TCP port, as the OS hands it out (never 6379 unless the OS picks it). */
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

/** A throw-away redis-server owned by the benchmark: own port, own temp dir, no persistence. */
export class BenchRedisServer {
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {}

  static async start(): Promise<BenchRedisServer> {
    const port = await freePort();
    if (port === 6379) throw new Error('the OS offered port 6379; refusing to use it, run again');
    const dir = mkdtempSync(join(tmpdir(), 'rse-bench-redis-'));
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', join(dir, 'redis.log')],
      { stdio: 'ignore' },
    );
    const server = new BenchRedisServer(`redis://127.0.0.1:${port}`, child, dir);
    const spawnError = new Promise<never>((_, reject) =>
      child.once('error', (error) => reject(new Error(`could not start redis-server (is it on PATH?): ${error.message}`))),
    );
    await Promise.race([server.waitUntilReady(), spawnError]);
    return server;
  }

  private async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`redis-server exited at start; see ${this.dir}/redis.log`);
      const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false });
      probe.on('error', () => undefined); // refused while redis-server starts; connect() rejects with the same error
      try {
        await probe.connect();
        await probe.ping();
        return;
      } catch {
        // not accepting connections yet; try again shortly
      } finally {
        probe.disconnect();
      }
      await sleep(50);
    }
    throw new Error(`redis-server did not answer PING within 10 s at ${this.url}`);
  }

  /** Stops the server (SIGTERM to the process this class started) and removes its directory. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      await Promise.race([exited, sleep(5_000)]);
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last-resort clean-up for process exit. */
  killNow(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
