import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { RedisStreamsEnterpriseConfig } from '../config/redis-streams.options.js';
import { validateOptions } from '../config/validate-options.js';
import type { ClaimResult, DeliveredEntry } from '../connection/redis-replies.js';
import type { CommitOutcome, DeadLetterKeys, RetryKeys, StreamCommands } from '../connection/stream-commands.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { TransportMetrics } from '../observability/metrics.js';
import { AckBatcher } from './ack-batcher.js';
import { Settler, type StreamRinger } from './settler.js';

/*
 * The settler against a fake command port that records every call and answers as the test says. The retries of an
 * ordered topic's settlement run on fake timers: each 250 ms step happens when the test moves the clock, so "it
 * stopped retrying" is shown by moving the clock further and seeing no new call.
 */

const STREAM = 'rse:{orders}';
const GROUP = 'billing';
const CONSUMER = 'c-1';
const keys = new StreamKeys('rse');

type Call = { readonly op: string; readonly args: readonly unknown[] };

class FakeCommands implements StreamCommands {
  readonly calls: Call[] = [];
  ackReply: () => Promise<number> = () => Promise.resolve(1);
  scheduleReply: () => Promise<boolean> = () => Promise.resolve(true);
  deadLetterReply: () => Promise<string | null> = () => Promise.resolve('9-0');
  commitReply: () => Promise<CommitOutcome> = () => Promise.resolve('ok');
  extendReply: () => Promise<number> = () => Promise.resolve(1);

  of(op: string): Call[] {
    return this.calls.filter((c) => c.op === op);
  }

  ack(stream: string, group: string, ids: readonly string[]): Promise<number> {
    this.calls.push({ op: 'ack', args: [stream, group, [...ids]] });
    return this.ackReply();
  }
  isClosed(): boolean {
    return false;
  }
  whenReady(): Promise<void> {
    return Promise.reject(new Error('still down')); // the batcher's one retry gives up at once
  }
  forgetFailure(failures: string, id: string): Promise<void> {
    this.calls.push({ op: 'forgetFailure', args: [failures, id] });
    return Promise.resolve();
  }
  scheduleRetry(retryKeys: RetryKeys, group: string, consumer: string, id: string, delayMs: number): Promise<boolean> {
    this.calls.push({ op: 'scheduleRetry', args: [retryKeys, group, consumer, id, delayMs] });
    return this.scheduleReply();
  }
  deadLetter(dlqKeys: DeadLetterKeys, group: string, id: string, maxLen: number, metadata: readonly string[]): Promise<string | null> {
    this.calls.push({ op: 'deadLetter', args: [dlqKeys, group, id, maxLen, [...metadata]] });
    return this.deadLetterReply();
  }
  commit(commitKeys: readonly string[], args: readonly (string | number)[]): Promise<CommitOutcome> {
    this.calls.push({ op: 'commit', args: [[...commitKeys], [...args]] });
    return this.commitReply();
  }
  extendClaims(stream: string, group: string, consumer: string, ids: readonly string[]): Promise<number> {
    this.calls.push({ op: 'extendClaims', args: [stream, group, consumer, [...ids]] });
    return this.extendReply();
  }
  claimDue(): Promise<ClaimResult> {
    return Promise.reject(new Error('claimDue is not used by the settler'));
  }
  reclaimIdle(): Promise<ClaimResult> {
    return Promise.reject(new Error('reclaimIdle is not used by the settler'));
  }
  removeIdleConsumers(): Promise<string[]> {
    return Promise.reject(new Error('removeIdleConsumers is not used by the settler'));
  }
}

interface Setup {
  readonly settler: Settler;
  readonly fake: FakeCommands;
  readonly metrics: TransportMetrics;
  readonly scheduled: { stream: string; dueAtMs: number }[];
  readonly rung: string[];
}

function setup(options: RedisStreamsEnterpriseConfig = {}, flushSoon: 'microtask' | 'immediate' = 'immediate'): Setup {
  const config = validateOptions({
    ...options,
    consumer: { group: GROUP, consumerName: CONSUMER, ...options.consumer },
    retry: { attempts: 3, backoff: { type: 'exponential', delayMs: 100, maxDelayMs: 10_000, jitter: 0 }, ...options.retry },
  });
  const fake = new FakeCommands();
  const metrics = new TransportMetrics();
  const acks = new AckBatcher(fake, GROUP, (n) => metrics.recordAcks(n), flushSoon);
  const scheduled: Setup['scheduled'] = [];
  const rung: string[] = [];
  const ringer: StreamRinger = { ring: (stream) => rung.push(stream) };
  const settler = new Settler(config, fake, keys, acks, metrics, (stream, dueAtMs) => scheduled.push({ stream, dueAtMs }), ringer);
  return { settler, fake, metrics, scheduled, rung };
}

