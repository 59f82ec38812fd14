import { Controller, Inject, Optional } from '@nestjs/common';
import type { INestMicroservice } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import {
  DeadLetterManager,
  ReplayManager,
  OrderingManager,
  PartitioningManager,
  RedisStreamsClient,
  RedisStreamsContext,
  RedisStreamsRecordBuilder,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { cleanupPrefix, onCluster, rawRedis, uniquePrefix, type RawRedis } from '../support/redis.js';
import { expectNothingWithin, waitFor } from '../support/wait-for.js';
import { defineScripts } from '../../libs/redis-streams-enterprise/src/connection/scripts.js';
import { testKeys } from '../support/keys.js';
import { checkGlobalOrder, checkPerKeyOrder, range, type Keyed } from '../support/ledger.js';

/** One record per handled message, shared by every app of a test through a DI value (no module state). */
interface Handled {
  readonly key: string;
  readonly n: number;
  readonly consumer: string;
  readonly partition: number | undefined;
  readonly sequence: number | undefined;
  readonly at: number;
  /** `<stream>/<entry id>`: where it was read from (printed when an order check fails). */
  readonly entry?: string;
}
const LOG = Symbol('LOG');
const GATE = Symbol('GATE');

/** Holds every handler of the apps it is provided to until `open()`, so that a backlog builds up whatever the reading speed. */
class Gate {
  open!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.open = resolve));
}

@Controller()
class KeyedController {
  constructor(
    @Inject(LOG) private readonly log: Handled[],
    @Optional() @Inject(GATE) private readonly gate?: Gate,
  ) {}

  @StreamEvent('acct.moved')
  async onMoved(@Payload() data: { key: string; n: number }, @Ctx() ctx: RedisStreamsContext) {
    await this.gate?.opened;
    // Random delays make a later message of a key finish first if anything let them overlap.
    await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 3)));
    this.log.push({ key: data.key, n: data.n, consumer: ctx.getConsumer(), partition: ctx.getPartition(), sequence: ctx.getSequence(), at: Date.now(), entry: `${ctx.getStream()}/${ctx.getEntryId()}` });
  }
}

/** Per key, the handled n's must be exactly the emitted ones, each once, in emit order (ledger.ts). */
function checkOrder(log: readonly Handled[], emitted: readonly Keyed[]) {
  return checkPerKeyOrder(log, emitted, { describe: (h) => `${h.n}@${h.entry ?? h.partition}(${h.consumer.slice(-6)},${h.at})` });
}

