import { Sleeper } from './sleeper.js';

/**
 * What a loop does with an error an iteration threw:
 * - `failure`: counts as a failure (the first after a success is reported through onFailing), and the next iteration
 *   comes after retryMs;
 * - `expected`: an interruption the loop is built for (a read ended on purpose, a group recreated): the failing state
 *   stays as it was, and the next iteration comes after the pause of that state.
 */
export type LoopErrorVerdict = 'failure' | 'expected';

/** A loop's state for health checks (BackgroundLoop.health()). */
export interface BackgroundLoopHealth {
  readonly running: boolean;
  /** Failed iterations in a row (0 when the last one completed). */
  readonly failures: number;
  /** When the current run of failures began (epoch ms); null when not failing. */
  readonly failingSinceMs: number | null;
  /** The last error of the current run of failures. */
  readonly lastError: unknown;
  /** How long the iteration in progress has run; null between iterations. */
  readonly busyMs: number | null;
}

export interface BackgroundLoopOptions {
  /**
   * Pause after an iteration that completed. 0: the next one starts at once (a loop that waits inside its iteration,
   * such as a blocking read); more: a periodic task.
   */
  readonly intervalMs: number | (() => number);
  /**
   * Pause after a failed iteration; a function gets the number of failures in a row (1 = the first) for a backoff.
   * @default intervalMs
   */
  readonly retryMs?: number | ((failures: number) => number);
  /** Sorts every error an iteration threw (side effects allowed: recreate a group, note that rings were missed). */
  readonly onError?: (error: unknown) => LoopErrorVerdict;
  /** The first failure after a success (or since start): log it here. Not called again until the loop recovered. */
  readonly onFailing?: (error: unknown) => void;
  /** The first iteration that completed after failures. */
  readonly onRecovered?: () => void;
}

/**
 * A background loop: runs `iteration` again and again until stop(), pausing `intervalMs` between iterations (with a
 * backoff while they fail). Every pause is a wakeable sleep on an `unref()`'d timer that stop() clears, so a loop
 * never keeps the process alive and close() never waits for a pause; stop() resolves once the iteration in progress
 * finished. An iteration's error never ends the loop: it goes to the callbacks, which hear of state changes only
 * (first failure, recovery), so a loop that fails every iteration does not flood the log.
 */
export class BackgroundLoop {
  private readonly sleeper = new Sleeper();
  private running = false;
  private stopping = false;
  private loop?: Promise<void>;
  private current?: Promise<boolean>;
  private failures = 0;
  /** When the current run of failures began, and its last error (for health reports). */
  private failingSince?: number;
  private lastError?: unknown;
  /** When the iteration in progress started. */
  private busySince?: number;
  /** Counts start() calls, so a loop stopped and started again never runs twice. */
  private generation = 0;

  constructor(
    private readonly iteration: () => Promise<void>,
    private readonly options: BackgroundLoopOptions,
  ) {}

  /** True from start() until stop(). */
  get isRunning(): boolean {
    return this.running;
  }

  /** True after a failed iteration until one completes. */
  get isFailing(): boolean {
    return this.failures > 0;
  }

  /**
   * What a health check needs to know: running, failures in a row (with when they began and the last error) and how
   * long the iteration in progress has run. `now` is the caller's clock (Date.now).
   */
  health(now: number = Date.now()): BackgroundLoopHealth {
    return {
      running: this.running,
      failures: this.failures,
      failingSinceMs: this.failures > 0 ? (this.failingSince ?? null) : null,
      lastError: this.failures > 0 ? this.lastError : undefined,
      busyMs: this.busySince === undefined ? null : Math.max(0, now - this.busySince),
    };
  }

  /**
   * Starts iterating (no-op while running): at once, or after the first interval (`afterInterval`, for a periodic
   * task whose owner ran the first iteration itself).
   */
  start(first: 'now' | 'afterInterval' = 'now'): void {
    if (this.running) return;
    this.running = true;
    this.stopping = false;
    this.loop = this.run(first === 'afterInterval', ++this.generation);
  }

  /** Ends the pause in progress, so the next iteration starts now (also ends sleep() calls of the iteration). */
  wake(): void {
    this.sleeper.wake();
  }

  /** A pause inside an iteration that wake() and stop() end early. */
  sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return this.sleeper.sleep(ms);
  }

  /**
   * Runs one iteration now with the loop's error handling, or joins the one in progress (also before start(), for an
   * owner that runs the first one itself). The loop's own pause is not changed. Never rejects.
   */
  runNow(): Promise<void> {
    return this.shared().then(() => undefined);
  }

  /**
   * Stops: no further iteration starts, a pause ends at once, and the result resolves once the iteration in progress
   * (if any) finished. Idempotent; an error thrown after stop() is not reported.
   */
  async stop(): Promise<void> {
    this.running = false;
    this.stopping = true;
    this.sleeper.wake();
    await this.loop;
    await this.current;
  }

  private async run(afterInterval: boolean, generation: number): Promise<void> {
    const live = () => this.running && generation === this.generation;
    if (afterInterval) await this.sleeper.sleep(this.intervalMs());
    while (live()) {
      const errored = await this.shared();
      if (!live()) break;
      const pauseMs = this.failures > 0 ? this.retryMs() : this.intervalMs();
      // After an error the loop always yields to the timers, even for 0 ms: an error that repeats at once (a refused
      // command) must not keep the event loop busy. A completed iteration with no interval goes on at once.
      if (pauseMs > 0 || errored) await this.sleeper.sleep(pauseMs);
    }
  }

  /** The iteration in progress, or a new one. */
  private shared(): Promise<boolean> {
    this.current ??= this.runIteration().finally(() => {
      this.current = undefined;
    });
    return this.current;
  }

  /** Resolves true when the iteration threw (and the error was handled), false when it completed. */
  private async runIteration(): Promise<boolean> {
    this.busySince = Date.now();
    try {
      await this.iteration();
    } catch (error) {
      if (this.stopping) return true; // stopping interrupts what the iteration waited for: not a failure
      if ((this.options.onError?.(error) ?? 'failure') === 'failure') {
        this.lastError = error;
        if (++this.failures === 1) {
          this.failingSince = Date.now();
          this.options.onFailing?.(error);
        }
      }
      return true;
    } finally {
      this.busySince = undefined;
    }
    if (this.failures > 0 && !this.stopping) {
      this.failures = 0;
      this.lastError = undefined;
      this.options.onRecovered?.();
    }
    return false;
  }

  private intervalMs(): number {
    const { intervalMs } = this.options;
    return typeof intervalMs === 'function' ? intervalMs() : intervalMs;
  }

  private retryMs(): number {
    const { retryMs } = this.options;
    if (retryMs === undefined) return this.intervalMs();
    return typeof retryMs === 'function' ? retryMs(this.failures) : retryMs;
  }
}

/** A retryMs that doubles from `initialMs` with every failure in a row, up to `maxMs`. */
export function doublingBackoff(initialMs: number, maxMs: number): (failures: number) => number {
  return (failures) => Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(0, failures - 1), 30));
}
