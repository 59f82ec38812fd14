import { Controller, Inject, type INestMicroservice } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { Cluster, Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import {
  DeadLetterManager,
  ReplayManager,
  RedisStreamsClient,
  RedisStreamsContext,
  RedisStreamsRecordBuilder,
  RedisStreamsServer,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { keySlot, RedisCluster } from '../support/redis-cluster.mjs';
import { RedisProcess } from '../support/redis-process.mjs';
import { uniquePrefix } from '../support/redis.js';
import { testKeys } from '../support/keys.js';
import { checkPerKeyOrder, range } from '../support/ledger.js';
import { expectNothingWithin, staysTrue, waitFor } from '../support/wait-for.js';

/**
 * Reading streams spread over many Cluster hash slots (cluster/multi-slot-reader.ts, cluster/doorbell.ts). With
 * `consumer.sweepMs` at its maximum (60 s), the periodic sweep cannot be what delivers an entry within these
 * tests' waits: only the doorbell rung by the producer can. Without it, these tests time out.
 */
const TOPICS = 300;
const NO_SWEEP = { sweepMs: 60_000 };
const LOG = Symbol('LOG');

interface Handled {
  readonly key: string;
  readonly n: number;
  readonly partition: number | undefined;
  readonly consumer: string;
}

@Controller()
class PartitionedController {
  constructor(@Inject(LOG) private readonly log: Handled[]) {}

  @StreamEvent('cr.partitioned')
  async handle(@Payload() data: { key: string; n: number }, @Ctx() ctx: RedisStreamsContext) {
    await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 2)));
    this.log.push({ key: data.key, n: data.n, partition: ctx.getPartition(), consumer: ctx.getConsumer() });
  }
}

/** XREADGROUP calls processed by all masters so far (INFO commandstats). */
async function xreadgroupCalls(nodes: Redis[]): Promise<number> {
  let total = 0;
  for (const node of nodes) {
    const text = await node.info('commandstats');
    total += Number(/cmdstat_xreadgroup:calls=(\d+)/.exec(text)?.[1] ?? 0);
  }
  return total;
}

const TARGETS = [
  { target: 'a Redis Cluster (3 masters), streams spread over many hash slots', onCluster: true },
  { target: "one redis-server with streams.doorbell: 'always'", onCluster: false },
];

