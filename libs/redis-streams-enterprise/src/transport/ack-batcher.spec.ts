import { afterEach, describe, expect, it } from '@jest/globals';
import type { ClaimResult } from '../connection/redis-replies.js';
import type { CommitOutcome, StreamCommands } from '../connection/stream-commands.js';
import { AckBatcher } from './ack-batcher.js';

/*
 * The batcher against a fake command port: every XACK it sends waits until the test answers it, so "acknowledged"
 * is observed exactly when the fake says so. "Nothing else was sent" is checked after a later event (the answer of the
 * XACK, the result of a second caller), never after a sleep.
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

const unused = (name: string) => () => Promise.reject(new Error(`${name} is not used by the ack batcher`));

/** A command port whose XACKs the test answers one by one. */
class FakeAcks implements StreamCommands {
  readonly xacks: { stream: string; group: string; ids: string[]; reply: Deferred<number> }[] = [];
  readonly readyWaits: Deferred<void>[] = [];
  closed = false;

  ack(stream: string, group: string, ids: readonly string[]): Promise<number> {
    const reply = deferred<number>();
    this.xacks.push({ stream, group, ids: [...ids], reply });
    return reply.promise;
  }

  isClosed(): boolean {
    return this.closed;
  }

  whenReady(): Promise<void> {
    const ready = deferred<void>();
    this.readyWaits.push(ready);
    return ready.promise;
  }

  xack(index: number) {
    const sent = this.xacks[index];
    if (!sent) throw new Error(`XACK #${index} was not sent (sent: ${this.xacks.length})`);
    return sent;
  }

  forgetFailure = unused('HDEL') as () => Promise<void>;
  scheduleRetry = unused('scheduleRetry') as () => Promise<boolean>;
  deadLetter = unused('deadLetter') as () => Promise<string | null>;
  commit = unused('commit') as () => Promise<CommitOutcome>;
  extendClaims = unused('extendClaims') as () => Promise<number>;
  claimDue = unused('claimDue') as () => Promise<ClaimResult>;
  reclaimIdle = unused('reclaimIdle') as () => Promise<ClaimResult>;
  removeIdleConsumers = unused('removeIdleConsumers') as () => Promise<string[]>;
}

/** Lets the event loop turn (the 'immediate' batcher flushes on setImmediate). */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Whether a promise has settled, observed without waiting for it. */
function track<T>(promise: Promise<T>): { readonly state: 'pending' | 'resolved' | 'rejected'; readonly error?: unknown } {
  const tracked: { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } = { state: 'pending' };
  promise.then(
    () => (tracked.state = 'resolved'),
    (error: unknown) => {
      tracked.state = 'rejected';
      tracked.error = error;
    },
  );
  return tracked;
}

let fake: FakeAcks;
let acked: number[];

function batcher(flushSoon: 'microtask' | 'immediate' = 'immediate'): AckBatcher {
  fake = new FakeAcks();
  acked = [];
  return new AckBatcher(fake, 'billing', (count) => acked.push(count), flushSoon);
}

afterEach(() => {
  // Answer whatever a test left open, so no promise outlives it.
  for (const sent of fake?.xacks ?? []) sent.reply.resolve(sent.ids.length);
  for (const ready of fake?.readyWaits ?? []) ready.reject(new Error('test over'));
});

