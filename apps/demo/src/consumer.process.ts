import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The compiled example consumer, next to this file in dist/apps/. */
export const CONSUMER_ENTRY = fileURLToPath(new URL('../../example-consumer/src/main.js', import.meta.url));

export interface ConsumerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Milliseconds from SIGTERM to exit (undefined when it exited on its own). */
  readonly stopMs?: number;
}

/**
 * The example consumer as a separate Node process, so producer and consumer really talk only through Redis.
 * Its log lines are forwarded with a `[consumer]` prefix.
 */
export class ConsumerProcess {
  readonly exited: Promise<ConsumerExit>;
  private exit?: ConsumerExit;
  private termSentAt?: number;
  private readonly killOnExit = () => this.child.kill('SIGKILL');

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = {
          code,
          signal,
          stopMs: this.termSentAt === undefined ? undefined : Date.now() - this.termSentAt,
        };
        process.removeListener('exit', this.killOnExit);
        resolve(this.exit);
      });
    });
    process.once('exit', this.killOnExit);
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => process.stdout.write(`  [consumer] ${line}\n`));
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.exit !== undefined;
  }

  /** @throws Error when the consumer has not been built. */
  static start(env: NodeJS.ProcessEnv): ConsumerProcess {
    if (!existsSync(CONSUMER_ENTRY)) {
      throw new Error(`${CONSUMER_ENTRY} does not exist; build first (npm run build)`);
    }
    return new ConsumerProcess(spawn(process.execPath, [CONSUMER_ENTRY], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** Sends SIGTERM and waits for the exit; SIGKILL after `timeoutMs` (then the exit is not clean). */
  async stop(timeoutMs: number): Promise<ConsumerExit & { readonly timedOut: boolean }> {
    if (this.exit) return { ...this.exit, timedOut: false };
    this.termSentAt = Date.now();
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) this.child.kill('SIGKILL');
    return { ...(await this.exited), timedOut };
  }
}
