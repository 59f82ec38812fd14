import { Controller, Inject, Injectable, type INestMicroservice } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { Cluster } from 'ioredis';
import { createRequire } from 'node:module';
import { lastValueFrom } from 'rxjs';
import {
  ConfigValidator,
  DeadLetterManager,
  RedisStreamsClient,
  RedisStreamsContext,
  ReplayManager,
  StreamEvent,
  type RedisStreamsEnterpriseConfig,
  type RedisStreamsServer,
} from 'nestjs-redis-streams-enterprise';
import { startConsumer, testConfig } from '../support/nest-apps.js';
import { RedisCluster } from '../support/redis-cluster.mjs';
import { testKeys } from '../support/keys.js';
import { range, reckon } from '../support/ledger.js';
import { cleanupPrefix, uniquePrefix } from '../support/redis.js';
import { expectNothingWithin, waitFor } from '../support/wait-for.js';

const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

/** Four patterns whose streams land on different hash slots (asserted below), read by one server. */
const SHARED = ['cl.alpha', 'cl.bravo', 'cl.charlie', 'cl.delta'];

@Injectable()
class Recorder {
  readonly seen: { pattern: string; n: number; consumer: string }[] = [];
  readonly events: number[] = [];
  readonly poisonAttempts = new Map<number, number>();
  poisonIsFixed = false;
  readonly handledPoison: number[] = [];
}

@Controller()
class ClusterController {
  constructor(@Inject(Recorder) private readonly recorder: Recorder) {}

  @EventPattern('cl.event')
  onEvent(@Payload() data: { n: number }) {
    this.recorder.events.push(data.n);
  }

  @MessagePattern('cl.sum')
  sum(@Payload() numbers: number[]) {
    return numbers.reduce((a, b) => a + b, 0);
  }

  @StreamEvent('cl.alpha')
  alpha(@Payload() data: { n: number }, @Ctx() ctx: RedisStreamsContext) {
    return this.record('cl.alpha', data.n, ctx);
  }

  @StreamEvent('cl.bravo')
  bravo(@Payload() data: { n: number }, @Ctx() ctx: RedisStreamsContext) {
    return this.record('cl.bravo', data.n, ctx);
  }

  @StreamEvent('cl.charlie')
  charlie(@Payload() data: { n: number }, @Ctx() ctx: RedisStreamsContext) {
    return this.record('cl.charlie', data.n, ctx);
  }

  @StreamEvent('cl.delta')
  delta(@Payload() data: { n: number }, @Ctx() ctx: RedisStreamsContext) {
    return this.record('cl.delta', data.n, ctx);
  }

  @EventPattern('cl.poison')
  poison(@Payload() data: { n: number }) {
    this.recorder.poisonAttempts.set(data.n, (this.recorder.poisonAttempts.get(data.n) ?? 0) + 1);
    if (!this.recorder.poisonIsFixed) throw new TypeError(`cannot handle ${data.n}`);
    this.recorder.handledPoison.push(data.n);
  }

  private async record(pattern: string, n: number, ctx: RedisStreamsContext) {
    await new Promise((resolve) => setImmediate(resolve)); // let the two consumers interleave
    this.recorder.seen.push({ pattern, n, consumer: ctx.getConsumer() });
  }
}

describe('connection.cluster validation', () => {
  it('needs at least one node, each with a host and a port; ClusterOptions pass through untouched', () => {
    const paths = (config: RedisStreamsEnterpriseConfig) => ConfigValidator.validateConfig(config).errors.map((e) => e.message);
    expect(paths({ connection: { cluster: { nodes: [] } } })).toEqual(['connection.cluster.nodes must list at least one node']);
    expect(paths({ connection: { cluster: { nodes: [{ host: '', port: 70_000 }] } } })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^connection\.cluster\.nodes\.0\.host /), expect.stringMatching(/^connection\.cluster\.nodes\.0\.port /)]),
    );
    expect(paths({ connection: { cluster: { nodes: [{ host: 'h', port: 1, typo: 1 } as never] } } })).toEqual([
      'connection.cluster.nodes.0.typo is not a known option (check for a typo)',
    ]);
    const natMap = () => null;
    const result = ConfigValidator.validateConfig({ connection: { cluster: { nodes: [{ host: 'h', port: 7000 }], options: { natMap, scaleReads: 'master' } } } });
    expect(result.errors).toEqual([]);
    expect(result.config?.connection.cluster?.options?.natMap).toBe(natMap);
    expect(result.config?.connection.cluster?.nodes).toEqual([{ host: 'h', port: 7000 }]);
  });
});

