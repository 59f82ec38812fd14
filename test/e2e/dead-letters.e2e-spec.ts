import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { DeadLetterManager, RedisStreamsClient, RedisStreamsContext, StreamEvent } from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { expectNothingWithin, waitFor } from '../support/wait-for.js';

/** Per app: what was handled, and whether the "bug" that rejects poison is still there. */
@Injectable()
class Ledger {
  readonly handled = new Map<number, number>();
  poisonIsFixed = false;
  readonly nacked = new Map<number, number[]>();
  /** Handled by the 'ledger.control' handler (each app also reads 'ledger.post', which fills `handled`). */
  readonly controlled = new Map<number, number>();
  workingStarts = 0;
}

@Controller()
class LedgerController {
  constructor(@Inject(Ledger) private readonly ledger: Ledger) {}

  @StreamEvent('ledger.post')
  post(@Payload() data: { n: number; poison?: boolean }) {
    if (data.poison && !this.ledger.poisonIsFixed) throw new TypeError(`cannot post entry ${data.n}`);
    this.ledger.handled.set(data.n, (this.ledger.handled.get(data.n) ?? 0) + 1);
  }

  @StreamEvent('ledger.control')
  async control(@Payload() data: { n: number; action: 'reject' | 'nack' | 'ack-then-throw' | 'working' }, @Ctx() ctx: RedisStreamsContext) {
    if (data.action === 'reject') return ctx.deadLetter(`entry ${data.n} has no account`);
    if (data.action === 'nack') {
      const seen = this.ledger.nacked.get(data.n) ?? [];
      seen.push(ctx.getDeliveryCount());
      this.ledger.nacked.set(data.n, seen);
      if (ctx.getDeliveryCount() < 2) return ctx.nack({ delayMs: 300 });
    }
    if (data.action === 'ack-then-throw') {
      await ctx.ack();
      throw new Error('after the ack: must not be retried');
    }
    if (data.action === 'working') {
      this.ledger.workingStarts++;
      await new Promise((resolve) => setTimeout(resolve, 700).unref());
      expect(await ctx.working()).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 700).unref());
    }
    this.ledger.controlled.set(data.n, (this.ledger.controlled.get(data.n) ?? 0) + 1);
  }
}