function entry(id: string, deliveryCount = 1): DeliveredEntry {
  return { stream: STREAM, id, deliveryCount, fields: {} };
}

/** Field/value pairs as an object (the dead-letter metadata). */
function pairs(list: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const items = list as string[];
  for (let i = 0; i < items.length; i += 2) out[items[i] as string] = items[i + 1] as string;
  return out;
}

/** Fake timers for the 250 ms retries; the ack batcher's setImmediate/queueMicrotask stay real. */
function fakeClock(): void {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'] });
}

afterEach(() => {
  jest.useRealTimers();
});

describe('Settler.ack', () => {
  it('acknowledges through the batcher and counts the ack', async () => {
    const { settler, fake, metrics } = setup();
    await settler.ack(entry('1-0'));
    expect(fake.of('ack')).toEqual([{ op: 'ack', args: [STREAM, GROUP, ['1-0']] }]);
    expect(fake.of('forgetFailure')).toEqual([]);
    expect(metrics.acked).toBe(1);
  });

  it('forgets the first-failure time of a retried entry that succeeded', async () => {
    const { settler, fake } = setup();
    await settler.ack(entry('1-0', 2));
    expect(fake.of('forgetFailure')).toEqual([{ op: 'forgetFailure', args: [keys.failuresOf(STREAM, GROUP), '1-0'] }]);
  });

  it('leaves the entry pending when the ack fails (no stillOwned): resolves, nothing retried', async () => {
    const { settler, fake, metrics } = setup();
    fake.ackReply = () => Promise.reject(new Error('ECONNRESET'));
    await expect(settler.ack(entry('1-0', 2))).resolves.toBeUndefined();
    expect(fake.of('ack')).toHaveLength(1);
    expect(fake.of('forgetFailure')).toEqual([]); // still pending: its failure record stays
    expect(metrics.acked).toBe(0);
  });

  it('retries a failed ack every 250 ms while the partition is ours, and stops once it is not', async () => {
    fakeClock();
    const { settler, fake } = setup({}, 'microtask');
    fake.ackReply = () => Promise.reject(new Error('ECONNRESET'));
    let owned = true;
    let done = false;
    void settler.ack(entry('1-0'), () => owned).then(() => (done = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(fake.of('ack')).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(250);
    expect(fake.of('ack')).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(250);
    expect(fake.of('ack')).toHaveLength(3);
    expect(done).toBe(false);

    owned = false;
    // Ownership is checked before each pause: the attempt whose pause is in progress still goes out, then no other.
    await jest.advanceTimersByTimeAsync(250);
    expect(done).toBe(true);
    expect(fake.of('ack')).toHaveLength(4);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(fake.of('ack')).toHaveLength(4);
  });

  it('stops retrying once an ack gets through', async () => {
    fakeClock();
    const { settler, fake } = setup({}, 'microtask');
    let failures = 2;
    fake.ackReply = () => (failures-- > 0 ? Promise.reject(new Error('ECONNRESET')) : Promise.resolve(1));
    const acked = settler.ack(entry('1-0'), () => true);
    await jest.advanceTimersByTimeAsync(500);
    await acked;
    expect(fake.of('ack')).toHaveLength(3);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(fake.of('ack')).toHaveLength(3);
  });
});

describe('Settler.fail', () => {
  it('schedules a retry with the backoff of the failed attempt and tells the reclaimer when it is due', async () => {
    fakeClock();
    jest.setSystemTime(1_000_000);
    const { settler, fake, metrics, scheduled } = setup();
    await settler.fail(entry('1-0', 2), new Error('boom'));
    const retryKeys = { stream: STREAM, retrySchedule: keys.retryScheduleOf(STREAM, GROUP), failures: keys.failuresOf(STREAM, GROUP) };
    // Exponential from 100 ms: the second attempt failed, so 200 ms.
    expect(fake.of('scheduleRetry')).toEqual([{ op: 'scheduleRetry', args: [retryKeys, GROUP, CONSUMER, '1-0', 200] }]);
    expect(scheduled).toEqual([{ stream: STREAM, dueAtMs: 1_000_200 }]);
    expect(metrics).toMatchObject({ failed: 1, retried: 1, deadLettered: 0 });
    expect(fake.of('ack')).toEqual([]); // stays pending until the retry
  });

  it('uses the delay a handler asked for (ctx.nack(delayMs))', async () => {
    const { settler, fake } = setup();
    await settler.fail(entry('1-0'), new Error('later'), 5_000);
    expect(fake.of('scheduleRetry')[0]?.args[4]).toBe(5_000);
  });

  it('counts no retry when the entry was no longer pending on this consumer', async () => {
    const { settler, fake, metrics, scheduled } = setup();
    fake.scheduleReply = () => Promise.resolve(false);
    await settler.fail(entry('1-0'), new Error('boom'));
    expect(metrics).toMatchObject({ failed: 1, retried: 0 });
    expect(scheduled).toEqual([]);
  });

  it('leaves the entry pending when the retry cannot be scheduled (never rejects)', async () => {
    const { settler, fake, metrics } = setup();
    fake.scheduleReply = () => Promise.reject(new Error('ECONNRESET'));
    await expect(settler.fail(entry('1-0'), new Error('boom'))).resolves.toBeUndefined();
    expect(metrics.retried).toBe(0);
    expect(fake.of('deadLetter')).toEqual([]);
  });

  it('dead-letters after the last attempt (max-deliveries) instead of scheduling another', async () => {
    const { settler, fake, metrics } = setup();
    await settler.fail(entry('1-0', 3), new Error('still broken'));
    expect(fake.of('scheduleRetry')).toEqual([]);
    const [dlq] = fake.of('deadLetter');
    expect(pairs(dlq?.args[4])).toMatchObject({ 'rse.dlq.reason': 'max-deliveries', 'rse.dlq.errorMessage': 'still broken' });
    expect(metrics).toMatchObject({ failed: 1, deadLettered: 1 });
  });
});

describe('Settler.deadLetter', () => {
  it('moves the entry with its keys and every metadata field', async () => {
    const { settler, fake, metrics } = setup({ deadLetter: { maxLen: 500 } });
    const error = Object.assign(new TypeError('bad input'), { code: 'E_BAD' });
    await settler.deadLetter(entry('7-0', 2), 'rejected', error, 4);
    const dlq = keys.deadLetterOf(STREAM);
    expect(fake.of('deadLetter')).toHaveLength(1);
    const [dlqKeys, group, id, maxLen, metadata] = fake.of('deadLetter')[0]?.args ?? [];
    expect({ dlqKeys, group, id, maxLen }).toEqual({
      dlqKeys: {
        stream: STREAM,
        deadLetter: dlq,
        retrySchedule: keys.retryScheduleOf(STREAM, GROUP),
        failures: keys.failuresOf(STREAM, GROUP),
        deadLetterBlobIndex: keys.blobIndexOf(dlq),
      },
      group: GROUP,
      id: '7-0',
      maxLen: 500,
    });
    expect(pairs(metadata)).toEqual({
      'rse.dlq.reason': 'rejected',
      'rse.dlq.originalId': '7-0',
      'rse.dlq.stream': STREAM,
      'rse.dlq.group': GROUP,
      'rse.dlq.consumer': CONSUMER,
      'rse.dlq.errorName': 'TypeError',
      'rse.dlq.errorMessage': 'bad input',
      'rse.dlq.errorCode': 'E_BAD',
      'rse.dlq.attempts': '4',
    });
    expect(metrics.deadLettered).toBe(1);
  });

  it('records a thrown non-error as an Error, an empty code, no attempts, and cuts long messages at 2,000 characters', async () => {
    const { settler, fake } = setup();
    await settler.deadLetter(entry('7-0'), 'decode-failed', 'x'.repeat(3_000));
    const metadata = pairs(fake.of('deadLetter')[0]?.args[4]);
    expect(metadata['rse.dlq.errorName']).toBe('Error');
    expect(metadata['rse.dlq.errorMessage']).toHaveLength(2_000);
    expect(metadata['rse.dlq.errorCode']).toBe('');
    expect(metadata).not.toHaveProperty('rse.dlq.attempts');
  });

  it('counts nothing when the entry was no longer pending (settled elsewhere)', async () => {
    const { settler, fake, metrics } = setup();
    fake.deadLetterReply = () => Promise.resolve(null);
    await settler.deadLetter(entry('7-0'), 'no-handler', new Error('x'));
    expect(metrics.deadLettered).toBe(0);
  });

  it('never rejects when the script fails: the entry stays pending', async () => {
    const { settler, fake, metrics } = setup();
    fake.deadLetterReply = () => Promise.reject(new Error('ECONNRESET'));
    await expect(settler.deadLetter(entry('7-0'), 'no-handler', new Error('x'))).resolves.toBeUndefined();
    expect(metrics.deadLettered).toBe(0);
    expect(fake.of('ack')).toEqual([]);
  });

  it('acknowledges (drops) the entry when dead-lettering is disabled', async () => {
    const { settler, fake } = setup({ deadLetter: { enabled: false } });
    await settler.deadLetter(entry('7-0'), 'no-handler', new Error('x'));
    expect(fake.of('deadLetter')).toEqual([]);
    expect(fake.of('ack')).toEqual([{ op: 'ack', args: [STREAM, GROUP, ['7-0']] }]);
  });
});

describe('Settler.commit', () => {
  const writes = [
    { command: 'XADD', key: 'rse:{orders}:out', args: ['*', 'data', '1'] },
    { command: 'SET', key: 'rse:{orders}:k', args: ['v'] },
  ];

  it('sends the keys and arguments in the script order, counts the ack and rings for every XADD of an ok commit', async () => {
    const { settler, fake, metrics, rung } = setup({ exactlyOnce: { enabled: true, windowMs: 60_000 } });
    const processedKey = keys.processedOf(STREAM, GROUP, 'm-1');
    expect(await settler.commit(entry('1-0'), { lease: 'c-1|7', processedKey, writes })).toBe('ok');
    expect(fake.of('commit')[0]?.args).toEqual([
      [STREAM, keys.leaseOf(STREAM, GROUP), processedKey, 'rse:{orders}:out', 'rse:{orders}:k'],
      [GROUP, CONSUMER, '1-0', 'c-1|7', 60_000, 2, 'XADD', 3, '*', 'data', '1', 'SET', 1, 'v'],
    ]);
    expect(metrics.acked).toBe(1);
    expect(rung).toEqual(['rse:{orders}:out']);
  });

  it('puts the stream in the place of a missing lease and processed record', async () => {
    const { settler, fake } = setup();
    await settler.commit(entry('1-0'), { writes: [] });
    expect(fake.of('commit')[0]?.args).toEqual([[STREAM, STREAM, STREAM], [GROUP, CONSUMER, '1-0', '', '', 0]]);
  });

  it('counts a duplicate as acknowledged and skipped, and rings nothing', async () => {
    const { settler, fake, metrics, rung } = setup();
    fake.commitReply = () => Promise.resolve('duplicate');
    expect(await settler.commit(entry('1-0'), { writes })).toBe('duplicate');
    expect(metrics).toMatchObject({ acked: 1, duplicatesSkipped: 1, fencedCommits: 0 });
    expect(rung).toEqual([]);
  });

  it.each(['fenced', 'gone'] as const)('counts a %s commit as fenced: not acknowledged, effects discarded', async (outcome) => {
    const { settler, fake, metrics, rung } = setup();
    fake.commitReply = () => Promise.resolve(outcome);
    expect(await settler.commit(entry('1-0'), { lease: 'c-1|7', writes })).toBe(outcome);
    expect(metrics).toMatchObject({ acked: 0, fencedCommits: 1 });
    expect(rung).toEqual([]);
  });

  it('resolves undefined when the commit cannot reach Redis (the entry stays pending)', async () => {
    const { settler, fake, metrics } = setup();
    fake.commitReply = () => Promise.reject(new Error('ECONNRESET'));
    expect(await settler.commit(entry('1-0'), { writes })).toBeUndefined();
    expect(metrics.acked).toBe(0);
  });

  it('commitWhileOwned() repeats a commit that could not reach Redis until the partition is no longer ours', async () => {
    fakeClock();
    const { settler, fake } = setup();
    fake.commitReply = () => Promise.reject(new Error('ECONNRESET'));
    let owned = true;
    let done = false;
    void settler.commitWhileOwned(entry('1-0'), { lease: 'c-1|7', writes: [] }, () => owned).then(() => (done = true));
    await jest.advanceTimersByTimeAsync(500);
    expect(fake.of('commit')).toHaveLength(3);
    owned = false; // checked before the next pause: the attempt after the pause in progress is the last
    await jest.advanceTimersByTimeAsync(250);
    expect(done).toBe(true);
    expect(fake.of('commit')).toHaveLength(4);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(fake.of('commit')).toHaveLength(4);
  });

  it('commitWhileOwned() stops at the first commit Redis answered, whatever the outcome', async () => {
    fakeClock();
    const { settler, fake } = setup();
    let failures = 1;
    fake.commitReply = () => (failures-- > 0 ? Promise.reject(new Error('ECONNRESET')) : Promise.resolve('fenced'));
    const committed = settler.commitWhileOwned(entry('1-0'), { lease: 'c-1|7', writes: [] }, () => true);
    await jest.advanceTimersByTimeAsync(250);
    await committed;
    await jest.advanceTimersByTimeAsync(1_000);
    expect(fake.of('commit')).toHaveLength(2);
  });
});

describe('Settler.extendClaim', () => {
  it('is true only when Redis reset the idle time of the entry (still ours)', async () => {
    const { settler, fake } = setup();
    expect(await settler.extendClaim(entry('1-0'))).toBe(true);
    expect(fake.of('extendClaims')).toEqual([{ op: 'extendClaims', args: [STREAM, GROUP, CONSUMER, ['1-0']] }]);
    fake.extendReply = () => Promise.resolve(0);
    expect(await settler.extendClaim(entry('1-0'))).toBe(false);
  });
});
