import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { BackgroundLoop, doublingBackoff, type BackgroundLoopOptions } from './background-loop.js';
import { Sleeper } from './sleeper.js';

/*
 * Fake timers: a pause of the loop passes only when the test advances the clock, so "the next iteration has not
 * started yet" is a fact of the clock, not of a sleep. `advance` also runs the promise jobs the timers release.
 */

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** An iteration the test ends by hand: each call returns a new deferred the test settles. */
class Iterations {
  readonly calls: Deferred[] = [];

  constructor() {
    allIterations.push(this);
  }

  readonly run = (): Promise<void> => {
    const d = deferred();
    this.calls.push(d);
    return d.promise;
  };

  get count(): number {
    return this.calls.length;
  }

  last(): Deferred {
    const d = this.calls.at(-1);
    if (!d) throw new Error('no iteration started');
    return d;
  }
}

const advance = (ms: number) => jest.advanceTimersByTimeAsync(ms);
/** Runs pending promise jobs without moving the clock. */
const settle = () => jest.advanceTimersByTimeAsync(0);

let loops: BackgroundLoop[] = [];
let allIterations: Iterations[] = [];

function loopOf(iteration: () => Promise<void>, options: BackgroundLoopOptions): BackgroundLoop {
  const loop = new BackgroundLoop(iteration, options);
  loops.push(loop);
  return loop;
}

afterEach(async () => {
  const stopping = loops.map((l) => l.stop());
  // Iterations a test left running end now (settled twice is harmless), so every stop() can resolve.
  for (const iterations of allIterations) for (const call of iterations.calls) call.resolve();
  loops = [];
  allIterations = [];
  await Promise.all(stopping);
  jest.useRealTimers();
});

describe('BackgroundLoop: iterations and pauses', () => {
  it('runs the next iteration at once after one completed when intervalMs is 0', async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    const loop = loopOf(it$.run, { intervalMs: 0 });
    loop.start();
    expect(it$.count).toBe(1);
    it$.last().resolve();
    await settle();
    expect(it$.count).toBe(2);
    it$.last().resolve();
    await settle();
    expect(it$.count).toBe(3);
    expect(jest.getTimerCount()).toBe(0); // no timer between completed iterations
  });

  it('pauses intervalMs between periodic iterations, counted from the end of the previous one', async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    loopOf(it$.run, { intervalMs: 1_000 }).start();
    expect(it$.count).toBe(1);
    await advance(400); // the iteration takes 400 ms
    it$.last().resolve();
    await advance(999);
    expect(it$.count).toBe(1);
    await advance(1);
    expect(it$.count).toBe(2);
  });

  it("starts after the first interval with 'afterInterval'", async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    loopOf(it$.run, { intervalMs: 500 }).start('afterInterval');
    expect(it$.count).toBe(0);
    await advance(499);
    expect(it$.count).toBe(0);
    await advance(1);
    expect(it$.count).toBe(1);
  });

  it('reads a function intervalMs before every pause', async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    let interval = 100;
    loopOf(it$.run, { intervalMs: () => interval }).start();
    it$.last().resolve();
    await settle();
    interval = 300; // read for the pause after the second iteration
    await advance(100);
    expect(it$.count).toBe(2);
    it$.last().resolve();
    await advance(299);
    expect(it$.count).toBe(2);
    await advance(1);
    expect(it$.count).toBe(3);
  });

  it('wake() ends a pause: the next iteration starts without waiting for the interval', async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    const loop = loopOf(it$.run, { intervalMs: 60_000 });
    loop.start();
    it$.last().resolve();
    await settle();
    expect(it$.count).toBe(1);
    loop.wake();
    await settle();
    expect(it$.count).toBe(2);
  });

  it('start() while running is a no-op', async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    const loop = loopOf(it$.run, { intervalMs: 0 });
    loop.start();
    loop.start();
    expect(it$.count).toBe(1);
    expect(loop.isRunning).toBe(true);
  });
});