describe('Redis Cluster (3 local masters)', () => {
  const prefix = uniquePrefix('cluster');
  const keys = testKeys(prefix);
  const apps: INestMicroservice[] = [];
  const recorders: Recorder[] = [];
  const servers: RedisStreamsServer[] = [];
  let cluster: RedisCluster;
  let raw: Cluster;
  let config: RedisStreamsEnterpriseConfig;
  let client: RedisStreamsClient;

  beforeAll(async () => {
    cluster = await RedisCluster.start();
    raw = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
    config = testConfig(prefix, { connection: { cluster: { nodes: cluster.nodes } } });
    client = new RedisStreamsClient(config);
    for (let i = 0; i < 2; i++) {
      const started = await startConsumer(
        testConfig(prefix, { connection: { cluster: { nodes: cluster.nodes } }, consumer: { consumerName: `c${i}`, concurrency: 64, batchSize: 32 } }),
        [ClusterController],
        [Recorder],
      );
      apps.push(started.app);
      recorders.push(started.app.get(Recorder));
      servers.push(started.server);
    }
  }, 30_000);

  afterAll(async () => {
    await client?.close();
    await Promise.all(apps.map((app) => app.close()));
    if (raw) {
      await cleanupPrefix(raw, prefix);
      raw.disconnect();
    }
    await cluster?.stop();
  }, 30_000);

  it('emit reaches an @EventPattern and send is answered by a @MessagePattern', async () => {
    await lastValueFrom(client.emit('cl.event', { n: 1 }));
    await waitFor(() => recorders.some((r) => r.events.includes(1)), { message: 'the event' });
    await expect(lastValueFrom(client.send('cl.sum', [1, 2, 3.5]))).resolves.toBe(6.5);
    expect(recorders.flatMap((r) => r.events)).toEqual([1]);
    const status = await servers[0].getStatus();
    expect(status).toMatchObject({ healthy: true, redis: { command: 'ready', blocking: 'ready' } });
    expect(status.streams.find((s) => s.pattern === 'cl.event')).toMatchObject({ pending: 0, lag: 0 });
  });

  it('two consumers of one group share 2,000 messages over 4 streams on different slots: none lost, none twice', async () => {
    const slots = new Set(SHARED.map((p) => keySlot(keys.stream(p))));
    expect(slots.size).toBeGreaterThanOrEqual(2);
    const inFlight = new Set<Promise<unknown>>();
    for (let n = 0; n < 2_000; n++) {
      const p = lastValueFrom(client.emit(SHARED[n % SHARED.length], { n })).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= 100) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const seen = () => recorders.flatMap((r) => r.seen);
    await waitFor(() => seen().length >= 2_000, { timeoutMs: 20_000, message: '2,000 handled messages' });
    await expectNothingWithin(300, () => seen().length, { message: 'no duplicate' });
    for (const { pattern, n } of seen()) expect(pattern).toBe(SHARED[n % SHARED.length]);
    const { lost, duplicated } = reckon(
      seen().map((s) => s.n),
      range(0, 2_000),
    );
    expect({ lost, duplicated, total: seen().length }).toEqual({ lost: [], duplicated: [], total: 2_000 });
    // Both consumers took part, and every stream was read.
    expect(new Set(seen().map((s) => s.consumer))).toEqual(new Set(['c0', 'c1']));
    expect(new Set(seen().map((s) => s.pattern))).toEqual(new Set(SHARED));
    for (const pattern of SHARED) {
      expect(await raw.xpending(keys.stream(pattern), 'svc')).toEqual([0, null, null, null]);
    }
  });

  it('retries end in a dead letter (atomic script); DeadLetterManager lists, finds and redrives it', async () => {
    const manager = new DeadLetterManager(config);
    try {
      await lastValueFrom(client.emit('cl.poison', { n: 7 }));
      await waitFor(async () => (await manager.count('cl.poison')) === 1, { message: 'one dead letter' });
      const attempts = recorders.reduce((sum, r) => sum + (r.poisonAttempts.get(7) ?? 0), 0);
      expect(attempts).toBe(3); // retry.attempts of testConfig
      const [letter] = await manager.list('cl.poison');
      expect(letter).toMatchObject({ pattern: 'cl.poison', reason: 'max-deliveries', errorName: 'TypeError', group: 'svc' });
      expect(await raw.xpending(keys.stream('cl.poison'), 'svc')).toEqual([0, null, null, null]);
      // patterns() scans every master.
      expect(await manager.patterns()).toEqual(['cl.poison']);

      for (const r of recorders) r.poisonIsFixed = true;
      const first = await manager.redrive('cl.poison');
      const again = await manager.redrive('cl.poison');
      expect(first.redriven).toHaveLength(1);
      expect(again.redriven).toHaveLength(0);
      await waitFor(() => recorders.some((r) => r.handledPoison.includes(7)), { message: 'the redriven message' });
      expect(await manager.count('cl.poison')).toBe(0);
    } finally {
      await manager.close();
    }
  });

  it('ReplayManager copies a stream into another on a different slot, once', async () => {
    const source = 'cl.replay.src';
    const target = 'cl.replay.dst';
    expect(keySlot(keys.stream(source))).not.toBe(keySlot(keys.stream(target)));
    for (let n = 0; n < 300; n++) await raw.xadd(keys.stream(source), '*', 'v', '1', 'pattern', source, 'id', `m-${n}`, 'data', JSON.stringify({ n }));
    const manager = new ReplayManager(testConfig(prefix, { connection: { cluster: { nodes: cluster.nodes } }, replay: { enabled: true, batchSize: 64 } }));
    try {
      const first = await manager.replayMessages({ streamName: source, target: { stream: target } });
      expect(first).toMatchObject({ messagesReplayed: 300, stoppedBy: 'end' });
      const again = await manager.replayMessages({ streamName: source, target: { stream: target } });
      expect(again).toMatchObject({ messagesReplayed: 0, skipped: 300 }); // already copied: nothing added
      const copied = (await raw.xrange(keys.stream(target), '-', '+')).map(([, f]) => JSON.parse(f[f.indexOf('data') + 1]).n as number);
      expect(copied).toEqual(Array.from({ length: 300 }, (_, n) => n)); // in order, not copied twice
    } finally {
      await manager.close();
    }
  });
});
