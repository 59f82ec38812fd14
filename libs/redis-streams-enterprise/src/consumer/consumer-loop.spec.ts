import { afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger, type LoggerService } from '@nestjs/common';
import type { DeliveredEntry } from '../connection/redis-replies.js';
import { InFlight } from '../runtime/in-flight.js';
import { ConsumerLoop, type EntryReader } from './consumer-loop.js';

/*
 * The reading loop against a fake EntryReader (its read port): every read waits until the test answers it, with an
 * XREADGROUP reply, an error, or both. Handlers are deferred. Timers are fake (setImmediate stays real for `until`),
 * so the back-off after a failed read passes only when the test moves the clock; "no read happened" is shown after
 * a later event (a handler finished, the clock moved past the back-off).
 */

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type ReadResult = { replies: unknown[]; error?: unknown };

class FakeReader implements EntryReader {
  readonly reads: { count: number; answer: Deferred<ReadResult> }[] = [];

  read(count: number): Promise<ReadResult> {
    const answer = deferred<ReadResult>();
    this.reads.push({ count, answer });
    return answer.promise;
  }

  last(): { count: number; answer: Deferred<ReadResult> } {
    const read = this.reads.at(-1);
    if (!read) throw new Error('nothing read yet');
    return read;
  }
}

/** An XREADGROUP reply (RESP2 shape): [[stream, [[id, [field, value]], ...]], ...]; null fields = payload deleted. */
function reply(streams: Record<string, (string | [string, null])[]>): unknown {
  return Object.entries(streams).map(([stream, ids]) => [stream, ids.map((id) => (typeof id === 'string' ? [id, ['data', '{}']] : id))]);
}

class Handlers {
  readonly started: string[] = [];
  maxRunning = 0;
  private readonly running = new Map<string, Deferred<void>>();

  /** freeSlot of each started entry (InFlight's): a handler done whose ack is still on its way calls it. */
  readonly freeSlots = new Map<string, () => void>();

  readonly dispatch = (entry: DeliveredEntry, freeSlot?: () => void): Promise<void> => {
    this.started.push(entry.id);
    if (freeSlot) this.freeSlots.set(entry.id, freeSlot);
    const d = deferred<void>();
    this.running.set(entry.id, d);
    this.maxRunning = Math.max(this.maxRunning, this.running.size);
    return d.promise.then(() => {
      this.running.delete(entry.id);
    });
  };

  finish(...ids: string[]): void {
    for (const id of ids) {
      const d = this.running.get(id);
      if (!d) throw new Error(`${id} is not running`);
      d.resolve();
    }
  }

  finishAll(): void {
    for (const id of [...this.running.keys()]) this.finish(id);
  }
}

interface Setup {
  readonly loop: ConsumerLoop;
  readonly reader: FakeReader;
  readonly inFlight: InFlight;
  readonly handlers: Handlers;
  readonly recreated: Deferred<void>[];
  readonly deleted: [string, string[]][];
}

let current: Setup | undefined;

function setup(options: { limit?: number; batchSize?: number } = {}): Setup {
  const reader = new FakeReader();
  const inFlight = new InFlight(options.limit ?? 4);
  const handlers = new Handlers();
  const recreated: Deferred<void>[] = [];
  const deleted: [string, string[]][] = [];
  const loop = new ConsumerLoop(reader, { group: 'g', consumer: 'me', batchSize: options.batchSize ?? 10 }, inFlight, {
    dispatch: handlers.dispatch,
    recreateGroups: () => {
      const d = deferred<void>();
      recreated.push(d);
      return d.promise;
    },
    onDeleted: (stream, ids) => deleted.push([stream, ids]),
  });
  current = { loop, reader, inFlight, handlers, recreated, deleted };
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
    const { loop, reader, handlers, inFlight } = current;
    const stopping = loop.stop();
    for (const read of reader.reads) read.answer.reject(new Error('connection closed')); // the owner's disconnect
    handlers.finishAll();
    for (const recreation of current.recreated) recreation.resolve();
    await stopping;
    await inFlight.drain(1_000);
    current = undefined;
  }
  jest.useRealTimers();
});