describe('AckBatcher', () => {
  it('sends the acks of one turn as one XACK per stream', async () => {
    const acks = batcher();
    const a = acks.ack('s:1', '1-0');
    const b = acks.ack('s:1', '2-0');
    const c = acks.ack('s:2', '1-0');
    expect(fake.xacks).toHaveLength(0); // nothing before the turn ends
    await turn();
    expect(fake.xacks.map(({ stream, group, ids }) => ({ stream, group, ids }))).toEqual([
      { stream: 's:1', group: 'billing', ids: ['1-0', '2-0'] },
      { stream: 's:2', group: 'billing', ids: ['1-0'] },
    ]);
    fake.xack(0).reply.resolve(2);
    fake.xack(1).reply.resolve(1);
    await Promise.all([a, b, c]);
    expect(acked).toEqual([2, 1]);
  });

  it("settles a caller only when Redis answered its XACK", async () => {
    const acks = batcher();
    const first = track(acks.ack('s:1', '1-0'));
    await turn();
    const second = track(acks.ack('s:1', '2-0')); // a later turn: a batch of its own
    await turn();
    expect(fake.xacks.map((x) => x.ids)).toEqual([['1-0'], ['2-0']]);

    fake.xack(1).reply.resolve(1);
    await until(() => second.state === 'resolved');
    expect(first.state).toBe('pending'); // its XACK is still unanswered
    fake.xack(0).reply.resolve(1);
    await until(() => first.state === 'resolved');
    expect(acked).toEqual([1, 1]);
  });

  it("flushes in the same job with 'microtask' (ordered lanes wait for the ack)", async () => {
    const acks = batcher('microtask');
    void acks.ack('s:1', '1-0');
    void acks.ack('s:1', '2-0');
    await Promise.resolve();
    expect(fake.xacks.map((x) => x.ids)).toEqual([['1-0', '2-0']]);
  });

  it('flushAll() sends what was collected at once and waits for every XACK in flight (close)', async () => {
    const acks = batcher();
    const inFlight = track(acks.ack('s:1', '1-0'));
    await turn();
    const collected = track(acks.ack('s:2', '5-0'));
    const flushed = track(acks.flushAll());
    expect(fake.xacks.map((x) => x.ids)).toEqual([['1-0'], ['5-0']]); // sent without waiting for the turn
    fake.xack(1).reply.resolve(1);
    await until(() => collected.state === 'resolved');
    expect(flushed.state).toBe('pending'); // the first XACK is still in flight
    fake.xack(0).reply.resolve(1);
    await until(() => flushed.state === 'resolved');
    expect(inFlight.state).toBe('resolved');
  });

  it('flushAll() with nothing collected resolves at once', async () => {
    const acks = batcher();
    await acks.flushAll();
    expect(fake.xacks).toHaveLength(0);
  });

  it('rejects every caller of a batch whose XACK failed on a closed connection: the entries stay pending for redelivery', async () => {
    const acks = batcher();
    fake.closed = true;
    const a = track(acks.ack('s:1', '1-0'));
    const b = track(acks.ack('s:1', '2-0'));
    await turn();
    fake.xack(0).reply.reject(new Error('Connection is closed.'));
    await until(() => a.state === 'rejected' && b.state === 'rejected');
    expect(a.error).toEqual(new Error('Connection is closed.'));
    expect(fake.readyWaits).toHaveLength(0); // not sent again: the connection is gone for good
    expect(fake.xacks).toHaveLength(1);
    expect(acked).toEqual([]);
  });

  it('sends a failed XACK once more when the connection is back, and then settles its callers', async () => {
    const acks = batcher();
    const a = track(acks.ack('s:1', '1-0'));
    await turn();
    fake.xack(0).reply.reject(new Error('read ECONNRESET'));
    await until(() => fake.readyWaits.length === 1);
    expect(fake.xacks).toHaveLength(1); // waits for the reconnect before sending again
    fake.readyWaits[0]?.resolve();
    await until(() => fake.xacks.length === 2);
    expect(fake.xack(1).ids).toEqual(['1-0']);
    fake.xack(1).reply.resolve(1);
    await until(() => a.state === 'resolved');
    expect(acked).toEqual([1]);
  });

  it('gives up with the original error when the connection does not come back in time', async () => {
    const acks = batcher();
    const a = track(acks.ack('s:1', '1-0'));
    await turn();
    fake.xack(0).reply.reject(new Error('read ECONNRESET'));
    await until(() => fake.readyWaits.length === 1);
    fake.readyWaits[0]?.reject(new Error('timed out'));
    await until(() => a.state === 'rejected');
    expect(a.error).toEqual(new Error('read ECONNRESET'));
    expect(fake.xacks).toHaveLength(1);
    expect(acked).toEqual([]);
  });

  it('keeps a failed batch from touching later ones', async () => {
    const acks = batcher();
    fake.closed = true;
    const failed = track(acks.ack('s:1', '1-0'));
    await turn();
    fake.xack(0).reply.reject(new Error('Connection is closed.'));
    await until(() => failed.state === 'rejected');
    fake.closed = false;
    const next = acks.ack('s:1', '2-0');
    await turn();
    expect(fake.xack(1).ids).toEqual(['2-0']);
    fake.xack(1).reply.resolve(1);
    await expect(next).resolves.toBeUndefined();
  });
});

/** Polls a condition across event-loop turns (the batcher's work is promise jobs and setImmediate). */
async function until(predicate: () => boolean, turns = 100): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (predicate()) return;
    await turn();
  }
  throw new Error(`condition not met after ${turns} turns`);
}