describe.each(TARGETS)('reading many streams with the doorbell: $target', ({ onCluster }) => {
  const prefix = uniquePrefix('cluster-reading');
  const keys = testKeys(prefix);
  let cluster: RedisCluster | undefined;
  let server: RedisProcess | undefined;
  let raw: Cluster | Redis;
  /** Every master (the one server): their INFO commandstats count the reads. */
  let masters: Redis[] = [];
  const closers: (() => Promise<unknown>)[] = [];

  const config = (overrides: RedisStreamsEnterpriseConfig = {}) =>
    testConfig(prefix, {
      connection: cluster ? { cluster: { nodes: cluster.nodes } } : { url: server!.url },
      ...overrides,
      streams: { keyPrefix: prefix, doorbell: onCluster ? 'cluster' : 'always', ...overrides.streams },
      consumer: { ...NO_SWEEP, ...overrides.consumer },
    });

  beforeAll(async () => {
    if (onCluster) {
      cluster = await RedisCluster.start();
      raw = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
      masters = cluster.nodes.map((n) => new Redis(n.port, n.host, { maxRetriesPerRequest: 1 }));
    } else {
      // Its own server: the idle check counts every XREADGROUP the server processed.
      server = await RedisProcess.start();
      raw = new Redis(server.url, { maxRetriesPerRequest: 1 });
      masters = [new Redis(server.url, { maxRetriesPerRequest: 1 })];
    }
  }, 30_000);

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  afterAll(async () => {
    raw?.disconnect();
    for (const m of masters) m.disconnect();
    await cluster?.stop();
    await server?.stop();
  }, 30_000);

  it(`one server reads ${TOPICS} topics: every emit is delivered through the doorbell, idle costs no polling`, async () => {
    const patterns = Array.from({ length: TOPICS }, (_, i) => `cr.topic.${i}`);
    if (onCluster) expect(new Set(patterns.map((p) => keySlot(keys.stream(p)))).size).toBeGreaterThan(TOPICS * 0.9);
    const seen = new Map<string, number>();
    const consumer = new RedisStreamsServer(config({ consumer: { group: 'topics', sweepMs: 60_000 } }));
    for (const p of patterns) consumer.addHandler(p, async (data: { n: number }) => void seen.set(`${p}/${data.n}`, (seen.get(`${p}/${data.n}`) ?? 0) + 1), true);
    await new Promise<void>((resolve, reject) => consumer.listen((error?: unknown) => (error ? reject(error) : resolve())));
    closers.push(() => consumer.close());
    const client = new RedisStreamsClient(config());
    closers.push(() => client.close());

    // Idle: a blocking read on the doorbell, no per-slot polling (one full sweep per sweepMs, here 60 s).
    await new Promise((resolve) => setTimeout(resolve, 300)); // past the first (full) round
    const before = await xreadgroupCalls(masters);
    // (A blocking read over all streams, with the tests' blockMs of 200 ms, would make about 10.)
    await staysTrue(async () => (await xreadgroupCalls(masters)) - before < 5, { forMs: 2_000, intervalMs: 100, message: 'fewer than 5 XREADGROUP calls' });
    expect((await xreadgroupCalls(masters)) - before).toBeLessThan(5);

    // Three waves, each to every topic, with idle gaps between them: each wave must be found through its rings.
    for (let wave = 0; wave < 3; wave++) {
      await Promise.all(patterns.map((p) => lastValueFrom(client.emit(p, { n: wave }))));
      await waitFor(() => seen.size === TOPICS * (wave + 1), { timeoutMs: 15_000, message: `every entry of wave ${wave}` });
      await new Promise((resolve) => setTimeout(resolve, 200)); // idle gap: the next wave must be found through its rings
    }
    expect([...seen.values()].every((count) => count === 1)).toBe(true);
    expect(await raw.xlen(keys.doorbell())).toBeGreaterThan(0);
  });

  it('entries written without a ring (a raw XADD) are found by the periodic sweep', async () => {
    const seen: number[] = [];
    const consumer = new RedisStreamsServer(config({ consumer: { group: 'sweep', sweepMs: 300 } }));
    consumer.addHandler('cr.raw', async (data: { n: number }) => void seen.push(data.n), true);
    await new Promise<void>((resolve, reject) => consumer.listen((error?: unknown) => (error ? reject(error) : resolve())));
    closers.push(() => consumer.close());
    const client = new RedisStreamsClient(config());
    closers.push(() => client.close());
    await lastValueFrom(client.emit('cr.raw', { n: 1 }));
    await waitFor(() => seen.length === 1, { message: 'the emitted entry' });
    // Same wire format as the client's entry, written by "another producer" that does not ring.
    const [[, fields]] = (await raw.xrange(keys.stream('cr.raw'), '-', '+', 'COUNT', 1)) as [string, string[]][];
    const data = fields.indexOf('data');
    const copy = [...fields];
    copy[data + 1] = JSON.stringify({ n: 2 });
    const id = fields.indexOf('id');
    if (id >= 0) copy[id + 1] = `${fields[id + 1]}-raw`;
    await raw.xadd(keys.stream('cr.raw'), '*', ...copy);
    await waitFor(() => seen.includes(2), { timeoutMs: 10_000, message: 'the raw entry, by the sweep' });
  });

  it('a foreign producer that rings the doorbell itself (README, wire format) is read at once', async () => {
    const seen: number[] = [];
    const consumer = new RedisStreamsServer(config({ consumer: { group: 'foreign', sweepMs: 60_000 } }));
    consumer.addHandler('cr.foreign', async (data: { n: number }) => void seen.push(data.n), true);
    await new Promise<void>((resolve, reject) => consumer.listen((error?: unknown) => (error ? reject(error) : resolve())));
    closers.push(() => consumer.close());
    await new Promise((resolve) => setTimeout(resolve, 300)); // past the first (full) round: only a ring wakes it now
    const stream = keys.stream('cr.foreign');
    await raw.xadd(stream, '*', 'data', JSON.stringify({ n: 7 }));
    await raw.xadd(keys.doorbell(), 'MAXLEN', '~', 4096, '*', 's', stream);
    await waitFor(() => seen.includes(7), { timeoutMs: 5_000, message: 'the foreign entry, by its ring' });
  });

  it('256 partitions over the slots, 2 consumers: every message once, per-key order kept, through the doorbell', async () => {
    const log: Handled[] = [];
    const partitioned = config({
      partitioning: { enabled: true, strategy: 'hash', partitionCount: 256, maxPartitions: 256, partitionKey: 'key', sessionTimeoutMs: 3_000 },
      ordering: { enabled: true, strategy: 'partition', partitionKey: 'key', maxConcurrency: 32 },
      consumer: { group: 'parts', batchSize: 16, sweepMs: 60_000 },
    });
    const apps: INestMicroservice[] = [];
    for (let i = 0; i < 2; i++) {
      const started = await startConsumer({ ...partitioned, consumer: { ...partitioned.consumer, consumerName: `p${i}` } }, [PartitionedController], [
        { provide: LOG, useValue: log },
      ]);
      apps.push(started.app);
      closers.push(() => started.app.close());
    }
    const client = new RedisStreamsClient(partitioned);
    closers.push(() => client.close());
    // Both consumers hold partitions before the run (the assignment settles within a few heartbeats).
    await new Promise((resolve) => setTimeout(resolve, 2_000));

    const orderKeys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    const perKey = 20;
    for (let n = 0; n < perKey; n++) {
      await Promise.all(orderKeys.map((key) => lastValueFrom(client.emit('cr.partitioned', new RedisStreamsRecordBuilder({ key, n }).setPartitionKey(key).build()))));
      if (n % 5 === 4) await new Promise((resolve) => setTimeout(resolve, 100)); // idle gaps: reads must be woken
    }
    await waitFor(() => log.length >= orderKeys.length * perKey, { timeoutMs: 20_000, message: 'every message handled' });
    await expectNothingWithin(300, () => log.length, { message: 'no second delivery' });
    expect(log).toHaveLength(orderKeys.length * perKey);
    const emitted = range(0, perKey).flatMap((n) => orderKeys.map((key) => ({ key, n })));
    expect(checkPerKeyOrder(log, emitted)).toEqual({ outOfOrder: [], wrongCount: [], total: orderKeys.length * perKey });
    expect(new Set(log.map((h) => h.partition)).size).toBeGreaterThan(50);
    expect(new Set(log.map((h) => h.consumer)).size).toBe(2);
  });

  it('redrive, replay and transaction emits ring too: their entries are read at once, not at the next sweep', async () => {
    // A target pattern in the source's hash slot, so a transaction may emit to it on a Cluster.
    const first = 'cr.chain.first';
    const slot = keySlot(keys.stream(first));
    let i = 0;
    while (keySlot(keys.stream(`cr.chain.second.${i}`)) !== slot) i++;
    const second = `cr.chain.second.${i}`;
    const handled: string[] = [];
    let poisonFixed = false;
    const settings = config({ consumer: { group: 'chain', sweepMs: 60_000 }, retry: { attempts: 2 }, replay: { enabled: true } });
    const consumer = new RedisStreamsServer(settings);
    consumer.addHandler(
      first,
      async (data: { n: number }, ctx: RedisStreamsContext) => {
        if (data.n === 13 && !poisonFixed) throw new Error('not yet');
        handled.push(`first/${data.n}`);
        ctx.transaction().emit(second, { n: data.n });
      },
      true,
    );
    consumer.addHandler(second, async (data: { n: number }) => void handled.push(`second/${data.n}`), true);
    // Replayed copies keep their pattern field, so the handler of `second` runs for them on the replay stream too.
    consumer.addHandler('cr.chain.replayed', async () => undefined, true);
    await new Promise<void>((resolve, reject) => consumer.listen((error?: unknown) => (error ? reject(error) : resolve())));
    closers.push(() => consumer.close());
    const client = new RedisStreamsClient(settings);
    closers.push(() => client.close());

    await lastValueFrom(client.emit(first, { n: 1 }));
    await waitFor(() => handled.includes('second/1'), { message: 'the transaction emit' });

    await lastValueFrom(client.emit(first, { n: 13 }));
    const dlq = new DeadLetterManager(settings);
    closers.push(() => dlq.close());
    await waitFor(async () => (await dlq.list(first)).length === 1, { message: 'the dead letter' });
    poisonFixed = true;
    await new Promise((resolve) => setTimeout(resolve, 300)); // idle again: only a ring can wake the reader now
    await dlq.redrive(first);
    await waitFor(() => handled.includes('second/13'), { message: 'the redriven message and its emit' });

    const replay = new ReplayManager(settings);
    closers.push(() => replay.close());
    await new Promise((resolve) => setTimeout(resolve, 300)); // idle again before the replay (pacing, not an absence check)
    const { messagesReplayed } = await replay.replayMessages({ streamName: second, target: { stream: 'cr.chain.replayed' } });
    expect(messagesReplayed).toBe(2);
    await waitFor(() => handled.filter((h) => h.startsWith('second/')).length === 4, { message: 'the replayed copies' });
    expect(handled.filter((h) => h.startsWith('first/')).sort()).toEqual(['first/1', 'first/13']);
  });
});