describe('BackgroundLoop: stop()', () => {
  it('resolves only once the iteration in progress finished, and starts no other', async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    const loop = loopOf(it$.run, { intervalMs: 0 });
    loop.start();
    let stopped = false;
    const stopping = loop.stop().then(() => {
      stopped = true;
    });
    await settle();
    expect(stopped).toBe(false);
    expect(loop.isRunning).toBe(false);
    it$.last().resolve();
    await stopping;
    expect(it$.count).toBe(1);
  });

  it('ends a pause at once and clears its timer', async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    const loop = loopOf(it$.run, { intervalMs: 60_000 });
    loop.start();
    it$.last().resolve();
    await settle();
    expect(jest.getTimerCount()).toBe(1);
    await loop.stop(); // resolves without advancing the clock
    expect(jest.getTimerCount()).toBe(0);
    expect(it$.count).toBe(1);
  });

  it('ends a sleep() of the iteration, and later sleeps return at once', async () => {
    jest.useFakeTimers();
    let slept = 0;
    const loop = loopOf(async () => {
      await loop.sleep(60_000);
      slept++;
      await loop.sleep(60_000);
      slept++;
    }, { intervalMs: 0 });
    loop.start();
    await settle();
    await loop.stop();
    expect(slept).toBe(2);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('does not report an error thrown after stop() (stopping interrupts what the iteration waited for)', async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    const onFailing = jest.fn();
    const onError = jest.fn(() => 'failure' as const);
    const loop = loopOf(it$.run, { intervalMs: 0, onError, onFailing });
    loop.start();
    const stopping = loop.stop();
    it$.last().reject(new Error('connection closed'));
    await stopping;
    expect(onError).not.toHaveBeenCalled();
    expect(onFailing).not.toHaveBeenCalled();
    expect(loop.isFailing).toBe(false);
  });

  it('can start again after stop() and runs one loop, not two', async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    const loop = loopOf(it$.run, { intervalMs: 100 });
    loop.start();
    it$.last().resolve();
    await settle();
    await loop.stop();
    loop.start();
    expect(it$.count).toBe(2);
    it$.last().resolve();
    await advance(100);
    expect(it$.count).toBe(3);
  });

  it('leaves no timer that keeps the process alive (real timers: every pause is unref()ed)', async () => {
    // The timers of this test's pauses, told apart by their unusual delays (counting every active timer of the
    // process would also count whatever else runs in this jest worker).
    const PAUSE_MS = 61_234;
    const created: NodeJS.Timeout[] = [];
    const original = globalThis.setTimeout;
    const spy = jest.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      const timer = original(fn, ms);
      if (ms === PAUSE_MS) created.push(timer);
      return timer;
    }) as typeof setTimeout);
    try {
      const loop = loopOf(() => Promise.resolve(), { intervalMs: PAUSE_MS });
      loop.start();
      await new Promise<void>((resolve) => setImmediate(resolve));
      const sleeper = new Sleeper();
      const sleeping = sleeper.sleep(PAUSE_MS);
      expect(created.length).toBeGreaterThanOrEqual(2); // the loop's pause and the sleeper's
      expect(created.map((timer) => timer.hasRef())).toEqual(created.map(() => false));
      sleeper.wake();
      await sleeping;
      await loop.stop();
    } finally {
      spy.mockRestore();
    }
  });
});