async function emitAll(client: RedisStreamsClient, messages: { key: string; n: number }[], window = 200): Promise<void> {
  const inFlight = new Set<Promise<unknown>>();
  for (const m of messages) {
    const p = lastValueFrom(client.emit('acct.moved', m)).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= window) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

/** Messages in per-key order, keys interleaved: k0#0 k1#0 ... k49#0 k0#1 ... */
function interleaved(keys: number, perKey: number): { key: string; n: number }[] {
  const out: { key: string; n: number }[] = [];
  for (let n = 0; n < perKey; n++) for (let k = 0; k < keys; k++) out.push({ key: `k${k}`, n });
  return out;
}

describe('ordering and partitioning (real Redis)', () => {
  const apps: INestMicroservice[] = [];
  const clients: RedisStreamsClient[] = [];
  const prefixes: string[] = [];
  let redis: RawRedis;

  beforeAll(() => {
    redis = rawRedis();
  });

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    for (const prefix of prefixes) await cleanupPrefix(redis, prefix);
    await redis.quit();
  });

  function config(name: string, overrides: RedisStreamsEnterpriseConfig): RedisStreamsEnterpriseConfig {
    const prefix = uniquePrefix(name);
    prefixes.push(prefix);
    return testConfig(prefix, overrides);
  }

  async function consumers(cfg: RedisStreamsEnterpriseConfig, count: number, log: Handled[], gate?: Gate) {
    const started = [];
    for (let i = 0; i < count; i++) {
      const { app, server, client } = await startConsumer(cfg, [KeyedController], [{ provide: LOG, useValue: log }, ...(gate ? [{ provide: GATE, useValue: gate }] : [])]);
      apps.push(app);
      clients.push(client);
      started.push(server);
    }
    return started;
  }

  const keyed = (name: string, extra: RedisStreamsEnterpriseConfig = {}) =>
    config(name, {
      partitioning: { enabled: true, strategy: 'hash', partitionCount: 4, partitionKey: 'key', sessionTimeoutMs: 1_500, ...extra.partitioning },
      ordering: { enabled: true, strategy: 'partition', partitionKey: 'key', maxConcurrency: 16, ...extra.ordering },
      consumer: { batchSize: 16 },
      exactlyOnce: extra.exactlyOnce,
    });

  it('50 keys x 200 messages over 4 partitions and 3 consumers: per-key order, nothing lost or doubled', async () => {
    const cfg = keyed('order-keys');
    const log: Handled[] = [];
    const servers = await consumers(cfg, 3, log);
    const producer = new RedisStreamsClient(cfg);
    clients.push(producer);
    const emitted = interleaved(50, 200);
    await emitAll(producer, emitted);
    await waitFor(() => log.length >= 10_000, { timeoutMs: 60_000 });
    expect(checkOrder(log, emitted)).toEqual({ outOfOrder: [], wrongCount: [], total: 10_000 });
    // Every partition was handled by the consumers; each owns at least one once the group is balanced.
    await Promise.all(servers.map((s) => s.rebalanceNow()));
    const owned = servers.map((s) => s.ownedPartitions().length);
    expect(owned.reduce((a, b) => a + b, 0)).toBe(4);
    expect(Math.max(...owned) - Math.min(...owned)).toBeLessThanOrEqual(1);
  }, 90_000);

  it('different keys of one partition run side by side, one key never overlaps itself', async () => {
    const cfg = keyed('order-parallel', { partitioning: { partitionCount: 1 } });
    const running = new Map<string, number>();
    let maxParallel = 0;
    let overlapSameKey = 0;
    let handled = 0;
    @Controller()
    class SlowController {
      @StreamEvent('acct.moved')
      async onMoved(@Payload() data: { key: string; n: number }) {
        const now = (running.get(data.key) ?? 0) + 1;
        if (now > 1) overlapSameKey++;
        running.set(data.key, now);
        maxParallel = Math.max(maxParallel, [...running.values()].reduce((a, b) => a + b, 0));
        await new Promise((resolve) => setTimeout(resolve, 5));
        running.set(data.key, (running.get(data.key) ?? 1) - 1);
        handled++;
      }
    }
    const { app, client } = await startConsumer(cfg, [SlowController]);
    apps.push(app);
    clients.push(client);
    await emitAll(client, interleaved(8, 20));
    await waitFor(() => handled >= 160, { timeoutMs: 20_000 });
    expect(overlapSameKey).toBe(0);
    expect(maxParallel).toBeGreaterThan(1);
  }, 30_000);

  it('global ordering: one total order with contiguous sequence numbers across 3 consumers', async () => {
    const cfg = config('order-global', { ordering: { enabled: true, strategy: 'global', maxConcurrency: 8 }, partitioning: { sessionTimeoutMs: 1_500 } });
    const log: Handled[] = [];
    await consumers(cfg, 3, log);
    const producer = new RedisStreamsClient(cfg);
    clients.push(producer);
    await emitAll(producer, Array.from({ length: 600 }, (_, n) => ({ key: 'any', n })), 50);
    await waitFor(() => log.length >= 600, { timeoutMs: 30_000 });
    expect(checkGlobalOrder(log.map((h) => h.n), range(0, 600))).toEqual({ lost: [], duplicated: [], unexpected: [], outOfOrder: [] });
    expect(log.map((h) => h.sequence)).toEqual(Array.from({ length: 600 }, (_, n) => n + 1));
    expect(new Set(log.map((h) => h.partition))).toEqual(new Set([0]));
  }, 60_000);

  it('a failing message holds up only its key, is retried, then dead-lettered; the rest continues in order', async () => {
    const cfg = keyed('order-fail', { partitioning: { partitionCount: 1 }, ordering: { retryAttempts: 3 } });
    const attempts = new Map<string, number>();
    const handled: string[] = [];
    let healed = false;
    @Controller()
    class FailingController {
      @StreamEvent('acct.moved')
      async onMoved(@Payload() data: { key: string; n: number }) {
        const id = `${data.key}#${data.n}`;
        attempts.set(id, (attempts.get(id) ?? 0) + 1);
        if (id === 'bad#1' && !healed) throw new Error('poison');
        handled.push(id);
      }
    }
    const { app, client } = await startConsumer(cfg, [FailingController]);
    apps.push(app);
    clients.push(client);
    for (let n = 0; n < 4; n++) {
      await lastValueFrom(client.emit('acct.moved', { key: 'bad', n }));
      await lastValueFrom(client.emit('acct.moved', { key: 'good', n }));
    }
    await waitFor(() => handled.length >= 7, { timeoutMs: 10_000 });
    expect(handled.filter((h) => h.startsWith('bad'))).toEqual(['bad#0', 'bad#2', 'bad#3']);
    expect(handled.filter((h) => h.startsWith('good'))).toEqual(['good#0', 'good#1', 'good#2', 'good#3']);
    expect(attempts.get('bad#1')).toBe(3);
    const keys = testKeys(cfg.streams?.keyPrefix as string);
    const dlq = await redis.xrange(keys.deadLetterOf(keys.partition('acct.moved', 0)), '-', '+');
    expect(dlq).toHaveLength(1);
    // The operators' tools see the partition's dead letters, and a redrive goes back to the partition.
    const deadLetters = new DeadLetterManager(cfg);
    try {
      expect(await deadLetters.count('acct.moved')).toBe(1);
      const [letter] = await deadLetters.list('acct.moved');
      expect(letter).toMatchObject({ reason: 'max-deliveries', errorMessage: 'poison', deliveries: 3, stream: keys.partition('acct.moved', 0) });
      healed = true;
      expect((await deadLetters.redrive('acct.moved')).redriven).toHaveLength(1);
      await waitFor(() => handled.includes('bad#1'), { timeoutMs: 5_000 });
      expect(await deadLetters.count('acct.moved')).toBe(0);
    } finally {
      await deadLetters.close();
    }
    // Replay reads every partition of the topic (merged by time); the layout marks are not messages.
    const replays = new ReplayManager({ ...cfg, replay: { enabled: true } });
    try {
      const result = await replays.replayMessages({ streamName: 'acct.moved', dryRun: true });
      expect(result.messagesReplayed).toBe(9);
    } finally {
      await replays.close();
    }
  }, 30_000);

  it('idempotent publish: the same idempotency key published 5 times is stored and handled once', async () => {
    const cfg = keyed('order-idem', { exactlyOnce: { enabled: true } });
    const log: Handled[] = [];
    await consumers(cfg, 1, log);
    const producer = new RedisStreamsClient(cfg);
    clients.push(producer);
    const ids = [];
    for (let i = 0; i < 5; i++) {
      ids.push(await lastValueFrom(producer.emit('acct.moved', new RedisStreamsRecordBuilder({ key: 'k1', n: 7 }).setIdempotencyKey('pay-7').build())));
    }
    expect(new Set(ids).size).toBe(1);
    await waitFor(() => log.length >= 1, { timeoutMs: 5_000 });
    await expectNothingWithin(300, () => log.length, { message: 'no second delivery' });
    expect(log).toHaveLength(1);
  }, 20_000);

  it('exactly-once processing: a message already processed by the group is acknowledged without its handler', async () => {
    const cfg = keyed('order-eos', { exactlyOnce: { enabled: true }, partitioning: { partitionCount: 1 } });
    const log: Handled[] = [];
    const [server] = await consumers(cfg, 1, log);
    const producer = new RedisStreamsClient(cfg);
    clients.push(producer);
    // Two entries with one message id (what a resent XADD after a lost reply looks like) are processed once.
    const record = () => new RedisStreamsRecordBuilder({ key: 'k', n: 1 }).setMessageId('m-1').build();
    await lastValueFrom(producer.emit('acct.moved', record()));
    await lastValueFrom(producer.emit('acct.moved', record()));
    await waitFor(() => server.getMetrics().acked >= 2, { timeoutMs: 5_000 });
    expect(log).toHaveLength(1);
    expect(server.getMetrics().duplicatesSkipped).toBe(1);
  }, 20_000);

  // Not on a cluster: it emits to another topic (another hash slot) in the transaction, refused there by design (TransactionCrossSlotError).
  (onCluster() ? it.skip : it)('ctx.transaction(): writes commit with the acknowledgement, and a failed attempt commits nothing', async () => {
    const cfg = keyed('order-tx', { partitioning: { partitionCount: 1 }, exactlyOnce: { enabled: true } });
    const keys = testKeys(cfg.streams?.keyPrefix as string);
    let calls = 0;
    @Controller()
    class LedgerController {
      @StreamEvent('acct.moved')
      async onMoved(@Payload() data: { key: string; n: number }, @Ctx() ctx: RedisStreamsContext) {
        calls++;
        ctx.transaction().call('HINCRBY', keys.beside(keys.partition('acct.moved', 0), 'balance'), data.key, data.n).emit('acct.audit', { key: data.key, n: data.n });
        if (calls === 1) throw new Error('fails after writing into the transaction: nothing may be committed');
      }
    }
    const { app, client, server } = await startConsumer(cfg, [LedgerController]);
    apps.push(app);
    clients.push(client);
    await lastValueFrom(client.emit('acct.moved', { key: 'alice', n: 5 }));
    await waitFor(() => server.getMetrics().acked >= 1, { timeoutMs: 5_000 });
    expect(calls).toBe(2);
    expect(await redis.hget(keys.beside(keys.partition('acct.moved', 0), 'balance'), 'alice')).toBe('5');
    // Partitioned topics: the audit topic has one partition too.
    expect(await redis.xlen(keys.partition('acct.audit', 0))).toBe(1);
  }, 20_000);

  it('causal: a message published before its cause is handled after it', async () => {
    const cfg = config('order-causal', { ordering: { enabled: true, strategy: 'causal', timeoutMs: 5_000 }, partitioning: { sessionTimeoutMs: 1_500 } });
    const log: Handled[] = [];
    await consumers(cfg, 1, log);
    const producer = new RedisStreamsClient(cfg);
    clients.push(producer);
    // Effects first, causes later: 'paid' depends on 'created', 'shipped' on 'paid'.
    await lastValueFrom(producer.emit('acct.moved', new RedisStreamsRecordBuilder({ key: 'shipped', n: 3 }).setIdempotencyKey('o1-shipped').setDependsOn('o1-paid').build()));
    await lastValueFrom(producer.emit('acct.moved', new RedisStreamsRecordBuilder({ key: 'paid', n: 2 }).setIdempotencyKey('o1-paid').setDependsOn('o1-created').build()));
    await lastValueFrom(producer.emit('acct.moved', new RedisStreamsRecordBuilder({ key: 'other', n: 9 }).build()));
    // 'other' is handled; the two waiting for their cause stay waiting.
    await waitFor(() => log.length >= 1, { timeoutMs: 5_000 });
    await expectNothingWithin(200, () => log.map((h) => h.key), { message: 'the effects to wait for their cause' });
    expect(log.map((h) => h.key)).toEqual(['other']);
    await lastValueFrom(producer.emit('acct.moved', new RedisStreamsRecordBuilder({ key: 'created', n: 1 }).setIdempotencyKey('o1-created').build()));
    await waitFor(() => log.length >= 4, { timeoutMs: 5_000 });
    expect(log.map((h) => h.key)).toEqual(['other', 'created', 'paid', 'shipped']);
  }, 20_000);

  it('causal: a dependency missing beyond timeoutMs dead-letters the message (causal-timeout)', async () => {
    const cfg = config('order-causal-timeout', { ordering: { enabled: true, strategy: 'causal', timeoutMs: 300 }, partitioning: { sessionTimeoutMs: 1_500 } });
    const log: Handled[] = [];
    await consumers(cfg, 1, log);
    const producer = new RedisStreamsClient(cfg);
    clients.push(producer);
    await lastValueFrom(producer.emit('acct.moved', new RedisStreamsRecordBuilder({ key: 'orphan', n: 1 }).setDependsOn('never-published').build()));
    const keys = testKeys(cfg.streams?.keyPrefix as string);
    const dlqKey = keys.deadLetterOf(keys.partition('acct.moved', 0));
    await waitFor(async () => (await redis.xlen(dlqKey)) === 1, { timeoutMs: 5_000 });
    const [[, fields]] = await redis.xrange(dlqKey, '-', '+');
    expect(fields[fields.indexOf('rse.dlq.reason') + 1]).toBe('causal-timeout');
    expect(log).toHaveLength(0);
  }, 20_000);

  it('scaling 4 -> 8 -> 4 partitions under load keeps per-key order', async () => {
    const cfg = keyed('order-scale', { partitioning: { strategy: 'dynamic', minPartitions: 1, maxPartitions: 16 } });
    const log: Handled[] = [];
    await consumers(cfg, 2, log);
    const producer = new RedisStreamsClient(cfg);
    clients.push(producer);
    const admin = new PartitioningManager(cfg);
    try {
      const all = interleaved(40, 60);
      const third = all.length / 3;
      // Each change happens while messages are being published and consumed.
      const first = emitAll(producer, all.slice(0, third), 20);
      await waitFor(() => log.length >= 200, { timeoutMs: 10_000 });
      await admin.scalePartitions('acct.moved', 8);
      await first;
      const second = emitAll(producer, all.slice(third, 2 * third), 20);
      await waitFor(() => log.length >= third + 200, { timeoutMs: 20_000 });
      await admin.scalePartitions('acct.moved', 4);
      await second;
      await emitAll(producer, all.slice(2 * third));
      await waitFor(() => log.length >= all.length, { timeoutMs: 60_000 });
      expect(checkOrder(log, all)).toEqual({ outOfOrder: [], wrongCount: [], total: all.length });
      const layout = await admin.layoutOf('acct.moved', true);
      expect(layout.counts).toEqual([4, 8, 4]);
      // The keys really moved: some key was handled in more than one partition.
      const partitionsOfKey = new Map<string, Set<number | undefined>>();
      for (const h of log) partitionsOfKey.set(h.key, (partitionsOfKey.get(h.key) ?? new Set()).add(h.partition));
      expect([...partitionsOfKey.values()].some((s) => s.size > 1)).toBe(true);
      const stats = await admin.getPartitionStats('acct.moved', 'svc');
      expect(stats).toHaveLength(8);
      expect(stats.filter((s) => s.writable)).toHaveLength(4);
      expect(stats.every((s) => s.lag === 0 && s.pending === 0)).toBe(true);
    } finally {
      await admin.close();
    }
  }, 90_000);

  it('a producer that reads a new layout before the scaler switched every partition to it keeps per-key order', async () => {
    // The scaler publishes the new layout, then switches the old partitions one at a time. Here it is slowed down
    // (as on a busy Redis Cluster, where each switch is a round trip to another node): producers route by the new
    // layout to partitions still at the old epoch. A write refused there used to be retried after a pause while
    // later messages of its key, sent once the partition was switched, were stored ahead of it.
    const cfg = keyed('order-slow-scale', { partitioning: { strategy: 'dynamic', minPartitions: 1, maxPartitions: 16 } });
    const prefix = cfg.streams!.keyPrefix!;
    const keys = testKeys(prefix);
    const scripted = defineScripts(redis as never);
    const log: Handled[] = [];
    await consumers(cfg, 1, log);
    const producer = new RedisStreamsClient(cfg);
    clients.push(producer);
    const admin = new PartitioningManager(cfg);
    const slowScale = async (count: number) => {
      const layout = await admin.layoutOf('acct.moved', true);
      const epoch = layout.epoch + 1;
      const readable = Math.max(...layout.counts);
      for (let p = readable; p < count; p++) {
        const stream = keys.partition('acct.moved', p);
        await redis.xgroup('CREATE', stream, 'svc', '0', 'MKSTREAM');
        await redis.set(keys.epochOf(stream), String(epoch));
      }
      await redis.set(keys.layout('acct.moved'), JSON.stringify({ epoch, counts: [...layout.counts, count] }));
      for (let p = 0; p < readable; p++) {
        const stream = keys.partition('acct.moved', p);
        await scripted.rseCloseEpoch(stream, keys.epochOf(stream), String(epoch));
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    };
    try {
      const all = interleaved(20, 90);
      // Paced by the handlers (at most 60 ahead), so that messages are being sent while each partition is switched.
      const sending = (async () => {
        const emitted: Promise<unknown>[] = [];
        for (let at = 0; at < all.length; at++) {
          if (at - log.length >= 60) await waitFor(() => at - log.length < 60, { timeoutMs: 20_000, intervalMs: 2 });
          emitted.push(lastValueFrom(producer.emit('acct.moved', all[at])));
        }
        await Promise.all(emitted);
      })();
      await waitFor(() => log.length >= 200, { timeoutMs: 10_000 });
      await slowScale(8);
      await waitFor(() => log.length >= 900, { timeoutMs: 20_000 });
      await slowScale(4);
      await sending;
      await waitFor(() => log.length >= all.length, { timeoutMs: 60_000 });
      expect(checkOrder(log, all)).toEqual({ outOfOrder: [], wrongCount: [], total: all.length });
      expect((await admin.layoutOf('acct.moved', true)).counts).toEqual([4, 8, 4]);
    } finally {
      await admin.close();
    }
  }, 90_000);

  it('dynamic with autoScaling: grows the partition count under lag, shrinks it when idle, per-key order kept', async () => {
    const cfg = keyed('order-autoscale', {
      partitioning: { strategy: 'dynamic', autoScaling: true, partitionCount: 2, minPartitions: 2, maxPartitions: 8, rebalanceThreshold: 20, rebalanceInterval: 1_000 },
    });
    const log: Handled[] = [];
    // The scaler samples the lag once per rebalanceInterval (1 s); a consumer that drains the first burst sooner (the
    // Cluster reader does) would leave no lag to see. So the handlers wait at a gate until the topic has grown.
    const gate = new Gate();
    await consumers(cfg, 1, log, gate);
    const producer = new RedisStreamsClient(cfg);
    clients.push(producer);
    const admin = new PartitioningManager(cfg);
    try {
      const emitted = [...interleaved(30, 40), ...interleaved(30, 40).map((m) => ({ ...m, n: m.n + 40 }))];
      await emitAll(producer, emitted.slice(0, 1_200));
      await waitFor(async () => (await admin.layoutOf('acct.moved', true)).counts.length > 1, { timeoutMs: 15_000 }).finally(() => gate.open());
      expect((await admin.layoutOf('acct.moved', true)).counts[1]).toBe(4);
      await emitAll(producer, emitted.slice(1_200));
      await waitFor(() => log.length >= 2_400, { timeoutMs: 30_000 });
      expect(checkOrder(log, emitted)).toEqual({ outOfOrder: [], wrongCount: [], total: 2_400 });
      // Idle now: the scaler shrinks the topic back to minPartitions.
      await waitFor(async () => (await admin.layoutOf('acct.moved', true)).counts.at(-1) === 2, { timeoutMs: 15_000 });
    } finally {
      await admin.close();
    }
  }, 60_000);

  it('getOrderingGuarantees() reports the configuration in plain data', () => {
    const manager = new OrderingManager(keyed('order-guarantees', { exactlyOnce: { enabled: true } }));
    expect(manager.getOrderingGuarantees()).toMatchObject({
      strategy: 'partition',
      scope: 'key',
      orderingKey: 'key',
      singleOwnerPerPartition: true,
      delivery: 'exactly-once-for-redis-effects',
      retryAttempts: 3,
    });
  });
});
