import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const consumerScript = fileURLToPath(new URL('./consumer-process.mjs', import.meta.url));
/** A consumer of partitioned / ordered topics (see the comment at the top of ordered-consumer-process.mjs). */
export const orderedConsumerScript = fileURLToPath(new URL('./ordered-consumer-process.mjs', import.meta.url));

/** What test/support/consumer-process.mjs reports with STATS_MS set. */
export interface ConsumerStats {
  readonly heapUsed: number;
  readonly peakHeapUsed: number;
  readonly rss: number;
  readonly running: number;
  readonly maxRunning: number;
  readonly handled: number;
}

export interface ConsumerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Date.now() when the parent saw the exit. */
  readonly at: number;
}

/** Environment of consumer-process.mjs (see the comment at its top). */
export interface ConsumerEnv {
  PREFIX: string;
  GROUP: string;
  PATTERN: string;
  REDIS_URL?: string;
  HANDLER_MS?: string;
  CONCURRENCY?: string;
  CLAIM_IDLE_MS?: string;
  SHUTDOWN_TIMEOUT_MS?: string;
  CONSUMER_NAME?: string;
  NAME_LEASE_MS?: string;
  /** 'default': the plain app.enableShutdownHooks() (re-raises the signal); else with useProcessExit (exit 0). */
  SHUTDOWN_HOOKS?: 'default';
  DIE_AFTER_SIDE_EFFECT_OF?: string;
  STATS_MS?: string;
}

/**
 * A consumer-process.mjs child: a real Node process on the built library. Collects what it reports over IPC
 * (stats, the signal it received) and how it exited. Kill every one in a finally/afterAll with `kill()`.
 */
export class ConsumerProcess {
  /** Every stats report, in order. */
  readonly stats: ConsumerStats[] = [];
  /** The { signal, running } message the child sends when it receives SIGTERM/SIGINT. */
  signalled?: { signal: string; running: number };
  exit?: ConsumerExit;
  readonly exited: Promise<ConsumerExit>;

  private constructor(
    readonly child: ChildProcess,
    readonly name: string,
  ) {
    this.exited = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        this.exit ??= { code, signal, at: Date.now() };
        resolve(this.exit);
      };
      if (child.exitCode !== null || child.signalCode !== null) done(child.exitCode, child.signalCode);
      else child.once('exit', done);
    });
    child.on('message', (message: { stats?: ConsumerStats; signal?: string; running?: number }) => {
      if (message.stats) this.stats.push(message.stats);
      if (message.signal) this.signalled = { signal: message.signal, running: message.running ?? -1 };
    });
  }

  /** Forks a consumer and resolves once it is listening (it has joined the group and reads). */
  static start(env: ConsumerEnv | Record<string, string>, timeoutMs = 20_000, script = consumerScript): Promise<ConsumerProcess> {
    const child = fork(script, [], {
      env: { ...process.env, REDIS_URL: process.env.REDIS_URL, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`consumer process did not start listening within ${timeoutMs} ms`));
      }, timeoutMs);
      const onExit = (code: number | null, signal: string | null) => {
        clearTimeout(timer);
        reject(new Error(`consumer process exited before listening (code ${code}, signal ${signal})`));
      };
      child.once('exit', onExit);
      const onMessage = (message: { listening?: string }) => {
        if (typeof message.listening !== 'string') return;
        clearTimeout(timer);
        child.off('exit', onExit);
        child.off('message', onMessage);
        resolve(new ConsumerProcess(child, message.listening));
      };
      child.on('message', onMessage);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get isRunning(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends a signal (e.g. SIGTERM) without waiting; await `exited` for the outcome. */
  signal(signal: NodeJS.Signals): void {
    if (this.isRunning) this.child.kill(signal);
  }

  /** SIGKILL (no shutdown at all) and wait for the exit. Safe to call on an exited process. */
  async kill(): Promise<ConsumerExit> {
    this.signal('SIGKILL');
    return this.exited;
  }

  /** The highest heapUsed the child sampled, and the most handlers it ever ran at once. */
  get peakHeapUsed(): number {
    return Math.max(0, ...this.stats.map((s) => s.peakHeapUsed));
  }

  get maxRunning(): number {
    return Math.max(0, ...this.stats.map((s) => s.maxRunning));
  }
}