describe('BackgroundLoop: failures', () => {
  it('reports the first failure and the recovery once each, not every failed iteration', async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    const onFailing = jest.fn();
    const onRecovered = jest.fn();
    const loop = loopOf(it$.run, { intervalMs: 0, retryMs: 500, onFailing, onRecovered });
    loop.start();
    it$.last().reject(new Error('first'));
    await advance(500);
    it$.last().reject(new Error('second'));
    await advance(500);
    expect(it$.count).toBe(3);
    expect(onFailing).toHaveBeenCalledTimes(1);
    expect(onFailing).toHaveBeenCalledWith(new Error('first'));
    expect(loop.isFailing).toBe(true);
    expect(onRecovered).not.toHaveBeenCalled();

    it$.last().resolve();
    await settle();
    expect(onRecovered).toHaveBeenCalledTimes(1);
    expect(loop.isFailing).toBe(false);
    expect(it$.count).toBe(4); // back to no pause

    it$.last().reject(new Error('again'));
    await settle();
    expect(onFailing).toHaveBeenCalledTimes(2);
  });

  it('waits retryMs after a failure, then intervalMs again after a success', async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    loopOf(it$.run, { intervalMs: 1_000, retryMs: 200 }).start();
    it$.last().reject(new Error('down'));
    await advance(199);
    expect(it$.count).toBe(1);
    await advance(1);
    expect(it$.count).toBe(2);
    it$.last().resolve();
    await advance(999);
    expect(it$.count).toBe(2);
    await advance(1);
    expect(it$.count).toBe(3);
  });

  it('retries after intervalMs when no retryMs is given', async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    loopOf(it$.run, { intervalMs: 300 }).start();
    it$.last().reject(new Error('down'));
    await advance(299);
    expect(it$.count).toBe(1);
    await advance(1);
    expect(it$.count).toBe(2);
  });

  it('backs off while failing: retryMs gets the number of failures in a row', async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    const seen: number[] = [];
    const backoff = doublingBackoff(100, 350);
    loopOf(it$.run, {
      intervalMs: 0,
      retryMs: (failures) => {
        seen.push(failures);
        return backoff(failures);
      },
    }).start();
    for (let i = 0; i < 4; i++) {
      it$.last().reject(new Error('down'));
      await advance(1_000);
    }
    expect(seen).toEqual([1, 2, 3, 4]);
    expect([backoff(1), backoff(2), backoff(3), backoff(4)]).toEqual([100, 200, 350, 350]);
    expect(it$.count).toBe(5);
  });

  it("yields to the timers after an error even with a 0 ms pause (a repeating refusal cannot spin)", async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    loopOf(it$.run, { intervalMs: 0, retryMs: 0 }).start();
    it$.last().reject(new Error('refused'));
    for (let i = 0; i < 20; i++) await Promise.resolve(); // promise jobs only: the clock does not move
    expect(jest.getTimerCount()).toBe(1);
    await advance(0);
    expect(it$.count).toBe(2);
  });

  it("treats an 'expected' error as neither failure nor recovery; the pause follows the current state", async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    const onFailing = jest.fn();
    const onRecovered = jest.fn();
    const onError = jest.fn((error: unknown) => ((error as Error).message === 'UNBLOCKED' ? ('expected' as const) : ('failure' as const)));
    const loop = loopOf(it$.run, { intervalMs: 0, retryMs: 500, onError, onFailing, onRecovered });
    loop.start();

    it$.last().reject(new Error('UNBLOCKED'));
    await advance(0); // not failing: the pause of a working loop (a yield)
    expect(it$.count).toBe(2);
    expect(onFailing).not.toHaveBeenCalled();

    it$.last().reject(new Error('down'));
    await advance(500);
    expect(onFailing).toHaveBeenCalledTimes(1);
    it$.last().reject(new Error('UNBLOCKED'));
    await advance(499);
    expect(it$.count).toBe(3); // still failing: the retry pause
    await advance(1);
    expect(it$.count).toBe(4);
    expect(loop.isFailing).toBe(true);
    expect(onRecovered).not.toHaveBeenCalled();
    expect(onError).toHaveBeenCalledTimes(3);
  });
});

describe('BackgroundLoop: runNow()', () => {
  it('runs an iteration before start() and reports its failure', async () => {
    jest.useFakeTimers();
    const onFailing = jest.fn();
    const loop = loopOf(() => Promise.reject(new Error('down')), { intervalMs: 100, onFailing });
    await expect(loop.runNow()).resolves.toBeUndefined();
    expect(onFailing).toHaveBeenCalledWith(new Error('down'));
  });

  it('joins the iteration in progress instead of starting a second one', async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    const loop = loopOf(it$.run, { intervalMs: 1_000 });
    loop.start();
    const joined = loop.runNow();
    expect(it$.count).toBe(1);
    it$.last().resolve();
    await joined;
    expect(it$.count).toBe(1);
  });

  it("leaves the loop's own pause as it is", async () => {
    jest.useFakeTimers();
    const it$ = new Iterations();
    const loop = loopOf(it$.run, { intervalMs: 1_000 });
    loop.start();
    it$.last().resolve();
    await advance(500);
    const manual = loop.runNow();
    expect(it$.count).toBe(2);
    it$.last().resolve();
    await manual;
    await advance(499);
    expect(it$.count).toBe(2);
    await advance(1);
    expect(it$.count).toBe(3);
  });
});

describe('Sleeper', () => {
  it('wake() ends every sleep in progress and clears the timers', async () => {
    jest.useFakeTimers();
    const sleeper = new Sleeper();
    const a = sleeper.sleep(1_000);
    const b = sleeper.sleep(5_000);
    expect(sleeper.isSleeping).toBe(true);
    expect(jest.getTimerCount()).toBe(2);
    sleeper.wake();
    await Promise.all([a, b]);
    expect(sleeper.isSleeping).toBe(false);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('a sleep ends by itself after its time', async () => {
    jest.useFakeTimers();
    const sleeper = new Sleeper();
    let done = false;
    void sleeper.sleep(100).then(() => {
      done = true;
    });
    await advance(99);
    expect(done).toBe(false);
    await advance(1);
    expect(done).toBe(true);
    expect(sleeper.isSleeping).toBe(false);
  });
});