describe('dead letters and handler control (real Redis)', () => {
  const prefix = uniquePrefix('dlq');
  const keys = testKeys(prefix);
  const apps: INestMicroservice[] = [];
  let redis: RawRedis;
  let client: RedisStreamsClient;
  let manager: DeadLetterManager;

  beforeAll(() => {
    redis = rawRedis();
    client = new RedisStreamsClient(testConfig(prefix));
    manager = new DeadLetterManager(testConfig(prefix));
  });

  afterAll(async () => {
    await manager.close();
    await client.close();
    await Promise.all(apps.map((app) => app.close()));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('one poison message among 10,000: exactly one dead letter; redrive after the fix handles it once', async () => {
    const config = testConfig(prefix, { consumer: { group: 'ledger', batchSize: 64, concurrency: 64 }, retry: { attempts: 2, backoff: { type: 'fixed', delayMs: 50, jitter: 0, maxDelayMs: 50 } } });
    // A second group on the same stream, which handles the poison fine: it must not get the redriven copy.
    const audit = await startConsumer(testConfig(prefix, { consumer: { group: 'audit' } }), [LedgerController], [Ledger]);
    audit.app.get(Ledger).poisonIsFixed = true;
    const { app } = await startConsumer(config, [LedgerController], [Ledger]);
    apps.push(app, audit.app);
    const ledger = app.get(Ledger);
    const count = 10_000;
    const poison = 4_321;
    const pending = new Set<Promise<unknown>>();
    for (let n = 0; n < count; n++) {
      const p = lastValueFrom(client.emit('ledger.post', { n, poison: n === poison })).finally(() => pending.delete(p));
      pending.add(p);
      if (pending.size >= 500) await Promise.race(pending);
    }
    await Promise.all(pending);
    await waitFor(() => ledger.handled.size === count - 1, { timeoutMs: 30_000, message: 'all good messages' });
    await waitFor(async () => (await manager.count('ledger.post')) === 1, { message: 'the dead letter' });
    const [letter] = await manager.list('ledger.post');
    expect(letter).toMatchObject({
      reason: 'max-deliveries',
      group: 'ledger',
      pattern: 'ledger.post',
      errorName: 'TypeError',
      errorMessage: `cannot post entry ${poison}`,
      deliveries: 2,
      data: { n: poison, poison: true },
    });
    expect(letter.firstFailedAt?.getTime()).toBeLessThanOrEqual(letter.lastFailedAt?.getTime() ?? 0);
    expect(await manager.list('ledger.post', { errorName: 'RangeError' })).toEqual([]);
    expect(await manager.list('ledger.post', { reason: 'max-deliveries', errorMessage: /entry \d+/ })).toHaveLength(1);
    expect([...ledger.handled.values()].every((times) => times === 1)).toBe(true);
    await waitFor(() => audit.app.get(Ledger).handled.size === count, { timeoutMs: 30_000, message: 'the audit group' });

    expect(await manager.patterns()).toContain('ledger.post');
    ledger.poisonIsFixed = true;
    const first = await manager.redrive('ledger.post', { reason: 'max-deliveries' });
    const again = await manager.redrive('ledger.post');
    expect(first.redriven).toHaveLength(1);
    expect(again.redriven).toHaveLength(0); // idempotent: the letter left the dead-letter stream with the first redrive
    await waitFor(() => ledger.handled.get(poison) === 1, { message: 'the redriven poison message' });
    expect(await manager.count('ledger.post')).toBe(0);
    // The audit group handled the original once and skips the copy redriven for 'ledger'.
    await waitFor(async () => Number((await redis.xpending(keys.stream('ledger.post'), 'audit'))[0]) === 0, { message: 'audit acks' });
    expect(audit.app.get(Ledger).handled.get(poison)).toBe(1);
    // 20,000 handlings and 10,000 emits: CPU-bound, 2-3 s alone, but several times that beside the other suites on 2
    // cores; its own waits are bounded, so the test may take longer than the 30 s default.
  }, 90_000);

  it('ctx.deadLetter(reason) parks a message at once; ctx.nack retries after the given delay; ctx.ack survives a later throw', async () => {
    const { app } = await startConsumer(testConfig(prefix, { consumer: { group: 'control' } }), [LedgerController], [Ledger]);
    apps.push(app);
    const ledger = app.get(Ledger);
    await lastValueFrom(client.emit('ledger.control', { n: 1, action: 'reject' }));
    await lastValueFrom(client.emit('ledger.control', { n: 2, action: 'nack' }));
    await lastValueFrom(client.emit('ledger.control', { n: 3, action: 'ack-then-throw' }));
    // Every app of this file handles 'ledger.control' in its own group; look at this group's letters only.
    const mine = () => manager.list('ledger.control', { group: 'control' });
    await waitFor(async () => (await mine()).length === 1, { message: 'the rejected message' });
    const [letter] = await mine();
    expect(letter).toMatchObject({ reason: 'rejected', errorName: 'RejectedByHandlerError', errorMessage: 'entry 1 has no account', deliveries: 1 });
    await waitFor(() => ledger.controlled.get(2) === 1, { message: 'the nacked message' });
    expect(ledger.nacked.get(2)).toEqual([1, 2]);
    await waitFor(async () => Number((await redis.xpending(keys.stream('ledger.control'), 'control'))[0]) === 0, { message: 'acks' });
    expect(await mine()).toHaveLength(1); // the ack-then-throw message was neither retried nor dead-lettered
    expect(ledger.controlled.has(3)).toBe(false);
    expect(await manager.purge('ledger.control', { group: 'control', reason: 'rejected' })).toBe(1);
    expect(await mine()).toHaveLength(0);
  });

  it('ctx.working() keeps the claim of a long step (claimIdleMs 1 s, handler 1.4 s, one delivery)', async () => {
    const config = testConfig(prefix, { consumer: { group: 'long', claimIdleMs: 1_000, reclaimIntervalMs: 5_000, groupStartId: '$' } });
    // `a` takes the message and extends no claims on its own (reclaim pass every 5 s); only ctx.working() keeps
    // `b` (which claims anything idle for 1 s, every 100 ms) from taking it over.
    const a = await startConsumer(config, [LedgerController], [Ledger]);
    apps.push(a.app);
    await lastValueFrom(client.emit('ledger.control', { n: 10, action: 'working' }));
    await waitFor(() => a.app.get(Ledger).workingStarts === 1, { message: 'a to start the long handler' });
    const b = await startConsumer({ ...config, consumer: { ...config.consumer, reclaimIntervalMs: 100 } }, [LedgerController], [Ledger]);
    apps.push(b.app);
    const done = () => (a.app.get(Ledger).controlled.get(10) ?? 0) + (b.app.get(Ledger).controlled.get(10) ?? 0);
    const starts = () => a.app.get(Ledger).workingStarts + b.app.get(Ledger).workingStarts;
    await waitFor(() => done() >= 1, { message: 'the long handler' });
    await expectNothingWithin(300, () => [done(), starts()], { message: 'no second run of the long handler' });
    expect(done()).toBe(1);
    // A takeover would have started the handler a second time, around 1 s after the first start.
    expect(starts()).toBe(1);
  });

  it('fails a handler that never settles after consumer.handlerTimeoutMs and retries it', async () => {
    @Controller()
    class HangingController {
      calls = 0;
      @StreamEvent('ledger.hang')
      hang(@Ctx() ctx: RedisStreamsContext) {
        this.calls++;
        if (ctx.getDeliveryCount() === 1) return new Promise(() => undefined); // never settles
        return undefined;
      }
    }
    const { app } = await startConsumer(testConfig(prefix, { consumer: { group: 'hang', handlerTimeoutMs: 300, claimIdleMs: 5_000 } }), [HangingController]);
    apps.push(app);
    await lastValueFrom(client.emit('ledger.hang', {}));
    await waitFor(async () => Number((await redis.xpending(keys.stream('ledger.hang'), 'hang'))[0]) === 0 && app.get(HangingController).calls === 2, {
      message: 'the retry after the timeout',
    });
    expect(await manager.list('ledger.hang', { group: 'hang' })).toEqual([]);
  });
});
