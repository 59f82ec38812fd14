import { afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger, type LoggerService } from '@nestjs/common';
import type { ClaimResult, DeliveredEntry } from '../connection/redis-replies.js';
import type { CommitOutcome, StreamCommands } from '../connection/stream-commands.js';
import { InFlight } from '../runtime/in-flight.js';
import { PendingReclaimer, type ReclaimerSettings } from './pending-reclaimer.js';

/*
 * The reclaimer against a fake command port whose claim scripts answer from per-stream queues the test fills, and an
 * injected clock. Timers are fake (setImmediate stays real for `until`): passes run by hand (runOnce) or when the test
 * moves the clock, so "no pass ran" is a fact of the clock. Handlers are deferred: a slot stays taken until the test
 * finishes its handler.
 */

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((res) => (resolve = res));
  return { promise, resolve };
}

const S1 = 'rse:{a}';
const S2 = 'rse:{b}';
const EMPTY: ClaimResult = { entries: [], deletedIds: [], nextCursor: '0-0' };

type Call = { readonly op: string; readonly stream: string; readonly args: readonly unknown[] };

class FakeClaims implements StreamCommands {
  readonly calls: Call[] = [];
  /** Answers of claimDue / reclaimIdle per stream, first in first out; EMPTY when none is queued. */
  readonly due = new Map<string, (ClaimResult | Error | Promise<ClaimResult>)[]>();
  readonly idle = new Map<string, (ClaimResult | Error | Promise<ClaimResult>)[]>();
  removed: string[] = [];

  of(op: string): Call[] {
    return this.calls.filter((c) => c.op === op);
  }

  claimDue(stream: string, retrySchedule: string, group: string, consumer: string, count: number): Promise<ClaimResult> {
    this.calls.push({ op: 'claimDue', stream, args: [retrySchedule, group, consumer, count] });
    return answer(this.due.get(stream)?.shift());
  }

  reclaimIdle(stream: string, retrySchedule: string, group: string, consumer: string, minIdleMs: number, count: number, cursor: string, owner: string): Promise<ClaimResult> {
    this.calls.push({ op: 'reclaimIdle', stream, args: [retrySchedule, group, consumer, minIdleMs, count, cursor, owner] });
    return answer(this.idle.get(stream)?.shift());
  }

  extendClaims(stream: string, group: string, consumer: string, ids: readonly string[]): Promise<number> {
    this.calls.push({ op: 'extendClaims', stream, args: [group, consumer, [...ids]] });
    return Promise.resolve(ids.length);
  }

  removeIdleConsumers(stream: string, group: string, idleMs: number, except: string): Promise<string[]> {
    this.calls.push({ op: 'removeIdleConsumers', stream, args: [group, idleMs, except] });
    return Promise.resolve(this.removed);
  }

  ack(): Promise<number> {
    return Promise.reject(new Error('not used by the reclaimer'));
  }
  isClosed(): boolean {
    return false;
  }
  whenReady(): Promise<void> {
    return Promise.resolve();
  }
  forgetFailure(): Promise<void> {
    return Promise.reject(new Error('not used by the reclaimer'));
  }
  scheduleRetry(): Promise<boolean> {
    return Promise.reject(new Error('not used by the reclaimer'));
  }
  deadLetter(): Promise<string | null> {
    return Promise.reject(new Error('not used by the reclaimer'));
  }
  commit(): Promise<CommitOutcome> {
    return Promise.reject(new Error('not used by the reclaimer'));
  }
}

function answer(queued: ClaimResult | Error | Promise<ClaimResult> | undefined): Promise<ClaimResult> {
  if (queued instanceof Error) return Promise.reject(queued);
  return Promise.resolve(queued ?? EMPTY);
}

function claimed(stream: string, ids: string[], extra: Partial<ClaimResult> = {}): ClaimResult {
  return { entries: ids.map((id) => ({ stream, id, fields: {}, deliveryCount: 2 })), deletedIds: [], nextCursor: '0-0', ...extra };
}

/** Handlers that run until the test finishes them. */
class Handlers {
  readonly started: string[] = [];
  private readonly running = new Map<string, Deferred>();

  readonly dispatch = (entry: DeliveredEntry): Promise<void> => {
    const key = `${entry.stream}/${entry.id}`;
    this.started.push(key);
    const d = deferred();
    this.running.set(key, d);
    return d.promise;
  };