describe('ConsumerLoop: reading', () => {
  it('reads at most the free slots and hands each entry to dispatch', async () => {
    const { loop, reader, handlers, inFlight } = setup({ limit: 4, batchSize: 10 });
    loop.start();
    await until(() => reader.reads.length === 1);
    expect(reader.last().count).toBe(4);
    reader.last().answer.resolve({ replies: [reply({ s: ['1-0', '2-0', '3-0'] })] });
    await until(() => handlers.started.length === 3);
    expect(inFlight.size).toBe(3);
    expect(reader.reads).toHaveLength(1); // one slot free: under half of them, so no read yet

    handlers.finish('1-0');
    await until(() => reader.reads.length === 2);
    expect(reader.last().count).toBe(2);
  });

  it('reads again once handled entries gave their slots back, before their acks settled (still tracked until then)', async () => {
    const { loop, reader, handlers, inFlight } = setup({ limit: 4, batchSize: 4 });
    loop.start();
    await until(() => reader.reads.length === 1);
    reader.last().answer.resolve({ replies: [reply({ s: ['1-0', '2-0', '3-0', '4-0'] })] });
    await until(() => handlers.started.length === 4);
    expect(reader.reads).toHaveLength(1); // no slot free
    // Handlers of 1-0 and 2-0 done, their acks on their way: half the slots are free again.
    handlers.freeSlots.get('1-0')?.();
    handlers.freeSlots.get('2-0')?.();
    await until(() => reader.reads.length === 2);
    expect(reader.last().count).toBe(2);
    expect(inFlight.has('s', '1-0')).toBe(true); // its claim is still extended and close() still waits for it
    handlers.finish('1-0');
    await until(() => !inFlight.has('s', '1-0'));
  });

  it('never asks for more than batchSize', async () => {
    const { loop, reader } = setup({ limit: 100, batchSize: 8 });
    loop.start();
    await until(() => reader.reads.length === 1);
    expect(reader.last().count).toBe(8);
  });

  it('holds the surplus of a multi-stream read and reads nothing until it is handed out; never more handlers than slots', async () => {
    const { loop, reader, handlers, inFlight } = setup({ limit: 2, batchSize: 2 });
    loop.start();
    await until(() => reader.reads.length === 1);
    reader.last().answer.resolve({ replies: [reply({ a: ['1-0', '2-0'], b: ['1-1', '2-1'] })] });
    await until(() => handlers.started.length === 2);
    expect(handlers.started).toEqual(['1-0', '2-0']);
    expect(inFlight.has('b', '1-1')).toBe(true); // held: its claim is extended like a running one

    handlers.finish('1-0');
    await until(() => handlers.started.length === 3);
    handlers.finish('2-0');
    await until(() => handlers.started.length === 4);
    expect(reader.reads).toHaveLength(1);
    expect(handlers.maxRunning).toBe(2);

    handlers.finish('1-1', '2-1');
    await until(() => reader.reads.length === 2);
  });

  it('reports entries whose payload was deleted', async () => {
    const { loop, reader, deleted, handlers } = setup();
    loop.start();
    await until(() => reader.reads.length === 1);
    reader.last().answer.resolve({ replies: [reply({ s: ['1-0', ['2-0', null]] })] });
    await until(() => deleted.length === 1);
    expect(deleted).toEqual([['s', ['2-0']]]);
    expect(handlers.started).toEqual(['1-0']);
  });
});

describe('ConsumerLoop: errors', () => {
  it('retries a failed read after the back-off (500 ms), not before', async () => {
    const { loop, reader } = setup();
    loop.start();
    await until(() => reader.reads.length === 1);
    reader.last().answer.reject(new Error('ECONNRESET'));
    await jest.advanceTimersByTimeAsync(499);
    expect(reader.reads).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    await until(() => reader.reads.length === 2);
  });

  it('logs the first failure and the recovery once each, not every failed read', async () => {
    const { loop, reader } = setup();
    loop.start();
    for (let i = 1; i <= 3; i++) {
      await until(() => reader.reads.length === i);
      reader.last().answer.reject(new Error('ECONNRESET'));
      await jest.advanceTimersByTimeAsync(500);
    }
    await until(() => reader.reads.length === 4);
    reader.last().answer.resolve({ replies: [] });
    await until(() => reader.reads.length === 5);
    expect(logs).toEqual(['warn Reading failed, retrying: Error: ECONNRESET group=g', 'log Reading resumed group=g consumer=me']);
  });

  it('recreates the groups on NOGROUP and reads again at once', async () => {
    const { loop, reader, recreated } = setup();
    loop.start();
    await until(() => reader.reads.length === 1);
    reader.last().answer.reject(new Error("NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option"));
    await until(() => recreated.length === 1);
    expect(reader.reads).toHaveLength(1); // not before the groups exist again
    recreated[0]?.resolve();
    await until(() => reader.reads.length === 2); // no back-off: the clock did not move
  });

  it('backs off when recreating the groups fails too', async () => {
    const { loop, reader, recreated } = setup();
    loop.start();
    await until(() => reader.reads.length === 1);
    reader.last().answer.reject(new Error('NOGROUP No such key'));
    await until(() => recreated.length === 1);
    recreated[0]?.reject(new Error('ECONNRESET'));
    await jest.advanceTimersByTimeAsync(499);
    expect(reader.reads).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    await until(() => reader.reads.length === 2);
  });

  it('keeps the entries of a read that failed part way (pending on this consumer) and hands them out after its error', async () => {
    const { loop, reader, handlers, recreated, inFlight } = setup();
    loop.start();
    await until(() => reader.reads.length === 1);
    reader.last().answer.resolve({ replies: [reply({ s: ['1-0'] })], error: new Error('NOGROUP No such key') });
    await until(() => recreated.length === 1);
    expect(inFlight.has('s', '1-0')).toBe(true);
    recreated[0]?.resolve();
    await until(() => handlers.started.length === 1);
    expect(handlers.started).toEqual(['1-0']);
  });
});

