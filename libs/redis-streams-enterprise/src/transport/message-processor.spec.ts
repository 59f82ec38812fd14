import { afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Logger, type LoggerService } from '@nestjs/common';
import type { MessageHandler } from '@nestjs/microservices';
import type { RedisStreamsEnterpriseConfig } from '../config/redis-streams.options.js';
import { validateOptions } from '../config/validate-options.js';
import type { ClaimResult, DeliveredEntry } from '../connection/redis-replies.js';
import type { ScriptedRedis } from '../connection/scripts.js';
import type { CommitOutcome, DeadLetterKeys, StreamCommands } from '../connection/stream-commands.js';
import { StreamKeys } from '../connection/stream-keys.js';
import { TransportMetrics } from '../observability/metrics.js';
import { encodeMessage } from '../wire/envelope.js';
import { AckBatcher } from './ack-batcher.js';
import { MessageProcessor, type HandlerHost } from './message-processor.js';
import type { RedisStreamsContext } from './redis-streams.context.js';
import { Settler } from './settler.js';

/*
 * The processor's decisions, seen where they end: the calls the settler makes on a fake command port (XACK, the
 * dead-letter script with its reason, the retry script). Handlers come from a fake HandlerHost. The in-place retries of
 * ordered topics wait their backoff on fake timers, so each attempt happens when the test moves the clock.
 */

const STREAM = 'rse:{orders}';
const keys = new StreamKeys('rse');

class FakeCommands implements StreamCommands {
  readonly acks: string[] = [];
  readonly deadLetters: { id: string; fields: Record<string, string> }[] = [];
  readonly retries: { id: string; delayMs: number }[] = [];

  ack(_stream: string, _group: string, ids: readonly string[]): Promise<number> {
    this.acks.push(...ids);
    return Promise.resolve(ids.length);
  }
  isClosed(): boolean {
    return false;
  }
  whenReady(): Promise<void> {
    return Promise.resolve();
  }
  forgetFailure(): Promise<void> {
    return Promise.resolve();
  }
  scheduleRetry(_keys: unknown, _group: string, _consumer: string, id: string, delayMs: number): Promise<boolean> {
    this.retries.push({ id, delayMs });
    return Promise.resolve(true);
  }
  deadLetter(_keys: DeadLetterKeys, _group: string, id: string, _maxLen: number, metadata: readonly string[]): Promise<string | null> {
    const fields: Record<string, string> = {};
    for (let i = 0; i < metadata.length; i += 2) fields[metadata[i] as string] = metadata[i + 1] as string;
    this.deadLetters.push({ id, fields });
    return Promise.resolve('9-0');
  }
  commit(): Promise<CommitOutcome> {
    return Promise.resolve('ok');
  }
  extendClaims(): Promise<number> {
    return Promise.resolve(1);
  }
  claimDue(): Promise<ClaimResult> {
    return Promise.reject(new Error('not used by the processor'));
  }
  reclaimIdle(): Promise<ClaimResult> {
    return Promise.reject(new Error('not used by the processor'));
  }
  removeIdleConsumers(): Promise<string[]> {
    return Promise.reject(new Error('not used by the processor'));
  }
}

/**
 * The connection the processor hands to its event committer and request responder: only EXISTS is answered (the
 * exactly-once pre-check); the paths under test send nothing else on it.
 */
function connection(processed: Set<string>): ScriptedRedis {
  const exists = (key: string) => Promise.resolve(processed.has(key) ? 1 : 0);
  return { exists } as unknown as ScriptedRedis;
}

class FakeHost implements HandlerHost {
  readonly handlers = new Map<string, MessageHandler>();
  readonly hooked: string[] = [];

  getHandlerByPattern(pattern: string): MessageHandler | null {
    return this.handlers.get(pattern) ?? null;
  }

  withProcessingHooks(context: RedisStreamsContext, fn: () => Promise<void>): Promise<void> {
    this.hooked.push(context.getEntryId());
    return fn();
  }

  /** Registers a handler; it records every call (data, attempt) and runs `body`. */
  on(pattern: string, body: (data: unknown, attempt: number) => unknown, kind: 'event' | 'request' = 'event'): { attempts: number[] } {
    const seen = { attempts: [] as number[] };
    const handler = Object.assign(
      async (data: unknown, context: RedisStreamsContext) => {
        seen.attempts.push(context.getDeliveryCount());
        return body(data, context.getDeliveryCount());
      },
      { isEventHandler: kind === 'event' },
    ) as unknown as MessageHandler;
    this.handlers.set(pattern, handler);
    return seen;
  }
}

interface Setup {
  readonly processor: MessageProcessor;
  readonly fake: FakeCommands;
  readonly host: FakeHost;
  readonly metrics: TransportMetrics;
  readonly processed: Set<string>;
}