  finish(key: string): void {
    const d = this.running.get(key);
    if (!d) throw new Error(`${key} is not running`);
    this.running.delete(key);
    d.resolve();
  }

  finishAll(): void {
    for (const key of [...this.running.keys()]) this.finish(key);
  }
}

interface Setup {
  readonly reclaimer: PendingReclaimer;
  readonly fake: FakeClaims;
  readonly inFlight: InFlight;
  readonly handlers: Handlers;
  readonly reclaimed: number[];
  readonly deleted: [string, string[]][];
  readonly clock: { now: number };
}

let current: Setup | undefined;

/** Started (its own pending entries taken back already, none queued), so passes claim. */
async function started(options: Parameters<typeof setup>[0] = {}): Promise<Setup> {
  const s = setup(options);
  await s.reclaimer.start();
  s.fake.calls.length = 0;
  return s;
}

function setup(options: { limit?: number; settings?: Partial<ReclaimerSettings>; timerClock?: boolean } = {}): Setup {
  const fake = new FakeClaims();
  const clock = {
    value: 1_000_000,
    get now(): number {
      return options.timerClock ? Date.now() : this.value;
    },
    set now(ms: number) {
      this.value = ms;
    },
  };
  const inFlight = new InFlight(options.limit ?? 10, () => clock.now);
  const handlers = new Handlers();
  const reclaimed: number[] = [];
  const deleted: [string, string[]][] = [];
  const settings: ReclaimerSettings = {
    streams: [
      { stream: S1, retrySchedule: `${S1}:retry` },
      { stream: S2, retrySchedule: `${S2}:retry` },
    ],
    group: 'g',
    consumer: 'me',
    claimIdleMs: 30_000,
    intervalMs: 1_000,
    deadConsumerIdleMs: 0,
    ...options.settings,
  };
  const reclaimer = new PendingReclaimer(
    fake,
    settings,
    inFlight,
    { dispatch: handlers.dispatch, onReclaimed: (n) => reclaimed.push(n), onDeleted: (stream, ids) => deleted.push([stream, ids]) },
    () => clock.now,
  );
  current = { reclaimer, fake, inFlight, handlers, reclaimed, deleted, clock };
  return current;
}

/** What the loop logged (Nest's Logger, captured instead of printed). */
const logs: string[] = [];
const capture: LoggerService = {
  log: (message: unknown) => logs.push(`log ${String(message)}`),
  warn: (message: unknown) => logs.push(`warn ${String(message)}`),
  error: (message: unknown) => logs.push(`error ${String(message)}`),
  debug: () => undefined,
  verbose: () => undefined,
};

beforeAll(() => {
  Logger.overrideLogger(capture);
});

beforeEach(() => {
  logs.length = 0;
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'] });
});

afterEach(async () => {
  if (current) {
    const stopping = current.reclaimer.stop();
    current.handlers.finishAll();
    await stopping;
    await current.inFlight.drain(1_000);
    current = undefined;
  }
  jest.useRealTimers();
});

describe('PendingReclaimer: start', () => {
  it("takes back this consumer's own pending entries first, page by page, each page as large as the free slots", async () => {
    const { reclaimer, fake, handlers } = setup({ limit: 4 });
    fake.idle.set(S1, [claimed(S1, ['1-0', '2-0'], { nextCursor: '(2-0' }), claimed(S1, ['3-0'])]);
    await reclaimer.start();
    expect(fake.of('reclaimIdle').map((c) => [c.stream, ...c.args])).toEqual([
      [S1, `${S1}:retry`, 'g', 'me', 0, 4, '-', 'me'],
      [S1, `${S1}:retry`, 'g', 'me', 0, 2, '(2-0', 'me'],
      [S2, `${S2}:retry`, 'g', 'me', 0, 1, '-', 'me'], // one slot was left when S2's turn came
    ]);
    expect(handlers.started).toEqual([`${S1}/1-0`, `${S1}/2-0`, `${S1}/3-0`]);
  });

  it('waits for a free slot before taking more of its own entries', async () => {
    const { reclaimer, fake, handlers } = setup({ limit: 1, settings: { streams: [{ stream: S1, retrySchedule: `${S1}:retry` }] } });
    fake.idle.set(S1, [claimed(S1, ['1-0'], { nextCursor: '(1-0' }), claimed(S1, ['2-0'])]);
    let started = false;
    const starting = reclaimer.start().then(() => (started = true));
    await until(() => handlers.started.length === 1);
    expect(fake.of('reclaimIdle')).toHaveLength(1); // no slot: the next page waits
    expect(started).toBe(false);
    handlers.finish(`${S1}/1-0`);
    await starting;
    expect(handlers.started).toEqual([`${S1}/1-0`, `${S1}/2-0`]);
  });

  it('stop() during the start ends taking back, and no pass is scheduled', async () => {
    const { reclaimer, fake, handlers } = setup({ limit: 1, settings: { streams: [{ stream: S1, retrySchedule: `${S1}:retry` }] } });
    fake.idle.set(S1, [claimed(S1, ['1-0'], { nextCursor: '(1-0' }), claimed(S1, ['2-0'])]);
    const starting = reclaimer.start();
    await until(() => handlers.started.length === 1);
    const stopping = reclaimer.stop();
    handlers.finish(`${S1}/1-0`);
    await starting;
    await stopping;
    await jest.advanceTimersByTimeAsync(10_000);
    expect(fake.of('reclaimIdle')).toHaveLength(1);
    expect(fake.of('claimDue')).toHaveLength(0);
  });
});