describe('ConsumerLoop: stop', () => {
  it('interrupts a pending read: stop() resolves once the read ends (the owner disconnects), nothing is retried', async () => {
    const { loop, reader, recreated } = setup();
    loop.start();
    await until(() => reader.reads.length === 1);
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    expect(loop.isRunning).toBe(false);
    await until(() => true);
    expect(stopped).toBe(false);
    reader.last().answer.reject(new Error('NOGROUP after the disconnect'));
    await stopping;
    await jest.advanceTimersByTimeAsync(1_000);
    expect(reader.reads).toHaveLength(1);
    expect(recreated).toHaveLength(0); // an error after stop() is not acted on
  });

  it('ends a back-off at once', async () => {
    const { loop, reader } = setup();
    loop.start();
    await until(() => reader.reads.length === 1);
    reader.last().answer.reject(new Error('ECONNRESET'));
    await until(() => jest.getTimerCount() === 1);
    await loop.stop(); // the clock does not move
    expect(jest.getTimerCount()).toBe(0);
    expect(reader.reads).toHaveLength(1);
  });

  it('ends a wait for free slots, and releases the entries read but not started (they stay pending in Redis)', async () => {
    const { loop, reader, handlers, inFlight } = setup({ limit: 1, batchSize: 2 });
    loop.start();
    await until(() => reader.reads.length === 1);
    reader.last().answer.resolve({ replies: [reply({ a: ['1-0'], b: ['1-1'] })] });
    await until(() => handlers.started.length === 1);
    expect(inFlight.has('b', '1-1')).toBe(true);
    await loop.stop();
    expect(inFlight.has('b', '1-1')).toBe(false);
    expect(handlers.started).toEqual(['1-0']);
    expect(reader.reads).toHaveLength(1);
  });

  it('start() after stop() reads again', async () => {
    const { loop, reader } = setup();
    loop.start();
    await until(() => reader.reads.length === 1);
    const stopping = loop.stop();
    reader.last().answer.resolve({ replies: [] });
    await stopping;
    loop.start();
    await until(() => reader.reads.length === 2);
    expect(loop.isRunning).toBe(true);
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

describe('ConsumerLoop: health', () => {
  it('counts failed reads in a row with the last error, and forgets them after a read that worked', async () => {
    const { loop, reader } = setup();
    loop.start();
    for (let i = 1; i <= 3; i++) {
      await until(() => reader.reads.length === i);
      reader.last().answer.reject(new Error(`OOM command not allowed ${i}`));
      await jest.advanceTimersByTimeAsync(500);
    }
    await until(() => reader.reads.length === 4);
    expect(loop.health(null)).toMatchObject({ name: 'reading', running: true, failures: 3, lastError: 'Error: OOM command not allowed 3' });
    reader.last().answer.resolve({ replies: [] });
    await until(() => reader.reads.length === 5);
    expect(loop.health(null)).toMatchObject({ failures: 0, failingSince: null, lastError: null });
  });

  it('measures a read in progress (not the wait for free slots), so a read that outlives its limit shows as stuck', async () => {
    const { loop, reader } = setup();
    loop.start();
    await until(() => reader.reads.length === 1);
    const at = Date.now();
    expect(loop.health(5_000, at + 6_000)).toMatchObject({ busyMs: 6_000, stuckAfterMs: 5_000 });
    reader.last().answer.resolve({ replies: [] });
    await until(() => reader.reads.length === 2);
    expect(loop.health(5_000, Date.now()).busyMs).toBe(0);
  });
});