function setup(options: RedisStreamsEnterpriseConfig = {}): Setup {
  const config = validateOptions({
    ...options,
    consumer: { group: 'billing', consumerName: 'c-1', ...options.consumer },
    retry: { attempts: 3, backoff: { type: 'exponential', delayMs: 100, maxDelayMs: 10_000, jitter: 0 }, ...options.retry },
  });
  const fake = new FakeCommands();
  const metrics = new TransportMetrics();
  const settler = new Settler(config, fake, keys, new AckBatcher(fake, 'billing', (n) => metrics.recordAcks(n), 'microtask'), metrics);
  const host = new FakeHost();
  const processed = new Set<string>();
  const processor = new MessageProcessor(config, connection(processed), settler, metrics, host);
  processor.addStream(STREAM, 'orders');
  return { processor, fake, host, metrics, processed };
}

function entry(fields: string[], deliveryCount = 1, id = '1-0'): DeliveredEntry {
  const record: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) record[fields[i] as string] = fields[i + 1] as string;
  return { stream: STREAM, id, fields: record, deliveryCount };
}

function message(pattern: string, data: unknown, extra: { replyTo?: string; idempotencyKey?: string; messageId?: string } = {}): string[] {
  return encodeMessage({ pattern, messageId: extra.messageId ?? 'm-1', json: JSON.stringify(data), replyTo: extra.replyTo, idempotencyKey: extra.idempotencyKey });
}

const logs: string[] = [];
const capture: LoggerService = {
  log: (m: unknown) => logs.push(`log ${String(m)}`),
  warn: (m: unknown) => logs.push(`warn ${String(m)}`),
  error: (m: unknown) => logs.push(`error ${String(m)}`),
  debug: () => undefined,
  verbose: () => undefined,
};

beforeAll(() => {
  Logger.overrideLogger(capture);
});

afterEach(() => {
  logs.length = 0;
  jest.useRealTimers();
});