describe('PendingReclaimer: passes', () => {
  it('claims due retries and idle entries only into free slots, and dispatches them in id order', async () => {
    const { reclaimer, fake, inFlight, handlers, reclaimed } = await started({ limit: 4, settings: { streams: [{ stream: S1, retrySchedule: `${S1}:retry` }] } });
    const busy = deferred();
    void inFlight.run('rse:{other}', '1-0', () => busy.promise);
    fake.due.set(S1, [claimed(S1, ['5-0', '6-0'])]);
    fake.idle.set(S1, [claimed(S1, ['7-0'])]);
    await reclaimer.runOnce();
    expect(fake.of('claimDue')[0]?.args).toEqual([`${S1}:retry`, 'g', 'me', 3]);
    expect(fake.of('reclaimIdle')[0]?.args).toEqual([`${S1}:retry`, 'g', 'me', 30_000, 1, '-', '']);
    expect(handlers.started).toEqual([`${S1}/5-0`, `${S1}/6-0`, `${S1}/7-0`]);
    expect(reclaimed).toEqual([1]); // idle entries (of stopped consumers) are counted; due retries are not
    busy.resolve();
  });

  it('claims nothing when every slot is taken', async () => {
    const { reclaimer, fake, inFlight } = await started({ limit: 1 });
    const busy = deferred();
    void inFlight.run('rse:{other}', '1-0', () => busy.promise);
    await reclaimer.runOnce();
    expect(fake.of('claimDue')).toEqual([]);
    expect(fake.of('reclaimIdle')).toEqual([]);
    busy.resolve();
  });

  it('skips an entry this process is already handling (its retry fell due while it still runs)', async () => {
    const { reclaimer, fake, inFlight, handlers } = await started({ settings: { streams: [{ stream: S1, retrySchedule: `${S1}:retry` }] } });
    const running = deferred();
    void inFlight.run(S1, '5-0', () => running.promise);
    fake.due.set(S1, [claimed(S1, ['5-0', '6-0'])]);
    await reclaimer.runOnce();
    expect(handlers.started).toEqual([`${S1}/6-0`]);
    running.resolve();
  });

  it('reports the ids whose payload was trimmed away while pending', async () => {
    const { reclaimer, fake, deleted } = await started({ settings: { streams: [{ stream: S1, retrySchedule: `${S1}:retry` }] } });
    fake.due.set(S1, [claimed(S1, [], { deletedIds: ['3-0'] })]);
    fake.idle.set(S1, [claimed(S1, [], { deletedIds: ['4-0', '5-0'] })]);
    await reclaimer.runOnce();
    expect(deleted).toEqual([
      [S1, ['3-0']],
      [S1, ['4-0', '5-0']],
    ]);
  });

  it('continues the idle scan from its cursor on the next full sweep, and starts over once it is complete', async () => {
    const { reclaimer, fake, clock } = await started({ settings: { streams: [{ stream: S1, retrySchedule: `${S1}:retry` }], claimIdleMs: 8_000 } });
    fake.idle.set(S1, [claimed(S1, [], { nextCursor: '(9-0' }), claimed(S1, [])]);
    await reclaimer.runOnce();
    clock.now += 2_000; // claimIdleMs / 4: the next full sweep
    await reclaimer.runOnce();
    clock.now += 2_000;
    await reclaimer.runOnce();
    expect(fake.of('reclaimIdle').map((c) => c.args[5])).toEqual(['-', '(9-0', '-']);
  });

  it('between full sweeps looks only at streams with a retry due (noted by the settler or by the previous claim)', async () => {
    const { reclaimer, fake, clock } = await started({ settings: { claimIdleMs: 60_000 } });
    fake.due.set(S1, [claimed(S1, [], { nextDueMs: clock.now + 500 })]);
    fake.due.set(S2, [claimed(S2, [], { nextDueMs: null })]);
    await reclaimer.runOnce(); // the first pass is a full sweep
    expect(fake.of('claimDue').map((c) => c.stream)).toEqual([S1, S2]);

    clock.now += 400;
    await reclaimer.runOnce();
    expect(fake.of('claimDue')).toHaveLength(2); // S1's retry is not due yet, S2 has none

    reclaimer.noteRetry(S2, clock.now + 50);
    clock.now += 100;
    await reclaimer.runOnce();
    expect(fake.of('claimDue').map((c) => c.stream)).toEqual([S1, S2, S1, S2]);
    expect(fake.of('reclaimIdle')).toHaveLength(2); // idle entries only on full sweeps
  });

  it('extends the claims of entries handled here for a third of claimIdleMs, 500 ids per call', async () => {
    const { reclaimer, fake, inFlight, clock } = await started({ limit: 600, settings: { claimIdleMs: 30_000 } });
    const slow = deferred();
    for (let i = 0; i < 501; i++) void inFlight.run(S1, `${i}-0`, () => slow.promise);
    clock.now += 9_999;
    await reclaimer.runOnce();
    expect(fake.of('extendClaims')).toEqual([]);
    clock.now += 1;
    await reclaimer.runOnce();
    expect(fake.of('extendClaims').map((c) => (c.args[2] as string[]).length)).toEqual([500, 1]);
    slow.resolve();
  });

  it('removes consumers idle for deadConsumerIdleMs at most every half of it', async () => {
    const { reclaimer, fake, clock } = await started({ settings: { deadConsumerIdleMs: 10_000 } });
    fake.removed = ['gone-1'];
    await reclaimer.runOnce();
    expect(fake.of('removeIdleConsumers')).toEqual([]);
    clock.now += 5_000;
    await reclaimer.runOnce();
    expect(fake.of('removeIdleConsumers').map((c) => [c.stream, ...c.args])).toEqual([
      [S1, 'g', 10_000, 'me'],
      [S2, 'g', 10_000, 'me'],
    ]);
  });
});

