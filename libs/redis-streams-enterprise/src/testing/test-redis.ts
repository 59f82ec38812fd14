import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRedisStartError } from '../errors/test-redis-start.error.js';

/** A Redis for a test run: the one REDIS_URL names, or a throw-away `redis-server` this process started. */
export interface TestRedis {
  /** `redis://…` to pass to `testConfig()` (or `connection.url`). */
  readonly url: string;
  /** True when `startTestRedis()` spawned the server (and `stop()` kills it); false for a reused URL. */
  readonly isSpawned: boolean;
  /** Process id of the spawned server; undefined for a reused URL. */
  readonly pid: number | undefined;
  /**
   * Kills a spawned server, waits for it to exit and removes its data directory; does nothing for a reused URL.
   * Idempotent. Call it in `afterAll`.
   */
  stop(): Promise<void>;
}

/** Where `startTestRedis()` finds its Redis. */
export interface StartTestRedisOptions {
  /** A Redis to use as it is (nothing is started or stopped). @default env.REDIS_URL */
  readonly url?: string;
  /** Environment read for `REDIS_URL` when `url` is not given; pass `{}` to always spawn a server. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The executable to spawn. @default 'redis-server' (looked up on PATH) */
  readonly redisServerPath?: string;
  /** Longest wait for the spawned server to accept connections. @default 10000 */
  readonly startTimeoutMs?: number;
}

const READY_LINE = /Ready to accept connections/;
const PORT_TAKEN = /Address already in use/i;
/** Another process may take the free port between our probe and redis-server's bind: try a few ports. */
const MAX_PORT_ATTEMPTS = 5;
/** Server output kept for error messages (the tail of it). */
const MAX_OUTPUT_CHARS = 4_000;

/**
 * A Redis for tests: `url`, else `REDIS_URL` from `env`, else a throw-away `redis-server` (from PATH) on a free
 * loopback port, without persistence (`--save ''`, `--appendonly no`) and with its own temporary directory. Nothing
 * of it outlives `stop()`: the server is killed and waited for, and no timer of this module stays behind.
 *
 * ```ts
 * let redis: TestRedis;
 * beforeAll(async () => { redis = await startTestRedis(); });
 * afterAll(() => redis.stop());
 * ```
 * @throws TestRedisStartError when no URL is given and redis-server is not installed, exits at start, or does not
 * accept connections within `startTimeoutMs`.
 */
export async function startTestRedis(options: StartTestRedisOptions = {}): Promise<TestRedis> {
  const url = options.url || (options.env ?? process.env).REDIS_URL;
  if (url) return { url, isSpawned: false, pid: undefined, stop: () => Promise.resolve() };
  const dir = await mkdtemp(join(tmpdir(), 'rse-test-redis-'));
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await freeLoopbackPort();
      const started = await spawnRedisServer(options.redisServerPath ?? 'redis-server', port, dir, options.startTimeoutMs ?? 10_000);
      if (started.kind === 'ready') return new SpawnedRedis(started.child, port, dir);
      if (started.kind === 'port-taken' && attempt < MAX_PORT_ATTEMPTS) continue;
      throw started.kind === 'port-taken' ? new TestRedisStartError('exited', `redis-server found no free port after ${attempt} tries`) : started.error;
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

class SpawnedRedis implements TestRedis {
  readonly isSpawned = true;
  private stopping?: Promise<void>;
  /** A test process that ends without stop() (a crash, a forgotten afterAll) must not leave the server running. */
  private readonly killOnExit = () => this.child.kill('SIGKILL');

  constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {
    process.once('exit', this.killOnExit);
    // A signal that cannot be delivered is reported as an 'error' event; the process is gone then, which is the goal.
    child.on('error', () => undefined);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      process.off('exit', this.killOnExit);
      await killAndWait(this.child);
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.stopping;
  }
}

type SpawnResult =
  | { readonly kind: 'ready'; readonly child: ChildProcess }
  | { readonly kind: 'port-taken' }
  | { readonly kind: 'failed'; readonly error: TestRedisStartError };

/** Starts redis-server and waits for its "Ready to accept connections" log line (it logs to stdout). */
function spawnRedisServer(executable: string, port: number, dir: string, startTimeoutMs: number): Promise<SpawnResult> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', ''];
  const child = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-MAX_OUTPUT_CHARS);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return new Promise<SpawnResult>((resolve) => {
    const finish = (result: SpawnResult) => {
      clearTimeout(timer);
      child.stdout?.off('data', onReady);
      child.off('error', onError);
      child.off('exit', onExit);
      resolve(result);
    };
    const onReady = () => {
      if (READY_LINE.test(output)) finish({ kind: 'ready', child });
    };
    const onError = (error: NodeJS.ErrnoException) => {
      const detail =
        error.code === 'ENOENT' ? `${executable} was not found on PATH` : `${executable} could not be run (${error.message})`;
      finish({ kind: 'failed', error: new TestRedisStartError(error.code === 'ENOENT' ? 'not-installed' : 'exited', detail, { cause: error }) });
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      if (timedOut) {
        const detail = `redis-server did not accept connections on port ${port} within ${startTimeoutMs} ms: ${lastLines(output)}`;
        return finish({ kind: 'failed', error: new TestRedisStartError('timeout', detail) });
      }
      if (PORT_TAKEN.test(output)) return finish({ kind: 'port-taken' });
      const how = signal ? `signal ${signal}` : `code ${code}`;
      finish({ kind: 'failed', error: new TestRedisStartError('exited', `redis-server exited at start (${how}) on port ${port}: ${lastLines(output)}`) });
    };
    // Not ready in time: kill it (onExit then reports the timeout), so a half-started server is not left behind.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, startTimeoutMs);
    timer.unref();
    child.stdout?.on('data', onReady);
    child.once('error', onError);
    child.once('exit', onExit);
  });
}

/** SIGKILL (the server keeps no data worth a clean shutdown) and wait until the process is gone. */
function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function lastLines(output: string): string {
  const lines = output.trim().split('\n').slice(-3).join(' | ');
  return lines || '(no output)';
}

/** A TCP port on 127.0.0.1 that was free a moment ago (never 6379, which may be a developer's own Redis). */
async function freeLoopbackPort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (port !== 6379 && port !== 0) return port;
  }
}