describe('MessageProcessor: before the handler', () => {
  it('runs the handler of the pattern and acknowledges on success', async () => {
    const { processor, fake, host, metrics } = setup();
    const seen = host.on('orders', () => undefined);
    await processor.process(entry(message('orders', { n: 1 })));
    expect(seen.attempts).toEqual([1]);
    expect(fake.acks).toEqual(['1-0']);
    expect(host.hooked).toEqual(['1-0']);
    expect(metrics).toMatchObject({ received: 1, acked: 1 });
  });

  it('gives its in-flight slot back once the handler succeeded and its ack is queued, not when the handler failed', async () => {
    const { processor, fake, host } = setup();
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const ack = fake.ack.bind(fake);
    fake.ack = async (stream, group, ids) => {
      await gate; // Redis has not answered the XACK yet
      return ack(stream, group, ids);
    };
    host.on('orders', (data) => {
      if ((data as { n: number }).n === 2) throw new Error('boom');
    });
    const released: string[] = [];
    const first = processor.process(entry(message('orders', { n: 1 })), { releaseSlot: () => released.push('1-0') });
    for (let i = 0; i < 10 && released.length === 0; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(released).toEqual(['1-0']);
    expect(fake.acks).toEqual([]); // given back while the ack is on its way
    openGate();
    await first;
    expect(fake.acks).toEqual(['1-0']);

    await processor.process(entry(message('orders', { n: 2 }), 1, '2-0'), { releaseSlot: () => released.push('2-0') });
    expect(fake.retries.map((r) => r.id)).toEqual(['2-0']);
    expect(released).toEqual(['1-0']); // a failed handler keeps its slot until its retry is scheduled
  });

  it("dead-letters an entry that cannot be decoded (decode-failed) without looking for a handler", async () => {
    const { processor, fake, host } = setup();
    const seen = host.on('orders', () => undefined);
    await processor.process(entry(['v', '99', 'pattern', 'orders', 'id', 'm-1', 'data', '{}']));
    expect(fake.deadLetters.map((d) => d.fields['rse.dlq.reason'])).toEqual(['decode-failed']);
    expect(fake.deadLetters[0]?.fields['rse.dlq.errorMessage']).toMatch(/unknown wire version/);
    expect(seen.attempts).toEqual([]);
    expect(fake.acks).toEqual([]);
  });

  it('dead-letters a message no handler is registered for (no-handler)', async () => {
    const { processor, fake } = setup();
    await processor.process(entry(message('nobody', {})));
    expect(fake.deadLetters).toHaveLength(1);
    expect(fake.deadLetters[0]?.fields).toMatchObject({ 'rse.dlq.reason': 'no-handler', 'rse.dlq.errorName': 'NoHandlerError' });
  });

  it('dead-letters a request whose replyTo is not one of this deployment’s reply streams, and never runs its handler', async () => {
    const { processor, fake, host } = setup();
    const seen = host.on('sum', () => 3, 'request');
    await processor.process(entry(message('sum', [1, 2], { replyTo: 'rse:{orders}' })));
    expect(fake.deadLetters.map((d) => d.fields['rse.dlq.reason'])).toEqual(['invalid-reply-to']);
    expect(fake.deadLetters[0]?.fields['rse.dlq.errorName']).toBe('InvalidReplyAddressError');
    expect(seen.attempts).toEqual([]);
  });

  it('acknowledges a message that another group redrove (rse.redrive.group) without handling it', async () => {
    const { processor, fake, host } = setup();
    const seen = host.on('orders', () => undefined);
    await processor.process(entry([...message('orders', {}), 'rse.redrive.group', 'shipping']));
    expect(fake.acks).toEqual(['1-0']);
    expect(seen.attempts).toEqual([]);
  });

  it('exactly-once: skips a message this group committed already, and acknowledges it', async () => {
    const { processor, fake, host, metrics, processed } = setup({ exactlyOnce: { enabled: true } });
    const seen = host.on('orders', () => undefined);
    processed.add(keys.processedOf(STREAM, 'billing', 'order-7'));
    await processor.process(entry(message('orders', {}, { idempotencyKey: 'order-7' })));
    expect(seen.attempts).toEqual([]);
    expect(fake.acks).toEqual(['1-0']);
    expect(metrics.duplicatesSkipped).toBe(1);
  });
});

describe('MessageProcessor: a failed handler', () => {
  it('schedules a redelivery with backoff on a plain topic (the entry stays pending)', async () => {
    const { processor, fake, host } = setup();
    host.on('orders', () => {
      throw new Error('boom');
    });
    await processor.process(entry(message('orders', {}), 2));
    expect(fake.retries).toEqual([{ id: '1-0', delayMs: 200 }]);
    expect(fake.acks).toEqual([]);
    expect(fake.deadLetters).toEqual([]);
  });

  it('ordered topics: retries in place with backoff, then dead-letters after the last attempt with the attempts made', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'] });
    const { processor, fake, host, metrics } = setup();
    const seen = host.on('orders', () => {
      throw new Error('still broken');
    });
    let done = false;
    void processor.process(entry(message('orders', {})), { inlineAttempts: 3, stillOwned: () => true, partition: 0 }).then(() => (done = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(seen.attempts).toEqual([1]);
    await jest.advanceTimersByTimeAsync(99);
    expect(seen.attempts).toEqual([1]); // backoff 100 ms after the first attempt
    await jest.advanceTimersByTimeAsync(1);
    expect(seen.attempts).toEqual([1, 2]);
    await jest.advanceTimersByTimeAsync(200); // 200 ms after the second
    expect(seen.attempts).toEqual([1, 2, 3]);
    await jest.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);
    expect(fake.retries).toEqual([]); // never left pending for a redelivery: its key would be overtaken
    expect(fake.deadLetters).toHaveLength(1);
    expect(fake.deadLetters[0]?.fields).toMatchObject({ 'rse.dlq.reason': 'max-deliveries', 'rse.dlq.attempts': '3', 'rse.dlq.errorMessage': 'still broken' });
    expect(metrics).toMatchObject({ failed: 3, retried: 2, deadLettered: 1 });
  });

  it('ordered topics: an attempt that succeeds after failures is acknowledged', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'] });
    const { processor, fake, host } = setup();
    const seen = host.on('orders', (_data, attempt) => {
      if (attempt < 2) throw new Error('flaky');
    });
    const processing = processor.process(entry(message('orders', {})), { inlineAttempts: 3, stillOwned: () => true, partition: 0 });
    await jest.advanceTimersByTimeAsync(100);
    await processing;
    expect(seen.attempts).toEqual([1, 2]);
    expect(fake.acks).toEqual(['1-0']);
    expect(fake.deadLetters).toEqual([]);
  });

  it('ordered topics: stops retrying once the partition moved (the new owner retries), settling nothing', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'] });
    const { processor, fake, host } = setup();
    let owned = true;
    const seen = host.on('orders', () => {
      owned = false; // the lease is lost while the handler runs
      throw new Error('boom');
    });
    const processing = processor.process(entry(message('orders', {})), { inlineAttempts: 3, stillOwned: () => owned, partition: 0 });
    await jest.advanceTimersByTimeAsync(100);
    await processing;
    await jest.advanceTimersByTimeAsync(10_000);
    expect(seen.attempts).toEqual([1]);
    expect(fake.acks).toEqual([]);
    expect(fake.deadLetters).toEqual([]);
    expect(fake.retries).toEqual([]);
  });
});