describe('PendingReclaimer: timer and stop', () => {
  it('runs a pass every intervalMs after start, and keeps running after a failed pass', async () => {
    // claimIdleMs / 4 under intervalMs: every pass is a full sweep.
    const { reclaimer, fake } = setup({ timerClock: true, settings: { streams: [{ stream: S1, retrySchedule: `${S1}:retry` }], claimIdleMs: 2_000 } });
    fake.due.set(S1, [new Error('ECONNRESET')]);
    await reclaimer.start();
    expect(fake.of('claimDue')).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(fake.of('claimDue')).toHaveLength(1); // failed
    await jest.advanceTimersByTimeAsync(1_000);
    expect(fake.of('claimDue')).toHaveLength(2);
    expect(logs).toEqual(['warn Reclaim pass failed, will retry: Error: ECONNRESET group=g', 'log Reclaiming resumed group=g']);
  });

  it('stop() waits for the pass in progress and no pass runs after it', async () => {
    const { reclaimer, fake } = setup({ timerClock: true });
    let answerClaim!: (result: ClaimResult) => void;
    fake.due.set(S1, [new Promise<ClaimResult>((resolve) => (answerClaim = resolve))]);
    await reclaimer.start();
    fake.calls.length = 0;
    await jest.advanceTimersByTimeAsync(1_000);
    expect(fake.of('claimDue')).toHaveLength(1);
    let stopped = false;
    const stopping = reclaimer.stop().then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    answerClaim(EMPTY);
    await stopping;
    expect(fake.calls.filter((c) => c.stream === S2)).toEqual([]); // the pass ended at the stop, before the next stream
    await jest.advanceTimersByTimeAsync(10_000);
    expect(fake.of('claimDue')).toHaveLength(1);
    expect(jest.getTimerCount()).toBe(0);
  });
});

/** Polls a condition across event-loop turns. */
async function until(predicate: () => boolean, turns = 100): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (predicate()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw new Error(`condition not met after ${turns} turns`);
}
